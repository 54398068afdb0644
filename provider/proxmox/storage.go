package proxmox

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	goproxmox "github.com/luthermonson/go-proxmox"

	"github.com/moxxie/moxxie/provider"
)

// snapshotNamePattern is the shape Proxmox requires of a snapshot name.
const snapshotNameRule = "a letter followed by up to 39 letters, digits, '-' or '_'"

func validSnapshotName(name string) bool {
	if len(name) < 2 || len(name) > 40 {
		return false
	}
	for i, r := range name {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if i == 0 && !letter || !letter && !(r >= '0' && r <= '9') && r != '-' && r != '_' {
			return false
		}
	}
	return true
}

// Snapshots lists a guest's snapshots, oldest first. The "current" entry
// Proxmox adds for the running state is left out.
func (p *Provider) Snapshots(ctx context.Context, ref provider.GuestRef) ([]provider.Snapshot, error) {
	op := "list snapshots of " + refName(ref)
	if err := checkRef(op, ref); err != nil {
		return nil, err
	}
	var list []struct {
		Name        string  `json:"name"`
		Description string  `json:"description"`
		Parent      string  `json:"parent"`
		SnapTime    pveInt  `json:"snaptime"`
		VMState     pveBool `json:"vmstate"`
	}
	if err := p.client.Get(ctx, guestPath(ref)+"/snapshot", &list); err != nil {
		return nil, p.fail(op, err)
	}
	out := make([]provider.Snapshot, 0, len(list))
	for _, s := range list {
		if s.Name == "current" {
			continue
		}
		snap := provider.Snapshot{Name: s.Name, Description: s.Description, Parent: s.Parent, VMState: bool(s.VMState)}
		if s.SnapTime > 0 {
			snap.Created = time.Unix(int64(s.SnapTime), 0).UTC()
		}
		out = append(out, snap)
	}
	slices.SortStableFunc(out, func(a, b provider.Snapshot) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// CreateSnapshot takes a snapshot named name, without the memory of a
// running virtual machine.
func (p *Provider) CreateSnapshot(ctx context.Context, ref provider.GuestRef, name, description string) (provider.Task, error) {
	if !validSnapshotName(name) {
		return provider.Task{}, reject("snapshot "+refName(ref), "snapshot name %q is not %s", name, snapshotNameRule)
	}
	body := map[string]any{"snapname": name}
	if description != "" {
		body["description"] = description
	}
	return p.guestTask(ctx, "snapshot", ref, http.MethodPost, "/snapshot", body)
}

// DeleteSnapshot removes a snapshot.
func (p *Provider) DeleteSnapshot(ctx context.Context, ref provider.GuestRef, name string) (provider.Task, error) {
	if !validSnapshotName(name) {
		return provider.Task{}, reject("delete snapshot of "+refName(ref), "snapshot name %q is not %s", name, snapshotNameRule)
	}
	return p.guestTask(ctx, "delete snapshot "+name+" of", ref, http.MethodDelete, "/snapshot/"+url.PathEscape(name), nil)
}

// RollbackSnapshot returns the guest to a snapshot.
func (p *Provider) RollbackSnapshot(ctx context.Context, ref provider.GuestRef, name string) (provider.Task, error) {
	if !validSnapshotName(name) {
		return provider.Task{}, reject("roll back "+refName(ref), "snapshot name %q is not %s", name, snapshotNameRule)
	}
	return p.guestTask(ctx, "roll back to "+name, ref, http.MethodPost, "/snapshot/"+url.PathEscape(name)+"/rollback", nil)
}

// Backup starts a vzdump backup of one guest on the guest's node.
func (p *Provider) Backup(ctx context.Context, ref provider.GuestRef, spec provider.BackupSpec) (provider.Task, error) {
	op := "back up " + refName(ref)
	if err := checkRef(op, ref); err != nil {
		return provider.Task{}, err
	}
	mode := spec.Mode
	if mode == "" {
		mode = "snapshot"
	}
	if mode != "snapshot" && mode != "suspend" && mode != "stop" {
		return provider.Task{}, reject(op, "backup mode %q is not snapshot, suspend or stop", spec.Mode)
	}
	opts := &goproxmox.VirtualMachineBackupOptions{
		VMID:          uint64(ref.VMID),
		Storage:       spec.Storage,
		Mode:          goproxmox.VirtualMachineBackupMode(mode),
		Compress:      goproxmox.VirtualMachineBackupCompress(spec.Compress),
		NotesTemplate: spec.Notes,
	}
	task, err := (&goproxmox.Node{}).New(p.client, ref.Node).Vzdump(ctx, opts)
	if err != nil {
		return provider.Task{}, p.fail(op, err)
	}
	var upid string
	if task != nil {
		upid = string(task.UPID)
	}
	return taskOf(upid, ref.Node), nil
}

// StorageContent lists the volumes on one storage of one node, of one
// content type (images, iso, vztmpl, backup, rootdir, ...) when content is
// not empty.
func (p *Provider) StorageContent(ctx context.Context, node, storage, content string) ([]provider.Content, error) {
	op := fmt.Sprintf("list content of storage %s on %s", storage, node)
	if node == "" || storage == "" {
		return nil, reject(op, "node and storage are required")
	}
	path := nodePath(node) + "/storage/" + url.PathEscape(storage) + "/content"
	if content != "" {
		path += "?content=" + url.QueryEscape(content)
	}
	var list []struct {
		VolID     string  `json:"volid"`
		Format    string  `json:"format"`
		Content   string  `json:"content"`
		Size      pveUint `json:"size"`
		VMID      pveInt  `json:"vmid"`
		CTime     pveInt  `json:"ctime"`
		Notes     string  `json:"notes"`
		Protected pveBool `json:"protected"`
	}
	if err := p.client.Get(ctx, path, &list); err != nil {
		return nil, p.fail(op, err)
	}
	out := make([]provider.Content, 0, len(list))
	for _, c := range list {
		v := provider.Content{
			VolID: c.VolID, Format: c.Format, Content: c.Content,
			Size: uint64(c.Size), VMID: int(c.VMID), Notes: c.Notes,
			Protected: bool(c.Protected),
		}
		if c.CTime > 0 {
			v.Created = time.Unix(int64(c.CTime), 0).UTC()
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b provider.Content) int { return strings.Compare(a.VolID, b.VolID) })
	return out, nil
}

// Networks lists a node's network interfaces, sorted by name.
func (p *Provider) Networks(ctx context.Context, node string) ([]provider.Network, error) {
	op := "list networks of " + node
	if node == "" {
		return nil, reject(op, "node is required")
	}
	nets, err := (&goproxmox.Node{}).New(p.client, node).Networks(ctx)
	if err != nil {
		return nil, p.fail(op, err)
	}
	out := make([]provider.Network, 0, len(nets))
	for _, n := range nets {
		if n == nil {
			continue
		}
		out = append(out, provider.Network{
			Iface:     n.Iface,
			Type:      n.Type,
			Active:    n.Active != 0,
			Autostart: n.Autostart != 0,
			CIDR:      networkCIDR(n.CIDR, n.Address, n.Netmask),
			Gateway:   n.Gateway,
			Ports:     n.BridgePorts,
			VLANAware: n.BridgeVLANAware != 0,
			Comments:  strings.TrimSpace(n.Comments),
		})
	}
	slices.SortFunc(out, func(a, b provider.Network) int { return strings.Compare(a.Iface, b.Iface) })
	return out, nil
}

// networkCIDR returns an interface's address in CIDR notation, from cidr
// when Proxmox gave it and from address and netmask (a prefix length or a
// dotted mask) otherwise.
func networkCIDR(cidr, address, netmask string) string {
	if cidr != "" || address == "" {
		return cidr
	}
	if netmask == "" {
		return address
	}
	if _, err := strconv.Atoi(netmask); err == nil {
		return address + "/" + netmask
	}
	if m, err := netip.ParseAddr(netmask); err == nil && m.Is4() {
		b := m.As4()
		bits := 0
		for _, x := range b {
			for ; x&0x80 != 0; x <<= 1 {
				bits++
			}
		}
		return address + "/" + strconv.Itoa(bits)
	}
	return address
}
