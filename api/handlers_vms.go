package api

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/fsm"
)

// VMCreateRequest is the body of POST /v1/vms.
type VMCreateRequest struct {
	Name string `json:"name"`
	// Template is the name or VMID of a template in the inventory; empty
	// creates an empty VM (then Disk is required).
	Template string `json:"template"`
	// Node is where the VM goes; empty picks the online node with the most
	// memory free that fits it.
	Node string `json:"node"`
	// Cores and Memory (MiB) default to the template's, or 1 and 1024.
	Cores       int         `json:"cores"`
	Memory      int         `json:"memory"`
	Disk        int         `json:"disk"`
	Storage     string      `json:"storage"`
	Tenant      string      `json:"tenant"`
	Project     string      `json:"project"`
	Tags        []string    `json:"tags"`
	Description string      `json:"description"`
	Start       *bool       `json:"start"`
	NICs        []fsm.VMNIC `json:"nics"`
	SSHKeys     []string    `json:"ssh_keys"`
}

// OperationList is the body of GET /v1/operations.
type OperationList struct {
	Operations []*fsm.Operation `json:"operations"`
}

// Default VM size when neither the request nor a template gives one.
const (
	defaultVMCores  = 1
	defaultVMMemory = 1024 // MiB
)

// errNoPlatform answers VM operations on a cluster without a platform.
var errNoPlatform = &apiError{
	status: http.StatusServiceUnavailable, code: CodeNoPlatform,
	message: "no virtualization platform is configured (see proxmox in the server configuration)",
}

// handleVMCreate validates a VM request against the inventory and IPAM,
// places it, and records a vm.create operation; the leader runs it. It
// answers 202 with the operation.
func (s *server) handleVMCreate(c *call) error {
	if s.b.Platform() == "" {
		return errNoPlatform
	}
	var req VMCreateRequest
	if err := decodeJSON(c.body, &req, true); err != nil {
		return err
	}
	var err error
	if req.Tenant, err = forTenant(c, req.Tenant, "tenant"); err != nil {
		return err
	}
	st := s.b.State()
	spec := fsm.VMSpec{
		Name: req.Name, Cores: req.Cores, MemoryMiB: req.Memory, DiskGiB: req.Disk, Storage: req.Storage,
		Tenant: req.Tenant, Project: req.Project, Tags: req.Tags, Description: req.Description, Start: req.Start == nil || *req.Start,
		NICs: req.NICs, SSHKeys: req.SSHKeys,
	}
	if req.Template != "" {
		tmpl, err := findTemplate(c, st, req.Template)
		if err != nil {
			return err
		}
		spec.TemplateVMID = tmpl.VMID
		if spec.Cores == 0 {
			spec.Cores = tmpl.MaxCPU
		}
		if spec.MemoryMiB == 0 {
			spec.MemoryMiB = int(tmpl.MaxMem >> 20)
		}
		if spec.DiskGiB == 0 {
			// A clone keeps the template's disks; its size is what the
			// quota reserves.
			spec.DiskGiB = int((tmpl.MaxDisk + 1<<30 - 1) >> 30)
		}
	}
	if spec.Cores == 0 {
		spec.Cores = defaultVMCores
	}
	if spec.MemoryMiB == 0 {
		spec.MemoryMiB = defaultVMMemory
	}
	if err := spec.Validate(); err != nil {
		return err
	}
	if err := checkNICPrefixes(c, st, spec.NICs); err != nil {
		return err
	}
	node, allocatable, err := placeVM(st, req.Node, spec.Cores, spec.MemoryMiB, spec.DiskGiB)
	if err != nil {
		return err
	}
	spec.Node = node
	meta, err := s.writeMeta(c)
	if err != nil {
		return err
	}
	cmd := &fsm.OperationCreateRequest{WriteMeta: meta, Op: fsm.Operation{
		ID: newID(), Kind: fsm.OpVMCreate, Node: node, Tenant: spec.Tenant, Spec: &spec, NodeAllocatable: &allocatable,
	}}
	return s.apply(c, cmd, http.StatusAccepted, nil)
}

// findTemplate resolves a template by VMID or name. A call confined to a
// tenant finds its tenant's templates and the shared ones (of no tenant).
func findTemplate(c *call, st *fsm.Store, ref string) (*fsm.InvGuest, error) {
	yes := true
	_, tmpls, err := st.InventoryGuests(nil, fsm.GuestFilter{Template: &yes})
	if err != nil {
		return nil, err
	}
	tmpls = filterVisible(c, tmpls, func(g *fsm.InvGuest) string {
		if g.Tenant == "" {
			return c.tenant
		}
		return g.Tenant
	})
	if id, err := strconv.Atoi(ref); err == nil {
		for _, t := range tmpls {
			if t.VMID == id {
				return t, nil
			}
		}
		// A template may have a numeric name.
		if i := slices.IndexFunc(tmpls, func(t *fsm.InvGuest) bool { return t.Name == ref }); i < 0 {
			return nil, invalid("template", "no template with VMID %d in the inventory", id)
		}
	}
	var found []*fsm.InvGuest
	for _, t := range tmpls {
		if t.Name == ref {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return nil, invalid("template", "no template named %q in the inventory", ref)
	case 1:
		return found[0], nil
	}
	return nil, invalid("template", "%d templates are named %q: give the VMID", len(found), ref)
}

// checkNICPrefixes checks that every NIC's prefix exists (and belongs to
// the call's tenant, when it is confined to one), is active and holds the
// requested address, and that its DNS name is one a zone can serve.
func checkNICPrefixes(c *call, st *fsm.Store, nics []fsm.VMNIC) error {
	for i, n := range nics {
		if n.PrefixID == "" {
			continue
		}
		f := fmt.Sprintf("nics[%d]", i)
		if err := checkForwardName(f+".dns_name", n.DNSName); err != nil {
			return err
		}
		_, p, err := st.Prefix(nil, n.PrefixID)
		if err != nil {
			return err
		}
		if p == nil || !visible(c, p.Tenant) {
			return invalid(f+".prefix_id", "prefix %q not found", n.PrefixID)
		}
		if p.Status != fsm.PrefixActive {
			return invalid(f+".prefix_id", "prefix %s is a container; allocate from an active prefix", p.Prefix.Prefix)
		}
		if n.Address != "" {
			pfx, err := netip.ParsePrefix(p.Prefix.Prefix)
			if a, _ := netip.ParseAddr(n.Address); err != nil || !pfx.Contains(a) {
				return invalid(f+".address", "%s is not in prefix %s", n.Address, p.Prefix.Prefix)
			}
		}
	}
	return nil
}

// exhausted is a 409 for a resource that has run out.
func exhausted(field, format string, args ...any) *apiError {
	return &apiError{status: http.StatusConflict, code: CodeExhausted, field: field, message: fmt.Sprintf(format, args...)}
}

// vmAction returns the handler of a power or delete operation on a VM.
func vmAction(kind string) func(*server, *call) error {
	return func(s *server, c *call) error {
		if s.b.Platform() == "" {
			return errNoPlatform
		}
		vmid, err := vmidParam(c)
		if err != nil {
			return err
		}
		_, g, err := s.b.State().InventoryGuest(nil, vmid)
		if err != nil {
			return err
		}
		if g == nil || g.Gone || !visible(c, g.Tenant) {
			return notFoundError("vmid", "guest", strconv.Itoa(vmid))
		}
		if g.Kind != fsm.GuestKindVM {
			return invalid("vmid", "%d is a %s container; VM operations apply to qemu guests", vmid, g.Kind)
		}
		if g.Template && kind != fsm.OpVMDelete {
			return invalid("vmid", "%d is a template; templates cannot be started or stopped", vmid)
		}
		meta, err := s.writeMeta(c)
		if err != nil {
			return err
		}
		cmd := &fsm.OperationCreateRequest{WriteMeta: meta, Op: fsm.Operation{ID: newID(), Kind: kind, VMID: vmid, Node: g.Node, Tenant: g.Tenant}}
		return s.apply(c, cmd, http.StatusAccepted, nil)
	}
}

// handleOperationList lists operations, oldest first; ?active lists only
// those pending or running. It supports blocking queries.
func (s *server) handleOperationList(c *call) error {
	active, err := boolParam(c, "active")
	if err != nil {
		return err
	}
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.Operation, error) {
		idx, l, err := st.Operations(ws, active)
		return idx, filterVisible(c, l, opTenant), err
	}, func(l []*fsm.Operation) any { return OperationList{Operations: l} })
}

// handleOperationGet returns one operation; with ?index it blocks until
// the operation changes, which is how clients follow its progress.
func (s *server) handleOperationGet(c *call) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	return serveTenantGet(s, c, "id", "operation", id, opTenant, func(st *fsm.Store, ws memdb.WatchSet) (uint64, *fsm.Operation, error) {
		return st.Operation(ws, id)
	})
}
