package api

import (
	"strconv"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/fsm"
)

// InventoryNodeList is the body of GET /v1/inventory/nodes.
type InventoryNodeList struct {
	Nodes []*fsm.InvNode `json:"nodes"`
}

// InventoryGuestList is the body of GET /v1/inventory/guests.
type InventoryGuestList struct {
	Guests []*fsm.InvGuest `json:"guests"`
}

// InventoryStorageList is the body of GET /v1/inventory/storage.
type InventoryStorageList struct {
	Storage []*fsm.InvStorage `json:"storage"`
}

// optBoolParam reads an optional boolean query parameter: nil when absent.
func optBoolParam(c *call, name string) (*bool, error) {
	if _, ok := c.q()[name]; !ok {
		return nil, nil
	}
	b, err := boolParam(c, name)
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// vmidParam reads a VMID from the path.
func vmidParam(c *call) (int, error) {
	v := c.r.PathValue("vmid")
	n, err := strconv.Atoi(v)
	if err != nil || n < fsm.MinVMID || n > fsm.MaxVMID {
		return 0, invalid("vmid", "must be a number from %d to %d, not %q", fsm.MinVMID, fsm.MaxVMID, v)
	}
	return n, nil
}

// handleInventoryState reports the state of inventory sync.
func (s *server) handleInventoryState(c *call) error {
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, *fsm.InvState, error) {
		return st.InventoryState(ws)
	}, func(v *fsm.InvState) any { return v })
}

// handleInventoryNodes lists the hypervisor nodes; ?include_gone lists
// those that disappeared too.
func (s *server) handleInventoryNodes(c *call) error {
	gone, err := boolParam(c, "include_gone")
	if err != nil {
		return err
	}
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.InvNode, error) {
		return st.InventoryNodes(ws, gone)
	}, func(l []*fsm.InvNode) any { return InventoryNodeList{Nodes: l} })
}

// handleInventoryNode returns one node.
func (s *server) handleInventoryNode(c *call) error {
	name, err := pathID(c, "name")
	if err != nil {
		return err
	}
	return serveGet(s, c, "name", "node", name, func(st *fsm.Store, ws memdb.WatchSet) (uint64, *fsm.InvNode, error) {
		return st.InventoryNode(ws, name)
	})
}

// handleInventoryGuests lists guests, filtered by node, tag, tenant,
// status (or "gone"), kind (qemu, lxc) and template.
func (s *server) handleInventoryGuests(c *call) error {
	q := c.q()
	f := fsm.GuestFilter{Node: q.Get("node"), Tag: q.Get("tag"), Tenant: q.Get("tenant"), Status: q.Get("status"), Kind: q.Get("kind")}
	if f.Kind != "" && f.Kind != fsm.GuestKindVM && f.Kind != fsm.GuestKindContainer {
		return invalid("kind", "must be %s or %s, not %q", fsm.GuestKindVM, fsm.GuestKindContainer, f.Kind)
	}
	var err error
	if f.Template, err = optBoolParam(c, "template"); err != nil {
		return err
	}
	gone, err := boolParam(c, "include_gone")
	if err != nil {
		return err
	}
	f.IncludeGone = gone
	if f.Tenant == "" {
		f.Tenant = c.tenant
	}
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.InvGuest, error) {
		idx, l, err := st.InventoryGuests(ws, f)
		return idx, filterVisible(c, l, guestTenant), err
	}, func(l []*fsm.InvGuest) any { return InventoryGuestList{Guests: l} })
}

func guestTenant(g *fsm.InvGuest) string { return g.Tenant }

// handleInventoryGuest returns one guest by VMID.
func (s *server) handleInventoryGuest(c *call) error {
	vmid, err := vmidParam(c)
	if err != nil {
		return err
	}
	return serveTenantGet(s, c, "vmid", "guest", strconv.Itoa(vmid), guestTenant, func(st *fsm.Store, ws memdb.WatchSet) (uint64, *fsm.InvGuest, error) {
		return st.InventoryGuest(ws, vmid)
	})
}

// handleInventoryStorage lists storage per node.
func (s *server) handleInventoryStorage(c *call) error {
	gone, err := boolParam(c, "include_gone")
	if err != nil {
		return err
	}
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.InvStorage, error) {
		return st.InventoryStorage(ws, gone)
	}, func(l []*fsm.InvStorage) any { return InventoryStorageList{Storage: l} })
}
