package api

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/quota"
)

const gib = 1 << 30

// capacityView is four nodes: pve1 small and busy, pve2 large, pve3
// offline, pve4 in the "dense" group; pve1 and pve2 have local image
// storage.
func capacityView() *fsm.CapacityView {
	node := func(name string, cpu int, memGiB uint64, online bool) *fsm.InvNode {
		st := "online"
		if !online {
			st = "offline"
		}
		return &fsm.InvNode{Name: name, Status: st, MaxCPU: cpu, MaxMem: memGiB * gib}
	}
	return &fsm.CapacityView{
		Nodes: []*fsm.InvNode{node("pve1", 8, 16, true), node("pve2", 16, 32, true), node("pve3", 64, 256, false), node("pve4", 4, 64, true)},
		Storage: []*fsm.InvStorage{
			{Node: "pve1", Storage: "local-lvm", Content: []string{"images"}, Total: 100 * gib},
			{Node: "pve2", Storage: "local-lvm", Content: []string{"images"}, Total: 1000 * gib},
			{Node: "pve2", Storage: "nfs", Content: []string{"images"}, Shared: true, Total: 9000 * gib},
		},
		Allocated: map[string]quota.Capacity{
			"pve1": {VCPUs: 30, MemoryMiB: 12 << 10, DiskGiB: 90},
			"pve2": {VCPUs: 8, MemoryMiB: 8 << 10, DiskGiB: 100},
		},
		Policies: []*fsm.CapacityPolicy{
			{ID: "dense", Nodes: []string{"pve4"}, Policy: quota.Policy{CPURatio: 8, MemoryRatio: 1, ReserveMemoryMiB: 4 << 10}},
		},
	}
}

func TestCapacity_Placement(t *testing.T) {
	m := newCapacityModel(capacityView())
	cases := []struct {
		name   string
		want   string
		req    quota.Capacity
		node   string
		status int
		field  string
	}{
		// pve4: 32 vCPUs (8x4) and 60 GiB (64 less 4 reserved), empty.
		{name: "most room", req: quota.Capacity{VCPUs: 2, MemoryMiB: 2048}, node: "pve4"},
		{name: "memory rules out the emptiest", req: quota.Capacity{VCPUs: 2, MemoryMiB: 62 << 10}, status: 409, field: "node"},
		// pve1 has 32 vCPUs (4x8) with 30 allocated.
		{name: "requested node", want: "pve1", req: quota.Capacity{VCPUs: 2, MemoryMiB: 4096, DiskGiB: 10}, node: "pve1"},
		{name: "requested node out of vcpus", want: "pve1", req: quota.Capacity{VCPUs: 3, MemoryMiB: 1024}, status: 409, field: "node"},
		{name: "requested node out of local disk", want: "pve1", req: quota.Capacity{VCPUs: 1, MemoryMiB: 1024, DiskGiB: 11}, status: 409, field: "node"},
		// pve4 has no local image storage: its disks are on shared storage.
		{name: "disk on a node without local storage", want: "pve4", req: quota.Capacity{VCPUs: 1, MemoryMiB: 1024, DiskGiB: 5000}, node: "pve4"},
		{name: "requested node offline", want: "pve3", req: quota.Capacity{VCPUs: 1}, status: 409, field: "node"},
		{name: "more cores than the node has CPUs", want: "pve4", req: quota.Capacity{VCPUs: 5, MemoryMiB: 1}, status: 400, field: "cores"},
		{name: "more cores than any online node has", req: quota.Capacity{VCPUs: 17, MemoryMiB: 1}, status: 409, field: "node"},
		{name: "requested node unknown", want: "pve9", req: quota.Capacity{VCPUs: 1}, status: 400, field: "node"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := m.place(tc.want, tc.req)
			if tc.status == 0 {
				if err != nil || got != tc.node {
					t.Fatalf("place = %q, %v; want %q", got, err, tc.node)
				}
				return
			}
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != tc.status || ae.field != tc.field {
				t.Fatalf("place error %v, want %d naming %s", err, tc.status, tc.field)
			}
		})
	}
}

func TestCapacity_Report(t *testing.T) {
	ts := newLeader(t)
	now := ts.b.Now()
	sync := &fsm.InventorySyncRequest{
		Nodes:   []fsm.InvNode{{Name: "pve1", Status: "online", MaxCPU: 10, MaxMem: 100 * gib, CPU: 0.5, Mem: 20 * gib}},
		Storage: []fsm.InvStorage{{ID: "pve1/local-lvm", Node: "pve1", Storage: "local-lvm", Content: []string{"images"}, Total: 1000 * gib, Used: 10 * gib}},
	}
	apply := func(cmd fsm.Command) {
		t.Helper()
		if res, _, err := ts.b.Apply(t.Context(), cmd); err != nil || res.Err != nil {
			t.Fatalf("%T: %v %v", cmd, err, res.Err)
		}
	}
	apply(sync)
	// Ten days of history, one sample a day, each 2 vCPUs and 4 GiB more:
	// a guest appears before each day's first tick.
	for d := 10; d >= 1; d-- {
		g := fsm.InvGuest{VMID: 100 + d, Kind: fsm.GuestKindVM, Node: "pve1", Status: "running", MaxCPU: 2, MaxMem: 4 * gib}
		apply(&fsm.InventorySyncRequest{Guests: []fsm.InvGuest{g}})
		apply(&fsm.MeterTickRequest{WriteMeta: fsm.WriteMeta{Now: now.Add(-time.Duration(d) * 24 * time.Hour).UnixNano()}})
	}
	var r CapacityReport
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/capacity?window=30d", ""), http.StatusOK), &r)
	if len(r.Nodes) != 1 {
		t.Fatalf("nodes %+v", r.Nodes)
	}
	n := r.Nodes[0]
	// Built-in default: 4 vCPUs per core, memory as it is.
	if n.Allocatable != (quota.Capacity{VCPUs: 40, MemoryMiB: 100 << 10, DiskGiB: 1000}) ||
		n.Allocated != (quota.Capacity{VCPUs: 20, MemoryMiB: 40 << 10}) ||
		n.Used != (quota.Capacity{VCPUs: 5, MemoryMiB: 20 << 10, DiskGiB: 10}) || n.Free.VCPUs != 20 {
		t.Fatalf("node %+v", n)
	}
	// Growing 2 vCPUs a day from 2 (ten days ago) to 20 (yesterday): the
	// fitted line is at 22 now and reaches 40 in 9 days; memory (4 GiB a
	// day, 44 now) reaches 100 GiB in 14; disk is not growing.
	if f := n.Forecast; f.VCPUs == nil || *f.VCPUs != 9 || f.MemoryMiB == nil || *f.MemoryMiB != 14 || f.DiskGiB != nil {
		t.Fatalf("forecast vcpus %v memory %v disk %v", deref(n.Forecast.VCPUs), deref(n.Forecast.MemoryMiB), n.Forecast.DiskGiB)
	}
	if r.Cluster.Forecast.VCPUs == nil || *r.Cluster.Forecast.VCPUs != 9 {
		t.Fatalf("cluster forecast %+v", r.Cluster.Forecast)
	}
	wantError(t, ts.do("GET", "/v1/capacity?window=1y", ""), http.StatusBadRequest, CodeInvalidRequest, "window")

	// Policies: a group, then a node in two groups and a bad ratio.
	wantStatus(t, ts.do("PUT", "/v1/capacity/policies/dense", `{"nodes":["pve1"],"cpu_ratio":8}`), http.StatusOK)
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/capacity", ""), http.StatusOK), &r)
	if r.Nodes[0].Group != "dense" || r.Nodes[0].Allocatable.VCPUs != 80 {
		t.Fatalf("with the dense policy: %+v", r.Nodes[0])
	}
	wantError(t, ts.do("PUT", "/v1/capacity/policies/other", `{"nodes":["pve1"]}`), http.StatusConflict, CodeConflict, "nodes")
	wantError(t, ts.do("PUT", "/v1/capacity/policies/default", `{"nodes":["pve1"]}`), http.StatusBadRequest, CodeInvalidRequest, "nodes")
	wantError(t, ts.do("PUT", "/v1/capacity/policies/x", `{"nodes":["pve2"],"cpu_ratio":1000}`), http.StatusBadRequest, CodeInvalidRequest, "policy")
	wantStatus(t, ts.do("DELETE", "/v1/capacity/policies/dense", ""), http.StatusOK)
	wantError(t, ts.do("DELETE", "/v1/capacity/policies/dense", ""), http.StatusNotFound, CodeNotFound, "id")
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
