package fsm

import (
	"fmt"
	"slices"
)

// InventorySyncRequest records what one sync of the platform found
// changed: objects to insert or update, and objects that disappeared. An
// empty request records only that a sync succeeded. The leader cuts a
// large change set into several requests.
type InventorySyncRequest struct {
	WriteMeta
	Nodes       []InvNode
	Guests      []InvGuest
	Storage     []InvStorage
	GoneNodes   []string
	GoneGuests  []int
	GoneStorage []string
}

// Type returns InventorySyncType.
func (*InventorySyncRequest) Type() MessageType { return InventorySyncType }

// Len is the number of objects the request writes.
func (r *InventorySyncRequest) Len() int {
	return len(r.Nodes) + len(r.Guests) + len(r.Storage) + len(r.GoneNodes) + len(r.GoneGuests) + len(r.GoneStorage)
}

// weight is the number of objects written.
func (r *InventorySyncRequest) weight() int { return r.Len() }

// InventoryStaleRequest records that the platform could not be read. The
// inventory is kept as last seen and marked stale until the next
// successful sync.
type InventoryStaleRequest struct {
	WriteMeta
	Error string
}

// Type returns InventoryStaleType.
func (*InventoryStaleRequest) Type() MessageType { return InventoryStaleType }

// Guest kinds as inventory records them.
const (
	GuestKindVM        = "qemu"
	GuestKindContainer = "lxc"
)

// VMID bounds, as Proxmox VE enforces them.
const (
	MinVMID = 100
	MaxVMID = 999999999
)

// maxStaleError bounds the recorded error text.
const maxStaleError = 1024

// Validate checks the request's objects: names present, IDs in range, no
// object twice.
func (r *InventorySyncRequest) Validate() error {
	nodes := map[string]bool{}
	for i := range r.Nodes {
		n := &r.Nodes[i]
		if n.Name == "" {
			return fieldErrf(fmt.Sprintf("nodes[%d].name", i), ErrInvalid, "node name is required")
		}
		if nodes[n.Name] {
			return fieldErrf(fmt.Sprintf("nodes[%d].name", i), ErrInvalid, "node %s appears twice", n.Name)
		}
		nodes[n.Name] = true
	}
	if slices.ContainsFunc(r.GoneNodes, func(n string) bool { return nodes[n] }) {
		return fieldErrf("gone_nodes", ErrInvalid, "a node is both present and gone")
	}
	guests := map[int]bool{}
	for i := range r.Guests {
		g := &r.Guests[i]
		f := fmt.Sprintf("guests[%d]", i)
		if g.VMID < MinVMID || g.VMID > MaxVMID {
			return fieldErrf(f+".vmid", ErrInvalid, "vmid %d is outside %d-%d", g.VMID, MinVMID, MaxVMID)
		}
		if guests[g.VMID] {
			return fieldErrf(f+".vmid", ErrInvalid, "guest %d appears twice", g.VMID)
		}
		guests[g.VMID] = true
		if g.Kind != GuestKindVM && g.Kind != GuestKindContainer {
			return fieldErrf(f+".kind", ErrInvalid, "kind %q is not %s or %s", g.Kind, GuestKindVM, GuestKindContainer)
		}
		if g.Node == "" {
			return fieldErrf(f+".node", ErrInvalid, "guest %d has no node", g.VMID)
		}
	}
	if slices.ContainsFunc(r.GoneGuests, func(id int) bool { return guests[id] }) {
		return fieldErrf("gone_guests", ErrInvalid, "a guest is both present and gone")
	}
	storage := map[string]bool{}
	for i := range r.Storage {
		s := &r.Storage[i]
		f := fmt.Sprintf("storage[%d]", i)
		if s.Node == "" || s.Storage == "" || s.ID != s.Node+"/"+s.Storage {
			return fieldErrf(f+".id", ErrInvalid, "storage id %q must be node/storage", s.ID)
		}
		if storage[s.ID] {
			return fieldErrf(f+".id", ErrInvalid, "storage %s appears twice", s.ID)
		}
		storage[s.ID] = true
	}
	if slices.ContainsFunc(r.GoneStorage, func(id string) bool { return storage[id] }) {
		return fieldErrf("gone_storage", ErrInvalid, "a storage is both present and gone")
	}
	return nil
}

// Validate bounds the recorded error.
func (r *InventoryStaleRequest) Validate() error {
	if r.Error == "" {
		return fieldErrf("error", ErrInvalid, "error is required")
	}
	if len(r.Error) > maxStaleError {
		r.Error = r.Error[:maxStaleError]
	}
	return nil
}
