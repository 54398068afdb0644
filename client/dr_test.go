package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/fsm"
)

// Answers in the shapes of api/dr.go.
var (
	testDRPlan = map[string]any{"id": "web", "source_site": "east", "recovery_site": "west", "backup_storage": "pbs", "target_storage": "local-lvm",
		"guests":   []any{map[string]any{"vmid": 101, "order": 2, "dns_name": "web1"}, map[string]any{"vmid": 103, "target_vmid": 9103}},
		"networks": []any{map[string]any{"source": "vmbr0", "target": "vmbr1", "prefix": "p1"}},
		"replica":  true, "status": []any{map[string]any{"vmid": 101, "name": "web1", "kind": "qemu", "backup": "pbs:backup/vm/101/2026-01-02T02:00:00Z",
			"backup_at": "2026-01-02T02:00:00Z"}, map[string]any{"vmid": 103, "error": "no backup on pbs"}},
		"synced_at": "2026-01-02T03:00:00Z", "failover": map[string]any{"run": "run-1", "trigger": "manual", "started_at": "2026-01-02T03:01:00Z", "state": "running"},
		"active_run": "run-1", "last_run": "run-1", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-02T03:00:00Z", "create_index": 3, "modify_index": 9}
	testDROp = map[string]any{"id": "run-1", "kind": "dr.failover", "status": "pending", "policy": "web", "step": "manual",
		"stats": map[string]any{"total": 2, "succeeded": 0, "failed": 0, "pruned": 0}, "created_at": "2026-01-02T03:01:00Z", "create_index": 10, "modify_index": 10}
	testDRRun = map[string]any{"operation": testDROp, "items": []any{
		map[string]any{"run": "run-1", "vmid": 103, "order": 0, "step": "restoring", "target_vmid": 9103, "target_node": "pve2", "task": "UPID:x"},
		map[string]any{"run": "run-1", "vmid": 101, "order": 2, "name": "web1", "step": "pending", "dns_name": "web1"},
	}}
	testDRConflict = map[string]any{"id": "c1", "plan": "web", "kind": "guest_ran", "site": "east", "vmid": 101,
		"detail": "guest 101 ran at east after the failover", "at": "2026-01-02T04:00:00Z"}
)

func drFake(t *testing.T) *fake {
	answers := map[string]func() (int, any){
		"GET /v1/dr/plans":                func() (int, any) { return 200, map[string]any{"plans": []any{testDRPlan}} },
		"GET /v1/dr/plans/web":            func() (int, any) { return 200, testDRPlan },
		"PUT /v1/dr/plans/web":            func() (int, any) { return 201, testDRPlan },
		"DELETE /v1/dr/plans/web":         func() (int, any) { return 200, testDRPlan },
		"POST /v1/dr/plans/web/failover":  func() (int, any) { return 202, testDROp },
		"POST /v1/dr/plans/web/drill":     func() (int, any) { return 202, testDROp },
		"POST /v1/dr/plans/web/failback":  func() (int, any) { return 202, testDROp },
		"GET /v1/dr/runs/run-1":           func() (int, any) { return 200, testDRRun },
		"GET /v1/dr/conflicts":            func() (int, any) { return 200, map[string]any{"conflicts": []any{testDRConflict}} },
		"POST /v1/dr/plans/east/failover": func() (int, any) { return 409, nil },
	}
	return newFake(t, func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.EscapedPath()
		answer, ok := answers[key]
		if !ok {
			writeErr(w, 404, "not_found", "no route "+key, "")
			return
		}
		switch status, body := answer(); body {
		case nil:
			writeErr(w, status, "conflict", "site east is up, not down: its guests may still run there", "force")
		default:
			writeJSON(w, status, body)
		}
	})
}

func TestDR_Requests(t *testing.T) {
	f := drFake(t)
	c := f.client(t, Config{})
	ctx := context.Background()
	wo := &WriteOptions{IdempotencyKey: "k1"}
	plan := DRPlanRequest{ID: "web", RecoverySite: "west", BackupStorage: "pbs", TargetStorage: "local-lvm", Manual: true,
		Guests:   []DRGuest{{VMID: 101, Order: 2, DNSName: "web1"}, {VMID: 103, TargetVMID: 9103}},
		Networks: []DRNetwork{{Source: "vmbr0", Target: "vmbr1", Prefix: "p1"}}}
	planBody := `{"id": "web", "recovery_site": "west", "backup_storage": "pbs", "target_storage": "local-lvm", "manual": true,
		"guests": [{"vmid": 101, "order": 2, "dns_name": "web1"}, {"vmid": 103, "target_vmid": 9103}],
		"networks": [{"source": "vmbr0", "target": "vmbr1", "prefix": "p1"}]}`
	checkPlan := func(t *testing.T, v any) {
		p := v.(*DRPlan)
		if p.ID != "web" || !p.Replica || p.SourceSite != "east" || len(p.Guests) != 2 || p.Guests[1].TargetVMID != 9103 ||
			len(p.Status) != 2 || p.Status[0].BackupAt.IsZero() || p.Status[1].Error == "" || p.Failover == nil ||
			p.Failover.State != "running" || p.SyncedAt.IsZero() || p.Networks[0].Prefix != "p1" || p.ModifyIndex != 9 {
			t.Errorf("%+v", p)
		}
	}
	checkOp := func(t *testing.T, v any) {
		if op := v.(*Operation); op.ID != "run-1" || op.Kind != OpDRFailover || op.Policy != "web" || !op.Active() || op.Stats.Total != 2 {
			t.Errorf("%+v", op)
		}
	}

	for _, tc := range []struct {
		name      string
		call      func() (any, error)
		req, body string
		check     func(t *testing.T, v any)
	}{
		{"plans", func() (any, error) {
			v, _, err := c.DRPlans(ctx, &QueryOptions{Index: 5, Wait: time.Second})
			return v, err
		}, "GET /v1/dr/plans?index=5&wait=1s", "", func(t *testing.T, v any) {
			l := v.([]DRPlan)
			if len(l) != 1 {
				t.Fatalf("%+v", l)
			}
			checkPlan(t, &l[0])
		}},
		{"plan", func() (any, error) { v, _, err := c.DRPlan(ctx, "web", nil); return v, err }, "GET /v1/dr/plans/web", "", checkPlan},
		{"put", func() (any, error) { v, _, err := c.PutDRPlan(ctx, plan, wo); return v, err }, "PUT /v1/dr/plans/web", planBody, checkPlan},
		{"delete", func() (any, error) { v, _, err := c.DeleteDRPlan(ctx, "web", nil); return v, err }, "DELETE /v1/dr/plans/web", "", checkPlan},
		{"failover", func() (any, error) { v, _, err := c.DRFailover(ctx, "web", false, wo); return v, err },
			"POST /v1/dr/plans/web/failover", "", checkOp},
		{"forced failover", func() (any, error) { v, _, err := c.DRFailover(ctx, "web", true, nil); return v, err },
			"POST /v1/dr/plans/web/failover", `{"force": true}`, checkOp},
		{"drill", func() (any, error) { v, _, err := c.DRDrill(ctx, "web", false, nil); return v, err },
			"POST /v1/dr/plans/web/drill", "", checkOp},
		{"kept drill", func() (any, error) { v, _, err := c.DRDrill(ctx, "web", true, nil); return v, err },
			"POST /v1/dr/plans/web/drill", `{"keep": true}`, checkOp},
		{"failback", func() (any, error) { v, _, err := c.DRFailback(ctx, "web", nil); return v, err },
			"POST /v1/dr/plans/web/failback", "", checkOp},
		{"run", func() (any, error) { v, _, err := c.DRRun(ctx, "run-1", &QueryOptions{Stale: true}); return v, err },
			"GET /v1/dr/runs/run-1?stale=true", "", func(t *testing.T, v any) {
				r := v.(*DRRun)
				checkOp(t, r.Operation)
				if len(r.Items) != 2 || r.Items[0].Step != DRStepRestoring || r.Items[0].TargetNode != "pve2" || r.Items[1].DNSName != "web1" {
					t.Errorf("%+v", r.Items)
				}
			}},
		{"conflicts", func() (any, error) { v, _, err := c.DRConflicts(ctx, nil); return v, err }, "GET /v1/dr/conflicts", "",
			func(t *testing.T, v any) {
				if l := v.([]DRConflict); len(l) != 1 || l[0].Kind != DRConflictGuestRan || l[0].VMID != 101 || l[0].At.IsZero() {
					t.Errorf("%+v", l)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(f.requests())
			v, err := tc.call()
			if err != nil {
				t.Fatal(err)
			}
			reqs := f.requests()[n:]
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			if got := joinQuery(r.method+" "+r.path, r.query); got != tc.req {
				t.Errorf("request %q, want %q", got, tc.req)
			}
			// Every write carries an Idempotency-Key: the one given, or a
			// random one.
			key := r.header.Get("Idempotency-Key")
			if (r.method == http.MethodGet) != (key == "") {
				t.Errorf("%s with Idempotency-Key %q", r.method, key)
			}
			if tc.body == "" && len(r.body) != 0 {
				t.Errorf("body %s, want none", r.body)
			} else if tc.body != "" {
				checkBody(t, r.body, tc.body)
			}
			if tc.check != nil {
				tc.check(t, v)
			}
		})
	}

	// A refused failover names the field at fault.
	_, _, err := c.DRFailover(ctx, "east", false, nil)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Field != "force" {
		t.Fatalf("error %#v", err)
	}
}

// TestDR_ServerShapes decodes what the server encodes (fsm's and api's
// types) into the client's, so that a field renamed on one side only is
// seen.
func TestDR_ServerShapes(t *testing.T) {
	at := fsm.Timestamp(time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC).UnixNano())
	plan := fsm.DRPlan{ID: "web", SourceSite: "east", RecoverySite: "west", BackupStorage: "pbs", TargetStorage: "local-lvm", TargetNode: "pve2",
		Manual: true, Guests: []fsm.DRGuest{{VMID: 101, Order: 1, TargetVMID: 9101, DNSName: "web1"}},
		Networks: []fsm.DRNetwork{{Source: "vmbr0", Target: "vmbr1", Prefix: "p1"}}, Replica: true,
		Status:          []fsm.DRGuestStatus{{VMID: 101, Name: "web1", Kind: "qemu", Backup: "pbs:backup/x", BackupAt: at, Error: "e"}},
		SourceUpdatedAt: at, SyncedAt: at, Failover: &fsm.DRFailover{Run: "run-1", Trigger: "manual", StartedAt: at, State: "running"},
		Fence: &fsm.DRFence{By: "west", Run: "run-1", Since: at}, ActiveRun: "run-1", LastRun: "run-0",
		CreatedAt: at, UpdatedAt: at, CreateIndex: 3, ModifyIndex: 4}
	want := DRPlan{DRPlanRequest: DRPlanRequest{ID: "web", SourceSite: "east", RecoverySite: "west", BackupStorage: "pbs", TargetStorage: "local-lvm",
		TargetNode: "pve2", Manual: true, Guests: []DRGuest{{VMID: 101, Order: 1, TargetVMID: 9101, DNSName: "web1"}},
		Networks: []DRNetwork{{Source: "vmbr0", Target: "vmbr1", Prefix: "p1"}}}, Replica: true,
		Status:          []DRGuestStatus{{VMID: 101, Name: "web1", Kind: "qemu", Backup: "pbs:backup/x", BackupAt: Time{at.Time()}, Error: "e"}},
		SourceUpdatedAt: Time{at.Time()}, SyncedAt: Time{at.Time()}, Failover: &DRFailover{Run: "run-1", Trigger: "manual", StartedAt: Time{at.Time()}, State: "running"},
		Fence: &DRFence{By: "west", Run: "run-1", Since: Time{at.Time()}}, ActiveRun: "run-1", LastRun: "run-0",
		CreatedAt: Time{at.Time()}, UpdatedAt: Time{at.Time()}, CreateIndex: 3, ModifyIndex: 4}
	var got DRPlan
	roundTrip(t, plan, &got)
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("plan\n got %s\nwant %s", g, w)
	}

	run := api.DRRun{Operation: &fsm.Operation{ID: "run-1", Kind: fsm.OpDRDrill, Status: fsm.OpRunning, Policy: "web", Stats: &fsm.RunStats{Total: 1}},
		Items: []*fsm.DRItem{{RunID: "run-1", VMID: 101, Order: 1, Name: "web1", Kind: "qemu", Backup: "b", TargetVMID: 9101, TargetNode: "pve2",
			Step: fsm.DRStepRestoring, Task: "UPID:x", TaskNode: "pve2", Address: "10.0.0.5", DNSName: "web1", Error: "", Started: at}}}
	var gotRun DRRun
	roundTrip(t, run, &gotRun)
	wantItem := DRItem{Run: "run-1", VMID: 101, Order: 1, Name: "web1", Kind: "qemu", Backup: "b", TargetVMID: 9101, TargetNode: "pve2",
		Step: DRStepRestoring, Task: "UPID:x", TaskNode: "pve2", Address: "10.0.0.5", DNSName: "web1", Started: Time{at.Time()}}
	if gotRun.Operation == nil || gotRun.Operation.Kind != OpDRDrill || gotRun.Operation.Policy != "web" || len(gotRun.Items) != 1 ||
		mustJSON(t, gotRun.Items[0]) != mustJSON(t, wantItem) {
		t.Errorf("run %+v", gotRun)
	}

	conflict := api.DRConflictList{Conflicts: []*fsm.DRConflict{{ID: "c1", Plan: "web", Kind: fsm.DRConflictPlanChanged, Site: "east", VMID: 0,
		Detail: "d", At: at, Version: at}}}
	var gotConflicts struct {
		Conflicts []DRConflict `json:"conflicts"`
	}
	roundTrip(t, conflict, &gotConflicts)
	if l := gotConflicts.Conflicts; len(l) != 1 || l[0].Kind != DRConflictPlanChanged || l[0].Version.IsZero() || l[0].Detail != "d" {
		t.Errorf("conflicts %+v", l)
	}

	// The request is what the server decodes, strictly.
	req := DRPlanRequest{ID: "web", RecoverySite: "west", BackupStorage: "pbs", TargetStorage: "local-lvm", Guests: []DRGuest{{VMID: 101}}}
	dec := json.NewDecoder(strings.NewReader(mustJSON(t, req)))
	dec.DisallowUnknownFields()
	var p fsm.DRPlan
	if err := dec.Decode(&p); err != nil || p.RecoverySite != "west" || len(p.Guests) != 1 {
		t.Errorf("request decoded as %+v: %v", p, err)
	}
}

func roundTrip(t *testing.T, in, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDR_WaitRun follows a run with blocking reads to its end, reporting
// each change once.
func TestDR_WaitRun(t *testing.T) {
	for _, final := range []string{OpSucceeded, OpFailed} {
		t.Run(final, func(t *testing.T) {
			steps := []string{DRStepPending, DRStepRestoring, DRStepRestoring, DRStepRunning}
			var reads atomic.Int32
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				n := int(reads.Add(1)) - 1
				if want := strconv.Itoa(n + 41); n > 0 && r.URL.Query().Get("index") != want {
					t.Errorf("read %d with index %q, want %s", n, r.URL.Query().Get("index"), want)
				}
				status, mod := OpRunning, 10+n
				if n == len(steps)-1 {
					status = final
				}
				if steps[n] == DRStepRestoring && n == 2 {
					mod = 11 // nothing changed: the wait ended
				}
				w.Header().Set("X-Moxxie-Index", strconv.Itoa(n+42))
				writeJSON(w, 200, map[string]any{
					"operation": map[string]any{"id": "run-1", "kind": "dr.failover", "status": status, "modify_index": mod, "create_index": 10},
					"items":     []any{map[string]any{"run": "run-1", "vmid": 101, "order": 0, "step": steps[n]}},
				})
			})
			c := f.client(t, Config{})
			var seen []string
			run, err := c.WaitDRRun(context.Background(), "run-1", func(r *DRRun) { seen = append(seen, r.Operation.Status+"/"+r.Items[0].Step) })
			want := []string{"running/pending", "running/restoring", final + "/running"}
			if len(seen) != len(want) || seen[0] != want[0] || seen[1] != want[1] || seen[2] != want[2] {
				t.Errorf("progress %q, want %q", seen, want)
			}
			if run == nil || run.Operation.Status != final {
				t.Fatalf("run %+v", run)
			}
			var fe *OperationFailedError
			if (final == OpFailed) != errors.As(err, &fe) {
				t.Errorf("error %v", err)
			}
		})
	}
}
