package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/fsm"
)

// newSiteServer returns the API of a leader in site local.
func newSiteServer(t *testing.T, local string) *testServer {
	t.Helper()
	_, ts := newSiteBackend(t, local)
	return ts
}

// newSiteBackend returns the API of a leader in site local with its
// backend.
func newSiteBackend(t *testing.T, local string) (*siteBackend, *testServer) {
	t.Helper()
	b := &siteBackend{fakeBackend: newFakeBackend("s1", fsm.New(), true), local: local}
	ts := &testServer{t: t, b: b.fakeBackend}
	ts.h = New(b, Options{})
	ts.srv = ts.h.(*server)
	ts.bootstrap()
	return b, ts
}

const drPlanBody = `{"recovery_site":"west","backup_storage":"dr","target_storage":"local-lvm",
	"guests":[{"vmid":102,"order":1,"dns_name":"db.shop.test"},{"vmid":100,"order":2}],
	"networks":[{"source":"vmbr0","target":"vmbr1","prefix":"p1"}]}`

func TestDR_NotFederated(t *testing.T) {
	ts := newLeader(t)
	wantError(t, ts.do("PUT", "/v1/dr/plans/shop", drPlanBody), 404, CodeNotFound, "")
	wantError(t, ts.do("PUT", "/v1/dr/replicas/west", `{"plans":[]}`), 404, CodeNotFound, "")
}

// At east, a plan recovering at west: written, validated, listed; its
// failover and drill belong to west.
func TestDR_PlansAtTheSourceSite(t *testing.T) {
	ts := newSiteServer(t, "east")
	var p fsm.DRPlan
	mustJSON(t, wantStatus(t, ts.do("PUT", "/v1/dr/plans/shop", drPlanBody), http.StatusCreated), &p)
	if p.SourceSite != "east" || p.Replica || len(p.Guests) != 2 {
		t.Fatalf("plan %+v", p)
	}
	mustJSON(t, wantStatus(t, ts.do("PUT", "/v1/dr/plans/shop", strings.Replace(drPlanBody, `{"recovery_site"`, `{"rpo":"4h","recovery_site"`, 1)), http.StatusOK), &p)
	if p.RPO != "4h" || p.Objective() != 4*time.Hour {
		t.Fatalf("plan with an rpo: %+v", p)
	}
	wantStatus(t, ts.do("PUT", "/v1/dr/plans/shop", drPlanBody), http.StatusOK)
	for _, c := range []struct{ body, field string }{
		{`{"id":"other","recovery_site":"west","backup_storage":"dr","target_storage":"local-lvm","guests":[{"vmid":100}]}`, "id"},
		{`{"recovery_site":"east","backup_storage":"dr","target_storage":"local-lvm","guests":[{"vmid":100}]}`, "recovery_site"},
		{`{"recovery_site":"west","backup_storage":"dr","target_storage":"local-lvm","guests":[]}`, "guests"},
		{`{"recovery_site":"west","backup_storage":"dr","target_storage":"local-lvm","guests":[{"vmid":100,"dns_name":"a.test"}]}`, "networks"},
		{`{"source_site":"west","recovery_site":"north","backup_storage":"dr","target_storage":"local-lvm","guests":[{"vmid":100}]}`, "source_site"},
		{`{"recovery_site":"west","backup_storage":"dr","target_storage":"local-lvm","guests":[{"vmid":100}],"rpo":"daily"}`, "rpo"},
		{`{"recovery_site":"west","backup_storage":"dr","target_storage":"local-lvm","guests":[{"vmid":100}],"rpo":"10s"}`, "rpo"},
		{`{"recovery_site":"west","backup_storage":"dr","target_storage":"local-lvm","guests":[{"vmid":100}],"bogus":1}`, ""},
	} {
		rec := ts.do("PUT", "/v1/dr/plans/shop", c.body)
		if rec.Code != http.StatusBadRequest || (c.field != "" && !strings.Contains(rec.Body.String(), `"field":"`+c.field+`"`)) {
			t.Errorf("%s: %d %s, want 400 naming %q", c.body, rec.Code, rec.Body, c.field)
		}
	}
	var list DRPlanList
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/dr/plans", ""), 200), &list)
	if len(list.Plans) != 1 || list.Plans[0].ID != "shop" {
		t.Fatalf("plans %+v", list)
	}
	wantError(t, ts.do("GET", "/v1/dr/plans/nope", ""), 404, CodeNotFound, "id")
	wantError(t, ts.do("POST", "/v1/dr/plans/shop/failover", ""), 400, CodeInvalidRequest, "id")
	wantError(t, ts.do("POST", "/v1/dr/plans/shop/drill", ""), 409, CodeConflict, "plan")
	wantError(t, ts.do("POST", "/v1/dr/plans/shop/failback", ""), 409, CodeConflict, "plan")
	wantError(t, ts.do("POST", "/v1/dr/plans/shop/release", ""), 409, CodeConflict, "id")
	var cl DRConflictList
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/dr/conflicts", ""), 200), &cl)
	if cl.Conflicts == nil || len(cl.Conflicts) != 0 {
		t.Fatalf("conflicts %+v", cl)
	}
	wantStatus(t, ts.do("DELETE", "/v1/dr/plans/shop", ""), 200)
	wantError(t, ts.do("GET", "/v1/dr/plans/shop", ""), 404, CodeNotFound, "id")
}

// At west, a replica sent by north: its failover is refused while north
// is not down (it is not even in this server's view) unless forced, and
// then runs once; a drill takes no force.
func TestDR_ReplicasAtTheRecoverySite(t *testing.T) {
	ts := newSiteServer(t, "west")
	replica := func(source, id string) string {
		return `{"plans":[{"id":"` + id + `","source_site":"` + source + `","recovery_site":"west","backup_storage":"dr","target_storage":"local-lvm",
			"guests":[{"vmid":102,"order":1},{"vmid":100,"order":2}],
			"status":[{"vmid":100,"name":"web-01","kind":"qemu","backup":"dr:backup/vzdump-qemu-100-x.vma"},{"vmid":102,"name":"db-01","kind":"qemu","backup":"dr:backup/vzdump-qemu-102-x.vma"}],
			"updated_at":"2026-11-26T10:00:00Z"}]}`
	}
	var res fsm.DRSyncResult
	mustJSON(t, wantStatus(t, ts.do("PUT", "/v1/dr/replicas/north", replica("north", "shop")), 200), &res)
	if len(res.Failovers) != 0 {
		t.Fatalf("sync result %+v", res)
	}
	wantError(t, ts.do("PUT", "/v1/dr/replicas/east", replica("north", "other")), 400, CodeInvalidRequest, "source_site")
	wantError(t, ts.do("PUT", "/v1/dr/replicas/north", `{"plans":[{"id":"x"}]}`), 400, CodeInvalidRequest, "source_site")
	var p fsm.DRPlan
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/dr/plans/shop", ""), 200), &p)
	if !p.Replica || p.SourceSite != "north" || len(p.Status) != 2 {
		t.Fatalf("replica %+v", p)
	}
	wantError(t, ts.do("PUT", "/v1/dr/plans/shop", strings.Replace(drPlanBody, `"west"`, `"east"`, 1)), 409, CodeConflict, "id")

	// north is not in this server's view: not down, so force is needed.
	rec := ts.do("POST", "/v1/dr/plans/shop/failover", "")
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), `"field":"force"`) || !strings.Contains(rec.Body.String(), "not down") {
		t.Fatalf("failover while the source is not down: %d %s", rec.Code, rec.Body)
	}
	wantError(t, ts.do("POST", "/v1/dr/plans/shop/drill", `{"force":true}`), 400, CodeInvalidRequest, "force")
	var op fsm.Operation
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/dr/plans/shop/failover", `{"force":true}`), http.StatusAccepted), &op)
	if op.Kind != fsm.OpDRFailover || op.Policy != "shop" {
		t.Fatalf("failover operation %+v", op)
	}
	var run DRRun
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/dr/runs/"+op.ID, ""), 200), &run)
	if len(run.Items) != 2 || run.Items[0].VMID != 102 || run.Items[0].Backup == "" || run.Items[1].Name != "web-01" {
		t.Fatalf("run %+v", run.Items)
	}
	wantError(t, ts.do("GET", "/v1/dr/runs/nope", ""), 404, CodeNotFound, "id")
	wantError(t, ts.do("POST", "/v1/dr/plans/shop/failover", `{"force":true}`), 409, CodeConflict, "plan")
	wantError(t, ts.do("POST", "/v1/dr/plans/shop/failback", ""), 400, CodeInvalidRequest, "id")

	// A failover that failed runs again, as the same run.
	failed := fsm.OpFailed
	for _, cmd := range []fsm.Command{
		&fsm.DRItemUpdateRequest{Run: op.ID, Order: 1, VMID: 102, Step: fsm.DRStepFailed, Error: "storage full"},
		&fsm.OperationUpdateRequest{ID: op.ID, Status: &failed, Error: &fsm.OpError{Code: "failed", Message: "1 of 2 guests failed"}},
	} {
		if r, _, err := ts.b.Apply(t.Context(), cmd); err != nil || r.Err != nil {
			t.Fatalf("%T: %v %v", cmd, err, r)
		}
	}
	var again fsm.Operation
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/dr/plans/shop/failover", `{"force":true}`), http.StatusAccepted), &again)
	if again.ID != op.ID || again.Status != fsm.OpPending || again.Error != nil {
		t.Fatalf("failover asked again after it failed: %+v", again)
	}
	wantError(t, ts.do("POST", "/v1/dr/plans/shop/failover", `{"force":true}`), 409, CodeConflict, "plan")
	wantError(t, ts.do("DELETE", "/v1/dr/plans/shop", ""), 409, CodeConflict, "id")
}

// At east, a plan east fenced itself while cut off: unfence lifts it
// (the leader then starts the guests it stopped); a fence of a known
// failover is lifted only by a failback, and a replica not here.
func TestDR_Unfence(t *testing.T) {
	ts := newSiteServer(t, "east")
	wantStatus(t, ts.do("PUT", "/v1/dr/plans/shop", drPlanBody), http.StatusCreated)
	apply := func(cmd fsm.Command) {
		t.Helper()
		if r, _, err := ts.b.Apply(t.Context(), cmd); err != nil || r.Err != nil {
			t.Fatalf("%T: %v %v", cmd, err, r)
		}
	}
	wantError(t, ts.do("POST", "/v1/dr/plans/nope/unfence", ""), 404, CodeNotFound, "id")
	wantError(t, ts.do("POST", "/v1/dr/plans/shop/unfence", ""), 409, CodeConflict, "id")

	apply(&fsm.DRIsolationRequest{Plan: "shop", Action: fsm.DRIsolationFence})
	apply(&fsm.DRIsolationRequest{Plan: "shop", Action: fsm.DRIsolationStopped, VMIDs: []int{100}})
	wantError(t, ts.do("POST", "/v1/dr/plans/shop/unfence", `{"force":true}`), 400, CodeInvalidRequest, "force")
	wantError(t, ts.do("POST", "/v1/dr/plans/shop/failback", ""), 409, CodeConflict, "plan")
	var p fsm.DRPlan
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/dr/plans/shop/unfence", ""), http.StatusAccepted), &p)
	if f := p.Fence; f == nil || !f.Isolated || !f.Lifted || f.LiftedBy != "operator" || len(f.Stopped) != 1 {
		t.Fatalf("fence %+v after unfence", f)
	}
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/dr/plans/shop/unfence", ""), http.StatusOK), &p)
	if f := p.Fence; f == nil || !f.Lifted {
		t.Fatalf("fence %+v after a second unfence", f)
	}

	// West did fail it over after all: only a failback lifts that.
	apply(&fsm.DRFenceRequest{Plan: "shop", Fence: &fsm.DRFence{By: "west", Run: "fo-1", Since: 1}})
	rec := ts.do("POST", "/v1/dr/plans/shop/unfence", "")
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), `"field":"id"`) || !strings.Contains(rec.Body.String(), "failback") {
		t.Fatalf("unfence of a failover's fence: %d %s", rec.Code, rec.Body)
	}

	// A replica is unfenced at its source.
	replica := `{"plans":[{"id":"db","source_site":"west","recovery_site":"east","backup_storage":"dr","target_storage":"local-lvm",
		"guests":[{"vmid":200}],"updated_at":"2026-11-26T10:00:00Z"}]}`
	wantStatus(t, ts.do("PUT", "/v1/dr/replicas/west", replica), 200)
	wantError(t, ts.do("POST", "/v1/dr/plans/db/unfence", ""), 400, CodeInvalidRequest, "id")
}
