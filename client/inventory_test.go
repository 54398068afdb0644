package client

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// Answers in the shapes of the inventory API (fsm/inventory_types.go).
var (
	testInvMeta = map[string]any{"gone": false, "first_seen": "2025-06-01T12:00:00Z", "last_seen": "2025-06-01T12:05:00Z",
		"last_changed": "2025-06-01T12:01:00Z", "create_index": 20, "modify_index": 21}
	testInvState = map[string]any{"last_sync": "2025-06-01T12:05:00Z", "stale": true, "stale_since": "2025-06-01T12:06:00Z",
		"error": "provider: platform unavailable: dial tcp: connection refused", "nodes": 3, "guests": 12, "storage": 6}
	testInvNode = withMeta(map[string]any{"name": "pve1", "status": "online", "maxcpu": 16, "maxmem": 68719476736,
		"maxdisk": 107374182400, "cpu": 0.125, "mem": 17179869184, "disk": 10737418240})
	testInvGuest = withMeta(map[string]any{"vmid": 101, "kind": "qemu", "node": "pve1", "name": "web1", "status": "running",
		"template": false, "tags": []string{"tenant.acme", "web"}, "pool": "prod", "tenant": "acme", "lock": "backup",
		"maxcpu": 2, "maxmem": 2147483648, "maxdisk": 34359738368})
	testInvGoneGuest = withMeta(map[string]any{"vmid": 102, "kind": "lxc", "node": "pve2", "name": "old", "status": "stopped",
		"template": false, "maxcpu": 1, "maxmem": 536870912, "maxdisk": 8589934592, "gone": true, "gone_at": "2025-06-01T12:04:00Z"})
	testInvStorage = withMeta(map[string]any{"id": "pve1/local-lvm", "node": "pve1", "storage": "local-lvm", "type": "lvmthin",
		"content": []string{"images", "rootdir"}, "shared": false, "status": "available", "used": 1073741824, "total": 107374182400})
)

// withMeta returns o with the InvMeta fields of testInvMeta it lacks.
func withMeta(o map[string]any) map[string]any {
	for k, v := range testInvMeta {
		if _, ok := o[k]; !ok {
			o[k] = v
		}
	}
	return o
}

// inventoryFake answers every inventory route with a canned object.
func inventoryFake(t *testing.T) *fake {
	routes := map[string]func() (int, any){
		"GET /v1/inventory":       func() (int, any) { return 200, testInvState },
		"GET /v1/inventory/nodes": func() (int, any) { return 200, map[string]any{"nodes": []any{testInvNode}} },
		"GET /v1/inventory/nodes/pve1": func() (int, any) {
			return 200, testInvNode
		},
		"GET /v1/inventory/guests": func() (int, any) {
			return 200, map[string]any{"guests": []any{testInvGuest, testInvGoneGuest}}
		},
		"GET /v1/inventory/guests/101": func() (int, any) { return 200, testInvGuest },
		"GET /v1/inventory/storage":    func() (int, any) { return 200, map[string]any{"storage": []any{testInvStorage}} },
	}
	return newFake(t, func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.EscapedPath()
		h, ok := routes[key]
		if !ok {
			writeErr(w, 404, "not_found", "no route "+key, "")
			return
		}
		status, body := h()
		writeJSON(w, status, body)
	})
}

// requestCase is one call of a client method and the request it must make.
type requestCase struct {
	name  string
	call  func() (any, error)
	req   string // METHOD path?query
	body  string // JSON, compared as values; empty: no body
	check func(t *testing.T, v any)
}

// runRequestCases makes each call against f and checks the one request it
// sent: method, path, query, body, and an Idempotency-Key on writes only.
func runRequestCases(t *testing.T, f *fake, tests []requestCase) {
	t.Helper()
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
				var gotBody, wantBody any
				if err := json.Unmarshal(r.body, &gotBody); err != nil {
					t.Fatalf("body %s: %v", r.body, err)
				}
				if err := json.Unmarshal([]byte(tt.body), &wantBody); err != nil {
					t.Fatal(err)
				}
				g, _ := json.Marshal(gotBody)
				w, _ := json.Marshal(wantBody)
				if string(g) != string(w) {
					t.Errorf("body %s, want %s", g, w)
				}
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
			}
			if tt.check != nil {
				tt.check(t, v)
			}
		})
	}
}

func TestInventory_Requests(t *testing.T) {
	f := inventoryFake(t)
	c := f.client(t, Config{})
	ctx := context.Background()
	yes, no := true, false
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	runRequestCases(t, f, []requestCase{
		{"state", func() (any, error) { v, _, err := c.InventoryState(ctx, nil); return v, err },
			"GET /v1/inventory", "", func(t *testing.T, v any) {
				s := v.(*InvState)
				if !s.Stale || !s.LastSync.Equal(at("2025-06-01T12:05:00Z")) || !s.StaleSince.Equal(at("2025-06-01T12:06:00Z")) ||
					s.Error == "" || s.Nodes != 3 || s.Guests != 12 || s.Storage != 6 {
					t.Errorf("%+v", s)
				}
			}},
		{"state blocking", func() (any, error) {
			v, _, err := c.InventoryState(ctx, &QueryOptions{Index: 7, Wait: 30 * time.Second})
			return v, err
		}, "GET /v1/inventory?index=7&wait=30s", "", nil},
		{"nodes", func() (any, error) { v, _, err := c.InventoryNodes(ctx, false, nil); return v, err },
			"GET /v1/inventory/nodes", "", func(t *testing.T, v any) {
				l := v.([]InvNode)
				if len(l) != 1 {
					t.Fatalf("%+v", l)
				}
				n := l[0]
				if n.Name != "pve1" || n.Status != "online" || n.MaxCPU != 16 || n.MaxMem != 64<<30 || n.MaxDisk != 100<<30 ||
					n.CPU != 0.125 || n.Mem != 16<<30 || n.Disk != 10<<30 || n.Gone || n.CreateIndex != 20 || n.ModifyIndex != 21 ||
					!n.FirstSeen.Equal(at("2025-06-01T12:00:00Z")) || !n.LastSeen.Equal(at("2025-06-01T12:05:00Z")) ||
					!n.LastChanged.Equal(at("2025-06-01T12:01:00Z")) || !n.GoneAt.IsZero() {
					t.Errorf("%+v", n)
				}
			}},
		{"nodes include gone stale", func() (any, error) {
			v, _, err := c.InventoryNodes(ctx, true, &QueryOptions{Stale: true})
			return v, err
		}, "GET /v1/inventory/nodes?include_gone=true&stale=true", "", nil},
		{"node", func() (any, error) { v, _, err := c.InventoryNode(ctx, "pve1", nil); return v, err },
			"GET /v1/inventory/nodes/pve1", "", func(t *testing.T, v any) {
				if n := v.(*InvNode); n.Name != "pve1" || n.MaxCPU != 16 {
					t.Errorf("%+v", n)
				}
			}},
		{"guests", func() (any, error) { v, _, err := c.InventoryGuests(ctx, GuestFilter{}, nil); return v, err },
			"GET /v1/inventory/guests", "", func(t *testing.T, v any) {
				l := v.([]InvGuest)
				if len(l) != 2 {
					t.Fatalf("%+v", l)
				}
				g := l[0]
				if g.VMID != 101 || g.Kind != GuestKindVM || g.Node != "pve1" || g.Name != "web1" || g.Status != "running" || g.Template ||
					len(g.Tags) != 2 || g.Tags[1] != "web" || g.Pool != "prod" || g.Tenant != "acme" || g.Lock != "backup" ||
					g.MaxCPU != 2 || g.MaxMem != 2<<30 || g.MaxDisk != 32<<30 || g.ModifyIndex != 21 {
					t.Errorf("%+v", g)
				}
				if g := l[1]; !g.Gone || g.Kind != GuestKindContainer || !g.GoneAt.Equal(at("2025-06-01T12:04:00Z")) {
					t.Errorf("gone guest %+v", g)
				}
			}},
		{"guests filtered", func() (any, error) {
			v, _, err := c.InventoryGuests(ctx, GuestFilter{Node: "pve1", Tag: "web", Tenant: "acme", Status: "running",
				Kind: GuestKindVM, Template: &no, IncludeGone: true}, &QueryOptions{Index: 9})
			return v, err
		}, "GET /v1/inventory/guests?include_gone=true&index=9&kind=qemu&node=pve1&status=running&tag=web&template=false&tenant=acme&wait=5m0s", "", nil},
		{"templates", func() (any, error) {
			v, _, err := c.InventoryGuests(ctx, GuestFilter{Template: &yes}, nil)
			return v, err
		}, "GET /v1/inventory/guests?template=true", "", nil},
		{"guest", func() (any, error) { v, _, err := c.InventoryGuest(ctx, 101, nil); return v, err },
			"GET /v1/inventory/guests/101", "", func(t *testing.T, v any) {
				if g := v.(*InvGuest); g.VMID != 101 || g.Name != "web1" {
					t.Errorf("%+v", g)
				}
			}},
		{"storage", func() (any, error) { v, _, err := c.InventoryStorage(ctx, false, nil); return v, err },
			"GET /v1/inventory/storage", "", func(t *testing.T, v any) {
				l := v.([]InvStorage)
				if len(l) != 1 {
					t.Fatalf("%+v", l)
				}
				s := l[0]
				if s.ID != "pve1/local-lvm" || s.Node != "pve1" || s.Storage != "local-lvm" || s.Type != "lvmthin" ||
					len(s.Content) != 2 || s.Shared || s.Status != "available" || s.Used != 1<<30 || s.Total != 100<<30 || s.CreateIndex != 20 {
					t.Errorf("%+v", s)
				}
			}},
		{"storage include gone", func() (any, error) { v, _, err := c.InventoryStorage(ctx, true, nil); return v, err },
			"GET /v1/inventory/storage?include_gone=true", "", nil},
	})
}

func TestInventory_Errors(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/inventory/guests/99":
			writeErr(w, 400, "invalid_request", `must be a number from 100 to 999999999, not "99"`, "vmid")
		case "/v1/inventory/guests":
			writeErr(w, 400, "invalid_request", `must be qemu or lxc, not "vm"`, "kind")
		default:
			writeErr(w, 404, "not_found", `node "pve9" not found`, "name")
		}
	})
	c := f.client(t, Config{})
	ctx := context.Background()
	if _, _, err := c.InventoryNode(ctx, "pve9", nil); !IsNotFound(err) {
		t.Errorf("unknown node: %v", err)
	}
	_, _, err := c.InventoryGuest(ctx, 99, nil)
	if err == nil || err.Error() != `400 invalid_request: must be a number from 100 to 999999999, not "99" (field vmid, request req-1)` {
		t.Errorf("bad vmid: %v", err)
	}
	if _, _, err := c.InventoryGuests(ctx, GuestFilter{Kind: "vm"}, nil); StatusCode(err) != 400 {
		t.Errorf("bad kind: %v", err)
	}
}
