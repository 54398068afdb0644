package fsm

import (
	"github.com/hashicorp/go-memdb"
)

// invState reads the sync state row, or a new one.
func invState(txn *memdb.Txn) *InvState {
	raw, err := txn.First(tableInvState, "id", invStateID)
	must(err)
	if raw == nil {
		return &InvState{ID: invStateID}
	}
	st := *raw.(*InvState)
	return &st
}

// invStamp fills in the history of an object being written from its
// stored version old (nil when the object is new).
func invStamp(meta *InvMeta, old *InvMeta, index uint64, now Timestamp) {
	if old != nil && !old.Gone {
		meta.FirstSeen, meta.CreateIndex = old.FirstSeen, old.CreateIndex
	} else {
		meta.FirstSeen, meta.CreateIndex = now, index
	}
	meta.Gone, meta.GoneAt = false, 0
	meta.LastSeen, meta.LastChanged, meta.ModifyIndex = now, now, index
}

// invMarkGone records that an object disappeared.
func invMarkGone(meta *InvMeta, index uint64, now Timestamp) {
	meta.Gone, meta.GoneAt = true, now
	meta.LastChanged, meta.ModifyIndex = now, index
}

func applyInventorySync(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*InventorySyncRequest)
	now := Timestamp(req.Now)
	st := invState(txn)
	for i := range req.Nodes {
		n := req.Nodes[i]
		var old *InvMeta
		if raw, err := txn.First(tableInvNodes, "id", n.Name); err != nil {
			return nil, err
		} else if raw != nil {
			old = &raw.(*InvNode).InvMeta
		}
		if old == nil || old.Gone {
			st.Nodes++
		}
		invStamp(&n.InvMeta, old, index, now)
		if err := insert(txn, tableInvNodes, index, &n); err != nil {
			return nil, err
		}
	}
	for _, name := range req.GoneNodes {
		raw, err := txn.First(tableInvNodes, "id", name)
		if err != nil {
			return nil, err
		}
		if raw == nil || raw.(*InvNode).Gone {
			continue
		}
		n := *raw.(*InvNode)
		invMarkGone(&n.InvMeta, index, now)
		st.Nodes--
		if err := insert(txn, tableInvNodes, index, &n); err != nil {
			return nil, err
		}
	}
	for i := range req.Guests {
		g := req.Guests[i]
		var old *InvMeta
		var was holding
		if raw, err := txn.First(tableInvGuests, "id", g.VMID); err != nil {
			return nil, err
		} else if raw != nil {
			old = &raw.(*InvGuest).InvMeta
			was = raw.(*InvGuest).holding()
			g.VolumeBytes = raw.(*InvGuest).VolumeBytes
		}
		if old == nil || old.Gone {
			st.Guests++
		}
		invStamp(&g.InvMeta, old, index, now)
		if err := chargeChange(txn, index, was, g.holding(), false); err != nil {
			return nil, err
		}
		if err := insert(txn, tableInvGuests, index, &g); err != nil {
			return nil, err
		}
	}
	for _, id := range req.GoneGuests {
		raw, err := txn.First(tableInvGuests, "id", id)
		if err != nil {
			return nil, err
		}
		if raw == nil || raw.(*InvGuest).Gone {
			continue
		}
		g := *raw.(*InvGuest)
		if err := charge(txn, index, g.holding().negate(), false); err != nil {
			return nil, err
		}
		if err := dropGuestSnapshots(txn, index, g.VMID); err != nil {
			return nil, err
		}
		invMarkGone(&g.InvMeta, index, now)
		st.Guests--
		if err := insert(txn, tableInvGuests, index, &g); err != nil {
			return nil, err
		}
	}
	for i := range req.Storage {
		s := req.Storage[i]
		var old *InvMeta
		if raw, err := txn.First(tableInvStorage, "id", s.ID); err != nil {
			return nil, err
		} else if raw != nil {
			old = &raw.(*InvStorage).InvMeta
		}
		if old == nil || old.Gone {
			st.Storage++
		}
		invStamp(&s.InvMeta, old, index, now)
		if err := insert(txn, tableInvStorage, index, &s); err != nil {
			return nil, err
		}
	}
	for _, id := range req.GoneStorage {
		raw, err := txn.First(tableInvStorage, "id", id)
		if err != nil {
			return nil, err
		}
		if raw == nil || raw.(*InvStorage).Gone {
			continue
		}
		s := *raw.(*InvStorage)
		invMarkGone(&s.InvMeta, index, now)
		st.Storage--
		if err := insert(txn, tableInvStorage, index, &s); err != nil {
			return nil, err
		}
	}
	st.LastSync, st.Stale, st.StaleSince, st.Error = now, false, 0, ""
	if err := insert(txn, tableInvState, index, st); err != nil {
		return nil, err
	}
	return st, nil
}

func applyInventoryStale(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*InventoryStaleRequest)
	st := invState(txn)
	if !st.Stale {
		st.Stale, st.StaleSince = true, Timestamp(req.Now)
	}
	st.Error = req.Error
	if err := insert(txn, tableInvState, index, st); err != nil {
		return nil, err
	}
	return st, nil
}
