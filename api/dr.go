package api

import (
	"net/http"
	"slices"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/auth"
	"github.com/moxxie/moxxie/fsm"
)

// drRoutes are the endpoints of disaster recovery (docs/dr.md). Plans
// are written at their source site; the recovery site holds replicas,
// which the source site's leader sends with its server certificate
// (PUT /v1/dr/replicas/{source}), and runs failovers and drills of them.
var drRoutes = []route{
	{Route{http.MethodGet, "/v1/dr/plans", KindRead, auth.PermDRRead, auth.ScopeCluster}, bodyNone, (*server).handleDRPlanList},
	{Route{http.MethodGet, "/v1/dr/plans/{id}", KindRead, auth.PermDRRead, auth.ScopeCluster}, bodyNone, (*server).handleDRPlanGet},
	{Route{http.MethodPut, "/v1/dr/plans/{id}", KindWrite, auth.PermDRWrite, auth.ScopeCluster}, bodyJSON, (*server).handleDRPlanPut},
	{Route{http.MethodDelete, "/v1/dr/plans/{id}", KindWrite, auth.PermDRWrite, auth.ScopeCluster}, bodyNone, (*server).handleDRPlanDelete},
	{Route{http.MethodPost, "/v1/dr/plans/{id}/failover", KindWrite, auth.PermDRWrite, auth.ScopeCluster}, bodyOptionalJSON, replayFirst(http.StatusAccepted, (*server).handleDRFailover)},
	{Route{http.MethodPost, "/v1/dr/plans/{id}/drill", KindWrite, auth.PermDRWrite, auth.ScopeCluster}, bodyOptionalJSON, replayFirst(http.StatusAccepted, (*server).handleDRDrill)},
	{Route{http.MethodPost, "/v1/dr/plans/{id}/failback", KindWrite, auth.PermDRWrite, auth.ScopeCluster}, bodyOptionalJSON, replayFirst(http.StatusAccepted, (*server).handleDRFailback)},
	{Route{http.MethodPost, "/v1/dr/plans/{id}/unfence", KindWrite, auth.PermDRWrite, auth.ScopeCluster}, bodyOptionalJSON, (*server).handleDRUnfence},
	{Route{http.MethodPost, "/v1/dr/plans/{id}/release", KindWrite, auth.PermDRReplicate, auth.ScopeCluster}, bodyOptionalJSON, (*server).handleDRRelease},
	{Route{http.MethodGet, "/v1/dr/runs/{id}", KindRead, auth.PermDRRead, auth.ScopeCluster}, bodyNone, (*server).handleDRRun},
	{Route{http.MethodGet, "/v1/dr/conflicts", KindRead, auth.PermDRRead, auth.ScopeCluster}, bodyNone, (*server).handleDRConflicts},
	{Route{http.MethodPut, "/v1/dr/replicas/{source}", KindWrite, auth.PermDRReplicate, auth.ScopeCluster}, bodyJSON, (*server).handleDRReplicas},
}

// DRPlanList is the body of GET /v1/dr/plans.
type DRPlanList struct {
	Plans []*fsm.DRPlan `json:"plans"`
}

// DRRun is the body of GET /v1/dr/runs/{id}: the operation and its items
// in recovery order.
type DRRun struct {
	Operation *fsm.Operation `json:"operation"`
	Items     []*fsm.DRItem  `json:"items"`
}

// DRConflictList is the body of GET /v1/dr/conflicts.
type DRConflictList struct {
	Conflicts []*fsm.DRConflict `json:"conflicts"`
}

// DRRunRequest is the optional body of a failover or drill: Force runs
// a failover while the source site is not down (the operator vouches
// that its guests are off), Keep leaves a drill's copies running.
type DRRunRequest struct {
	Force bool `json:"force,omitempty"`
	Keep  bool `json:"keep,omitempty"`
}

// DRReplicaRequest is the body of PUT /v1/dr/replicas/{source}.
type DRReplicaRequest struct {
	Plans []fsm.DRPlan `json:"plans"`
}

// localSite returns this server's site, or a 404 naming why DR needs one.
func (s *server) localSite() (string, error) {
	sb, ok := s.b.(SiteBackend)
	if !ok || sb.LocalSite() == "" {
		return "", &apiError{status: http.StatusNotFound, code: CodeNotFound,
			message: "this server is in no site (site.name in its configuration): disaster recovery needs federated sites"}
	}
	return sb.LocalSite(), nil
}

func (s *server) handleDRPlanList(c *call) error {
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.DRPlan, error) {
		idx, l, err := st.DRPlans(ws)
		if l == nil {
			l = []*fsm.DRPlan{}
		}
		return idx, l, err
	}, func(l []*fsm.DRPlan) any { return DRPlanList{Plans: l} })
}

func (s *server) handleDRPlanGet(c *call) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	return serveGet(s, c, "id", "plan", id, func(st *fsm.Store, ws memdb.WatchSet) (uint64, *fsm.DRPlan, error) {
		return st.DRPlan(ws, id)
	})
}

func (s *server) handleDRPlanPut(c *call) error {
	local, err := s.localSite()
	if err != nil {
		return err
	}
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var p fsm.DRPlan
	if err := decodeJSON(c.body, &p, true); err != nil {
		return err
	}
	switch {
	case p.ID == "":
		p.ID = id
	case p.ID != id:
		return invalid("id", "the body's id %q differs from the path's %q; a plan cannot be renamed", p.ID, id)
	}
	if p.SourceSite == "" {
		p.SourceSite = local
	}
	_, old, err := s.b.State().DRPlan(nil, id)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if old == nil {
		status = http.StatusCreated
	}
	return s.propose(c, &fsm.DRPlanPutRequest{Plan: p, Create: old == nil, LocalSite: local}, status, nil)
}

func (s *server) handleDRPlanDelete(c *call) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	return s.propose(c, &fsm.DRPlanDeleteRequest{ID: id}, http.StatusOK, nil)
}

// drPlan returns the {id} plan, or a 404 naming it.
func (s *server) drPlan(c *call) (*fsm.DRPlan, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return nil, err
	}
	_, p, err := s.b.State().DRPlan(nil, id)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, notFoundError("id", "plan", id)
	}
	return p, nil
}

func (s *server) handleDRFailover(c *call) error {
	p, err := s.drPlan(c)
	if err != nil {
		return err
	}
	var req DRRunRequest
	if err := decodeJSON(c.body, &req, false); err != nil {
		return err
	}
	if !p.Replica {
		return invalid("id", "plan %s protects this site's guests: run its failover at its recovery site (--site %s)", p.ID, p.RecoverySite)
	}
	if !req.Force {
		state := ""
		if sb, ok := s.b.(SiteBackend); ok {
			for _, st := range sb.Sites() {
				if st.Name == p.SourceSite {
					state = st.State
				}
			}
		}
		if state != "down" && state != "left" {
			return &apiError{status: http.StatusConflict, code: CodeConflict, field: "force",
				message: "site " + p.SourceSite + " is " + stateOrUnknown(state) + ", not down: its guests may still run there. Stop them first and pass force (moxxiectl site failover --force), or drill instead"}
		}
	}
	if f := p.Failover; f != nil && f.State == fsm.OpFailed && p.ActiveRun == "" {
		// The plan failed over, but not all of it: run it again, from
		// where each guest that failed got to.
		return s.propose(c, &fsm.DRRunRetryRequest{Plan: p.ID}, http.StatusAccepted, nil)
	}
	return s.proposeDRRun(c, p, fsm.OpDRFailover, false)
}

func stateOrUnknown(s string) string {
	if s == "" {
		return "not in this server's view of the pool"
	}
	return s
}

func (s *server) handleDRDrill(c *call) error {
	p, err := s.drPlan(c)
	if err != nil {
		return err
	}
	var req DRRunRequest
	if err := decodeJSON(c.body, &req, false); err != nil {
		return err
	}
	if req.Force {
		return invalid("force", "a drill never stops or replaces anything: it takes no force")
	}
	return s.proposeDRRun(c, p, fsm.OpDRDrill, req.Keep)
}

func (s *server) proposeDRRun(c *call, p *fsm.DRPlan, kind string, keep bool) error {
	return s.propose(c, fsm.NewDRRun(p, kind, fsm.DRTriggerManual, keep, NewID()), http.StatusAccepted, nil)
}

// handleDRFailback fails a fenced plan back at its source site: the
// recovery site releases its copies (stopped, backed up), and they are
// restored over the originals here and started.
func (s *server) handleDRFailback(c *call) error {
	p, err := s.drPlan(c)
	if err != nil {
		return err
	}
	if err := decodeJSON(c.body, &struct{}{}, false); err != nil {
		return err
	}
	if p.Replica {
		return invalid("id", "plan %s is site %s's replica: run its failback there (--site %s)", p.ID, p.SourceSite, p.SourceSite)
	}
	req := fsm.NewDRRun(p, fsm.OpDRFailback, fsm.DRTriggerManual, false, NewID())
	for i := range req.Items {
		if _, g, err := s.b.State().InventoryGuest(nil, req.Items[i].VMID); err == nil && g != nil {
			req.Items[i].Name, req.Items[i].Kind = g.Name, g.Kind
		}
	}
	return s.propose(c, req, http.StatusAccepted, nil)
}

// handleDRUnfence lifts, on an operator's word, the fence a source site
// put on a plan itself when it was cut off: the operator vouches that
// the recovery site did not fail the plan over, and the guests the fence
// stopped are started again. A fence of a known failover is lifted only
// by a failback.
func (s *server) handleDRUnfence(c *call) error {
	p, err := s.drPlan(c)
	if err != nil {
		return err
	}
	if err := decodeJSON(c.body, &struct{}{}, false); err != nil {
		return err
	}
	f := p.Fence
	switch {
	case p.Replica:
		return invalid("id", "plan %s is site %s's replica: a fence is lifted at the source site (--site %s)", p.ID, p.SourceSite, p.SourceSite)
	case f == nil:
		return &apiError{status: http.StatusConflict, code: CodeConflict, field: "id", message: "plan " + p.ID + " is not fenced"}
	case !f.Isolated:
		return &apiError{status: http.StatusConflict, code: CodeConflict, field: "id",
			message: "plan " + p.ID + " is fenced because site " + f.By + " failed it over (run " + f.Run + "): its copies run there, and its guests come back here with a failback (moxxiectl site failback), not unfence"}
	case f.Lifted:
		writeJSON(c.w, http.StatusOK, p)
		return nil
	}
	return s.propose(c, &fsm.DRIsolationRequest{Plan: p.ID, Action: fsm.DRIsolationLift, By: "operator"}, http.StatusAccepted, nil)
}

// handleDRRelease starts (or, when one was started, returns) the release
// of a failed-over plan's copies for its source site's failback.
func (s *server) handleDRRelease(c *call) error {
	p, err := s.drPlan(c)
	if err != nil {
		return err
	}
	if err := checkSiteBinding(c, "id", p.SourceSite); err != nil {
		return err
	}
	if err := decodeJSON(c.body, &struct{}{}, false); err != nil {
		return err
	}
	st := s.b.State()
	if p.LastRun != "" && p.Failover != nil && (p.Failover.State == fsm.DRFailoverReleased || p.ActiveRun == p.LastRun) {
		if _, op, err := st.Operation(nil, p.LastRun); err != nil {
			return err
		} else if op != nil && op.Kind == fsm.OpDRRelease {
			writeJSON(c.w, http.StatusOK, op)
			return nil
		}
	}
	if !p.Replica || p.Failover == nil {
		return &apiError{status: http.StatusConflict, code: CodeConflict, field: "id", message: "plan " + p.ID + " was not failed over at this site: nothing to release"}
	}
	_, items, err := st.DRItems(nil, p.Failover.Run)
	if err != nil {
		return err
	}
	req := &fsm.DRRunStartRequest{Plan: p.ID, Kind: fsm.OpDRRelease, Trigger: fsm.DRTriggerManual, Run: fsm.Operation{ID: NewID()}}
	for _, it := range items {
		req.Items = append(req.Items, fsm.DRItem{VMID: it.VMID, Order: it.Order, Name: it.Name, Kind: it.Kind,
			TargetVMID: it.TargetVMID, TargetNode: it.TargetNode, Address: it.Address, DNSName: it.DNSName})
	}
	return s.propose(c, req, http.StatusAccepted, nil)
}

func (s *server) handleDRRun(c *call) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	return serveGet(s, c, "id", "run", id, func(st *fsm.Store, ws memdb.WatchSet) (uint64, *DRRun, error) {
		idx, op, err := st.Operation(ws, id)
		if err != nil || op == nil || !op.IsDRRun() {
			return idx, nil, err
		}
		iidx, items, err := st.DRItems(ws, id)
		if items == nil {
			items = []*fsm.DRItem{}
		}
		return max(idx, iidx), &DRRun{Operation: op, Items: items}, err
	})
}

func (s *server) handleDRConflicts(c *call) error {
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.DRConflict, error) {
		idx, l, err := st.DRConflicts(ws)
		if l == nil {
			l = []*fsm.DRConflict{}
		}
		slices.SortStableFunc(l, func(a, b *fsm.DRConflict) int { return int(a.At - b.At) })
		return idx, l, err
	}, func(l []*fsm.DRConflict) any { return DRConflictList{Conflicts: l} })
}

func (s *server) handleDRReplicas(c *call) error {
	local, err := s.localSite()
	if err != nil {
		return err
	}
	source := c.r.PathValue("source")
	if err := checkSiteBinding(c, "source", source); err != nil {
		return err
	}
	var req DRReplicaRequest
	if err := decodeJSON(c.body, &req, true); err != nil {
		return err
	}
	ids := make([]string, len(req.Plans))
	for i := range ids {
		ids[i] = NewID()
	}
	return s.propose(c, &fsm.DRReplicaSyncRequest{Source: source, LocalSite: local, Plans: req.Plans, ConflictIDs: ids}, http.StatusOK, nil)
}
