package fsm

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/go-memdb"
)

func applyDRPlanPut(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*DRPlanPutRequest)
	p := req.Plan
	if p.SourceSite != req.LocalSite {
		return nil, fieldErrf("source_site", ErrInvalid,
			"a plan is written at its source site: this is site %q, the plan protects guests of %s", req.LocalSite, p.SourceSite)
	}
	now := Timestamp(req.Now)
	raw, err := txn.First(tableDRPlans, "id", p.ID)
	if err != nil {
		return nil, err
	}
	switch {
	case raw != nil && raw.(*DRPlan).Replica:
		old := raw.(*DRPlan)
		return nil, fieldErrf("id", ErrConflict, "plan %s here is site %s's replica; change it at %s", p.ID, old.SourceSite, old.SourceSite)
	case raw != nil && req.Create:
		return nil, fieldErrf("id", ErrConflict, "plan %s already exists", p.ID)
	case raw == nil && !req.Create:
		return nil, notFound("plan", p.ID)
	case raw != nil:
		old := raw.(*DRPlan)
		p.Fence, p.ActiveRun, p.LastRun = old.Fence, old.ActiveRun, old.LastRun
		p.CreatedAt, p.CreateIndex = old.CreatedAt, old.CreateIndex
	default:
		p.Fence, p.ActiveRun, p.LastRun = nil, "", ""
		p.CreatedAt, p.CreateIndex = now, index
	}
	p.Replica, p.Status, p.SourceUpdatedAt, p.SyncedAt, p.Failover = false, nil, 0, 0, nil
	p.UpdatedAt, p.ModifyIndex = now, index
	if err := insert(txn, tableDRPlans, index, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func applyDRPlanDelete(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*DRPlanDeleteRequest)
	p, err := lookup[DRPlan](txn, tableDRPlans, "plan", req.ID)
	if err != nil {
		return nil, err
	}
	switch {
	case p.ActiveRun != "":
		return nil, fieldErrf("id", ErrConflict, "plan %s has run %s in progress", p.ID, p.ActiveRun)
	case p.Failover != nil:
		return nil, fieldErrf("id", ErrConflict, "plan %s was failed over (run %s); fail it back before deleting it", p.ID, p.Failover.Run)
	case p.Fence != nil && p.Fence.Isolated:
		return nil, fieldErrf("id", ErrConflict, "plan %s is fenced: this site lost sight of site %s and stopped the plan's guests; the fence lifts when %s answers that it did not fail the plan over (or moxxiectl site unfence) and the guests run again", p.ID, p.Fence.By, p.Fence.By)
	case p.Fence != nil:
		return nil, fieldErrf("id", ErrConflict, "plan %s is fenced: site %s failed it over; fail it back before deleting it", p.ID, p.Fence.By)
	}
	return p, remove(txn, tableDRPlans, index, p)
}

// DRSyncResult is what a replica sync stored: per plan sent, the
// replica's failover (nil when none).
type DRSyncResult struct {
	Failovers map[string]*DRFailover `json:"failovers"`
}

func applyDRReplicaSync(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*DRReplicaSyncRequest)
	now := Timestamp(req.Now)
	out := &DRSyncResult{Failovers: map[string]*DRFailover{}}
	sent := map[string]bool{}
	for i, in := range req.Plans {
		sent[in.ID] = true
		if in.RecoverySite != req.LocalSite {
			return nil, fieldErrf("recovery_site", ErrInvalid, "plan %s recovers at %s, not at this site (%s)", in.ID, in.RecoverySite, req.LocalSite)
		}
		raw, err := txn.First(tableDRPlans, "id", in.ID)
		if err != nil {
			return nil, err
		}
		var old *DRPlan
		if raw != nil {
			old = raw.(*DRPlan)
		}
		if old != nil && (!old.Replica || old.SourceSite != req.Source) {
			return nil, fieldErrf("id", ErrConflict, "plan %s here is not site %s's replica; rename one of them", in.ID, req.Source)
		}
		if old != nil && old.Failover != nil && old.Failover.State == DRFailoverReleased && in.Fence == nil && old.ActiveRun == "" {
			// The source failed the plan back and lifted its fence: the
			// failover is over, and the plan may fail over again.
			old = &DRPlan{Replica: true, SourceSite: old.SourceSite, ActiveRun: old.ActiveRun, LastRun: old.LastRun,
				CreatedAt: old.CreatedAt, CreateIndex: old.CreateIndex}
		}
		if old != nil && old.Failover != nil {
			out.Failovers[in.ID] = old.Failover
			if in.UpdatedAt > old.SourceUpdatedAt {
				if err := recordConflict(txn, index, &DRConflict{ID: req.ConflictIDs[i], Plan: in.ID, Kind: DRConflictPlanChanged, Site: req.Source,
					Detail: fmt.Sprintf("site %s changed plan %s at %s, after the failover %s started at %s: the recovery site keeps the version it failed over with",
						req.Source, in.ID, in.UpdatedAt.Time().UTC().Format(timeLayout), old.Failover.Run, old.Failover.StartedAt.Time().UTC().Format(timeLayout)),
					At: now}, in.UpdatedAt); err != nil {
					return nil, err
				}
			}
			continue
		}
		p := in
		p.Replica, p.Fence, p.Failover = true, nil, nil
		p.SourceUpdatedAt, p.UpdatedAt, p.ModifyIndex = in.UpdatedAt, now, index
		if old != nil {
			if old.ID != "" && old.SourceUpdatedAt == in.UpdatedAt && slices.Equal(old.Status, in.Status) && in.SyncedAt-old.SyncedAt < drSyncedRefresh {
				continue
			}
			p.ActiveRun, p.LastRun, p.CreatedAt, p.CreateIndex = old.ActiveRun, old.LastRun, old.CreatedAt, old.CreateIndex
		} else {
			p.ActiveRun, p.LastRun, p.CreatedAt, p.CreateIndex = "", "", now, index
		}
		if err := insert(txn, tableDRPlans, index, &p); err != nil {
			return nil, err
		}
	}
	// Replicas the source no longer has go, unless they failed over or run.
	it, err := txn.Get(tableDRPlans, "id")
	if err != nil {
		return nil, err
	}
	var gone []*DRPlan
	for raw := it.Next(); raw != nil; raw = it.Next() {
		p := raw.(*DRPlan)
		if p.Replica && p.SourceSite == req.Source && !sent[p.ID] && p.Failover == nil && p.ActiveRun == "" {
			gone = append(gone, p)
		}
	}
	for _, p := range gone {
		if err := remove(txn, tableDRPlans, index, p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// drSyncedRefresh is how stale a replica's SyncedAt may get before an
// unchanged sync writes it again: a sync every few seconds does not
// write every time.
const drSyncedRefresh = Timestamp(30 * time.Second)

// timeLayout formats times in messages.
const timeLayout = "2006-01-02T15:04:05Z"

// recordConflict stores c once per plan and version (at): a sync repeated
// every few seconds reports a change once.
func recordConflict(txn *memdb.Txn, index uint64, c *DRConflict, at Timestamp) error {
	it, err := txn.Get(tableDRConflicts, "id")
	if err != nil {
		return err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		o := raw.(*DRConflict)
		if o.Plan == c.Plan && o.Kind == c.Kind && o.VMID == c.VMID && o.Site == c.Site && o.Version == at {
			return nil
		}
	}
	c.Version = at
	return insert(txn, tableDRConflicts, index, c)
}

func applyDRRunStart(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*DRRunStartRequest)
	old, err := lookup[DRPlan](txn, tableDRPlans, "plan", req.Plan)
	if err != nil {
		return nil, err
	}
	p := *old
	switch {
	case p.ActiveRun != "":
		return nil, fieldErrf("plan", ErrConflict, "plan %s has run %s in progress", p.ID, p.ActiveRun)
	case req.Kind != OpDRFailback && !p.Replica:
		return nil, fieldErrf("plan", ErrConflict, "plan %s protects this site's guests: a %s runs at its recovery site %s", p.ID, req.Kind, p.RecoverySite)
	case req.Kind == OpDRFailover && p.Failover != nil:
		return nil, fieldErrf("plan", ErrConflict, "plan %s was failed over already (run %s, %s); fail it back first", p.ID, p.Failover.Run, p.Failover.State)
	case req.Kind == OpDRFailback && (p.Replica || p.Fence == nil):
		return nil, fieldErrf("plan", ErrConflict, "plan %s is not fenced here: a failback runs at the source site of a plan that was failed over", p.ID)
	case req.Kind == OpDRFailback && p.Fence.Isolated:
		return nil, fieldErrf("plan", ErrConflict, "plan %s is fenced only because this site lost sight of site %s: no failover is known, so there is nothing to fail back. The fence lifts when %s answers that it did not fail the plan over, or with moxxiectl site unfence", p.ID, p.Fence.By, p.Fence.By)
	case req.Kind == OpDRRelease && (p.Failover == nil || p.Failover.State == OpRunning || p.Failover.State == DRFailoverReleased):
		return nil, fieldErrf("plan", ErrConflict, "plan %s has no finished failover to release", p.ID)
	}
	if raw, err := txn.First(tableOperations, "id", req.Run.ID); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fieldErrf("id", ErrConflict, "operation %s already exists", req.Run.ID)
	}
	now := Timestamp(req.Now)
	op := req.Run
	op.Kind, op.Status, op.Actor, op.Policy = req.Kind, OpPending, req.Actor, p.ID
	op.Step = req.Trigger
	if req.Keep {
		op.Step += ", keep"
	}
	op.VMID, op.Node, op.Spec, op.Volume = 0, "", nil, nil
	op.Stats = &RunStats{Total: len(req.Items)}
	op.RequestID = req.RequestID
	op.CreatedAt, op.UpdatedAt, op.FinishedAt = now, now, 0
	op.CreateIndex, op.ModifyIndex = index, index
	for _, it := range req.Items {
		it.RunID, it.Key, it.Keep = op.ID, drItemKey(op.ID, it.Order, it.VMID), req.Keep && req.Kind == OpDRDrill
		it.Step, it.Task, it.TaskNode, it.Error, it.Started, it.Finished = DRStepPending, "", "", "", 0, 0
		if err := insert(txn, tableDRItems, index, &it); err != nil {
			return nil, err
		}
	}
	p.LastRun, p.ModifyIndex = op.ID, index
	if len(req.Items) == 0 {
		op.Status, op.FinishedAt = OpSucceeded, now
		op.Step += ": no guests"
	} else {
		p.ActiveRun = op.ID
	}
	if req.Kind == OpDRFailover {
		p.Failover = &DRFailover{Run: op.ID, Trigger: req.Trigger, StartedAt: now, State: OpRunning}
		if !op.Active() {
			p.Failover.State = OpSucceeded
		}
	}
	if err := insert(txn, tableOperations, index, &op); err != nil {
		return nil, err
	}
	if err := insert(txn, tableDRPlans, index, &p); err != nil {
		return nil, err
	}
	return &op, nil
}

// applyDRRunRetry runs a failed failover again. Each guest that failed
// resumes where what is recorded of it places it: with an address (its
// copy restored), at configuring it; with a target VMID, at its restore,
// keeping the task of the restore its first attempt started, which the
// runner follows to learn whether the copy there is its own before it
// restores again (node's drPrepare: a guest at the target is never taken
// on its name alone); without, from the start. The run and the plan's
// failover are running again, so the leader's runner takes the run up; a
// run that failed as a whole, with guests left between steps, resumes
// them too.
func applyDRRunRetry(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*DRRunRetryRequest)
	old, err := lookup[DRPlan](txn, tableDRPlans, "plan", req.Plan)
	if err != nil {
		return nil, err
	}
	p := *old
	switch {
	case !p.Replica:
		return nil, fieldErrf("plan", ErrConflict, "plan %s protects this site's guests: its failover runs at its recovery site %s", p.ID, p.RecoverySite)
	case p.ActiveRun != "":
		return nil, fieldErrf("plan", ErrConflict, "plan %s has run %s in progress", p.ID, p.ActiveRun)
	case p.Failover == nil:
		return nil, fieldErrf("plan", ErrConflict, "plan %s was not failed over: there is nothing to run again", p.ID)
	case p.Failover.State != OpFailed:
		return nil, fieldErrf("plan", ErrConflict, "plan %s was failed over already (run %s, %s); fail it back first", p.ID, p.Failover.Run, p.Failover.State)
	}
	raw, err := txn.First(tableOperations, "id", p.Failover.Run)
	if err != nil {
		return nil, err
	}
	if raw == nil || raw.(*Operation).Status != OpFailed {
		return nil, fieldErrf("plan", ErrConflict, "plan %s's failover run %s is not a failed run", p.ID, p.Failover.Run)
	}
	op := *raw.(*Operation)
	it, err := txn.Get(tableDRItems, "id_prefix", op.ID+"/")
	if err != nil {
		return nil, err
	}
	var again []*DRItem
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if i := raw.(*DRItem); i.Step == DRStepFailed {
			again = append(again, i)
		}
	}
	for _, old := range again {
		i := *old
		i.Error, i.Finished = "", 0
		switch {
		case i.TargetVMID == 0:
			i.Step = DRStepPending
		case i.Address != "":
			i.Step = DRStepAddressed
		default:
			i.Step = DRStepAllocated
		}
		if err := insert(txn, tableDRItems, index, &i); err != nil {
			return nil, err
		}
	}
	now := Timestamp(req.Now)
	st := RunStats{}
	if op.Stats != nil {
		st = *op.Stats
	}
	st.Failed = max(0, st.Failed-len(again))
	op.Stats = &st
	op.Status, op.Error, op.FinishedAt, op.Progress = OpPending, nil, 0, ""
	op.Step = fmt.Sprintf("run again: %d failed guests", len(again))
	if len(again) == 1 {
		op.Step = "run again: 1 failed guest"
	}
	op.UpdatedAt, op.ModifyIndex = now, index
	if err := insert(txn, tableOperations, index, &op); err != nil {
		return nil, err
	}
	f := *p.Failover
	f.State = OpRunning
	p.Failover, p.ActiveRun, p.ModifyIndex = &f, op.ID, index
	if err := insert(txn, tableDRPlans, index, &p); err != nil {
		return nil, err
	}
	return &op, nil
}

// IsDRRun reports whether the operation is a failover, drill or failback.
func (o *Operation) IsDRRun() bool { return drSteps[o.Kind] != nil }

func applyDRItemUpdate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*DRItemUpdateRequest)
	raw, err := txn.First(tableOperations, "id", req.Run)
	if err != nil {
		return nil, err
	}
	if raw == nil || !raw.(*Operation).IsDRRun() {
		return nil, notFound("run", req.Run)
	}
	op := *raw.(*Operation)
	if !op.Active() {
		return nil, fieldErrf("run", ErrConflict, "run %s has finished (%s)", op.ID, op.Status)
	}
	iraw, err := txn.First(tableDRItems, "id", drItemKey(req.Run, req.Order, req.VMID))
	if err != nil {
		return nil, err
	}
	if iraw == nil {
		return nil, fieldErrf("vmid", ErrNotFound, "run %s has no guest %d", req.Run, req.VMID)
	}
	it := *iraw.(*DRItem)
	steps := drSteps[op.Kind]
	keep := it.Keep
	from, to := slices.Index(steps, it.Step), slices.Index(steps, req.Step)
	switch {
	case DRStepFinal(op.Kind, it.Step, keep):
		return nil, fieldErrf("step", ErrConflict, "guest %d of run %s is %s already", req.VMID, req.Run, it.Step)
	case req.Step != DRStepFailed && (to < 0 || to < from):
		return nil, fieldErrf("step", ErrConflict, "guest %d of run %s cannot go from %s to %s", req.VMID, req.Run, it.Step, req.Step)
	}
	now := Timestamp(req.Now)
	if it.Step == DRStepPending {
		it.Started = now
	}
	it.Step = req.Step
	if req.TargetVMID != 0 {
		it.TargetVMID = req.TargetVMID
	}
	for dst, v := range map[*string]string{&it.TargetNode: req.TargetNode, &it.Task: req.Task, &it.TaskNode: req.TaskNode,
		&it.Address: req.Address, &it.Backup: req.Backup, &it.Error: req.Error} {
		if v != "" {
			*dst = v
		}
	}
	if len(req.Network) > 0 {
		if it.Network != nil && !maps.Equal(it.Network, req.Network) {
			return nil, fieldErrf("network", ErrConflict, "guest %d of run %s has another network recorded already", req.VMID, req.Run)
		}
		if op.Kind != OpDRFailback {
			return nil, fieldErrf("network", ErrInvalid, "only a failback records a guest's network")
		}
		it.Network = maps.Clone(req.Network)
	}
	if DRStepFinal(op.Kind, it.Step, keep) {
		it.Finished = now
		st := *op.Stats
		if it.Step == DRStepFailed {
			st.Failed++
		} else {
			st.Succeeded++
		}
		op.Stats = &st
		op.UpdatedAt, op.ModifyIndex = now, index
		if err := insert(txn, tableOperations, index, &op); err != nil {
			return nil, err
		}
	}
	if err := insert(txn, tableDRItems, index, &it); err != nil {
		return nil, err
	}
	return &it, nil
}

// finishDRRun clears the plan's active run when its run finishes, and
// records how its failover ended.
func finishDRRun(txn *memdb.Txn, index uint64, op *Operation) error {
	if !op.IsDRRun() {
		return nil
	}
	raw, err := txn.First(tableDRPlans, "id", op.Policy)
	if err != nil || raw == nil {
		return err
	}
	p := *raw.(*DRPlan)
	if p.ActiveRun != op.ID {
		return nil
	}
	p.ActiveRun, p.ModifyIndex = "", index
	switch {
	case op.Kind == OpDRFailover && p.Failover != nil && p.Failover.Run == op.ID:
		f := *p.Failover
		f.State = op.Status
		p.Failover = &f
	case op.Kind == OpDRRelease && op.Status == OpSucceeded && p.Failover != nil:
		f := *p.Failover
		f.State = DRFailoverReleased
		p.Failover = &f
	case op.Kind == OpDRFailback && op.Status == OpSucceeded:
		p.Fence = nil
	}
	return insert(txn, tableDRPlans, index, &p)
}

func applyDRFence(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*DRFenceRequest)
	old, err := lookup[DRPlan](txn, tableDRPlans, "plan", req.Plan)
	if err != nil {
		return nil, err
	}
	if old.Replica {
		return nil, fieldErrf("plan", ErrConflict, "plan %s is a replica: only its source site is fenced", old.ID)
	}
	p := *old
	p.Fence, p.ModifyIndex = req.Fence, index
	if req.Fence != nil {
		f := *req.Fence
		if old.Fence != nil && old.Fence.Run == f.Run {
			f.Since = old.Fence.Since
		}
		p.Fence = &f
	}
	for i := range req.Conflicts {
		cf := req.Conflicts[i]
		if err := recordConflict(txn, index, &cf, cf.At); err != nil {
			return nil, err
		}
	}
	if err := insert(txn, tableDRPlans, index, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func applyDRIsolation(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*DRIsolationRequest)
	old, err := lookup[DRPlan](txn, tableDRPlans, "plan", req.Plan)
	if err != nil {
		return nil, err
	}
	if old.Replica {
		return nil, fieldErrf("plan", ErrConflict, "plan %s is a replica: only its source site is fenced", old.ID)
	}
	f := old.Fence
	if req.Action == DRIsolationFence {
		if f != nil {
			return old, nil
		}
		p := *old
		p.Fence, p.ModifyIndex = &DRFence{By: old.RecoverySite, Since: Timestamp(req.Now), Isolated: true}, index
		return &p, insert(txn, tableDRPlans, index, &p)
	}
	if f == nil || !f.Isolated {
		return old, nil // lifted, ended, or turned into a failover's fence
	}
	nf := *f
	switch req.Action {
	case DRIsolationStopped:
		if f.Lifted {
			return old, nil
		}
		nf.Stopped = slices.Clone(f.Stopped)
		for _, v := range req.VMIDs {
			if !slices.Contains(nf.Stopped, v) {
				nf.Stopped = append(nf.Stopped, v)
			}
		}
		slices.Sort(nf.Stopped)
	case DRIsolationLift:
		if f.Lifted {
			return old, nil
		}
		nf.Lifted, nf.LiftedBy = true, req.By
	case DRIsolationRestarted:
		nf.Stopped = slices.DeleteFunc(slices.Clone(f.Stopped), func(v int) bool { return slices.Contains(req.VMIDs, v) })
		if len(nf.Stopped) == 0 {
			nf.Stopped = nil
		}
	case DRIsolationEnd:
		if !f.Lifted || len(f.Stopped) > 0 {
			return old, nil
		}
	}
	p := *old
	p.Fence, p.ModifyIndex = &nf, index
	if req.Action == DRIsolationEnd {
		p.Fence = nil
	}
	return &p, insert(txn, tableDRPlans, index, &p)
}

func applyDRFailoverEnd(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*DRFailoverEndRequest)
	old, err := lookup[DRPlan](txn, tableDRPlans, "plan", req.Plan)
	if err != nil {
		return nil, err
	}
	if old.Failover == nil {
		return old, nil
	}
	if old.ActiveRun != "" {
		return nil, fieldErrf("plan", ErrConflict, "plan %s has run %s in progress", old.ID, old.ActiveRun)
	}
	p := *old
	p.Failover, p.ModifyIndex = nil, index
	if err := insert(txn, tableDRPlans, index, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// DRPlans lists the plans and replicas by ID.
func (s *Store) DRPlans(ws memdb.WatchSet) (uint64, []*DRPlan, error) {
	return list[*DRPlan](s, ws, tableDRPlans, "id")
}

// DRPlan returns one plan or replica, or nil.
func (s *Store) DRPlan(ws memdb.WatchSet, id string) (uint64, *DRPlan, error) {
	return getByID[*DRPlan](s, ws, tableDRPlans, id)
}

// DRFailedBackAt returns when p's last run ended if that run is a
// failback that succeeded, or zero: the time since which this site runs
// the plan's guests again.
func (s *Store) DRFailedBackAt(p *DRPlan) (Timestamp, error) {
	if p.LastRun == "" {
		return 0, nil
	}
	_, op, err := s.Operation(nil, p.LastRun)
	if err != nil || op == nil || op.Kind != OpDRFailback || op.Status != OpSucceeded {
		return 0, err
	}
	return op.FinishedAt, nil
}

// DRItems lists the items of a run in recovery order.
func (s *Store) DRItems(ws memdb.WatchSet, run string) (uint64, []*DRItem, error) {
	return list[*DRItem](s, ws, tableDRItems, "id_prefix", run+"/")
}

// DRConflicts lists the conflicts by ID.
func (s *Store) DRConflicts(ws memdb.WatchSet) (uint64, []*DRConflict, error) {
	return list[*DRConflict](s, ws, tableDRConflicts, "id")
}

// NewDRRun builds the request that starts a run of kind for plan p:
// one item per guest, with what the source site last sent of it.
func NewDRRun(p *DRPlan, kind, trigger string, keep bool, id string) *DRRunStartRequest {
	req := &DRRunStartRequest{Plan: p.ID, Kind: kind, Trigger: trigger, Keep: keep, Run: Operation{ID: id}}
	status := map[int]DRGuestStatus{}
	for _, g := range p.Status {
		status[g.VMID] = g
	}
	for _, g := range p.Guests {
		st := status[g.VMID]
		req.Items = append(req.Items, DRItem{VMID: g.VMID, Order: g.Order, Name: st.Name, Kind: st.Kind, Backup: st.Backup,
			Memory: st.Memory, TargetVMID: g.TargetVMID, DNSName: g.DNSName})
	}
	return req
}
