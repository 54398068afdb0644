package proxmox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/moxxie/moxxie/provider"
)

// Disks are changed through the guest's configuration (add, attach,
// detach) and through the resize, move_disk and move_volume calls. The
// requests go through go-proxmox's generic calls: its VirtualMachine and
// Container methods need the guest read first, and its DeleteContent puts
// the volume ID into the path unescaped.

// diskPrefixes are the configuration keys, followed by a number, that hold
// disks of each kind of guest; "rootfs" is a container's root disk.
var diskPrefixes = map[provider.GuestKind][]string{
	provider.KindVM:        {"ide", "sata", "scsi", "virtio", "efidisk", "tpmstate", "unused"},
	provider.KindContainer: {"mp", "unused"},
}

// splitSlot splits a slot such as scsi12 into its prefix and number. It
// reports false for keys that are not a prefix followed by digits.
func splitSlot(slot string) (prefix string, n int, ok bool) {
	i := strings.IndexFunc(slot, func(r rune) bool { return r >= '0' && r <= '9' })
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(slot[i:])
	if err != nil || n < 0 || strconv.Itoa(n) != slot[i:] {
		return "", 0, false
	}
	return slot[:i], n, true
}

// isDiskSlot reports whether slot names a disk of a guest of kind.
func isDiskSlot(kind provider.GuestKind, slot string) bool {
	if kind == provider.KindContainer && slot == "rootfs" {
		return true
	}
	prefix, _, ok := splitSlot(slot)
	return ok && slices.Contains(diskPrefixes[kind], prefix)
}

// isUnusedSlot reports whether slot is an unusedN slot.
func isUnusedSlot(slot string) bool {
	prefix, _, ok := splitSlot(slot)
	return ok && prefix == "unused"
}

// compareSlots orders slots by prefix, then number: scsi2 before scsi10.
func compareSlots(a, b string) int {
	pa, na, oka := splitSlot(a)
	pb, nb, okb := splitSlot(b)
	if !oka || !okb || pa != pb {
		return strings.Compare(a, b)
	}
	return cmp.Compare(na, nb)
}

// parseDiskValue reads a disk option such as
// "local-lvm:vm-100-disk-0,iothread=1,size=32G". It reports false for
// values that name no storage volume: empty drives ("none"), CD-ROMs,
// cloud-init drives, host devices and bind mounts (absolute paths).
func parseDiskValue(value string) (volid string, size uint64, ok bool) {
	parts := strings.Split(value, ",")
	volid = parts[0]
	for _, p := range parts {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "file", "volume":
			volid = v
		case "media":
			if v == "cdrom" {
				return "", 0, false
			}
		case "size":
			size = parseSize(v)
		}
	}
	storage, name, found := strings.Cut(volid, ":")
	if !found || storage == "" || name == "" || strings.HasPrefix(volid, "/") || strings.Contains(name, "cloudinit") {
		return "", 0, false
	}
	return volid, size, true
}

// parseSize reads a size as Proxmox writes it into a disk option: bytes,
// or a number with a K, M, G or T suffix (powers of 1024). It returns zero
// for anything else, also for NaN, infinities and sizes of 2^64 bytes or
// more.
func parseSize(s string) uint64 {
	if s == "" {
		return 0
	}
	mult := 1.0
	switch s[len(s)-1] {
	case 'K', 'k':
		mult = 1 << 10
	case 'M', 'm':
		mult = 1 << 20
	case 'G', 'g':
		mult = 1 << 30
	case 'T', 't':
		mult = 1 << 40
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= 0 && f*mult < 1<<64) { // NaN fails both
		return 0
	}
	return uint64(f * mult)
}

// volumeStorage returns the storage part of a volume ID, "local-lvm" of
// "local-lvm:vm-100-disk-0".
func volumeStorage(volid string) string {
	s, _, _ := strings.Cut(volid, ":")
	return s
}

// disksOf lists the disks in a guest configuration, sorted by slot.
func disksOf(kind provider.GuestKind, cfg map[string]string) []provider.Disk {
	out := []provider.Disk{}
	for k, v := range cfg {
		if !isDiskSlot(kind, k) {
			continue
		}
		volid, size, ok := parseDiskValue(v)
		if !ok {
			continue
		}
		out = append(out, provider.Disk{Slot: k, VolID: volid, Storage: volumeStorage(volid), Size: size})
	}
	slices.SortFunc(out, func(a, b provider.Disk) int { return compareSlots(a.Slot, b.Slot) })
	return out
}

// Disks lists a guest's disks from its configuration: attached ones and
// unusedN ones, sorted by slot (scsi2 before scsi10). Empty drives,
// CD-ROMs, cloud-init drives, host devices and bind mounts are left out.
func (p *Provider) Disks(ctx context.Context, ref provider.GuestRef) ([]provider.Disk, error) {
	op := "list disks of " + refName(ref)
	if err := checkRef(op, ref); err != nil {
		return nil, err
	}
	cfg, err := p.guestConfig(ctx, ref)
	if err != nil {
		return nil, p.fail(op, err)
	}
	return disksOf(ref.Kind, cfg), nil
}

// checkNewSlot checks that slot can take a new or re-attached disk of a
// guest of kind: a bus slot of a virtual machine (ide, sata, scsi,
// virtio), a mount point (mpN) of a container.
func checkNewSlot(op string, kind provider.GuestKind, slot string) error {
	prefix, _, ok := splitSlot(slot)
	switch {
	case kind == provider.KindVM && ok && slices.Contains([]string{"ide", "sata", "scsi", "virtio"}, prefix):
		return nil
	case kind == provider.KindContainer && ok && prefix == "mp":
		return nil
	case kind == provider.KindContainer:
		return reject(op, "slot %q is not a mount point (mpN)", slot)
	}
	return reject(op, "slot %q is not an ide, sata, scsi or virtio slot", slot)
}

// setDisk sets one disk option of a guest after checking that slot is
// free, sending the configuration's digest so that a concurrent change is
// refused. The value of a container's mount point gets its mount path,
// /mnt/<slot>. Virtual machines are re-configured by a task; containers
// synchronously (the Task then has an empty ID).
func (p *Provider) setDisk(ctx context.Context, op string, ref provider.GuestRef, slot, value string) (provider.Task, error) {
	cur, err := p.guestConfig(ctx, ref)
	if err != nil {
		return provider.Task{}, p.fail(op, err)
	}
	if v, ok := cur[slot]; ok {
		return provider.Task{}, reject(op, "slot %s is in use (%s)", slot, v)
	}
	if ref.Kind == provider.KindContainer {
		value += ",mp=/mnt/" + slot
	}
	body := map[string]any{slot: value}
	if d := cur["digest"]; d != "" {
		body["digest"] = d
	}
	return p.configTask(ctx, op, ref, body)
}

// configTask changes a guest's configuration: by a task for a virtual
// machine (POST), synchronously for a container (PUT).
func (p *Provider) configTask(ctx context.Context, op string, ref provider.GuestRef, body map[string]any) (provider.Task, error) {
	var upid string
	var err error
	if ref.Kind == provider.KindVM {
		upid, err = p.post(ctx, guestPath(ref)+"/config", body)
	} else {
		err = p.client.Put(ctx, guestPath(ref)+"/config", body, &upid)
	}
	if err != nil {
		return provider.Task{}, p.fail(op, err)
	}
	return taskOf(upid, ref.Node), nil
}

// AddDisk allocates a new volume of sizeGiB on storage and attaches it at
// slot, which must be free: an ide, sata, scsi or virtio slot of a virtual
// machine, or a mount point (mpN) of a container, mounted at /mnt/<slot>.
func (p *Provider) AddDisk(ctx context.Context, ref provider.GuestRef, slot, storage string, sizeGiB int) (provider.Task, error) {
	op := fmt.Sprintf("add disk %s to %s", slot, refName(ref))
	if err := checkRef(op, ref); err != nil {
		return provider.Task{}, err
	}
	if err := checkNewSlot(op, ref.Kind, slot); err != nil {
		return provider.Task{}, err
	}
	if storage == "" {
		return provider.Task{}, reject(op, "no storage")
	}
	if sizeGiB <= 0 {
		return provider.Task{}, reject(op, "size %d GiB is not positive", sizeGiB)
	}
	return p.setDisk(ctx, op, ref, slot, storage+":"+strconv.Itoa(sizeGiB))
}

// AttachDisk attaches volume volid, which must belong to the guest (a
// detached disk, listed as unusedN), at a free slot. Proxmox drops the
// unusedN entry that named the volume.
func (p *Provider) AttachDisk(ctx context.Context, ref provider.GuestRef, slot, volid string) (provider.Task, error) {
	op := fmt.Sprintf("attach %s to %s at %s", volid, refName(ref), slot)
	if err := checkRef(op, ref); err != nil {
		return provider.Task{}, err
	}
	if err := checkNewSlot(op, ref.Kind, slot); err != nil {
		return provider.Task{}, err
	}
	if s, name, ok := strings.Cut(volid, ":"); !ok || s == "" || name == "" || strings.Contains(volid, ",") {
		return provider.Task{}, reject(op, "%q is not a volume ID (storage:name)", volid)
	}
	return p.setDisk(ctx, op, ref, slot, volid)
}

// DetachDisk removes the disk at slot from the guest's configuration. An
// attached disk stays on its storage as an unusedN disk; an unusedN disk
// is destroyed. A virtual machine that runs may only unplug the disk when
// it reboots, as Proxmox does with pending changes.
func (p *Provider) DetachDisk(ctx context.Context, ref provider.GuestRef, slot string) (provider.Task, error) {
	op := fmt.Sprintf("detach disk %s of %s", slot, refName(ref))
	if err := checkRef(op, ref); err != nil {
		return provider.Task{}, err
	}
	if !isDiskSlot(ref.Kind, slot) {
		return provider.Task{}, reject(op, "%q is not a disk slot", slot)
	}
	if slot == "rootfs" {
		return provider.Task{}, reject(op, "a container's root disk cannot be detached")
	}
	return p.configTask(ctx, op, ref, map[string]any{"delete": slot})
}

// ResizeDisk grows the disk at slot to sizeGiB. Resizing to the current
// size succeeds and changes nothing. Proxmox refuses to shrink a disk: the
// task of a virtual machine fails, a container's request is rejected.
func (p *Provider) ResizeDisk(ctx context.Context, ref provider.GuestRef, slot string, sizeGiB int) (provider.Task, error) {
	op := fmt.Sprintf("resize disk %s of %s to %d GiB", slot, refName(ref), sizeGiB)
	if err := checkRef(op, ref); err != nil {
		return provider.Task{}, err
	}
	if !isDiskSlot(ref.Kind, slot) || isUnusedSlot(slot) {
		return provider.Task{}, reject(op, "%q is not an attached disk slot", slot)
	}
	if sizeGiB <= 0 {
		return provider.Task{}, reject(op, "size %d GiB is not positive", sizeGiB)
	}
	var upid string
	err := p.client.Put(ctx, guestPath(ref)+"/resize", map[string]any{"disk": slot, "size": strconv.Itoa(sizeGiB) + "G"}, &upid)
	if err != nil {
		if errors.Is(err, provider.ErrRejected) && strings.Contains(err.Error(), "already at specified size") {
			// A container's disk has the size already (a VM's resize
			// task succeeds then).
			return provider.Task{Node: ref.Node}, nil
		}
		return provider.Task{}, p.fail(op, err)
	}
	return taskOf(upid, ref.Node), nil
}

// MoveDisk copies the disk at slot to storage and switches the guest to
// the copy, live when a virtual machine runs (move_disk); a container's
// volume (move_volume) moves only while it is stopped. With deleteSource
// the old volume is destroyed afterwards, else it stays as an unusedN
// disk. A move that fails removes the copy and leaves the guest on its
// original volume. A virtual machine's disk that is on storage already is
// not moved again: the call succeeds at once.
func (p *Provider) MoveDisk(ctx context.Context, ref provider.GuestRef, slot, storage string, deleteSource bool) (provider.Task, error) {
	op := fmt.Sprintf("move disk %s of %s to %s", slot, refName(ref), storage)
	if err := checkRef(op, ref); err != nil {
		return provider.Task{}, err
	}
	if !isDiskSlot(ref.Kind, slot) {
		return provider.Task{}, reject(op, "%q is not a disk slot", slot)
	}
	if storage == "" {
		return provider.Task{}, reject(op, "no target storage")
	}
	body := map[string]any{"storage": storage, "delete": b2i(deleteSource)}
	path := guestPath(ref) + "/move_disk"
	if ref.Kind == provider.KindContainer {
		body["volume"] = slot
		path = guestPath(ref) + "/move_volume"
	} else {
		body["disk"] = slot
	}
	upid, err := p.post(ctx, path, body)
	if err != nil {
		if errors.Is(err, provider.ErrRejected) && strings.Contains(err.Error(), "you can't move to the same storage") {
			return provider.Task{Node: ref.Node}, nil
		}
		return provider.Task{}, p.fail(op, err)
	}
	return taskOf(upid, ref.Node), nil
}

// DeleteVolume removes volume volid (storage:name) from its storage on
// node: a backup, or a disk image no guest configuration references.
// Proxmox refuses protected backups.
func (p *Provider) DeleteVolume(ctx context.Context, node, volid string) (provider.Task, error) {
	op := fmt.Sprintf("delete volume %s on %s", volid, node)
	storage, name, ok := strings.Cut(volid, ":")
	if node == "" {
		return provider.Task{}, reject(op, "node is required")
	}
	if !ok || storage == "" || name == "" {
		return provider.Task{}, reject(op, "%q is not a volume ID (storage:name)", volid)
	}
	var upid string
	path := nodePath(node) + "/storage/" + url.PathEscape(storage) + "/content/" + url.PathEscape(volid)
	if err := p.client.Delete(ctx, path, &upid); err != nil {
		return provider.Task{}, p.fail(op, err)
	}
	return taskOf(upid, node), nil
}

// RestoreBackup creates guest ref from the vzdump backup volid: a virtual
// machine from its archive, a container with restore=1. The disks go to
// storage; for a virtual machine an empty storage means the storages the
// backup records. A container needs a storage: Proxmox would put its disks
// on "local", which holds no container volumes on a standard install. An
// existing guest is never overwritten: Proxmox refuses the VMID.
//
// A restore task that fails leaves what Proxmox leaves: a container is
// gone, a virtual machine stays with a placeholder configuration and no
// disks, and has to be deleted before its VMID can be restored again.
func (p *Provider) RestoreBackup(ctx context.Context, ref provider.GuestRef, volid, storage string) (provider.Task, error) {
	return p.restore(ctx, ref, volid, storage, false)
}

// RestoreBackupOver implements provider.Provider: a restore with force=1.
func (p *Provider) RestoreBackupOver(ctx context.Context, ref provider.GuestRef, volid, storage string) (provider.Task, error) {
	return p.restore(ctx, ref, volid, storage, true)
}

func (p *Provider) restore(ctx context.Context, ref provider.GuestRef, volid, storage string, force bool) (provider.Task, error) {
	op := fmt.Sprintf("restore %s from %s", refName(ref), volid)
	if err := checkRef(op, ref); err != nil {
		return provider.Task{}, err
	}
	if s, name, ok := strings.Cut(volid, ":"); !ok || s == "" || name == "" {
		return provider.Task{}, reject(op, "%q is not a volume ID (storage:name)", volid)
	}
	if ref.Kind == provider.KindContainer && storage == "" {
		return provider.Task{}, reject(op, "a container restore needs a target storage")
	}
	body := map[string]any{"vmid": ref.VMID}
	if ref.Kind == provider.KindVM {
		body["archive"] = volid
	} else {
		body["ostemplate"] = volid
		body["restore"] = 1
	}
	if storage != "" {
		body["storage"] = storage
	}
	if force {
		body["force"] = 1
	}
	upid, err := p.post(ctx, fmt.Sprintf("%s/%s", nodePath(ref.Node), ref.Kind), body)
	if err != nil {
		return provider.Task{}, p.fail(op, err)
	}
	return taskOf(upid, ref.Node), nil
}

// b2i is 1 for true and 0 for false, as Proxmox takes flags.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
