package client

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moxxie/moxxie/sdn"
)

// Answers in the shapes of api/handlers_sdn.go.
var (
	testSDNZone = map[string]any{"id": "ovl", "type": "vxlan", "mtu": 1450, "nodes": []string{"pve1", "pve2"}, "pool": "0190-pool",
		"create_index": 3, "modify_index": 4, "created_at": "2026-01-02T03:04:05Z", "updated_at": "2026-01-02T03:05:05Z"}
	testSDNVnet = map[string]any{"id": "web", "zone": "ovl", "tag": 5000, "tenant": "acme", "allocation_id": "0190-alloc",
		"create_index": 5, "modify_index": 5, "created_at": "2026-01-02T03:04:05Z", "updated_at": "2026-01-02T03:04:05Z"}
	testSDNSubnet = map[string]any{"id": "s1", "vnet": "web", "prefix_id": "0190-pfx", "cidr": "10.1.0.0/24", "gateway": "10.1.0.1", "snat": true,
		"create_index": 6, "modify_index": 6}
	testSDNAllow = map[string]any{"id": "r1", "from": "tenant:acme", "to": "vnet:db", "create_index": 7, "modify_index": 7}
	testSDNState = map[string]any{"host": "pve1", "committed": 1, "target": 2, "applied": 2, "state": "applied",
		"drift": []string{"link web was down"}, "reported_at": "2026-01-02T03:04:05Z", "actions": 3}
	testSDNHost = map[string]any{"name": "pve1", "address": "192.0.2.1", "uplink": "eth0", "mtu": 9000,
		"enrolled_at": "2026-01-02T03:04:05Z", "create_index": 3, "modify_index": 3, "state": testSDNState}
	testSDNChanges = []any{
		map[string]any{"op": "add", "object": "link", "name": "web", "fields": []string{"kind: bridge", "mtu: 1450"}},
		map[string]any{"op": "change", "object": "firewall", "name": "firewall", "fields": []string{"bridges: +web"}},
	}
	testSDNRollout = map[string]any{"id": "r-1", "version": 2, "phase": "preparing", "hosts": []string{"pve1", "pve2"}, "prepared": []string{"pve1"},
		"previous": map[string]any{"pve1": 1, "pve2": 1}, "changes": map[string]any{"pve1": testSDNChanges},
		"deadline": "2026-01-02T03:05:05Z", "created_at": "2026-01-02T03:04:05Z", "create_index": 8, "modify_index": 9}
	testSDNPlan = map[string]any{"host": "pve1", "version": 2, "committed": 1, "rollout_id": "r-1", "phase": "preparing",
		"plan": map[string]any{"host": "pve1", "version": 2, "links": []any{
			map[string]any{"name": "web", "kind": "bridge", "alias": "moxxie:web", "vnet": "web", "mtu": 1450},
			map[string]any{"name": "vxlan_web", "kind": "vxlan", "alias": "moxxie:web", "vnet": "web", "master": "web", "vni": 5000,
				"local": "192.0.2.1", "port": 4789, "peers": []string{"192.0.2.2"}, "mtu": 1450},
		}, "firewall": map[string]any{"bridges": []string{"web"}}}}
)

func sdnFake(t *testing.T) *fake {
	routes := map[string]func() (int, any){
		"GET /v1/sdn/zones":              func() (int, any) { return 200, map[string]any{"zones": []any{testSDNZone}} },
		"POST /v1/sdn/zones":             func() (int, any) { return 201, testSDNZone },
		"GET /v1/sdn/zones/ovl":          func() (int, any) { return 200, testSDNZone },
		"PUT /v1/sdn/zones/ovl":          func() (int, any) { return 200, testSDNZone },
		"DELETE /v1/sdn/zones/ovl":       func() (int, any) { return 200, testSDNZone },
		"GET /v1/sdn/vnets":              func() (int, any) { return 200, map[string]any{"vnets": []any{testSDNVnet}} },
		"POST /v1/sdn/vnets":             func() (int, any) { return 201, testSDNVnet },
		"GET /v1/sdn/vnets/web":          func() (int, any) { return 200, testSDNVnet },
		"PUT /v1/sdn/vnets/web":          func() (int, any) { return 200, testSDNVnet },
		"DELETE /v1/sdn/vnets/web":       func() (int, any) { return 200, testSDNVnet },
		"GET /v1/sdn/subnets":            func() (int, any) { return 200, map[string]any{"subnets": []any{testSDNSubnet}} },
		"POST /v1/sdn/subnets":           func() (int, any) { return 201, testSDNSubnet },
		"GET /v1/sdn/subnets/s1":         func() (int, any) { return 200, testSDNSubnet },
		"PUT /v1/sdn/subnets/s1":         func() (int, any) { return 200, testSDNSubnet },
		"DELETE /v1/sdn/subnets/s1":      func() (int, any) { return 200, testSDNSubnet },
		"GET /v1/sdn/allows":             func() (int, any) { return 200, map[string]any{"allows": []any{testSDNAllow}} },
		"POST /v1/sdn/allows":            func() (int, any) { return 201, testSDNAllow },
		"GET /v1/sdn/allows/r1":          func() (int, any) { return 200, testSDNAllow },
		"PUT /v1/sdn/allows/r1":          func() (int, any) { return 200, testSDNAllow },
		"DELETE /v1/sdn/allows/r1":       func() (int, any) { return 200, testSDNAllow },
		"GET /v1/sdn/hosts":              func() (int, any) { return 200, map[string]any{"hosts": []any{testSDNHost}} },
		"GET /v1/sdn/hosts/pve1":         func() (int, any) { return 200, testSDNHost },
		"PUT /v1/sdn/hosts/pve1":         func() (int, any) { return 200, testSDNHost },
		"DELETE /v1/sdn/hosts/pve1":      func() (int, any) { return 200, testSDNHost },
		"GET /v1/sdn/hosts/pve1/plan":    func() (int, any) { return 200, testSDNPlan },
		"POST /v1/sdn/hosts/pve1/report": func() (int, any) { return 200, testSDNState },
		"POST /v1/sdn/apply": func() (int, any) {
			return 202, map[string]any{"rollout": testSDNRollout, "version": 2, "no_change": false}
		},
		"GET /v1/sdn/rollouts":            func() (int, any) { return 200, map[string]any{"rollouts": []any{testSDNRollout}} },
		"GET /v1/sdn/rollouts/r-1":        func() (int, any) { return 200, testSDNRollout },
		"POST /v1/sdn/rollouts/r-1/abort": func() (int, any) { return 200, testSDNRollout },
		"GET /v1/sdn/status": func() (int, any) {
			return 200, map[string]any{"version": 2, "committed": 1, "rollout": testSDNRollout, "hosts": []any{map[string]any{"host": "pve1", "committed": 1, "target": 2, "enrolled": true}}}
		},
		"GET /v1/sdn/hosts/a%2Fb/plan":        func() (int, any) { return 200, testSDNPlan },
		"POST /v1/sdn/rollouts/gone%3F/abort": nil,
	}
	return newFake(t, func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.EscapedPath()
		h, ok := routes[key]
		switch {
		case !ok:
			writeErr(w, 404, "not_found", "no route "+key, "")
		case h == nil:
			writeErr(w, 409, "conflict", "rollout gone? is committed, not preparing", "id")
		default:
			status, body := h()
			writeJSON(w, status, body)
		}
	})
}

func TestSDN_Requests(t *testing.T) {
	f := sdnFake(t)
	c := f.client(t, Config{})
	ctx := context.Background()
	wo := &WriteOptions{IdempotencyKey: "k1"}

	tests := []struct {
		name  string
		call  func() (any, error)
		req   string // METHOD path?query
		body  string // JSON, compared as values; empty: no body
		check func(t *testing.T, v any)
	}{
		{"zone list", func() (any, error) {
			v, _, err := c.SDNZoneList(ctx, &QueryOptions{Index: 7, Wait: time.Second})
			return v, err
		},
			"GET /v1/sdn/zones?index=7&wait=1s", "", func(t *testing.T, v any) {
				l := v.([]SDNZone)
				if len(l) != 1 || l[0].ID != "ovl" || l[0].Type != sdn.ZoneVXLAN || l[0].MTU != 1450 || len(l[0].Nodes) != 2 ||
					l[0].ModifyIndex != 4 || !l[0].UpdatedAt.Equal(time.Date(2026, 1, 2, 3, 5, 5, 0, time.UTC)) {
					t.Errorf("%+v", l)
				}
			}},
		{"zone get", func() (any, error) { v, _, err := c.SDNZoneGet(ctx, "ovl", nil); return v, err }, "GET /v1/sdn/zones/ovl", "", nil},
		{"zone create", func() (any, error) {
			v, _, err := c.SDNZoneCreate(ctx, sdn.Zone{ID: "ovl", Type: sdn.ZoneVXLAN, Pool: "tenants"}, nil)
			return v, err
		}, "POST /v1/sdn/zones", `{"id": "ovl", "type": "vxlan", "pool": "tenants"}`, nil},
		{"zone update", func() (any, error) {
			v, _, err := c.SDNZoneUpdate(ctx, sdn.Zone{ID: "ovl", Type: sdn.ZoneVXLAN, MTU: 1400}, nil)
			return v, err
		}, "PUT /v1/sdn/zones/ovl", `{"id": "ovl", "type": "vxlan", "mtu": 1400}`, nil},
		{"zone delete", func() (any, error) { v, _, err := c.SDNZoneDelete(ctx, "ovl", nil); return v, err }, "DELETE /v1/sdn/zones/ovl", "", nil},

		{"vnet list", func() (any, error) { v, _, err := c.SDNVnetList(ctx, nil); return v, err }, "GET /v1/sdn/vnets", "", func(t *testing.T, v any) {
			l := v.([]SDNVnet)
			if len(l) != 1 || l[0].ID != "web" || l[0].Tag != 5000 || l[0].Tenant != "acme" || l[0].AllocationID != "0190-alloc" {
				t.Errorf("%+v", l)
			}
		}},
		{"vnet get", func() (any, error) { v, _, err := c.SDNVnetGet(ctx, "web", nil); return v, err }, "GET /v1/sdn/vnets/web", "", nil},
		{"vnet create", func() (any, error) {
			v, _, err := c.SDNVnetCreate(ctx, sdn.Vnet{ID: "web", Zone: "ovl", Tenant: "acme"}, wo)
			return v, err
		}, "POST /v1/sdn/vnets", `{"id": "web", "zone": "ovl", "tenant": "acme"}`, nil},
		{"vnet update", func() (any, error) {
			v, _, err := c.SDNVnetUpdate(ctx, sdn.Vnet{ID: "web", Zone: "ovl", Tag: 5001}, nil)
			return v, err
		}, "PUT /v1/sdn/vnets/web", `{"id": "web", "zone": "ovl", "tag": 5001}`, nil},
		{"vnet delete", func() (any, error) { v, _, err := c.SDNVnetDelete(ctx, "web", nil); return v, err }, "DELETE /v1/sdn/vnets/web", "", nil},

		{"subnet list", func() (any, error) { v, _, err := c.SDNSubnetList(ctx, nil); return v, err }, "GET /v1/sdn/subnets", "", func(t *testing.T, v any) {
			if l := v.([]SDNSubnet); len(l) != 1 || l[0].CIDR != "10.1.0.0/24" || !l[0].SNAT || l[0].PrefixID != "0190-pfx" {
				t.Errorf("%+v", l)
			}
		}},
		{"subnet get", func() (any, error) { v, _, err := c.SDNSubnetGet(ctx, "s1", nil); return v, err }, "GET /v1/sdn/subnets/s1", "", nil},
		{"subnet create", func() (any, error) {
			v, _, err := c.SDNSubnetCreate(ctx, sdn.Subnet{ID: "s1", Vnet: "web", PrefixID: "0190-pfx", Gateway: "10.1.0.1", SNAT: true}, nil)
			return v, err
		}, "POST /v1/sdn/subnets", `{"id": "s1", "vnet": "web", "prefix_id": "0190-pfx", "cidr": "", "gateway": "10.1.0.1", "snat": true}`, nil},
		{"subnet update", func() (any, error) {
			v, _, err := c.SDNSubnetUpdate(ctx, sdn.Subnet{ID: "s1", Vnet: "web", PrefixID: "0190-pfx"}, nil)
			return v, err
		}, "PUT /v1/sdn/subnets/s1", `{"id": "s1", "vnet": "web", "prefix_id": "0190-pfx", "cidr": ""}`, nil},
		{"subnet delete", func() (any, error) { v, _, err := c.SDNSubnetDelete(ctx, "s1", nil); return v, err }, "DELETE /v1/sdn/subnets/s1", "", nil},

		{"allow list", func() (any, error) { v, _, err := c.SDNAllowList(ctx, nil); return v, err }, "GET /v1/sdn/allows", "", func(t *testing.T, v any) {
			if l := v.([]SDNAllow); len(l) != 1 || l[0].From != "tenant:acme" || l[0].To != "vnet:db" {
				t.Errorf("%+v", l)
			}
		}},
		{"allow get", func() (any, error) { v, _, err := c.SDNAllowGet(ctx, "r1", nil); return v, err }, "GET /v1/sdn/allows/r1", "", nil},
		{"allow create", func() (any, error) {
			v, _, err := c.SDNAllowCreate(ctx, sdn.Allow{From: "tenant:acme", To: "vnet:db"}, nil)
			return v, err
		}, "POST /v1/sdn/allows", `{"id": "", "from": "tenant:acme", "to": "vnet:db"}`, nil},
		{"allow update", func() (any, error) {
			v, _, err := c.SDNAllowUpdate(ctx, sdn.Allow{ID: "r1", From: "vnet:web", To: "vnet:db", Description: "d"}, nil)
			return v, err
		}, "PUT /v1/sdn/allows/r1", `{"id": "r1", "from": "vnet:web", "to": "vnet:db", "description": "d"}`, nil},
		{"allow delete", func() (any, error) { v, _, err := c.SDNAllowDelete(ctx, "r1", nil); return v, err }, "DELETE /v1/sdn/allows/r1", "", nil},

		{"host list", func() (any, error) { v, _, err := c.SDNHostList(ctx, &QueryOptions{Stale: true}); return v, err },
			"GET /v1/sdn/hosts?stale=true", "", func(t *testing.T, v any) {
				l := v.([]SDNHost)
				if len(l) != 1 || l[0].Name != "pve1" || l[0].MTU != 9000 || l[0].EnrolledAt.IsZero() || l[0].State == nil {
					t.Fatalf("%+v", l)
				}
				if st := l[0].State; st.Committed != 1 || st.Target != 2 || st.Applied != 2 || st.State != HostApplied ||
					len(st.Drift) != 1 || st.Actions != 3 || st.ReportedAt.IsZero() {
					t.Errorf("state %+v", st)
				}
			}},
		{"host get", func() (any, error) { v, _, err := c.SDNHostGet(ctx, "pve1", nil); return v, err }, "GET /v1/sdn/hosts/pve1", "", nil},
		{"host enrol", func() (any, error) {
			v, _, err := c.SDNHostEnrol(ctx, sdn.Host{Name: "pve1", Address: "192.0.2.1", Uplink: "eth0"}, nil)
			return v, err
		}, "PUT /v1/sdn/hosts/pve1", `{"name": "pve1", "address": "192.0.2.1", "uplink": "eth0"}`, nil},
		{"host delete", func() (any, error) { v, _, err := c.SDNHostDelete(ctx, "pve1", nil); return v, err }, "DELETE /v1/sdn/hosts/pve1", "", nil},
		{"host plan", func() (any, error) {
			v, _, err := c.SDNHostPlan(ctx, "pve1", &QueryOptions{Index: 12, Wait: 5 * time.Minute})
			return v, err
		}, "GET /v1/sdn/hosts/pve1/plan?index=12&wait=5m0s", "", func(t *testing.T, v any) {
			p := v.(*SDNPlanView)
			if p.Version != 2 || p.Committed != 1 || p.RolloutID != "r-1" || p.Phase != RolloutPreparing || p.Plan.Version != 2 || len(p.Plan.Links) != 2 {
				t.Fatalf("%+v", p)
			}
			if l := p.Plan.Links[1]; l.Kind != sdn.LinkVXLAN || l.VNI != 5000 || l.Master != "web" || len(l.Peers) != 1 || l.Port != 4789 {
				t.Errorf("vxlan link %+v", l)
			}
			if len(p.Plan.Firewall.Bridges) != 1 {
				t.Errorf("firewall %+v", p.Plan.Firewall)
			}
		}},
		{"host plan escapes", func() (any, error) { v, _, err := c.SDNHostPlan(ctx, "a/b", nil); return v, err },
			"GET /v1/sdn/hosts/a/b/plan", "", nil}, // the fake routes on the escaped path
		{"host report", func() (any, error) {
			v, _, err := c.SDNHostReport(ctx, "pve1", SDNReport{Version: 2, State: HostFailed, Error: "EPERM", Drift: []string{"x"}, Actions: 1}, nil)
			return v, err
		}, "POST /v1/sdn/hosts/pve1/report", `{"version": 2, "state": "failed", "error": "EPERM", "drift": ["x"], "actions": 1}`, func(t *testing.T, v any) {
			if st := v.(*SDNHostState); st.Host != "pve1" || st.Applied != 2 {
				t.Errorf("%+v", st)
			}
		}},
		{"host report applied", func() (any, error) {
			v, _, err := c.SDNHostReport(ctx, "pve1", SDNReport{Version: 0, State: HostApplied}, nil)
			return v, err
		}, "POST /v1/sdn/hosts/pve1/report", `{"version": 0, "state": "applied"}`, nil},

		{"apply", func() (any, error) {
			v, _, err := c.SDNApply(ctx, SDNApplyRequest{Timeout: 90 * time.Second}, wo)
			return v, err
		}, "POST /v1/sdn/apply", `{"timeout": "1m30s"}`, func(t *testing.T, v any) {
			res := v.(*SDNApplyResult)
			r := res.Rollout
			if r == nil || res.Version != 2 || res.NoChange || r.ID != "r-1" || r.Version != 2 || r.Done() || len(r.Hosts) != 2 ||
				r.Previous["pve2"] != 1 || len(r.Changes["pve1"]) != 2 || r.Changes["pve1"][0].Op != sdn.OpAdd || r.Deadline.IsZero() || r.ModifyIndex != 9 {
				t.Errorf("%+v", res)
			}
		}},
		{"apply dry run", func() (any, error) { v, _, err := c.SDNApply(ctx, SDNApplyRequest{DryRun: true}, nil); return v, err },
			"POST /v1/sdn/apply", `{"dry_run": true}`, nil},
		{"rollout list", func() (any, error) { v, _, err := c.SDNRolloutList(ctx, nil); return v, err }, "GET /v1/sdn/rollouts", "", nil},
		{"rollout get", func() (any, error) { v, _, err := c.SDNRolloutGet(ctx, "r-1", nil); return v, err }, "GET /v1/sdn/rollouts/r-1", "", nil},
		{"rollout abort", func() (any, error) { v, _, err := c.SDNRolloutAbort(ctx, "r-1", "window over", nil); return v, err },
			"POST /v1/sdn/rollouts/r-1/abort", `{"reason": "window over"}`, nil},
		{"rollout abort without reason", func() (any, error) { v, _, err := c.SDNRolloutAbort(ctx, "r-1", "", nil); return v, err },
			"POST /v1/sdn/rollouts/r-1/abort", `{}`, nil},
		{"status", func() (any, error) { v, _, err := c.SDNStatus(ctx, nil); return v, err }, "GET /v1/sdn/status", "", func(t *testing.T, v any) {
			st := v.(*SDNStatus)
			if st.Version != 2 || st.Committed != 1 || st.Rollout == nil || len(st.Hosts) != 1 || !st.Hosts[0].Enrolled || st.Hosts[0].Target != 2 {
				t.Errorf("%+v", st)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.requests())
			v, err := tt.call()
			if err != nil {
				t.Fatal(err)
			}
			reqs := f.requests()[before:]
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			got := r.method + " " + r.path
			if r.query != "" {
				got += "?" + r.query
			}
			if got != tt.req {
				t.Errorf("request %q, want %q", got, tt.req)
			}
			if write := r.method != http.MethodGet; write != (r.header.Get("Idempotency-Key") != "") {
				t.Errorf("%s with Idempotency-Key %q", r.method, r.header.Get("Idempotency-Key"))
			}
			if tt.body == "" {
				if len(r.body) != 0 {
					t.Errorf("body %s, want none", r.body)
				}
			} else {
				checkBody(t, r.body, tt.body)
			}
			if tt.check != nil {
				tt.check(t, v)
			}
		})
	}

	// A given key is sent as it is.
	before := len(f.requests())
	if _, _, err := c.SDNApply(ctx, SDNApplyRequest{}, wo); err != nil {
		t.Fatal(err)
	}
	if r := f.requests()[before]; r.header.Get("Idempotency-Key") != "k1" || string(r.body) != "{}" {
		t.Errorf("key %q body %s", r.header.Get("Idempotency-Key"), r.body)
	}

	// Errors carry their code and field.
	_, _, err := c.SDNRolloutAbort(ctx, "gone?", "", nil)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 409 || ae.Code != "conflict" || ae.Field != "id" {
		t.Fatalf("abort error %#v", err)
	}
}

// TestWaitSDNRollout follows a rollout through blocking reads to its end:
// committed is success, aborted an *SDNRolloutAbortedError.
func TestWaitSDNRollout(t *testing.T) {
	for _, end := range []string{RolloutCommitted, RolloutAborted} {
		t.Run(end, func(t *testing.T) {
			var mu sync.Mutex
			var queries []string
			reads := 0
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				queries = append(queries, r.URL.RawQuery)
				reads++
				ro := map[string]any{"id": "r-1", "version": 2, "phase": "preparing", "hosts": []string{"pve1", "pve2"},
					"prepared": []string{}, "modify_index": 8}
				switch reads {
				case 1:
				case 2:
					ro["prepared"], ro["modify_index"] = []string{"pve1"}, 9
				case 3:
					// The wait ended without a change.
					ro["prepared"], ro["modify_index"] = []string{"pve1"}, 9
				default:
					ro["phase"], ro["modify_index"] = end, 10
					if end == RolloutAborted {
						ro["reason"] = "host pve2: RTNETLINK answers:\nFile exists"
					} else {
						ro["prepared"] = []string{"pve1", "pve2"}
					}
				}
				w.Header().Set("X-Moxxie-Index", []string{"", "8", "9", "9", "10"}[min(reads, 4)])
				writeJSON(w, 200, ro)
			})
			c := f.client(t, Config{})
			var seen []string
			r, err := c.WaitSDNRollout(context.Background(), "r-1", func(r *SDNRollout) {
				seen = append(seen, r.Phase+":"+strings.Join(r.Prepared, ","))
			})
			if r == nil || r.Phase != end {
				t.Fatalf("rollout %+v, %v", r, err)
			}
			want := "preparing:,preparing:pve1," + end + ":"
			if end == RolloutCommitted {
				want += "pve1,pve2"
			}
			if got := strings.Join(seen, ","); got != want {
				t.Errorf("progress %q, want %q", got, want)
			}
			var abortErr *SDNRolloutAbortedError
			switch {
			case end == RolloutCommitted && err != nil:
				t.Fatalf("committed with %v", err)
			case end == RolloutAborted && !errors.As(err, &abortErr):
				t.Fatalf("aborted with %v", err)
			case end == RolloutAborted && err.Error() != "rollout r-1 of version 2 aborted: host pve2: RTNETLINK answers: File exists; every host was sent back to its previous version":
				t.Errorf("error %q", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(queries) != 4 || queries[0] != "" || queries[1] != "index=8&wait=30s" || queries[3] != "index=9&wait=30s" {
				t.Errorf("queries %q", queries)
			}
		})
	}
}
