package node

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/provider"
	"github.com/moxxie/moxxie/storage"
)

// Snapshot and backup policies. Every policyTick the leader evaluates the
// policies against the inventory with its own clock and proposes a tick
// for each due slot. The tick records the run (or the skip) and moves the
// policy's last slot in one command, and Apply refuses a slot that is not
// newer: a slot runs at most once whichever leader proposes it. The run
// itself is an operation the operations runner executes; every guest's
// step is recorded before the platform is asked, so a new leader resumes
// a run without repeating what was done.

const (
	// policyTick is how often the leader evaluates the schedules.
	policyTick = time.Second
	// policyGrace is how late a slot may be found and still run without
	// repeat-missed: longer than a leader election, shorter than any
	// sensible schedule interval.
	policyGrace = time.Minute
	// runParallelNodes bounds the nodes a run works on at once; on one
	// node the guests go one after another, as vzdump does.
	runParallelNodes = 4
)

// runPolicies evaluates the schedules until stop closes.
func (s *Server) runPolicies(stop <-chan struct{}) {
	t := time.NewTicker(policyTick)
	defer t.Stop()
	// Each policy whose time zone cannot be loaded is logged once for
	// each error, not on every tick.
	warned := map[string]string{}
	badZone := func(policy string, err error) {
		if warned[policy] != err.Error() {
			warned[policy] = err.Error()
			s.logger.Error("storage policy not run: this server cannot load its time zone", "policy", policy, "error", err)
		}
	}
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if err := s.evaluatePolicies(badZone); err != nil {
			s.logger.Warn("evaluating storage policies failed", "error", err)
		}
	}
}

// duePolicies reads the policies that may run now (not disabled, no run
// in progress) in the storage package's terms, and whether any has a slot
// at or before now: only then are the guests worth reading. A policy
// whose time zone this server cannot load is left out and passed to
// badZone, if set.
func duePolicies(st *fsm.Store, now time.Time, badZone func(policy string, err error)) ([]storage.Policy, map[string]*fsm.StoragePolicy, bool, error) {
	_, pols, err := st.StoragePolicies(nil)
	if err != nil {
		return nil, nil, false, err
	}
	var in []storage.Policy
	byID := map[string]*fsm.StoragePolicy{}
	due := false
	for _, p := range pols {
		if p.Disabled || p.ActiveRun != "" {
			continue
		}
		cal, err := storage.ParseCalendar(p.Schedule)
		if err != nil {
			continue // validated on write; an old one cannot run
		}
		loc, err := api.PolicyZone(p)
		if err != nil {
			// Checked on write against the zone data moxxied carries;
			// a server of an older release may lack a newer zone.
			if badZone != nil {
				badZone(p.ID, err)
			}
			continue
		}
		byID[p.ID] = p
		sp := storage.Policy{
			ID: p.ID, Calendar: cal, Location: loc, Selector: p.Selector, RepeatMissed: p.RepeatMissed,
			Created: p.CreatedAt.Time(), LastSlot: p.LastSlot.Time(),
		}
		if next := sp.NextRun(); !next.IsZero() && !next.After(now) {
			due = true
		}
		in = append(in, sp)
	}
	return in, byID, due, nil
}

// policyGuests reads the guests in the storage package's terms.
func policyGuests(st *fsm.Store) ([]storage.Guest, map[int]*fsm.InvGuest, error) {
	_, invGuests, err := st.InventoryGuests(nil, fsm.GuestFilter{})
	if err != nil {
		return nil, nil, err
	}
	guests := make([]storage.Guest, 0, len(invGuests))
	byVMID := make(map[int]*fsm.InvGuest, len(invGuests))
	for _, g := range invGuests {
		if g.Gone {
			continue
		}
		byVMID[g.VMID] = g
		guests = append(guests, g.StorageGuest())
	}
	return guests, byVMID, nil
}

// evaluatePolicies proposes a tick for every due policy, passing those
// it cannot evaluate for their time zone to badZone.
func (s *Server) evaluatePolicies(badZone func(policy string, err error)) error {
	now := s.now()
	in, byID, due, err := duePolicies(s.State(), now, badZone)
	if err != nil || !due {
		return err
	}
	guests, byVMID, err := policyGuests(s.State())
	if err != nil {
		return err
	}
	for _, d := range storage.Evaluate(in, guests, now, policyGrace) {
		p := byID[d.Policy]
		req := &fsm.PolicyTickRequest{Policy: d.Policy, Slot: fsm.Timestamp(d.Slot.UnixNano()), Missed: d.Missed}
		if d.Run {
			req.Run = &fsm.Operation{ID: api.NewID(), Tenant: p.Selector.Tenant}
			for _, vmid := range d.VMIDs {
				g := byVMID[vmid]
				req.Items = append(req.Items, fsm.RunItem{VMID: vmid, Node: g.Node, Kind: g.Kind})
			}
		}
		_, err := s.raftApply(req)
		switch {
		case errors.Is(err, fsm.ErrConflict):
			// Another leader handled the slot, or a run is in progress.
		case err != nil:
			s.logger.Warn("recording a policy slot failed", "policy", d.Policy, "error", err)
		case d.Run:
			s.logger.Info("policy run recorded", "policy", d.Policy, "run", req.Run.ID, "slot", d.Slot, "guests", len(req.Items), "missed", d.Missed)
		default:
			s.logger.Warn("policy slot skipped: found too late and repeat_missed is off", "policy", d.Policy, "slot", d.Slot, "missed", d.Missed)
		}
	}
	return nil
}

// policyRun executes a snapshot or backup run: every guest not done yet,
// then retention. It fails, after doing all it can, when a guest failed.
func (o *opState) policyRun() error {
	st := o.r.s.State()
	_, pol, err := st.StoragePolicy(nil, o.op.Policy)
	if err != nil {
		return err
	}
	if pol == nil {
		return fmt.Errorf("policy %s is gone", o.op.Policy)
	}
	_, items, err := st.RunItems(nil, o.op.ID)
	if err != nil {
		return err
	}
	_ = o.step(fmt.Sprintf("running %d guests", len(items)))
	byNode := map[string][]*fsm.RunItem{}
	for _, it := range items {
		if it.Status == fsm.ItemSucceeded || it.Status == fsm.ItemFailed {
			continue
		}
		byNode[it.Node] = append(byNode[it.Node], it)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, runParallelNodes)
	for _, node := range slices.Sorted(maps.Keys(byNode)) {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			for _, it := range byNode[node] {
				if o.r.ctx.Err() != nil {
					return
				}
				o.runItem(pol, it)
			}
		})
	}
	wg.Wait()
	if err := o.r.ctx.Err(); err != nil {
		return err
	}
	_ = o.step("pruning")
	pruneErr := o.prune(pol, items)
	_, done, err := st.RunItems(nil, o.op.ID)
	if err != nil {
		return err
	}
	var failed []string
	for _, it := range done {
		if it.Status == fsm.ItemFailed {
			failed = append(failed, fmt.Sprintf("%d: %s", it.VMID, it.Error))
		}
	}
	if err := runFailed(len(done), failed); err != nil {
		return err
	}
	return pruneErr
}

// runFailed is the error of a run of total guests of which failed (each
// "vmid: error") failed, nil when none did.
func runFailed(total int, failed []string) error {
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d guests failed: %s", len(failed), total, strings.Join(failed, "; "))
}

// itemUpdate records progress of one item.
func (o *opState) itemUpdate(u *fsm.RunItemUpdateRequest) error {
	u.Run = o.op.ID
	_, err := o.r.s.raftApply(u)
	return err
}

// runItem runs one guest of a run to its end and records the outcome.
func (o *opState) runItem(pol *fsm.StoragePolicy, it *fsm.RunItem) {
	ctx, cancel := o.ctx()
	defer cancel()
	ref := provider.GuestRef{Node: it.Node, VMID: it.VMID, Kind: provider.GuestKind(it.Kind)}
	if _, g, err := o.r.s.State().InventoryGuest(nil, it.VMID); err == nil && g != nil && !g.Gone {
		ref.Node, ref.Kind = g.Node, provider.GuestKind(g.Kind)
	}
	var (
		res *fsm.RunItemUpdateRequest
		err error
	)
	if o.op.Kind == fsm.OpSnapshotRun {
		res, err = o.snapshotItem(ctx, ref, it)
	} else {
		res, err = o.backupItem(ctx, pol, ref, it)
	}
	if o.r.ctx.Err() != nil {
		return // the next leader resumes it
	}
	if err != nil {
		res = &fsm.RunItemUpdateRequest{VMID: it.VMID, Status: fsm.ItemFailed, Error: err.Error()}
	}
	if err := o.itemUpdate(res); err != nil {
		o.r.s.logger.WarnContext(o.reqCtx, "recording a run item failed", "run", o.op.ID, "vmid", it.VMID, "error", err)
	}
}

// startItem records that the item is about to ask the platform, unless it
// did already.
func (o *opState) startItem(it *fsm.RunItem, name string) error {
	if it.Status != fsm.ItemPending {
		return nil
	}
	return o.itemUpdate(&fsm.RunItemUpdateRequest{VMID: it.VMID, Status: fsm.ItemRunning, Name: name})
}

// followTask records a started task on the item and waits for it.
func (o *opState) followTask(ctx context.Context, it *fsm.RunItem, task provider.Task, startErr error) error {
	if startErr != nil {
		return startErr
	}
	if err := o.itemUpdate(&fsm.RunItemUpdateRequest{VMID: it.VMID, Status: fsm.ItemRunning, Task: task.ID, TaskNode: task.Node}); err != nil {
		return err
	}
	_, err := o.r.p.WaitTask(ctx, task, nil)
	return err
}

// snapshotItem takes the run's snapshot of one guest. The name is the
// policy's and the slot's, so a resumed item finds a snapshot it took
// before and does not take another.
func (o *opState) snapshotItem(ctx context.Context, ref provider.GuestRef, it *fsm.RunItem) (*fsm.RunItemUpdateRequest, error) {
	name := storage.SnapshotName(o.op.Policy, o.op.Slot.Time())
	done := &fsm.RunItemUpdateRequest{VMID: it.VMID, Status: fsm.ItemSucceeded, Name: name}
	if err := o.startItem(it, name); err != nil {
		return nil, err
	}
	if it.Task != "" {
		// A leader before this one started it: follow that task.
		if _, err := o.r.p.WaitTask(ctx, provider.Task{ID: it.Task, Node: it.TaskNode}, nil); err != nil {
			return nil, err
		}
		return done, nil
	}
	snaps, err := o.r.p.Snapshots(ctx, ref)
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(snaps, func(s provider.Snapshot) bool { return s.Name == name }) {
		return done, nil
	}
	desc := fmt.Sprintf("moxxie policy %s, run %s", o.op.Policy, o.op.ID)
	t, err := o.r.p.CreateSnapshot(ctx, ref, name, desc)
	if err := o.followTask(ctx, it, t, err); err != nil {
		return nil, err
	}
	return done, nil
}

// backupItem backs up one guest. The backup's notes name the run, so a
// resumed item finds a backup made before and does not make another.
func (o *opState) backupItem(ctx context.Context, pol *fsm.StoragePolicy, ref provider.GuestRef, it *fsm.RunItem) (*fsm.RunItemUpdateRequest, error) {
	if err := o.startItem(it, ""); err != nil {
		return nil, err
	}
	if it.Task != "" {
		if _, err := o.r.p.WaitTask(ctx, provider.Task{ID: it.Task, Node: it.TaskNode}, nil); err != nil {
			return nil, err
		}
		return o.findBackup(ctx, pol, ref, it, true)
	}
	if res, err := o.findBackup(ctx, pol, ref, it, false); err != nil || res != nil {
		return res, err
	}
	// A vzdump another leader started but did not record holds the
	// guest's backup lock: wait for it to end, then look again.
	if err := o.awaitUnlocked(ctx, ref, "backup"); err != nil {
		return nil, err
	}
	if res, err := o.findBackup(ctx, pol, ref, it, false); err != nil || res != nil {
		return res, err
	}
	spec := provider.BackupSpec{Storage: pol.Storage, Mode: pol.Mode, Compress: pol.Compress, Notes: storage.BackupNotes(pol.ID, o.op.ID)}
	t, err := o.r.p.Backup(ctx, ref, spec)
	if err := o.followTask(ctx, it, t, err); err != nil {
		return nil, err
	}
	return o.findBackup(ctx, pol, ref, it, true)
}

// findBackup looks on the policy's storage for the backup this run made of
// the guest: nil when there is none, an error when there must be one.
func (o *opState) findBackup(ctx context.Context, pol *fsm.StoragePolicy, ref provider.GuestRef, it *fsm.RunItem, must bool) (*fsm.RunItemUpdateRequest, error) {
	content, err := o.r.p.StorageContent(ctx, ref.Node, pol.Storage, "backup")
	if err != nil {
		return nil, err
	}
	for _, c := range content {
		if _, run, ok := storage.ParseBackupNotes(c.Notes); !ok || run != o.op.ID || c.VMID != it.VMID {
			continue
		}
		l := storageListing{id: ref.Node + "/" + pol.Storage, node: ref.Node, storage: pol.Storage}
		if _, inv, err := o.r.s.State().InventoryStorage(nil, false); err == nil {
			for _, s := range inv {
				if s.Storage == pol.Storage && s.Shared {
					l.id = pol.Storage
				}
			}
		}
		b := backupOf(l, c)
		return &fsm.RunItemUpdateRequest{VMID: it.VMID, Status: fsm.ItemSucceeded, Name: c.VolID, Backup: &b}, nil
	}
	if must {
		return nil, fmt.Errorf("the backup task ended but no backup of guest %d with run %s is on %s", it.VMID, o.op.ID, pol.Storage)
	}
	return nil, nil
}

// awaitUnlocked waits until the guest holds no lock of kind.
func (o *opState) awaitUnlocked(ctx context.Context, ref provider.GuestRef, kind string) error {
	for {
		g, err := o.r.p.Guest(ctx, ref)
		if err != nil {
			return err
		}
		if g.Lock != kind {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// prune applies the policy's retention to every guest of the run: what
// the rules do not keep is deleted from the platform, then from the state.
// Protected snapshots and backups are never removed.
func (o *opState) prune(pol *fsm.StoragePolicy, items []*fsm.RunItem) error {
	if !pol.Keep.KeepsSomething() {
		return nil
	}
	st := o.r.s.State()
	var errs []error
	for _, it := range items {
		ctx, cancel := o.ctx()
		ref := provider.GuestRef{Node: it.Node, VMID: it.VMID, Kind: provider.GuestKind(it.Kind)}
		if _, g, err := st.InventoryGuest(nil, it.VMID); err == nil && g != nil && !g.Gone {
			ref.Node = g.Node
		}
		req := &fsm.PruneRecordRequest{Run: o.op.ID}
		if o.op.Kind == fsm.OpSnapshotRun {
			req.Snapshots, errs = o.pruneSnapshots(ctx, pol, ref, errs)
		} else {
			req.Backups, errs = o.pruneBackups(ctx, pol, it.VMID, errs)
		}
		cancel()
		if len(req.Snapshots)+len(req.Backups) > 0 {
			if _, err := o.r.s.raftApply(req); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("pruning: %w", errors.Join(errs...))
	}
	return nil
}

// pruneSnapshots deletes the guest's snapshots of the policy that the
// retention removes and returns their IDs.
func (o *opState) pruneSnapshots(ctx context.Context, pol *fsm.StoragePolicy, ref provider.GuestRef, errs []error) ([]string, []error) {
	_, snaps, err := o.r.s.State().PolicySnapshots(nil, pol.ID)
	if err != nil {
		return nil, append(errs, err)
	}
	var items []storage.Item
	for _, s := range snaps {
		if s.VMID == ref.VMID {
			items = append(items, storage.Item{ID: s.ID, Time: s.Time.Time(), Protected: s.Protected})
		}
	}
	var removed []string
	for _, d := range storage.PruneIn(items, pol.Keep, policyLocation(pol)) {
		if d.Mark != storage.MarkRemove {
			continue
		}
		_, name, _ := strings.Cut(d.ID, "/")
		t, err := o.r.p.DeleteSnapshot(ctx, ref, name)
		if err == nil {
			_, err = o.r.p.WaitTask(ctx, t, nil)
		}
		if err != nil && !errors.Is(err, provider.ErrNotFound) {
			errs = append(errs, fmt.Errorf("snapshot %s of %d: %w", name, ref.VMID, err))
			continue
		}
		removed = append(removed, d.ID)
	}
	return removed, errs
}

// pruneBackups deletes the guest's backups of the policy that the
// retention removes and returns their volume IDs.
func (o *opState) pruneBackups(ctx context.Context, pol *fsm.StoragePolicy, vmid int, errs []error) ([]string, []error) {
	_, all, err := o.r.s.State().Backups(nil)
	if err != nil {
		return nil, append(errs, err)
	}
	byID := map[string]*fsm.Backup{}
	var items []storage.Item
	for _, b := range ownBackups(o.r.s.State(), all, pol.ID, vmid) {
		byID[b.VolID] = b
		items = append(items, storage.Item{ID: b.VolID, Time: b.Time.Time(), Protected: b.Protected || b.PlatformProtected})
	}
	var removed []string
	for _, d := range storage.PruneIn(items, pol.Keep, policyLocation(pol)) {
		if d.Mark != storage.MarkRemove {
			continue
		}
		t, err := o.r.p.DeleteVolume(ctx, byID[d.ID].Node, d.ID)
		if err == nil && t.ID != "" {
			_, err = o.r.p.WaitTask(ctx, t, nil)
		}
		if err != nil && !errors.Is(err, provider.ErrNotFound) {
			errs = append(errs, fmt.Errorf("backup %s: %w", d.ID, err))
			continue
		}
		removed = append(removed, d.ID)
	}
	return removed, errs
}

// ownBackups returns the backups of guest vmid that runs of this site's
// policy made. A storage shared with other sites (a DR backup storage)
// also lists their backups, whose notes may name a policy of the same
// ID: a backup counts only when the run its notes name is one of this
// site's runs of the policy.
func ownBackups(st *fsm.Store, all []*fsm.Backup, policy string, vmid int) []*fsm.Backup {
	var out []*fsm.Backup
	for _, b := range all {
		if b.VMID != vmid || b.Policy != policy || b.Run == "" {
			continue
		}
		if _, op, err := st.Operation(nil, b.Run); err == nil && op != nil && op.IsPolicyRun() && op.Policy == policy {
			out = append(out, b)
		}
	}
	return out
}

// policyLocation returns the time zone of pol's retention periods: its
// schedule's, or UTC when this server cannot load it (the schedule then
// does not run either; see duePolicies).
func policyLocation(pol *fsm.StoragePolicy) *time.Location {
	loc, err := api.PolicyZone(pol)
	if err != nil {
		return time.UTC
	}
	return loc
}
