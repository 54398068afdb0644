package fsm

import (
	"github.com/hashicorp/go-memdb"
)

// History retention. Finished operations (VM work, policy and DR runs) and
// inventory objects gone from the platform are kept so that what happened
// stays visible, but not forever: the leader proposes a
// RetentionPruneRequest with the cut-off times its configuration gives,
// and Apply deletes what is older.

// RetentionPruneRequest deletes history older than its cut-offs: finished
// operations that finished before OperationsBefore, with the items of
// those that were policy or DR runs, except the runs that storage
// policies and DR plans name (active, last, failover and fence runs); and
// inventory nodes, guests and storage gone before GoneBefore, except
// guests and storage that a backup or volume record still names (a gone
// guest's tenant decides who sees its backups). A zero cut-off keeps that
// kind. Times are leader time, Unix nanoseconds. Max, when positive,
// bounds the operations and inventory objects one entry deletes (in that
// order, each kind in ID order), so that a first prune of a long history
// does not hold up every server's FSM; the leader proposes the rest next.
type RetentionPruneRequest struct {
	WriteMeta
	OperationsBefore int64
	GoneBefore       int64
	Max              int
}

// Type returns RetentionPruneType.
func (*RetentionPruneRequest) Type() MessageType { return RetentionPruneType }

// RetentionPruned counts what a RetentionPruneRequest deleted.
type RetentionPruned struct {
	Operations int `json:"operations"`
	// Items counts the policy and DR run items of those operations.
	Items   int `json:"items"`
	Nodes   int `json:"nodes"`
	Guests  int `json:"guests"`
	Storage int `json:"storage"`
}

// prunable is what a RetentionPruneRequest with the same cut-offs deletes.
type prunable struct {
	ops     []*Operation
	nodes   []*InvNode
	guests  []*InvGuest
	storage []*InvStorage
}

func (p *prunable) empty() bool {
	return len(p.ops)+len(p.nodes)+len(p.guests)+len(p.storage) == 0
}

// limit keeps the first max of p's objects, operations first; max <= 0
// keeps all.
func (p *prunable) limit(max int) {
	if max <= 0 {
		return
	}
	left := max
	take := func(n int) int {
		n = min(n, left)
		left -= n
		return n
	}
	p.ops = p.ops[:take(len(p.ops))]
	p.nodes = p.nodes[:take(len(p.nodes))]
	p.guests = p.guests[:take(len(p.guests))]
	p.storage = p.storage[:take(len(p.storage))]
}

// findPrunable collects, in id order, what history older than the cut-offs
// txn holds.
func findPrunable(txn *memdb.Txn, opsBefore, goneBefore int64) (*prunable, error) {
	p := &prunable{}
	if opsBefore > 0 {
		named, err := namedRuns(txn)
		if err != nil {
			return nil, err
		}
		err = eachObject(txn, tableOperations, func(raw any) {
			op := raw.(*Operation)
			if op.Status != OpSucceeded && op.Status != OpFailed {
				return
			}
			if op.FinishedAt == 0 || int64(op.FinishedAt) >= opsBefore || named[op.ID] {
				return
			}
			p.ops = append(p.ops, op)
		})
		if err != nil {
			return nil, err
		}
	}
	if goneBefore > 0 {
		gone := func(m InvMeta) bool { return m.Gone && int64(m.GoneAt) < goneBefore }
		if err := eachObject(txn, tableInvNodes, func(raw any) {
			if n := raw.(*InvNode); gone(n.InvMeta) {
				p.nodes = append(p.nodes, n)
			}
		}); err != nil {
			return nil, err
		}
		var guests []*InvGuest
		var storage []*InvStorage
		if err := eachObject(txn, tableInvGuests, func(raw any) {
			if g := raw.(*InvGuest); gone(g.InvMeta) {
				guests = append(guests, g)
			}
		}); err != nil {
			return nil, err
		}
		if err := eachObject(txn, tableInvStorage, func(raw any) {
			if s := raw.(*InvStorage); gone(s.InvMeta) {
				storage = append(storage, s)
			}
		}); err != nil {
			return nil, err
		}
		for _, g := range guests {
			if named, err := namedByStorageRecords(txn, "vmid", g.VMID); err != nil {
				return nil, err
			} else if !named {
				p.guests = append(p.guests, g)
			}
		}
		for _, s := range storage {
			if named, err := namedByStorageRecords(txn, "storage_id", s.ID); err != nil {
				return nil, err
			} else if !named {
				p.storage = append(p.storage, s)
			}
		}
	}
	return p, nil
}

// namedByStorageRecords reports whether a backup or volume record has
// arg as its index value (vmid or storage_id).
func namedByStorageRecords(txn *memdb.Txn, index string, arg any) (bool, error) {
	for _, table := range []string{tableBackups, tableVolumes} {
		raw, err := txn.First(table, index, arg)
		if err != nil {
			return false, err
		}
		if raw != nil {
			return true, nil
		}
	}
	return false, nil
}

// namedRuns returns the IDs of the operations storage policies and DR
// plans name as their active, last, failover or fence run; retention
// keeps those.
func namedRuns(txn *memdb.Txn) (map[string]bool, error) {
	named := map[string]bool{}
	add := func(ids ...string) {
		for _, id := range ids {
			if id != "" {
				named[id] = true
			}
		}
	}
	if err := eachObject(txn, tableStoragePolicies, func(raw any) {
		p := raw.(*StoragePolicy)
		add(p.ActiveRun, p.LastRun)
	}); err != nil {
		return nil, err
	}
	if err := eachObject(txn, tableDRPlans, func(raw any) {
		p := raw.(*DRPlan)
		add(p.ActiveRun, p.LastRun)
		if p.Failover != nil {
			add(p.Failover.Run)
		}
		if p.Fence != nil {
			add(p.Fence.Run)
		}
	}); err != nil {
		return nil, err
	}
	return named, nil
}

func applyRetentionPrune(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*RetentionPruneRequest)
	p, err := findPrunable(txn, req.OperationsBefore, req.GoneBefore)
	if err != nil {
		return nil, err
	}
	p.limit(req.Max)
	items := 0
	for _, op := range p.ops {
		if err := remove(txn, tableOperations, index, op); err != nil {
			return nil, err
		}
		for _, table := range []string{tableRunItems, tableDRItems} {
			n, err := txn.DeleteAll(table, "id_prefix", op.ID+"/")
			if err != nil {
				return nil, err
			}
			if n > 0 {
				items += n
				if err := touchTable(txn, table, index); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, n := range p.nodes {
		if err := remove(txn, tableInvNodes, index, n); err != nil {
			return nil, err
		}
	}
	for _, g := range p.guests {
		if err := remove(txn, tableInvGuests, index, g); err != nil {
			return nil, err
		}
	}
	for _, s := range p.storage {
		if err := remove(txn, tableInvStorage, index, s); err != nil {
			return nil, err
		}
	}
	return &RetentionPruned{Operations: len(p.ops), Items: items, Nodes: len(p.nodes), Guests: len(p.guests), Storage: len(p.storage)}, nil
}

// RetentionDue reports whether a RetentionPruneRequest with these cut-offs
// would delete anything, so that the leader proposes none that would not.
func (s *Store) RetentionDue(opsBefore, goneBefore int64) (bool, error) {
	p, err := findPrunable(s.db.Txn(false), opsBefore, goneBefore)
	if err != nil {
		return false, err
	}
	return !p.empty(), nil
}
