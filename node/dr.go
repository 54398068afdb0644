package node

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/provider"
	"github.com/moxxie/moxxie/site"
)

// Disaster recovery between sites (docs/dr.md). The leader of every
// site runs one loop, runDR, which does three things:
//
//   - As a source site, every drSyncEvery it sends each recovery site the
//     plans it holds for it, with the newest backup of every guest on the
//     plan's backup storage (PUT /v1/dr/replicas/{source}, authenticated
//     by its server certificate). The answer says which of them were
//     failed over.
//   - As a source site that learns it was failed over (from the pool: the
//     recovery site's servers advertise the sites they failed over, or
//     from a sync's answer), it fences the plan and keeps the plan's
//     guests stopped, recording a conflict for each it found running.
//   - As a recovery site, every drTriggerEvery it starts the failover of
//     every automatic replica whose source site is down: all its servers
//     dead and a quorum of the other sites agreeing (package site).
//   - As a source site cut off from its recovery site and from a quorum
//     of the other sites (what they would need to see of it to fail it
//     over), every drTriggerEvery it fences its automatic plans itself
//     and stops their guests; when a sync's answer says no failover
//     happened, it starts them again.
//
// A failover, drill or failback is an operation the operations runner
// executes (drRun). Each guest's step is recorded before the platform is
// asked; a new leader resumes from the recorded step and looks at the
// platform before acting, so no guest is restored or started twice.

const (
	drTriggerEvery = 500 * time.Millisecond
	drSyncEvery    = 2 * time.Second
	// drCallTimeout bounds one request to another site: all its
	// servers tried, one after another.
	drCallTimeout = 5 * time.Second
)

// runDR runs the disaster-recovery duties of the leader until stop: the
// failover trigger and the syncs in loops of their own, so that a site
// slow to answer never delays a failover.
func (s *Server) runDR(stop <-chan struct{}) {
	if s.cfg.Site.Name == "" {
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		every(stop, drTriggerEvery, nil, func() {
			if err := s.drTrigger(); err != nil {
				s.logger.Warn("dr: checking for failovers failed", "error", err)
			}
			if s.drSelfFence() {
				s.kickDR()
			}
		})
	})
	every(stop, drSyncEvery, s.drKick, func() {
		s.drLearnFences()
		s.drSyncReplicas(stop)
		if err := s.drEnforceFences(); err != nil {
			s.logger.Warn("dr: keeping fenced guests stopped failed", "error", err)
		}
	})
}

// every calls f every d, and whenever kick (which may be nil) receives,
// until stop.
func every(stop <-chan struct{}, d time.Duration, kick <-chan struct{}, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		case <-kick:
		}
		f()
	}
}

// kickDR asks the DR loop to run now.
func (s *Server) kickDR() {
	select {
	case s.drKick <- struct{}{}:
	default:
	}
}

// drSiteStates returns every site's state in this server's pool view.
func (s *Server) drSiteStates() map[string]site.SiteStatus {
	out := map[string]site.SiteStatus{}
	for _, st := range s.Sites() {
		out[st.Name] = st
	}
	return out
}

// drTrigger starts the failover of every automatic replica whose source
// site is down.
func (s *Server) drTrigger() error {
	_, plans, err := s.State().DRPlans(nil)
	if err != nil {
		return err
	}
	var states map[string]site.SiteStatus
	for _, p := range plans {
		if !p.Replica || p.Manual || p.Failover != nil || p.ActiveRun != "" {
			continue
		}
		if states == nil {
			states = s.drSiteStates()
		}
		if states[p.SourceSite].State != "down" {
			continue
		}
		op, err := s.StartDRRun(p.ID, fsm.OpDRFailover, fsm.DRTriggerAutomatic, false, "")
		if err != nil {
			s.logger.Warn("dr: starting a failover failed", "plan", p.ID, "source_site", p.SourceSite, "error", err)
			continue
		}
		s.logger.Warn("dr: site down, failing its plan over", "plan", p.ID, "source_site", p.SourceSite, "run", op.ID,
			"votes", states[p.SourceSite].Votes)
	}
	return nil
}

// StartDRRun records a failover, drill or failback of a plan and returns
// its operation, which the operations runner then executes.
func (s *Server) StartDRRun(plan, kind, trigger string, keep bool, requestID string) (*fsm.Operation, error) {
	_, p, err := s.State().DRPlan(nil, plan)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, &fsm.NotFoundError{What: "plan", ID: plan}
	}
	req := fsm.NewDRRun(p, kind, trigger, keep, api.NewID())
	req.RequestID = requestID
	v, err := s.raftApply(req)
	if err != nil {
		return nil, err
	}
	return v.(*fsm.Operation), nil
}

// drFailedOver returns the sources of the replicas this site failed
// over and has not released for a failback, for its servers to
// advertise in the pool.
func (s *Server) drFailedOver() []string {
	_, plans, err := s.State().DRPlans(nil)
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range plans {
		if p.Replica && p.Failover != nil && p.Failover.State != fsm.DRFailoverReleased && !slices.Contains(out, p.SourceSite) {
			out = append(out, p.SourceSite)
		}
	}
	slices.Sort(out)
	return out
}

// drFenceSettle is how long after a failback ended at this site (four
// push/pull intervals) the pool's word that the recovery site failed the
// plan over is not believed. A server can hold a recovery server's meta from before the
// failback for a push/pull interval or more (a missed broadcast); that
// stale meta would fence the plan again and stop the guests the failback
// just started. Within it only a sync's answer fences, which names the
// failover's run and whether it was released.
func (s *Server) drFenceSettle() time.Duration {
	return 4 * cmp.Or(s.cfg.Site.Timing.PushPullInterval.Duration(), site.DefaultTiming().PushPullInterval)
}

// drLearnFences fences every plan of this site whose recovery site
// advertises in the pool that it failed this site over.
func (s *Server) drLearnFences() {
	sites := s.Sites()
	st := s.State()
	_, plans, err := st.DRPlans(nil)
	if err != nil {
		return
	}
	failedBack := func(p *fsm.DRPlan) time.Time {
		at, err := st.DRFailedBackAt(p)
		if err != nil {
			return time.Time{}
		}
		return at.Time()
	}
	for _, p := range poolFences(s.cfg.Site.Name, sites, plans, failedBack, s.now(), s.drFenceSettle()) {
		s.drFence(p, &fsm.DRFence{By: p.RecoverySite, Since: fsm.Timestamp(s.now().UnixNano())})
	}
}

// poolFences returns the plans of site local that the pool view sites
// says their recovery site failed over (an alive server of it lists
// local in its meta), leaving out plans already fenced and plans whose
// last failback (failedBack, zero for none) ended less than settle
// (drFenceSettle) before now. An isolated fence that an operator lifted is
// turned into a failover's fence here, since its guests run; one that
// keeps them stopped is left to the sync, whose answer names the
// failover's run and start (isolationConflicts).
func poolFences(local string, sites []site.SiteStatus, plans []*fsm.DRPlan, failedBack func(*fsm.DRPlan) time.Time, now time.Time, settle time.Duration) []*fsm.DRPlan {
	by := map[string]bool{}
	for _, st := range sites {
		for _, m := range st.Members {
			if m.State == site.StateAlive && slices.Contains(m.FailedOver, local) {
				by[st.Name] = true
			}
		}
	}
	var out []*fsm.DRPlan
	for _, p := range plans {
		if p.Replica || (p.Fence != nil && !(p.Fence.Isolated && p.Fence.Lifted)) || !by[p.RecoverySite] {
			continue
		}
		if t := failedBack(p); !t.IsZero() && now.Sub(t) < settle {
			continue
		}
		out = append(out, p)
	}
	return out
}

// drFence records that p was failed over.
func (s *Server) drFence(p *fsm.DRPlan, f *fsm.DRFence, conflicts ...fsm.DRConflict) {
	if _, err := s.raftApply(&fsm.DRFenceRequest{Plan: p.ID, Fence: f, Conflicts: conflicts}); err != nil {
		s.logger.Warn("dr: fencing a plan failed", "plan", p.ID, "error", err)
		return
	}
	s.logger.Warn("dr: this site was failed over: keeping the plan's guests stopped until a failback", "plan", p.ID, "by", f.By, "run", f.Run)
}

// drSelfFence puts an isolated fence on every automatic plan of this
// site that selfFences names, and reports whether it fenced any.
func (s *Server) drSelfFence() bool {
	_, plans, err := s.State().DRPlans(nil)
	if err != nil {
		return false
	}
	fenced := false
	for _, p := range selfFences(s.cfg.Site.Name, s.Sites(), plans) {
		v, err := s.raftApply(&fsm.DRIsolationRequest{Plan: p.ID, Action: fsm.DRIsolationFence})
		if err != nil {
			s.logger.Warn("dr: fencing a plan of this cut-off site failed", "plan", p.ID, "error", err)
			continue
		}
		if np, ok := v.(*fsm.DRPlan); ok && np.Fence != nil && np.Fence.Isolated {
			fenced = true
			s.logger.Warn("dr: this site sees neither the plan's recovery site nor a quorum of the other sites, which may be failing it over: keeping the plan's guests stopped until the recovery site answers",
				"plan", p.ID, "recovery_site", p.RecoverySite)
		}
	}
	return fenced
}

// cutOff returns, in the pool view sites of a server of site local, the
// other sites of which it sees no alive server, and whether they are at
// least the quorum the others need to vote local down (a majority of
// the other sites, those that left excluded): whether the others may be
// failing local over.
func cutOff(local string, sites []site.SiteStatus) (unseen map[string]bool, isolated bool) {
	unseen = map[string]bool{}
	quorum := 0
	for _, st := range sites {
		switch {
		case st.Name == local:
			quorum = st.Quorum
		case st.State == site.SiteUnreachable || st.State == site.SiteDown:
			unseen[st.Name] = true
		}
	}
	return unseen, quorum > 0 && len(unseen) >= quorum
}

// selfFences returns the plans of site local to fence with an isolated
// fence in the pool view sites: automatic plans without a fence or a run
// in progress, whose recovery site is among the sites local sees no
// server of, when those are enough to vote local down (cutOff). A
// manual plan never fails over by itself, and a recovery site unknown
// to the pool cannot be failing local over.
func selfFences(local string, sites []site.SiteStatus, plans []*fsm.DRPlan) []*fsm.DRPlan {
	unseen, isolated := cutOff(local, sites)
	if !isolated {
		return nil
	}
	var out []*fsm.DRPlan
	for _, p := range plans {
		if !p.Replica && !p.Manual && p.Fence == nil && p.ActiveRun == "" && unseen[p.RecoverySite] {
			out = append(out, p)
		}
	}
	return out
}

// drEnforceFences keeps the guests of fenced plans stopped. A fence of
// a failover records a conflict for each guest it found running: it ran
// here while its copy ran at the recovery site. An isolated fence
// records the guests it stopped instead, and once lifted starts them
// again.
func (s *Server) drEnforceFences() error {
	if s.provider == nil {
		return nil
	}
	_, plans, err := s.State().DRPlans(nil)
	if err != nil {
		return err
	}
	for _, p := range plans {
		switch {
		case p.Replica || p.Fence == nil || p.ActiveRun != "":
			// A failback in progress starts the guests itself.
		case p.Fence.Lifted:
			s.drRestartGuests(p)
		case p.Fence.Isolated:
			s.drStopIsolated(p)
		default:
			s.drStopFenced(p)
		}
	}
	return nil
}

// drGuestsInOrder returns the guests of p in recovery order.
func drGuestsInOrder(p *fsm.DRPlan) []fsm.DRGuest {
	gs := slices.Clone(p.Guests)
	slices.SortStableFunc(gs, func(a, b fsm.DRGuest) int {
		return cmp.Or(cmp.Compare(a.Order, b.Order), cmp.Compare(a.VMID, b.VMID))
	})
	return gs
}

// drGuestRef returns where the guest vmid of this site runs, or false
// when the inventory does not hold it.
func (s *Server) drGuestRef(vmid int) (provider.GuestRef, string, bool) {
	_, ig, err := s.State().InventoryGuest(nil, vmid)
	if err != nil || ig == nil || ig.Gone {
		return provider.GuestRef{}, "", false
	}
	return provider.GuestRef{Node: ig.Node, VMID: ig.VMID, Kind: provider.GuestKind(ig.Kind)}, ig.Name, true
}

// drGuestRunning reports whether the guest at ref runs.
func (s *Server) drGuestRunning(ref provider.GuestRef) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), drCallTimeout)
	defer cancel()
	live, err := s.provider.Guest(ctx, ref)
	if err != nil {
		return false, err
	}
	return live.Status == "running", nil
}

// drPower stops (a hard stop) or starts the guest at ref and waits for
// the task.
func (s *Server) drPower(ref provider.GuestRef, start bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), drCallTimeout)
	defer cancel()
	var t provider.Task
	var err error
	if start {
		t, err = s.provider.StartGuest(ctx, ref)
	} else {
		t, err = s.provider.StopGuest(ctx, ref)
	}
	if err == nil {
		_, err = s.provider.WaitTask(ctx, t, nil)
	}
	return err
}

// drStopFenced stops the running guests of p, fenced for a failover,
// recording a conflict for each.
func (s *Server) drStopFenced(p *fsm.DRPlan) {
	var conflicts []fsm.DRConflict
	// A failback that failed for other guests brought these home: they
	// run here and no copy runs at the recovery site.
	home, err := s.drFailbackItems(p, "")
	if err != nil {
		s.logger.Warn("dr: reading the plan's failbacks failed", "plan", p.ID, "error", err)
		return
	}
	for _, g := range p.Guests {
		if it := home[g.VMID]; it != nil && (it.Step == fsm.DRStepStarting || it.Step == fsm.DRStepRunning) {
			continue
		}
		ref, name, ok := s.drGuestRef(g.VMID)
		if !ok {
			continue
		}
		running, err := s.drGuestRunning(ref)
		if err == nil && running {
			if err = s.drPower(ref, false); err == nil {
				s.logger.Warn("dr: stopped a fenced guest", "plan", p.ID, "vmid", g.VMID, "failed_over_to", p.Fence.By)
				conflicts = append(conflicts, fsm.DRConflict{ID: api.NewID(), Plan: p.ID, Kind: fsm.DRConflictGuestRan, Site: s.cfg.Site.Name,
					VMID: g.VMID, At: fsm.Timestamp(s.now().UnixNano()),
					Detail: fmt.Sprintf("guest %d (%s) ran at %s after site %s failed plan %s over; it was stopped. What it wrote since the backup %s restored from is not in %s's copy.",
						g.VMID, name, s.cfg.Site.Name, p.Fence.By, p.ID, p.Fence.By, p.Fence.By)})
			}
		}
		if err != nil {
			s.logger.Warn("dr: stopping a fenced guest failed", "plan", p.ID, "vmid", g.VMID, "error", err)
		}
	}
	if len(conflicts) == 0 {
		return
	}
	for i := range conflicts {
		conflicts[i].Version = conflicts[i].At
	}
	if _, err := s.raftApply(&fsm.DRFenceRequest{Plan: p.ID, Fence: p.Fence, Conflicts: conflicts}); err != nil {
		s.logger.Warn("dr: recording conflicts failed", "plan", p.ID, "error", err)
	}
	s.kickSync()
}

// drStopIsolated stops the running guests of p, fenced by this cut-off
// site itself, in reverse recovery order, without waiting for one stop
// before asking for the next. Each is recorded in the fence
// before it is stopped, so that the lift starts every guest the fence
// may have stopped (starting one that runs is a no-op).
func (s *Server) drStopIsolated(p *fsm.DRPlan) {
	gs := drGuestsInOrder(p)
	slices.Reverse(gs)
	var refs []provider.GuestRef
	for _, g := range gs {
		ref, _, ok := s.drGuestRef(g.VMID)
		if !ok {
			continue
		}
		running, err := s.drGuestRunning(ref)
		if err != nil {
			s.logger.Warn("dr: reading a guest of a fenced plan failed", "plan", p.ID, "vmid", g.VMID, "error", err)
			continue
		}
		if running {
			refs = append(refs, ref)
		}
	}
	if len(refs) == 0 {
		return
	}
	vmids := make([]int, len(refs))
	for i, r := range refs {
		vmids[i] = r.VMID
	}
	v, err := s.raftApply(&fsm.DRIsolationRequest{Plan: p.ID, Action: fsm.DRIsolationStopped, VMIDs: vmids})
	if err != nil {
		s.logger.Warn("dr: recording the guests a fence stops failed", "plan", p.ID, "error", err)
		return
	}
	if np, ok := v.(*fsm.DRPlan); !ok || !np.Fence.Keeps() || !np.Fence.Isolated {
		return // lifted or turned into a failover's fence meanwhile
	}
	// Every stop is asked for before any is waited for: the recovery
	// site holds its copies only for site.fence_grace.
	tasks := make([]provider.Task, len(refs))
	errs := make([]error, len(refs))
	for i, ref := range refs {
		ctx, cancel := context.WithTimeout(context.Background(), drCallTimeout)
		tasks[i], errs[i] = s.provider.StopGuest(ctx, ref)
		cancel()
	}
	for i, ref := range refs {
		if errs[i] == nil {
			ctx, cancel := context.WithTimeout(context.Background(), drCallTimeout)
			_, errs[i] = s.provider.WaitTask(ctx, tasks[i], nil)
			cancel()
		}
		if errs[i] != nil {
			s.logger.Warn("dr: stopping a guest of a fenced plan failed", "plan", p.ID, "vmid", ref.VMID, "error", errs[i])
			continue
		}
		s.logger.Warn("dr: stopped a guest: this site is cut off and its recovery site may be running its copy", "plan", p.ID, "vmid", ref.VMID,
			"recovery_site", p.RecoverySite)
	}
}

// drRestartGuests starts again, in recovery order, the guests a lifted
// isolated fence of p stopped, and ends the fence once all run and the
// recovery site is in sight. A guest no longer in the inventory counts
// as started.
func (s *Server) drRestartGuests(p *fsm.DRPlan) {
	var started []int
	for _, g := range drGuestsInOrder(p) {
		if !slices.Contains(p.Fence.Stopped, g.VMID) {
			continue
		}
		ref, _, ok := s.drGuestRef(g.VMID)
		if ok {
			running, err := s.drGuestRunning(ref)
			if err == nil && !running {
				err = s.drPower(ref, true)
			}
			if err != nil {
				s.logger.Warn("dr: starting a guest of a lifted fence again failed", "plan", p.ID, "vmid", g.VMID, "error", err)
				continue
			}
			s.logger.Info("dr: started a guest again: the fence of this cut-off site was lifted", "plan", p.ID, "vmid", g.VMID, "lifted_by", p.Fence.LiftedBy)
		}
		started = append(started, g.VMID)
	}
	// A guest removed from the plan meanwhile is not started again.
	for _, v := range p.Fence.Stopped {
		if !slices.ContainsFunc(p.Guests, func(g fsm.DRGuest) bool { return g.VMID == v }) {
			started = append(started, v)
		}
	}
	if len(started) > 0 {
		if _, err := s.raftApply(&fsm.DRIsolationRequest{Plan: p.ID, Action: fsm.DRIsolationRestarted, VMIDs: started}); err != nil {
			s.logger.Warn("dr: recording the guests started again failed", "plan", p.ID, "error", err)
			return
		}
	}
	if len(started) < len(p.Fence.Stopped) {
		return
	}
	if unseen, _ := cutOff(s.cfg.Site.Name, s.Sites()); unseen[p.RecoverySite] {
		return // lifted by an operator while still cut off: kept until in sight
	}
	if _, err := s.raftApply(&fsm.DRIsolationRequest{Plan: p.ID, Action: fsm.DRIsolationEnd}); err != nil {
		s.logger.Warn("dr: ending a lifted fence failed", "plan", p.ID, "error", err)
		return
	}
	s.logger.Info("dr: the fence of this cut-off site ended: every guest it stopped runs again", "plan", p.ID, "recovery_site", p.RecoverySite)
}

// DRFence returns the fence that keeps the guest vmid of this site
// stopped, or nil.
func (s *Server) DRFence(vmid int) *fsm.DRFence {
	_, plans, err := s.State().DRPlans(nil)
	if err != nil {
		return nil
	}
	for _, p := range plans {
		if p.Replica || !p.Fence.Keeps() {
			continue
		}
		if slices.ContainsFunc(p.Guests, func(g fsm.DRGuest) bool { return g.VMID == vmid }) {
			return p.Fence
		}
	}
	return nil
}

// drReplicaBody is the body of PUT /v1/dr/replicas/{source}.
type drReplicaBody struct {
	Plans []fsm.DRPlan `json:"plans"`
}

// drSyncReplicas sends every other site running servers the plans this
// site holds for it (none: its replicas of this site go), and fences the
// plans an answer says were failed over.
func (s *Server) drSyncReplicas(stop <-chan struct{}) {
	local := s.cfg.Site.Name
	_, plans, err := s.State().DRPlans(nil)
	if err != nil {
		return
	}
	bySite := map[string][]fsm.DRPlan{}
	for _, p := range plans {
		if !p.Replica {
			out := *p
			out.Status, out.SyncedAt = s.drGuestStatus(p), fsm.Timestamp(s.now().UnixNano())
			bySite[p.RecoverySite] = append(bySite[p.RecoverySite], out)
		}
	}
	var wg sync.WaitGroup
	for _, st := range s.Sites() {
		if st.Name == local || st.Role != site.RoleServer || (st.State != site.SiteUp && st.State != "degraded") {
			continue
		}
		select {
		case <-stop:
			return
		default:
		}
		wg.Go(func() {
			res, err := s.drSendReplicas(st.Name, bySite[st.Name])
			if err != nil {
				if len(bySite[st.Name]) > 0 {
					s.logger.Warn("dr: sending plans to their recovery site failed", "site", st.Name, "error", err)
				}
				return
			}
			for _, p := range bySite[st.Name] {
				f := res.Failovers[p.ID]
				if p.Fence != nil && p.Fence.Isolated && !p.Fence.Lifted && (f == nil || f.State == fsm.DRFailoverReleased) {
					s.drLift(&p)
					continue
				}
				// A released failover fences nothing: the recovery site
				// has stopped its copies for a failback, and a sync that
				// crosses the failback's end must not fence the plan again.
				if f == nil || f.State == fsm.DRFailoverReleased || (p.Fence != nil && p.Fence.Run == f.Run) {
					continue
				}
				now := s.now()
				s.drFence(&p, &fsm.DRFence{By: st.Name, Run: f.Run, Since: fsm.Timestamp(now.UnixNano())},
					isolationConflicts(s.cfg.Site.Name, &p, f, api.NewID, now)...)
			}
		})
	}
	wg.Wait()
}

// isolationConflicts returns, when the isolated fence of p (of site
// local) turns out to guard a failover f, a guest_ran conflict for each
// guest it stopped after f started (by the two sites' clocks): each ran
// here until the fence, while the recovery site was restoring its copy.
// A lifted fence records none: its guests run, and keeping them stopped
// records their conflicts.
func isolationConflicts(local string, p *fsm.DRPlan, f *fsm.DRFailover, newID func() string, now time.Time) []fsm.DRConflict {
	fence := p.Fence
	if fence == nil || !fence.Isolated || fence.Lifted || fence.Since <= f.StartedAt {
		return nil
	}
	late := fence.Since.Time().Sub(f.StartedAt.Time()).Round(time.Millisecond)
	var out []fsm.DRConflict
	for _, vmid := range fence.Stopped {
		out = append(out, fsm.DRConflict{ID: newID(), Plan: p.ID, Kind: fsm.DRConflictGuestRan, Site: local, VMID: vmid,
			At: fsm.Timestamp(now.UnixNano()), Version: fence.Since,
			Detail: fmt.Sprintf("guest %d ran at %s until the site, cut off from %s, fenced plan %s at %s: %s after site %s started failover %s (by each site's clock). What it wrote since the backup %s restored from is not in %s's copy.",
				vmid, local, fence.By, p.ID, fence.Since.Time().UTC().Format(time.RFC3339Nano), late, fence.By, f.Run, fence.By, fence.By)})
	}
	return out
}

// drLift lifts the isolated fence of p: its recovery site answered that
// it did not fail p over.
func (s *Server) drLift(p *fsm.DRPlan) {
	if _, err := s.raftApply(&fsm.DRIsolationRequest{Plan: p.ID, Action: fsm.DRIsolationLift, By: "sync"}); err != nil {
		s.logger.Warn("dr: lifting the fence of this site failed", "plan", p.ID, "error", err)
		return
	}
	s.logger.Warn("dr: the recovery site answers and did not fail the plan over: lifting the fence, starting the guests it stopped",
		"plan", p.ID, "recovery_site", p.RecoverySite, "stopped", p.Fence.Stopped)
	s.kickDR()
}

// drGuestStatus is what this site knows of a plan's guests: name, kind
// and the newest backup on the plan's backup storage that this site's
// backup policies made (a shared storage also holds other sites').
func (s *Server) drGuestStatus(p *fsm.DRPlan) []fsm.DRGuestStatus {
	st := s.State()
	_, backups, _ := st.Backups(nil)
	newest := map[int]*fsm.Backup{}
	for _, b := range backups {
		if b.Storage != p.BackupStorage || b.Run == "" {
			continue
		}
		if _, op, err := st.Operation(nil, b.Run); err != nil || op == nil {
			continue
		}
		if o := newest[b.VMID]; o == nil || b.Time > o.Time {
			newest[b.VMID] = b
		}
	}
	out := make([]fsm.DRGuestStatus, 0, len(p.Guests))
	for _, g := range p.Guests {
		gs := fsm.DRGuestStatus{VMID: g.VMID}
		_, ig, err := st.InventoryGuest(nil, g.VMID)
		switch {
		case err != nil || ig == nil || ig.Gone:
			gs.Error = fmt.Sprintf("guest %d is not in the inventory of site %s", g.VMID, p.SourceSite)
		default:
			gs.Name, gs.Kind, gs.Memory = ig.Name, ig.Kind, ig.MaxMem
		}
		if b := newest[g.VMID]; b != nil {
			gs.Backup, gs.BackupAt = b.VolID, b.Time
		} else if gs.Error == "" {
			gs.Error = fmt.Sprintf("guest %d has no backup on storage %s made by a backup policy of site %s", g.VMID, p.BackupStorage, p.SourceSite)
		}
		out = append(out, gs)
	}
	return out
}

// drSendReplicas sends plans to site name and returns its answer.
func (s *Server) drSendReplicas(name string, plans []fsm.DRPlan) (*fsm.DRSyncResult, error) {
	if plans == nil {
		plans = []fsm.DRPlan{}
	}
	var res fsm.DRSyncResult
	if err := s.drCall(name, http.MethodPut, "/v1/dr/replicas/"+s.cfg.Site.Name, drReplicaBody{Plans: plans}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// drCall sends a request to a server of site name, its leader first,
// with this server's certificate (role site there), and decodes the
// answer into out.
func (s *Server) drCall(name, method, path string, in, out any) error {
	addrs, err := s.siteAPI(name)
	if err != nil {
		return err
	}
	var body []byte
	if in != nil {
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), drCallTimeout)
	defer cancel()
	var lastErr error
	for _, a := range addrs {
		err := s.drDo(ctx, method, a+path, body, out)
		if err == nil {
			return nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return lastErr
}

func (s *Server) drDo(ctx context.Context, method, url string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.siteClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	return nil
}

// SyncDRReplicas implements api.DRBackend: it stores the plans source
// sent for this site.
func (s *Server) SyncDRReplicas(source string, plans []fsm.DRPlan) (*fsm.DRSyncResult, error) {
	if s.cfg.Site.Name == "" {
		return nil, errors.New("this server is in no site")
	}
	ids := make([]string, len(plans))
	for i := range ids {
		ids[i] = api.NewID()
	}
	v, err := s.raftApply(&fsm.DRReplicaSyncRequest{Source: source, LocalSite: s.cfg.Site.Name, Plans: plans, ConflictIDs: ids})
	if err != nil {
		return nil, err
	}
	return v.(*fsm.DRSyncResult), nil
}

// drRun executes a failover or drill: every item in recovery order.
// It fails, after doing all it can, when a guest failed.
func (o *opState) drRun() error {
	st := o.r.s.State()
	_, p, err := st.DRPlan(nil, o.op.Policy)
	if err != nil {
		return err
	}
	if p == nil {
		return fmt.Errorf("plan %s is gone", o.op.Policy)
	}
	_, items, err := st.DRItems(nil, o.op.ID)
	if err != nil {
		return err
	}
	step := fmt.Sprintf("%s of %d guests", o.op.Kind, len(items))
	if until, ok := o.drFenceGraceUntil(); ok {
		step += fmt.Sprintf("; copies start from %s UTC: until then site %s, if only cut off, stops the guests itself",
			until.UTC().Format(time.TimeOnly), p.SourceSite)
		o.r.s.logger.InfoContext(o.reqCtx, "dr: the failover holds its copies for the fence grace", "run", o.op.ID, "plan", p.ID,
			"source_site", p.SourceSite, "until", until.UTC())
	}
	_ = o.step(step)
	if o.op.Kind == fsm.OpDRDrill {
		if err := o.drCheckAddressing(p, items); err != nil {
			return err
		}
	}
	if o.op.Kind == fsm.OpDRFailback {
		if err := o.drAwaitRelease(p, items); err != nil {
			return err
		}
		if o.drEarlier, err = o.r.s.drFailbackItems(p, o.op.ID); err != nil {
			return err
		}
	}
	if err := o.drItems(p, items); err != nil {
		return err
	}
	_, done, err := st.DRItems(nil, o.op.ID)
	if err != nil {
		return err
	}
	var failed []string
	for _, it := range done {
		if it.Step == fsm.DRStepFailed {
			failed = append(failed, fmt.Sprintf("%d: %s", it.VMID, it.Error))
		}
	}
	return runFailed(len(done), failed)
}

// drParallel bounds the guests that a failover, drill or failback
// brings back (restores, configures, starts) at a time. A guest waiting
// for the guests of earlier recovery orders to start holds no place.
const drParallel = 4

// drItemTimeout bounds the work on one guest of a DR run: its restore
// or backup dominates, and a large guest's takes hours on slow storage.
// Past it the guest fails (a new leader resumes it from its step).
const drItemTimeout = 6 * time.Hour

// drAlloc places a run's guests one at a time. Proxmox's next free ID
// stays the same until a restore creates the guest, so taken holds the
// IDs given out (or recorded) so far; and a node's free memory shows a
// copy only once it runs and the inventory syncs, so reserved holds the
// memory of the copies placed on each node so far.
type drAlloc struct {
	mu       sync.Mutex
	taken    map[int]bool
	reserved map[string]uint64
}

// newDRAlloc returns the allocator of a run whose items are items, with
// the IDs and memory of those already placed taken.
func newDRAlloc(items []*fsm.DRItem) *drAlloc {
	a := &drAlloc{taken: map[int]bool{}, reserved: map[string]uint64{}}
	for _, it := range items {
		if it.TargetVMID != 0 {
			a.taken[it.TargetVMID] = true
		}
		if it.TargetNode != "" {
			a.reserved[it.TargetNode] += it.Memory
		}
	}
	return a
}

// drItems runs a run's items, which are in recovery order, recording
// each one that fails. A release backs its copies up one at a time:
// Proxmox runs one backup job per node at a time anyway, and backups
// waiting for that lock would spend their guests' drItemTimeout. The
// other runs take up to drParallel guests at a time, in recovery order,
// and each guest starts only once every guest of the earlier orders has
// started or failed (drStartGate), so later orders restore while earlier
// ones still restore. It returns an error only when the run cannot go
// on: its context ended, or a failure could not be recorded.
func (o *opState) drItems(p *fsm.DRPlan, items []*fsm.DRItem) error {
	if o.op.Kind == fsm.OpDRRelease {
		for _, it := range items {
			if fsm.DRStepFinal(o.op.Kind, it.Step, it.Keep) {
				continue
			}
			if err := o.drRunItem(p, it, nil, nil); err != nil {
				return err
			}
		}
		return nil
	}
	alloc, gate := newDRAlloc(items), newDRStartGate(items)
	sem := make(chan struct{}, drParallel)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fatal error
	)
	fail := func(err error) {
		mu.Lock()
		fatal = cmp.Or(fatal, err)
		mu.Unlock()
	}
	for i, it := range items {
		if fsm.DRStepFinal(o.op.Kind, it.Step, it.Keep) {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-o.r.ctx.Done():
		}
		if err := o.r.ctx.Err(); err != nil {
			fail(err)
			break
		}
		wg.Go(func() {
			var once sync.Once
			release := func() { once.Do(func() { <-sem }) }
			defer release()
			defer gate.done(i)
			beforeStart := func(ctx context.Context) error {
				release()
				return gate.wait(ctx, it.Order)
			}
			if err := o.drRunItem(p, it, alloc, beforeStart); err != nil {
				fail(err)
			}
		})
	}
	wg.Wait()
	return fatal
}

// drRunItem brings one item as far as it goes and records its failure.
// A failover, drill or failback calls beforeStart before it starts the
// item's guest.
func (o *opState) drRunItem(p *fsm.DRPlan, it *fsm.DRItem, alloc *drAlloc, beforeStart func(context.Context) error) error {
	if o.r.ctx.Err() != nil {
		return o.r.ctx.Err()
	}
	var err error
	switch o.op.Kind {
	case fsm.OpDRFailback:
		err = o.drFailbackItem(p, it, beforeStart)
	case fsm.OpDRRelease:
		err = o.drReleaseItem(p, it)
	default:
		err = o.drItem(p, it, it.Keep, alloc, beforeStart)
	}
	if err == nil {
		return nil
	}
	if o.r.ctx.Err() != nil {
		return o.r.ctx.Err()
	}
	o.r.s.logger.WarnContext(o.reqCtx, "dr: guest failed", "run", o.op.ID, "vmid", it.VMID, "step", it.Step, "error", err)
	return o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepFailed, Error: err.Error()})
}

// drUpdate records an item's step, keeping it current in it.
func (o *opState) drUpdate(it *fsm.DRItem, u *fsm.DRItemUpdateRequest) error {
	u.Run, u.Order, u.VMID = o.op.ID, it.Order, it.VMID
	v, err := o.r.s.raftApply(u)
	if err != nil {
		return err
	}
	*it = *v.(*fsm.DRItem)
	return nil
}

// drItem brings one guest back at this site, from the step it is at,
// calling beforeStart before it starts the copy.
func (o *opState) drItem(p *fsm.DRPlan, it *fsm.DRItem, keep bool, alloc *drAlloc, beforeStart func(context.Context) error) error {
	if err := o.drPrepare(p, it, alloc); err != nil {
		return err
	}
	if it.Step == fsm.DRStepConfigured || it.Step == fsm.DRStepStarting {
		if err := o.drStartWhenDue(it, drItemRef(it), beforeStart); err != nil {
			return err
		}
		o.r.s.logger.InfoContext(o.reqCtx, "dr: guest running", "run", o.op.ID, "plan", p.ID, "vmid", it.VMID, "target_vmid", it.TargetVMID, "node", it.TargetNode)
	}
	if it.Step == fsm.DRStepRunning && o.op.Kind == fsm.OpDRDrill && !keep {
		ctx, cancel := context.WithTimeout(o.reqCtx, drItemTimeout)
		defer cancel()
		if err := o.drDestroy(ctx, drItemRef(it)); err != nil {
			return err
		}
		if err := o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepCleaned}); err != nil {
			return err
		}
	}
	return nil
}

// drItemRef returns the guest a failover's or drill's item restores.
func drItemRef(it *fsm.DRItem) provider.GuestRef {
	return provider.GuestRef{Node: it.TargetNode, VMID: it.TargetVMID, Kind: provider.GuestKind(cmp.Or(it.Kind, string(provider.KindVM)))}
}

// drStartWhenDue waits at beforeStart and for a failover's fence grace,
// and then starts the item's guest ref. Waiting is not work on the
// guest: the start gets a drItemTimeout of its own.
func (o *opState) drStartWhenDue(it *fsm.DRItem, ref provider.GuestRef, beforeStart func(context.Context) error) error {
	if err := beforeStart(o.reqCtx); err != nil {
		return err
	}
	if err := o.drAwaitFenceGrace(o.reqCtx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(o.reqCtx, drItemTimeout)
	defer cancel()
	return o.drStartItem(ctx, it, ref)
}

// drPrepare brings a failover's or drill's item from the step it is at
// up to configured: its copy placed, restored, addressed and configured.
func (o *opState) drPrepare(p *fsm.DRPlan, it *fsm.DRItem, alloc *drAlloc) error {
	ctx, cancel := context.WithTimeout(o.reqCtx, drItemTimeout)
	defer cancel()
	pr := o.r.p
	if it.Backup == "" {
		return fmt.Errorf("no backup to restore guest %d from (the source site sent none: a backup policy of site %s must back it up to storage %s)",
			it.VMID, p.SourceSite, p.BackupStorage)
	}
	if it.Step == fsm.DRStepPending {
		if err := o.drAllocate(ctx, p, it, alloc); err != nil {
			return err
		}
	}
	ref := drItemRef(it)
	if it.Step == fsm.DRStepAllocated && it.Task != "" {
		if err := o.drOwnCopy(ctx, it, ref); err != nil {
			return err
		}
	}
	if it.Step == fsm.DRStepAllocated {
		if err := o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepRestoring}); err != nil {
			return err
		}
		t, err := pr.RestoreBackup(ctx, ref, it.Backup, p.TargetStorage)
		if err != nil {
			return err
		}
		if err := o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepRestoring, Task: t.ID, TaskNode: t.Node}); err != nil {
			return err
		}
	}
	if it.Step == fsm.DRStepRestoring {
		if err := o.drAwaitRestore(ctx, p, it, ref); err != nil {
			return err
		}
		if err := o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepRestored}); err != nil {
			return err
		}
	}
	drill := o.op.Kind == fsm.OpDRDrill
	if it.Step == fsm.DRStepRestored && !drill {
		addr, err := o.drAddress(p, it)
		if err != nil {
			return err
		}
		if err := o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepAddressed, Address: addr}); err != nil {
			return err
		}
	}
	if it.Step == fsm.DRStepRestored || it.Step == fsm.DRStepAddressed {
		if err := o.drConfigure(ctx, p, it, ref, drill); err != nil {
			return err
		}
		if err := o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepConfigured}); err != nil {
			return err
		}
	}
	return nil
}

// drCopyRan reports whether a copy of a release item's guest ran at this
// site, so that what it wrote goes back to the source: its failover item
// got as far as starting it, or it failed after a restore of its own (past
// the restore, or one whose task succeeded and left the guest there under
// its name) and that copy runs now. A copy that never started holds only
// the backup it came from, older than the original at the source; and a
// guest whose failover failed before its restore has no copy here, so the
// guest at its target, if any, is not the release's to stop.
func (o *opState) drCopyRan(ctx context.Context, p *fsm.DRPlan, it *fsm.DRItem, ref provider.GuestRef) (bool, error) {
	if it.TargetVMID == 0 || p.Failover == nil {
		return false, nil
	}
	_, items, err := o.r.s.State().DRItems(nil, p.Failover.Run)
	if err != nil {
		return false, err
	}
	i := slices.IndexFunc(items, func(f *fsm.DRItem) bool { return f.VMID == it.VMID })
	if i < 0 {
		return false, nil
	}
	f := items[i]
	switch f.Step {
	case fsm.DRStepStarting, fsm.DRStepRunning:
		return true, nil
	case fsm.DRStepFailed:
	default:
		return false, nil
	}
	if !f.RestoredCopy() {
		if f.Task == "" {
			return false, nil
		}
		if _, err := o.r.p.WaitTask(ctx, provider.Task{ID: f.Task, Node: f.TaskNode}, nil); err != nil {
			return false, nil
		}
	}
	g, err := o.r.p.Guest(ctx, ref)
	switch {
	case errors.Is(err, provider.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return (f.Name == "" || g.Name == f.Name) && g.Status == "running", nil
}

// drOwnCopy decides, for an item of a failover asked again after it
// failed (allocated, with the task of the restore its first attempt
// started), whether the guest at its target is its copy: only when that
// restore succeeded and the guest is there under the guest's name. Then
// the item moves on to restored; otherwise it stays allocated, and the
// copy is restored again, which Proxmox refuses while any guest holds
// the target.
func (o *opState) drOwnCopy(ctx context.Context, it *fsm.DRItem, ref provider.GuestRef) error {
	pr := o.r.p
	if _, err := pr.WaitTask(ctx, provider.Task{ID: it.Task, Node: it.TaskNode}, nil); err != nil {
		o.r.s.logger.InfoContext(o.reqCtx, "dr: the earlier restore did not succeed; restoring again", "run", o.op.ID, "vmid", it.VMID, "task", it.Task, "error", err)
		return nil
	}
	g, err := pr.Guest(ctx, ref)
	switch {
	case errors.Is(err, provider.ErrNotFound):
		return nil
	case err != nil:
		return err
	case it.Name != "" && g.Name != it.Name:
		return fmt.Errorf("guest %d at %s is %q, not the copy of %s its restore made: remove that guest or move it to another VMID", it.TargetVMID, it.TargetNode, g.Name, it.Name)
	}
	if err := o.awaitUnlocked(ctx, ref, "create"); err != nil {
		return err
	}
	return o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepRestored})
}

// drFenceGraceUntil returns when a failover's copies may start, and
// whether that is still ahead: site.fence_grace after the failover
// started. A source site that is cut off rather than down sees that a
// few seconds after the others see it down, and stops the plan's guests
// itself (drSelfFence); copies that started before would run at both
// sites.
func (o *opState) drFenceGraceUntil() (time.Time, bool) {
	grace := o.r.s.cfg.Site.FenceGrace.Duration()
	if o.op.Kind != fsm.OpDRFailover || grace <= 0 {
		return time.Time{}, false
	}
	until := o.op.CreatedAt.Time().Add(grace)
	return until, o.r.s.now().Before(until)
}

// drAwaitFenceGrace returns once a failover's copies may start (see
// drFenceGraceUntil), or when ctx ends.
func (o *opState) drAwaitFenceGrace(ctx context.Context) error {
	until, ok := o.drFenceGraceUntil()
	if !ok {
		return nil
	}
	t := time.NewTimer(until.Sub(o.r.s.now()))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drAllocate gives a pending item its target VMID (the plan's, or the
// next free one not given to another guest of the run) and node, and
// records them.
func (o *opState) drAllocate(ctx context.Context, p *fsm.DRPlan, it *fsm.DRItem, alloc *drAlloc) error {
	alloc.mu.Lock()
	defer alloc.mu.Unlock()
	target := it.TargetVMID
	if target == 0 {
		id, err := o.r.p.NextID(ctx)
		if err != nil {
			return err
		}
		for alloc.taken[id] {
			id++
		}
		target = id
	}
	node := p.TargetNode
	if node == "" {
		_, nodes, err := o.r.s.State().InventoryNodes(nil, false)
		if err != nil {
			return err
		}
		if node = drPickNode(nodes, alloc.reserved); node == "" {
			return errors.New("no online node at this site to recover to")
		}
	}
	alloc.taken[target] = true
	alloc.reserved[node] += it.Memory
	return o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepAllocated, TargetVMID: target, TargetNode: node})
}

// drAwaitRestore waits for the item's restore. With its task recorded
// the task is followed; without (the leader changed between asking and
// recording), the guest at the target ID is the restore's if it carries
// the guest's name: it is waited out, and restored again if absent.
func (o *opState) drAwaitRestore(ctx context.Context, p *fsm.DRPlan, it *fsm.DRItem, ref provider.GuestRef) error {
	pr := o.r.p
	if it.Task != "" {
		_, err := pr.WaitTask(ctx, provider.Task{ID: it.Task, Node: it.TaskNode}, nil)
		return err
	}
	g, err := pr.Guest(ctx, ref)
	switch {
	case errors.Is(err, provider.ErrNotFound):
		t, err := pr.RestoreBackup(ctx, ref, it.Backup, p.TargetStorage)
		if err != nil {
			return err
		}
		if err := o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepRestoring, Task: t.ID, TaskNode: t.Node}); err != nil {
			return err
		}
		_, err = pr.WaitTask(ctx, t, nil)
		return err
	case err != nil:
		return err
	case it.Name != "" && g.Name != it.Name && g.Lock == "":
		return fmt.Errorf("guest %d at %s is %q, not a restore of %s: choose another target_vmid", it.TargetVMID, it.TargetNode, g.Name, it.Name)
	}
	return o.awaitUnlocked(ctx, ref, "create")
}

// drPickNode returns the online node with the most memory free once the
// copies already placed on it (reserved) run, or "" when none is online.
func drPickNode(nodes []*fsm.InvNode, reserved map[string]uint64) string {
	best, free := "", int64(math.MinInt64)
	for _, n := range nodes {
		if n.Gone || n.Status != "online" {
			continue
		}
		if f := int64(n.MaxMem) - int64(n.Mem) - int64(reserved[n.Name]); f > free {
			best, free = n.Name, f
		}
	}
	return best
}

// drAddress allocates the guest's address at this site, under its DNS
// name, from the prefix its network maps to; keyed by the run and guest,
// so a resumed item gets the same address.
// drPrefix returns the prefix of the plan's network mapping that the
// guests' addresses come from, or "".
func drPrefix(p *fsm.DRPlan) string {
	for _, n := range p.Networks {
		if n.Prefix != "" {
			return n.Prefix
		}
	}
	return ""
}

// drCheckAddressing has a drill check, before it restores anything, what
// it does not do but a failover would: give each guest with a dns_name an
// address from the plan's prefix, which must be an active prefix of this
// site with as many free addresses. A drill that passed with a mapping no
// failover could use would hide it until the disaster.
func (o *opState) drCheckAddressing(p *fsm.DRPlan, items []*fsm.DRItem) error {
	prefix := drPrefix(p)
	var named []string
	for _, it := range items {
		if it.DNSName != "" {
			named = append(named, fmt.Sprintf("%d (%s)", it.VMID, it.DNSName))
		}
	}
	if prefix == "" || len(named) == 0 {
		return nil
	}
	guests := strings.Join(named, ", ")
	_, pv, err := o.r.s.State().Prefix(nil, prefix)
	switch {
	case err != nil:
		return err
	case pv == nil:
		return fmt.Errorf("prefix %q of the plan's network mapping is not a prefix of this site: a failover would give guests %s no address; put the plan again at site %s with a prefix of this site",
			prefix, guests, p.SourceSite)
	case pv.Status != fsm.PrefixActive:
		return fmt.Errorf("prefix %s (%s) of the plan's network mapping is a %s, which hands out no addresses: a failover would give guests %s none; map an active prefix",
			pv.Prefix.Prefix, prefix, pv.Status, guests)
	case pv.Utilization != nil:
		size, okSize := new(big.Int).SetString(pv.Utilization.Size.String(), 10)
		used, okUsed := new(big.Int).SetString(pv.Utilization.Used.String(), 10)
		if okSize && okUsed {
			if free := size.Sub(size, used); free.Cmp(big.NewInt(int64(len(named)))) < 0 {
				return fmt.Errorf("prefix %s (%s) of the plan's network mapping has %s free addresses, and a failover would need %d, for guests %s",
					pv.Prefix.Prefix, prefix, free, len(named), guests)
			}
		}
	}
	return nil
}

func (o *opState) drAddress(p *fsm.DRPlan, it *fsm.DRItem) (string, error) {
	if it.DNSName == "" {
		return "", nil
	}
	prefix := drPrefix(p)
	req := &fsm.AddressAllocateRequest{
		PrefixID: prefix, Count: 1, IDs: []string{api.NewID()}, Status: fsm.AddressActive, DNSName: it.DNSName,
		Owner: drOwner(p.ID, it.VMID), Description: fmt.Sprintf("guest %d of site %s, failed over by plan %s", it.VMID, p.SourceSite, p.ID),
		NameRules: true, ReverseRule: true,
	}
	list, err := o.r.s.applyKeyed(req, fmt.Sprintf("dr:%s:%d", o.op.ID, it.VMID))
	if err != nil {
		return "", err
	}
	if len(list.Addresses) == 0 {
		return "", errors.New("no address allocated")
	}
	return list.Addresses[0].Address, nil
}

// drConfigure maps the restored guest's NICs to this site's networks and
// gives the first NIC on a mapped prefix its address; a drill's NICs are
// disconnected instead.
func (o *opState) drConfigure(ctx context.Context, p *fsm.DRPlan, it *fsm.DRItem, ref provider.GuestRef, drill bool) error {
	conf, err := o.r.p.GuestConfig(ctx, ref)
	if err != nil {
		return err
	}
	last := -1 // the highest netN
	for k := range networkConfig(conf) {
		if n, ok := strings.CutPrefix(k, "net"); ok {
			i, _ := strconv.Atoi(n)
			last = max(last, i)
		}
	}
	var nics []provider.NIC
	addressed := false
	for i := 0; i <= last; i++ {
		v, ok := conf["net"+strconv.Itoa(i)]
		if !ok {
			nics = append(nics, provider.NIC{None: true}) // a gap in the numbering
			continue
		}
		bridge := nicBridge(v)
		// A NIC the plan does not map stays as it is: on its bridge and
		// VLAN, with its addresses.
		nic := provider.NIC{Bridge: bridge, LinkDown: drill, VLAN: nicTag(v), KeepIP: true}
		for _, n := range p.Networks {
			if n.Source != bridge {
				continue
			}
			nic.Bridge, nic.VLAN, nic.KeepIP = n.Target, 0, false
			if !drill && !addressed && it.Address != "" && n.Prefix != "" {
				cidr, gw, err := o.ipconfig(fsm.OpAddress{PrefixID: n.Prefix, Address: it.Address})
				if err != nil {
					return err
				}
				nic.IP, nic.Gateway, addressed = cidr, gw, true
			}
		}
		nics = append(nics, nic)
	}
	if len(nics) == 0 {
		return nil
	}
	t, err := o.r.p.ConfigureGuest(ctx, ref, provider.GuestSpec{NICs: nics})
	if err != nil {
		return err
	}
	if t.ID == "" {
		return nil
	}
	_, err = o.r.p.WaitTask(ctx, t, nil)
	return err
}

// nicTag returns the VLAN tag of a netN value, 0 for none.
func nicTag(v string) int {
	for item := range strings.SplitSeq(v, ",") {
		if t, ok := strings.CutPrefix(item, "tag="); ok {
			n, _ := strconv.Atoi(t)
			return n
		}
	}
	return 0
}

// nicBridge returns the bridge of a netN value.
func nicBridge(v string) string {
	for item := range strings.SplitSeq(v, ",") {
		if b, ok := strings.CutPrefix(item, "bridge="); ok {
			return b
		}
	}
	return ""
}

// drDestroy stops and removes a drill's copy.
func (o *opState) drDestroy(ctx context.Context, ref provider.GuestRef) error {
	pr := o.r.p
	g, err := pr.Guest(ctx, ref)
	if errors.Is(err, provider.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if g.Status == "running" {
		t, err := pr.StopGuest(ctx, ref)
		if err != nil {
			return err
		}
		if _, err := pr.WaitTask(ctx, t, nil); err != nil {
			return err
		}
	}
	t, err := pr.DeleteGuest(ctx, ref)
	if err != nil {
		return err
	}
	_, err = pr.WaitTask(ctx, t, nil)
	return err
}

// drAwaitRelease asks the recovery site to release the plan's copies
// (stop them, back them up, release their addresses) and waits for it,
// recording on each item the backup it comes back from.
func (o *opState) drAwaitRelease(p *fsm.DRPlan, items []*fsm.DRItem) error {
	if !slices.ContainsFunc(items, func(it *fsm.DRItem) bool { return it.Step == fsm.DRStepPending }) {
		return nil
	}
	s := o.r.s
	var rel fsm.Operation
	if err := s.drCall(p.RecoverySite, http.MethodPost, "/v1/dr/plans/"+p.ID+"/release", struct{}{}, &rel); err != nil {
		return fmt.Errorf("asking site %s to release plan %s: %w", p.RecoverySite, p.ID, err)
	}
	_ = o.step(fmt.Sprintf("waiting for site %s to stop and back up its copies (run %s)", p.RecoverySite, rel.ID))
	var run api.DRRun
	for {
		err := s.drCall(p.RecoverySite, http.MethodGet, "/v1/dr/runs/"+rel.ID, nil, &run)
		if err == nil && run.Operation != nil && !run.Operation.Active() {
			break
		}
		select {
		case <-o.r.ctx.Done():
			return o.r.ctx.Err()
		case <-time.After(time.Second):
		}
	}
	byVMID := map[int]*fsm.DRItem{}
	for _, it := range run.Items {
		byVMID[it.VMID] = it
	}
	for _, it := range items {
		if it.Step != fsm.DRStepPending {
			continue
		}
		r := byVMID[it.VMID]
		u := &fsm.DRItemUpdateRequest{Step: fsm.DRStepFailed, Error: fmt.Sprintf("site %s did not release guest %d", p.RecoverySite, it.VMID)}
		switch {
		case r == nil:
		case r.Step == fsm.DRStepBackedUp && r.Backup != "":
			u = &fsm.DRItemUpdateRequest{Step: fsm.DRStepReleased, Backup: r.Backup}
		case r.Step == fsm.DRStepBackedUp:
			// No copy of it ran there: the guest here is as it was, and
			// only starts again.
			u = &fsm.DRItemUpdateRequest{Step: fsm.DRStepRestored}
		case r.Error != "":
			u.Error = fmt.Sprintf("site %s could not release guest %d (its copy %d): %s", p.RecoverySite, it.VMID, r.TargetVMID, r.Error)
		}
		if err := o.drUpdate(it, u); err != nil {
			return err
		}
	}
	return nil
}

// drFailbackItem restores a released guest over its original here and
// starts it, calling beforeStart first.
func (o *opState) drFailbackItem(p *fsm.DRPlan, it *fsm.DRItem, beforeStart func(context.Context) error) error {
	ref, err := o.drFailbackRestore(it)
	if err != nil {
		return err
	}
	if it.Step != fsm.DRStepRestored && it.Step != fsm.DRStepStarting {
		return nil
	}
	return o.drStartWhenDue(it, ref, beforeStart)
}

// drFailbackRestore restores a released guest over its original here,
// from the step it is at, and returns the guest. Restoring over is
// repeatable, so a resumed item restores again when its task is unknown.
func (o *opState) drFailbackRestore(it *fsm.DRItem) (provider.GuestRef, error) {
	ctx, cancel := context.WithTimeout(o.reqCtx, drItemTimeout)
	defer cancel()
	pr := o.r.p
	_, g, err := o.r.s.State().InventoryGuest(nil, it.VMID)
	if err != nil {
		return provider.GuestRef{}, err
	}
	if g == nil || g.Gone {
		return provider.GuestRef{}, fmt.Errorf("guest %d is no longer at this site: restore %s by hand (moxxiectl backup restore)", it.VMID, it.Backup)
	}
	ref := provider.GuestRef{Node: g.Node, VMID: g.VMID, Kind: provider.GuestKind(g.Kind)}
	if prev := o.drEarlier[it.VMID]; cameHome(it, prev) {
		// An earlier failback of this fence brought it home already, its
		// network put back: it may run here and have changed since.
		if err := o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepRestored, Task: prev.Task, TaskNode: prev.TaskNode}); err != nil {
			return ref, err
		}
		return ref, nil
	}
	if it.Step == fsm.DRStepReleased || (it.Step == fsm.DRStepRestoring && it.Task == "") {
		if live, err := pr.Guest(ctx, ref); err == nil && live.Status == "running" {
			return ref, fmt.Errorf("guest %d runs here: it was fenced and must be stopped before its copy comes back", it.VMID)
		}
		storage := ""
		if disks, err := pr.Disks(ctx, ref); err == nil {
			for _, d := range disks {
				if !d.Unused() && d.Storage != "" {
					storage = d.Storage
					break
				}
			}
		}
		// The copy's backup carries the network settings the recovery
		// site gave it; the original's are kept to be put back. An
		// earlier failback of this fence that got as far as its restore
		// recorded them before the guest here took the copy's.
		prev := o.drEarlier[it.VMID]
		var network map[string]string
		switch {
		case it.Network != nil:
		case prev != nil && prev.Network != nil:
			network = prev.Network
		default:
			conf, err := pr.GuestConfig(ctx, ref)
			if err != nil {
				return ref, err
			}
			network = networkConfig(conf)
		}
		// Nor is a restore of the same backup that an earlier failback
		// completed run again: the guest may have run here since.
		if done, err := o.drRestoredBy(ctx, prev, it.Backup); err != nil {
			return ref, err
		} else if done {
			if err := o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepRestoring, Network: network, Task: prev.Task, TaskNode: prev.TaskNode}); err != nil {
				return ref, err
			}
		} else {
			if err := o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepRestoring, Network: network}); err != nil {
				return ref, err
			}
			t, err := pr.RestoreBackupOver(ctx, ref, it.Backup, storage)
			if err != nil {
				return ref, err
			}
			if err := o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepRestoring, Task: t.ID, TaskNode: t.Node}); err != nil {
				return ref, err
			}
		}
	}
	if it.Step == fsm.DRStepRestoring {
		if _, err := pr.WaitTask(ctx, provider.Task{ID: it.Task, Node: it.TaskNode}, nil); err != nil {
			return ref, err
		}
		if err := o.drPutNetwork(ctx, ref, it.Network); err != nil {
			return ref, fmt.Errorf("putting back the network settings guest %d had before its failover: %w", it.VMID, err)
		}
		if err := o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepRestored}); err != nil {
			return ref, err
		}
	}
	return ref, nil
}

// cameHome reports whether the released failback item it was brought
// home by prev, the same guest's item of an earlier failback of the
// fence: restored from the same backup, its network put back.
func cameHome(it, prev *fsm.DRItem) bool {
	if it.Step != fsm.DRStepReleased || prev == nil || prev.Backup != it.Backup {
		return false
	}
	switch prev.Step {
	case fsm.DRStepRestored, fsm.DRStepStarting, fsm.DRStepRunning:
		return true
	}
	return false
}

// drRestoredBy reports whether the earlier failback item prev restored
// backup over its guest: it got past its restore, or failed after a
// restore task of that backup that succeeded or still runs.
func (o *opState) drRestoredBy(ctx context.Context, prev *fsm.DRItem, backup string) (bool, error) {
	if prev == nil || prev.Backup != backup || prev.Task == "" {
		return false, nil
	}
	switch prev.Step {
	case fsm.DRStepRestored, fsm.DRStepStarting, fsm.DRStepRunning:
		return true, nil
	case fsm.DRStepFailed:
		st, err := o.r.p.TaskStatus(ctx, provider.Task{ID: prev.Task, Node: prev.TaskNode})
		if errors.Is(err, provider.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		// One still running is waited for, not run twice.
		return st.Running || st.OK, nil
	}
	return false, nil
}

// drFailbackItems returns, for each guest of plan p, what the failback
// runs of p's fence (those created since the fence began) other than run
// know of it: its item of the latest of them, with the network recorded
// and the restore (task, backup and step) of the latest that has one
// where that item has none.
func (s *Server) drFailbackItems(p *fsm.DRPlan, run string) (map[int]*fsm.DRItem, error) {
	out := map[int]*fsm.DRItem{}
	if p.Fence == nil {
		return out, nil
	}
	st := s.State()
	_, ops, err := st.Operations(nil, false)
	if err != nil {
		return nil, err
	}
	for _, op := range ops { // oldest first
		if op.Kind != fsm.OpDRFailback || op.Policy != p.ID || op.ID == run || op.CreatedAt < p.Fence.Since {
			continue
		}
		_, items, err := st.DRItems(nil, op.ID)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if it.Step == fsm.DRStepPending {
				continue
			}
			merged := *it
			if was := out[it.VMID]; was != nil {
				if merged.Network == nil {
					merged.Network = was.Network
				}
				if merged.Task == "" {
					merged.Task, merged.TaskNode, merged.Backup, merged.Step = was.Task, was.TaskNode, was.Backup, was.Step
				}
			}
			out[it.VMID] = &merged
		}
	}
	return out, nil
}

// drPutNetwork gives a guest the network configuration network (netN and
// ipconfigN keys), removing the NICs and addresses it has beyond it. An
// empty network (none recorded) changes nothing.
func (o *opState) drPutNetwork(ctx context.Context, ref provider.GuestRef, network map[string]string) error {
	if len(network) == 0 {
		return nil
	}
	conf, err := o.r.p.GuestConfig(ctx, ref)
	if err != nil {
		return err
	}
	var del []string
	for k := range networkConfig(conf) {
		if _, ok := network[k]; !ok {
			del = append(del, k)
		}
	}
	t, err := o.r.p.SetGuestConfig(ctx, ref, network, del)
	if err != nil || t.ID == "" {
		return err
	}
	_, err = o.r.p.WaitTask(ctx, t, nil)
	return err
}

// networkConfig returns the network settings of a guest's configuration:
// its netN and ipconfigN keys.
func networkConfig(conf map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range conf {
		if fsm.IsNetworkConfigKey(k) {
			out[k] = v
		}
	}
	return out
}

// drStartItem records that the item's guest is starting, starts it
// unless it runs, and records it running.
func (o *opState) drStartItem(ctx context.Context, it *fsm.DRItem, ref provider.GuestRef) error {
	if it.Step != fsm.DRStepStarting {
		if err := o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepStarting}); err != nil {
			return err
		}
	}
	if err := o.drStart(ctx, ref); err != nil {
		return err
	}
	return o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepRunning})
}

// drStart starts a guest unless it runs.
func (o *opState) drStart(ctx context.Context, ref provider.GuestRef) error {
	g, err := o.r.p.Guest(ctx, ref)
	if err != nil {
		return err
	}
	if g.Status == "running" {
		return nil
	}
	t, err := o.r.p.StartGuest(ctx, ref)
	if err != nil {
		return err
	}
	_, err = o.r.p.WaitTask(ctx, t, nil)
	return err
}

// drReleaseNotes marks the backup a release makes of a copy.
func drReleaseNotes(plan, run string) string { return fmt.Sprintf("moxxie-dr=%s run=%s", plan, run) }

// drReleaseItem stops a copy at this (the recovery) site, backs it up to
// the plan's backup storage for the source site to restore, and
// releases its address. A resumed item finds the backup it made by its
// notes.
func (o *opState) drReleaseItem(p *fsm.DRPlan, it *fsm.DRItem) error {
	ctx, cancel := context.WithTimeout(o.reqCtx, drItemTimeout)
	defer cancel()
	pr := o.r.p
	kind := provider.GuestKind(cmp.Or(it.Kind, string(provider.KindVM)))
	ref := provider.GuestRef{Node: it.TargetNode, VMID: it.TargetVMID, Kind: kind}
	if it.Step == fsm.DRStepPending {
		ran, err := o.drCopyRan(ctx, p, it, ref)
		if err != nil {
			return err
		}
		if !ran {
			// Nothing of the guest ran here: it comes back as it is at
			// its source site. A copy that never started stays, stopped,
			// and its address goes.
			o.r.s.logger.InfoContext(o.reqCtx, "dr: no copy of the guest ran here; nothing to release", "run", o.op.ID, "plan", p.ID, "vmid", it.VMID, "target_vmid", it.TargetVMID)
			if err := o.drReleaseAddress(p, it); err != nil {
				return err
			}
			return o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepBackedUp})
		}
		g, err := pr.Guest(ctx, ref)
		if err != nil {
			return err
		}
		if g.Status == "running" {
			t, err := pr.StopGuest(ctx, ref)
			if err != nil {
				return err
			}
			if _, err := pr.WaitTask(ctx, t, nil); err != nil {
				return err
			}
		}
		if err := o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepStopped}); err != nil {
			return err
		}
	}
	notes := drReleaseNotes(p.ID, o.op.ID)
	find := func() (string, error) {
		list, err := pr.StorageContent(ctx, ref.Node, p.BackupStorage, "backup")
		if err != nil {
			return "", err
		}
		var best provider.Content
		for _, c := range list {
			if c.VMID == ref.VMID && c.Notes == notes && c.Created.After(best.Created) {
				best = c
			}
		}
		return best.VolID, nil
	}
	if it.Step == fsm.DRStepStopped || (it.Step == fsm.DRStepBackingUp && it.Task == "") {
		volid, err := find()
		if err != nil {
			return err
		}
		if volid == "" {
			if err := o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepBackingUp}); err != nil {
				return err
			}
			t, err := pr.Backup(ctx, ref, provider.BackupSpec{Storage: p.BackupStorage, Mode: "stop", Compress: "zstd", Notes: notes})
			if err != nil {
				return err
			}
			if err := o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepBackingUp, Task: t.ID, TaskNode: t.Node}); err != nil {
				return err
			}
		} else if err := o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepBackingUp}); err != nil {
			return err
		}
	}
	if it.Task != "" {
		if _, err := pr.WaitTask(ctx, provider.Task{ID: it.Task, Node: it.TaskNode}, nil); err != nil {
			return err
		}
	}
	volid, err := find()
	if err != nil {
		return err
	}
	if volid == "" {
		return fmt.Errorf("the backup of copy %d is not on storage %s", it.TargetVMID, p.BackupStorage)
	}
	if err := o.drReleaseAddress(p, it); err != nil {
		return err
	}
	return o.drUpdate(it, &fsm.DRItemUpdateRequest{Step: fsm.DRStepBackedUp, Backup: volid})
}

// drReleaseAddress releases the address a failover allocated the guest.
func (o *opState) drReleaseAddress(p *fsm.DRPlan, it *fsm.DRItem) error {
	_, addrs, err := o.r.s.State().Addresses(memdb.NewWatchSet(), fsm.AddressFilter{Owner: drOwner(p.ID, it.VMID)})
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if _, err := o.r.s.raftApply(&fsm.AddressReleaseRequest{ID: a.ID}); err != nil && !errors.Is(err, fsm.ErrNotFound) {
			return err
		}
	}
	return nil
}

// drOwner is the IPAM owner of the address a failover gives a guest.
func drOwner(plan string, vmid int) string { return fmt.Sprintf("dr:%s/%d", plan, vmid) }
