package fsm

import (
	"slices"

	"github.com/hashicorp/go-memdb"
)

// GuestFilter selects guests from the inventory; empty fields match all.
type GuestFilter struct {
	Node   string
	Tag    string
	Tenant string
	Status string // running, stopped, ... or "gone" for guests that disappeared
	Kind   string
	// Template selects templates (true) or ordinary guests (false).
	Template *bool
	// IncludeGone lists guests that disappeared too.
	IncludeGone bool
}

func (f *GuestFilter) match(g *InvGuest) bool {
	switch {
	case f.Status == "gone":
		if !g.Gone {
			return false
		}
	case g.Gone && !f.IncludeGone:
		return false
	case f.Status != "" && g.Status != f.Status:
		return false
	}
	return (f.Node == "" || g.Node == f.Node) &&
		(f.Tenant == "" || g.Tenant == f.Tenant) &&
		(f.Kind == "" || g.Kind == f.Kind) &&
		(f.Template == nil || g.Template == *f.Template) &&
		(f.Tag == "" || slices.Contains(g.Tags, f.Tag))
}

// seen raises the last-seen time of an object still present to the last
// successful sync: a sync that finds nothing changed writes nothing.
func seen(m InvMeta, st *InvState) InvMeta {
	if !m.Gone && st.LastSync > m.LastSeen {
		m.LastSeen = st.LastSync
	}
	return m
}

// InventoryState returns the state of inventory sync.
func (s *Store) InventoryState(ws memdb.WatchSet) (uint64, *InvState, error) {
	txn := s.db.Txn(false)
	ch, _, err := txn.FirstWatch(tableInvState, "id", invStateID)
	if err != nil {
		return 0, nil, err
	}
	ws.Add(ch)
	return s.tableIndex(txn, tableInvState), invState(txn), nil
}

// InventoryNodes lists the nodes by name, without those gone unless
// includeGone.
func (s *Store) InventoryNodes(ws memdb.WatchSet, includeGone bool) (uint64, []*InvNode, error) {
	txn := s.db.Txn(false)
	it, err := txn.Get(tableInvNodes, "id")
	if err != nil {
		return 0, nil, err
	}
	ws.Add(it.WatchCh())
	st := invState(txn)
	out := []*InvNode{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if n := *raw.(*InvNode); includeGone || !n.Gone {
			n.InvMeta = seen(n.InvMeta, st)
			out = append(out, &n)
		}
	}
	return s.tableIndex(txn, tableInvNodes, tableInvState), out, nil
}

// InventoryNode returns one node, or nil.
func (s *Store) InventoryNode(ws memdb.WatchSet, name string) (uint64, *InvNode, error) {
	txn := s.db.Txn(false)
	ch, raw, err := txn.FirstWatch(tableInvNodes, "id", name)
	if err != nil {
		return 0, nil, err
	}
	ws.Add(ch)
	idx := s.tableIndex(txn, tableInvNodes, tableInvState)
	if raw == nil {
		return idx, nil, nil
	}
	n := *raw.(*InvNode)
	n.InvMeta = seen(n.InvMeta, invState(txn))
	return idx, &n, nil
}

// InventoryGuests lists the guests f selects, by VMID.
func (s *Store) InventoryGuests(ws memdb.WatchSet, f GuestFilter) (uint64, []*InvGuest, error) {
	txn := s.db.Txn(false)
	var it memdb.ResultIterator
	var err error
	switch {
	case f.Node != "":
		it, err = txn.Get(tableInvGuests, "node", f.Node)
	case f.Tenant != "":
		it, err = txn.Get(tableInvGuests, "tenant", f.Tenant)
	default:
		it, err = txn.Get(tableInvGuests, "id")
	}
	if err != nil {
		return 0, nil, err
	}
	ws.Add(it.WatchCh())
	st := invState(txn)
	out := []*InvGuest{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if g := raw.(*InvGuest); f.match(g) {
			c := *g
			c.InvMeta = seen(c.InvMeta, st)
			out = append(out, &c)
		}
	}
	if f.Node != "" || f.Tenant != "" {
		slices.SortFunc(out, func(a, b *InvGuest) int { return a.VMID - b.VMID })
	}
	return s.tableIndex(txn, tableInvGuests, tableInvState), out, nil
}

// InventoryGuest returns one guest by VMID, or nil.
func (s *Store) InventoryGuest(ws memdb.WatchSet, vmid int) (uint64, *InvGuest, error) {
	txn := s.db.Txn(false)
	ch, raw, err := txn.FirstWatch(tableInvGuests, "id", vmid)
	if err != nil {
		return 0, nil, err
	}
	ws.Add(ch)
	idx := s.tableIndex(txn, tableInvGuests, tableInvState)
	if raw == nil {
		return idx, nil, nil
	}
	g := *raw.(*InvGuest)
	g.InvMeta = seen(g.InvMeta, invState(txn))
	return idx, &g, nil
}

// InventoryStorage lists storage by node and name, without those gone
// unless includeGone.
func (s *Store) InventoryStorage(ws memdb.WatchSet, includeGone bool) (uint64, []*InvStorage, error) {
	txn := s.db.Txn(false)
	it, err := txn.Get(tableInvStorage, "id")
	if err != nil {
		return 0, nil, err
	}
	ws.Add(it.WatchCh())
	st := invState(txn)
	out := []*InvStorage{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if v := *raw.(*InvStorage); includeGone || !v.Gone {
			v.InvMeta = seen(v.InvMeta, st)
			out = append(out, &v)
		}
	}
	return s.tableIndex(txn, tableInvStorage, tableInvState), out, nil
}

// InventoryRecorded is every inventory object as stored, gone ones
// included, keyed for the sync loop's comparison. The objects are shared
// with the store and must not be modified.
type InventoryRecorded struct {
	Index   uint64
	Nodes   map[string]*InvNode
	Guests  map[int]*InvGuest
	Storage map[string]*InvStorage
}

// InventoryRecorded reads the whole inventory in one transaction.
func (s *Store) InventoryRecorded() (*InventoryRecorded, error) {
	txn := s.db.Txn(false)
	r := &InventoryRecorded{
		Index:   s.tableIndex(txn, tableInvNodes, tableInvGuests, tableInvStorage, tableInvState),
		Nodes:   map[string]*InvNode{},
		Guests:  map[int]*InvGuest{},
		Storage: map[string]*InvStorage{},
	}
	it, err := txn.Get(tableInvNodes, "id")
	if err != nil {
		return nil, err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		n := raw.(*InvNode)
		r.Nodes[n.Name] = n
	}
	if it, err = txn.Get(tableInvGuests, "id"); err != nil {
		return nil, err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		g := raw.(*InvGuest)
		r.Guests[g.VMID] = g
	}
	if it, err = txn.Get(tableInvStorage, "id"); err != nil {
		return nil, err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		v := raw.(*InvStorage)
		r.Storage[v.ID] = v
	}
	return r, nil
}
