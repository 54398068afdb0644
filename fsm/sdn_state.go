package fsm

import (
	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/sdn"
)

// SDN reads. Each returns the raft index of the last change to the tables
// it read first, and adds to ws the channels that fire when its result may
// change, for blocking queries.

// SDNZones lists the zones by ID.
func (s *Store) SDNZones(ws memdb.WatchSet) (uint64, []*SDNZone, error) {
	return list[*SDNZone](s, ws, tableSDNZones, "id")
}

// SDNZone returns one zone, or nil.
func (s *Store) SDNZone(ws memdb.WatchSet, id string) (uint64, *SDNZone, error) {
	return getByID[*SDNZone](s, ws, tableSDNZones, id)
}

// SDNVnets lists the vnets by ID.
func (s *Store) SDNVnets(ws memdb.WatchSet) (uint64, []*SDNVnet, error) {
	return list[*SDNVnet](s, ws, tableSDNVnets, "id")
}

// SDNVnet returns one vnet, or nil.
func (s *Store) SDNVnet(ws memdb.WatchSet, id string) (uint64, *SDNVnet, error) {
	return getByID[*SDNVnet](s, ws, tableSDNVnets, id)
}

// SDNSubnets lists the subnets by ID.
func (s *Store) SDNSubnets(ws memdb.WatchSet) (uint64, []*SDNSubnet, error) {
	return list[*SDNSubnet](s, ws, tableSDNSubnets, "id")
}

// SDNSubnet returns one subnet, or nil.
func (s *Store) SDNSubnet(ws memdb.WatchSet, id string) (uint64, *SDNSubnet, error) {
	return getByID[*SDNSubnet](s, ws, tableSDNSubnets, id)
}

// SDNAllows lists the allow rules by ID.
func (s *Store) SDNAllows(ws memdb.WatchSet) (uint64, []*SDNAllow, error) {
	return list[*SDNAllow](s, ws, tableSDNAllows, "id")
}

// SDNAllow returns one allow rule, or nil.
func (s *Store) SDNAllow(ws memdb.WatchSet, id string) (uint64, *SDNAllow, error) {
	return getByID[*SDNAllow](s, ws, tableSDNAllows, id)
}

// SDNHosts lists the enrolled hosts by name.
func (s *Store) SDNHosts(ws memdb.WatchSet) (uint64, []*SDNHost, error) {
	idx, rows, err := list[*sdnHostRow](s, ws, tableSDNHosts, "id")
	if err != nil {
		return 0, nil, err
	}
	out := make([]*SDNHost, len(rows))
	for i, r := range rows {
		out[i] = &r.Host
	}
	return idx, out, nil
}

// SDNHost returns one enrolled host, or nil.
func (s *Store) SDNHost(ws memdb.WatchSet, name string) (uint64, *SDNHost, error) {
	idx, row, err := getByID[*sdnHostRow](s, ws, tableSDNHosts, name)
	if err != nil || row == nil {
		return idx, nil, err
	}
	return idx, &row.Host, nil
}

// SDNHostStates lists the state of every enrolled host by name.
func (s *Store) SDNHostStates(ws memdb.WatchSet) (uint64, []*SDNHostState, error) {
	idx, rows, err := list[*sdnHostRow](s, ws, tableSDNHosts, "id")
	if err != nil {
		return 0, nil, err
	}
	out := make([]*SDNHostState, len(rows))
	for i, r := range rows {
		out[i] = &r.State
	}
	return idx, out, nil
}

// SDNHostState returns the state of one enrolled host, or nil.
func (s *Store) SDNHostState(ws memdb.WatchSet, name string) (uint64, *SDNHostState, error) {
	idx, row, err := getByID[*sdnHostRow](s, ws, tableSDNHosts, name)
	if err != nil || row == nil {
		return idx, nil, err
	}
	return idx, &row.State, nil
}

// sdnIntentTables are the tables the intent is read from.
var sdnIntentTables = []string{tableSDNZones, tableSDNVnets, tableSDNSubnets, tableSDNAllows, tableSDNHosts}

// SDNIntent returns the intent as an apply would compile it now: every
// zone, vnet, subnet, allow rule and enrolled host, in ID order.
func (s *Store) SDNIntent(ws memdb.WatchSet) (uint64, sdn.Intent, error) {
	txn := s.db.Txn(false)
	for _, t := range sdnIntentTables {
		it, err := txn.Get(t, "id")
		if err != nil {
			return 0, sdn.Intent{}, err
		}
		ws.Add(it.WatchCh())
	}
	in, err := intentOf(txn)
	if err != nil {
		return 0, sdn.Intent{}, err
	}
	return s.tableIndex(txn, sdnIntentTables...), in, nil
}

// SDNPlan returns host's plan of version: the empty plan for version 0,
// nil when no such plan is stored (never made, or pruned).
func (s *Store) SDNPlan(ws memdb.WatchSet, host string, version uint64) (uint64, *sdn.Plan, error) {
	txn := s.db.Txn(false)
	idx := s.tableIndex(txn, tableSDNPlans)
	if version == 0 {
		p := emptyPlan(host)
		return idx, &p, nil
	}
	ch, raw, err := txn.FirstWatch(tableSDNPlans, "id", host, version)
	if err != nil {
		return 0, nil, err
	}
	ws.Add(ch)
	if raw == nil {
		return idx, nil, nil
	}
	return idx, raw.(*sdn.Plan), nil
}

// SDNRollouts lists the rollouts, newest first.
func (s *Store) SDNRollouts(ws memdb.WatchSet) (uint64, []*SDNRollout, error) {
	txn := s.db.Txn(false)
	it, err := txn.GetReverse(tableSDNRollouts, "version")
	if err != nil {
		return 0, nil, err
	}
	ws.Add(it.WatchCh())
	out := []*SDNRollout{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*SDNRollout))
	}
	return s.tableIndex(txn, tableSDNRollouts), out, nil
}

// SDNRollout returns one rollout, or nil.
func (s *Store) SDNRollout(ws memdb.WatchSet, id string) (uint64, *SDNRollout, error) {
	return getByID[*SDNRollout](s, ws, tableSDNRollouts, id)
}

// rolloutsWatch reads the rollouts table for a reader of one of them: it
// adds the table's watch channel and returns its index.
func (s *Store) rolloutsWatch(txn *memdb.Txn, ws memdb.WatchSet) (uint64, error) {
	it, err := txn.Get(tableSDNRollouts, "id")
	if err != nil {
		return 0, err
	}
	ws.Add(it.WatchCh())
	return s.tableIndex(txn, tableSDNRollouts), nil
}

// SDNActiveRollout returns the preparing rollout, or nil.
func (s *Store) SDNActiveRollout(ws memdb.WatchSet) (uint64, *SDNRollout, error) {
	txn := s.db.Txn(false)
	idx, err := s.rolloutsWatch(txn, ws)
	if err != nil {
		return 0, nil, err
	}
	r, err := activeRollout(txn)
	return idx, r, err
}

// SDNVersion returns the newest rollout's version, committed or not; 0
// before the first apply.
func (s *Store) SDNVersion(ws memdb.WatchSet) (uint64, uint64, error) {
	txn := s.db.Txn(false)
	idx, err := s.rolloutsWatch(txn, ws)
	if err != nil {
		return 0, 0, err
	}
	r, err := newestRollout(txn)
	if err != nil || r == nil {
		return idx, 0, err
	}
	return idx, r.Version, nil
}

// SDNCommittedVersion returns the newest committed rollout's version; 0
// when none has committed.
func (s *Store) SDNCommittedVersion(ws memdb.WatchSet) (uint64, uint64, error) {
	txn := s.db.Txn(false)
	idx, err := s.rolloutsWatch(txn, ws)
	if err != nil {
		return 0, 0, err
	}
	v, err := committedVersion(txn)
	return idx, v, err
}

// SDNPreview returns what an apply would do now, from one consistent read:
// the dry run of `sdn apply`. It refuses what the apply refuses, with the
// same errors.
func (s *Store) SDNPreview() (uint64, *SDNPreview, error) {
	txn := s.db.Txn(false)
	idx := s.tableIndex(txn, tableSDNZones, tableSDNVnets, tableSDNSubnets, tableSDNAllows, tableSDNHosts, tableSDNPlans, tableSDNRollouts)
	pv, _, err := sdnPreview(txn)
	return idx, pv, err
}

// SDNHostPlan returns what host's agent must hold now: the plan of its
// Target version with that version's rollout. A host that has no target
// yet, or is not enrolled, gets the empty plan of version 0.
func (s *Store) SDNHostPlan(ws memdb.WatchSet, host string) (uint64, SDNPlanView, error) {
	txn := s.db.Txn(false)
	idx := s.tableIndex(txn, tableSDNHosts, tableSDNPlans, tableSDNRollouts)
	view := SDNPlanView{Host: host, Plan: emptyPlan(host)}
	ch, raw, err := txn.FirstWatch(tableSDNHosts, "id", host)
	if err != nil {
		return 0, view, err
	}
	ws.Add(ch)
	if raw == nil {
		return idx, view, nil
	}
	st := raw.(*sdnHostRow).State
	view.Version, view.Committed = st.Target, st.Committed
	if st.Target == 0 {
		return idx, view, nil
	}
	ch, raw, err = txn.FirstWatch(tableSDNPlans, "id", host, st.Target)
	if err != nil {
		return 0, view, err
	}
	ws.Add(ch)
	if raw != nil {
		view.Plan = *raw.(*sdn.Plan)
	}
	ch, raw, err = txn.FirstWatch(tableSDNRollouts, "version", st.Target)
	if err != nil {
		return 0, view, err
	}
	ws.Add(ch)
	if raw != nil {
		r := raw.(*SDNRollout)
		view.RolloutID, view.Phase, view.RequestID = r.ID, r.Phase, r.RequestID
	}
	return idx, view, nil
}
