package client

import (
	"context"
	"net/http"
	"testing"
)

// Answers in the shapes of api/handlers_capacity.go: the headroom is
// embedded, so its fields sit next to the node's.
const (
	testCapacityJSON = `{"window_days": 7,
		"cluster": {"physical": {"vcpus": 24, "memory_mib": 98304, "disk_gib": 350},
			"allocatable": {"vcpus": 64, "memory_mib": 65536, "disk_gib": 350}, "allocated": {"vcpus": 9, "memory_mib": 12800, "disk_gib": 40},
			"used": {"vcpus": 3, "memory_mib": 30720, "disk_gib": 41}, "free": {"vcpus": 55, "memory_mib": 52736, "disk_gib": 310},
			"forecast_days": {"vcpus": 12.5, "memory_mib": null, "disk_gib": null}},
		"nodes": [
			{"name": "pve1", "group": "dense", "online": true, "physical": {"vcpus": 16, "memory_mib": 65536, "disk_gib": 350},
			 "allocatable": {"vcpus": 64, "memory_mib": 65536, "disk_gib": 350}, "allocated": {"vcpus": 9, "memory_mib": 12800, "disk_gib": 40},
			 "used": {"vcpus": 3, "memory_mib": 30720, "disk_gib": 41}, "free": {"vcpus": 55, "memory_mib": 52736, "disk_gib": 310},
			 "forecast_days": {"vcpus": 12.5, "memory_mib": 0, "disk_gib": null}},
			{"name": "pve3", "group": "", "online": false, "physical": {"vcpus": 8, "memory_mib": 32768, "disk_gib": 0},
			 "allocatable": {"vcpus": 0, "memory_mib": 0, "disk_gib": 0}, "allocated": {"vcpus": 0, "memory_mib": 0, "disk_gib": 0},
			 "used": {"vcpus": 0, "memory_mib": 0, "disk_gib": 0}, "free": {"vcpus": 0, "memory_mib": 0, "disk_gib": 0},
			 "forecast_days": {"vcpus": null, "memory_mib": null, "disk_gib": null}}]}`
	testPolicy = `{"id": "dense", "nodes": ["pve1", "pve2"], "cpu_ratio": 8, "memory_ratio": 1.2, "disk_ratio": 0,
		"reserve_vcpus": 2, "reserve_memory_mib": 8192, "reserve_disk_gib": 100, "create_index": 9, "modify_index": 9, "updated_at": 1764000000000000000}`
)

func capacityFake(t *testing.T) *fake {
	raw := func(body string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(body))
		}
	}
	routes := map[string]func(w http.ResponseWriter){
		"GET /v1/capacity":                   raw(testCapacityJSON),
		"GET /v1/capacity/policies":          raw(`{"policies": [` + testPolicy + `], "builtin_default": {"cpu_ratio": 4, "memory_ratio": 1, "disk_ratio": 1, "reserve_vcpus": 0, "reserve_memory_mib": 0, "reserve_disk_gib": 0}}`),
		"PUT /v1/capacity/policies/dense":    raw(testPolicy),
		"PUT /v1/capacity/policies/default":  raw(`{"id": "default", "cpu_ratio": 2, "memory_ratio": 0, "disk_ratio": 0, "reserve_vcpus": 0, "reserve_memory_mib": 0, "reserve_disk_gib": 0, "create_index": 10, "modify_index": 10, "updated_at": 1764000000000000000}`),
		"DELETE /v1/capacity/policies/dense": raw(testPolicy),
	}
	return newFake(t, func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.EscapedPath()
		if h := routes[key]; h != nil {
			h(w)
			return
		}
		writeErr(w, 404, "not_found", "no route "+key, "")
	})
}

func TestCapacity_Requests(t *testing.T) {
	f := capacityFake(t)
	c := f.client(t, Config{})
	ctx := context.Background()
	days := func(p *float64) any {
		if p == nil {
			return nil
		}
		return *p
	}

	runRequestCases(t, f, []requestCase{
		{"report", func() (any, error) { v, _, err := c.Capacity(ctx, "7d"); return v, err },
			"GET /v1/capacity?window=7d", "", func(t *testing.T, v any) {
				r := v.(*CapacityReport)
				if r.WindowDays != 7 || len(r.Nodes) != 2 {
					t.Fatalf("%+v", r)
				}
				n := r.Nodes[0]
				if n.Name != "pve1" || n.Group != "dense" || !n.Online || n.Physical != (Capacity{16, 65536, 350}) ||
					n.Allocatable != (Capacity{64, 65536, 350}) || n.Allocated != (Capacity{9, 12800, 40}) ||
					n.Used != (Capacity{3, 30720, 41}) || n.Free != (Capacity{55, 52736, 310}) {
					t.Errorf("node %+v", n)
				}
				// A forecast of 0 days (full already) is not "not filling up".
				if days(n.Forecast.VCPUs) != 12.5 || days(n.Forecast.MemoryMiB) != 0.0 || n.Forecast.DiskGiB != nil {
					t.Errorf("forecast %v %v %v", days(n.Forecast.VCPUs), days(n.Forecast.MemoryMiB), days(n.Forecast.DiskGiB))
				}
				if p := r.Nodes[1]; p.Online || p.Forecast != (CapacityForecast{}) {
					t.Errorf("offline node %+v", p)
				}
				cl := r.Cluster
				if cl.Physical.VCPUs != 24 || cl.Allocatable.VCPUs != 64 || cl.Free.MemoryMiB != 52736 || days(cl.Forecast.VCPUs) != 12.5 {
					t.Errorf("cluster %+v", cl)
				}
			}},
		{"report default window", func() (any, error) { v, _, err := c.Capacity(ctx, ""); return v, err },
			"GET /v1/capacity", "", nil},
		{"policy list", func() (any, error) { v, _, err := c.CapacityPolicyList(ctx, nil); return v, err },
			"GET /v1/capacity/policies", "", func(t *testing.T, v any) {
				l := v.(*CapacityPolicies)
				if len(l.Policies) != 1 {
					t.Fatalf("%+v", l)
				}
				p := l.Policies[0]
				if p.ID != "dense" || len(p.Nodes) != 2 || p.CPURatio != 8 || p.MemoryRatio != 1.2 || p.DiskRatio != 0 ||
					p.ReserveVCPUs != 2 || p.ReserveMemoryMiB != 8192 || p.ReserveDiskGiB != 100 || p.ModifyIndex != 9 || p.UpdatedAt.IsZero() {
					t.Errorf("%+v", p)
				}
				if b := l.Builtin; b.ID != DefaultPolicyID || b.CPURatio != 4 || b.MemoryRatio != 1 || b.DiskRatio != 1 {
					t.Errorf("builtin %+v", b)
				}
			}},
		{"policy put", func() (any, error) {
			v, _, err := c.CapacityPolicyPut(ctx, "dense", CapacityPolicyRequest{Nodes: []string{"pve1", "pve2"}, CPURatio: 8, MemoryRatio: 1.2,
				ReserveVCPUs: 2, ReserveMemoryMiB: 8192, ReserveDiskGiB: 100}, nil)
			return v, err
		}, "PUT /v1/capacity/policies/dense", `{"nodes": ["pve1", "pve2"], "cpu_ratio": 8, "memory_ratio": 1.2,
			"reserve_vcpus": 2, "reserve_memory_mib": 8192, "reserve_disk_gib": 100}`, func(t *testing.T, v any) {
			if p := v.(*CapacityPolicy); p.ID != "dense" || p.CPURatio != 8 {
				t.Errorf("%+v", p)
			}
		}},
		// The default policy names no nodes; what is not given is 1 or none.
		{"policy put default", func() (any, error) {
			v, _, err := c.CapacityPolicyPut(ctx, DefaultPolicyID, CapacityPolicyRequest{CPURatio: 2}, nil)
			return v, err
		}, "PUT /v1/capacity/policies/default", `{"cpu_ratio": 2}`, nil},
		{"policy delete", func() (any, error) { v, _, err := c.CapacityPolicyDelete(ctx, "dense", nil); return v, err },
			"DELETE /v1/capacity/policies/dense", "", nil},
	})
}
