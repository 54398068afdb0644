package quota

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestPolicy_Validate(t *testing.T) {
	cases := []struct {
		name    string
		p       Policy
		wantErr string // substring; "" means valid
	}{
		{"default", DefaultPolicy(), ""},
		{"zero value", Policy{}, ""},
		{"bounds", Policy{CPURatio: MinRatio, MemoryRatio: MaxRatio, DiskRatio: 1.5, ReserveVCPUs: 2, ReserveMemoryMiB: 4096, ReserveDiskGiB: MaxLimit}, ""},
		{"cpu ratio too small", Policy{CPURatio: 0.05}, "cpu_ratio"},
		{"memory ratio too large", Policy{MemoryRatio: 100.5}, "memory_ratio"},
		{"disk ratio negative", Policy{DiskRatio: -1}, "disk_ratio"},
		{"disk ratio NaN", Policy{DiskRatio: math.NaN()}, "disk_ratio"},
		{"cpu ratio infinite", Policy{CPURatio: math.Inf(1)}, "cpu_ratio"},
		{"negative vcpu reserve", Policy{ReserveVCPUs: -1}, "reserve_vcpus"},
		{"negative memory reserve", Policy{ReserveMemoryMiB: -1}, "reserve_memory_mib"},
		{"disk reserve too large", Policy{ReserveDiskGiB: MaxLimit + 1}, "reserve_disk_gib"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want ErrInvalid naming %q", err, tc.wantErr)
			}
		})
	}
}

func TestCapacity_AddSub(t *testing.T) {
	a := Capacity{VCPUs: 8, MemoryMiB: 16384, DiskGiB: 100}
	b := Capacity{VCPUs: 10, MemoryMiB: 1024, DiskGiB: 1}
	if got, want := a.Add(b), (Capacity{18, 17408, 101}); got != want {
		t.Errorf("Add = %+v, want %+v", got, want)
	}
	if got, want := a.Sub(b), (Capacity{-2, 15360, 99}); got != want {
		t.Errorf("Sub = %+v, want %+v", got, want)
	}
}

func TestAllocatable(t *testing.T) {
	cases := []struct {
		name     string
		physical Capacity
		p        Policy
		want     Capacity
	}{
		{"zero policy is no overcommit", Capacity{16, 65536, 500}, Policy{}, Capacity{16, 65536, 500}},
		{"default policy", Capacity{16, 65536, 500}, DefaultPolicy(), Capacity{16, 65536, 500}},
		// 3 × 1.5 = 4.5, floored.
		{"ratio 1.5 on 3 cores", Capacity{VCPUs: 3}, Policy{CPURatio: 1.5}, Capacity{VCPUs: 4}},
		{"ratio 1.5 on 4 cores", Capacity{VCPUs: 4}, Policy{CPURatio: 1.5}, Capacity{VCPUs: 6}},
		// 0.29 × 100 is 28.999999999999996 in float64; it counts as 29.
		{"ratio 0.29 on 100", Capacity{VCPUs: 100}, Policy{CPURatio: 0.29}, Capacity{VCPUs: 29}},
		// 0.1 × 3 is 0.30000000000000004: floored to 0, not snapped.
		{"ratio 0.1 on 3", Capacity{VCPUs: 3}, Policy{CPURatio: 0.1}, Capacity{}},
		// 0.333 × 3 = 0.999 is not within 1e-12 of 1.
		{"ratio 0.333 on 3", Capacity{VCPUs: 3}, Policy{CPURatio: 0.333}, Capacity{}},
		// 4 × 64 = 256 − 2 reserved; 0.9 × 65536 = 58982.4 → 58982 − 4096.
		{"ratios and reserves", Capacity{64, 65536, 1000}, Policy{CPURatio: 4, MemoryRatio: 0.9, DiskRatio: 2, ReserveVCPUs: 2, ReserveMemoryMiB: 4096, ReserveDiskGiB: 50}, Capacity{254, 54886, 1950}},
		{"reserve above hardware", Capacity{2, 1024, 10}, Policy{ReserveVCPUs: 4, ReserveMemoryMiB: 2048, ReserveDiskGiB: 10}, Capacity{}},
		{"no hardware", Capacity{}, Policy{CPURatio: 8}, Capacity{}},
		{"negative hardware", Capacity{VCPUs: -4}, Policy{}, Capacity{}},
		{"capped at MaxLimit", Capacity{VCPUs: MaxLimit}, Policy{CPURatio: 100}, Capacity{VCPUs: MaxLimit}},
		{"NaN ratio", Capacity{VCPUs: 8}, Policy{CPURatio: math.NaN()}, Capacity{}},
		{"negative ratio", Capacity{VCPUs: 8}, Policy{CPURatio: -2}, Capacity{}},
		{"negative reserve is none", Capacity{VCPUs: 8}, Policy{ReserveVCPUs: math.MinInt64}, Capacity{VCPUs: 8}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Allocatable(tc.physical, tc.p); got != tc.want {
				t.Fatalf("Allocatable(%+v, %+v) = %+v, want %+v", tc.physical, tc.p, got, tc.want)
			}
		})
	}
}

func TestPlace(t *testing.T) {
	// node returns an online node of group "" with hardware physical and
	// allocations allocated.
	node := func(name string, physical, allocated Capacity) NodeState {
		return NodeState{Name: name, Online: true, Physical: physical, Allocated: allocated}
	}
	groups := func(m map[string]Policy) func(string) Policy {
		return func(g string) Policy {
			if p, ok := m[g]; ok {
				return p
			}
			return DefaultPolicy()
		}
	}
	offline := node("big", Capacity{128, 1 << 20, 10000}, Capacity{})
	offline.Online = false
	dense := node("dense", Capacity{8, 32768, 100}, Capacity{12, 8192, 0})
	dense.Group = "dense"
	plain := node("plain", Capacity{16, 32768, 100}, Capacity{12, 8192, 0})
	plain.Group = "plain"
	overDisk := node("a-overdisk", Capacity{16, 32768, 100}, Capacity{0, 0, 150})

	cases := []struct {
		name    string
		nodes   []NodeState
		req     Capacity
		policy  func(string) Policy
		want    string
		wantErr *NoCapacityError
	}{
		{
			// 4 cores × 2 = 8 allocatable, 6 allocated: 2 more fit.
			name:   "overcommit makes room",
			nodes:  []NodeState{node("n1", Capacity{4, 8192, 100}, Capacity{6, 1024, 10})},
			req:    Capacity{2, 1024, 10},
			policy: groups(map[string]Policy{"": {CPURatio: 2}}),
			want:   "n1",
		},
		{
			name:    "without overcommit the same node is full",
			nodes:   []NodeState{node("n1", Capacity{4, 8192, 100}, Capacity{6, 1024, 10})},
			req:     Capacity{2, 1024, 10},
			wantErr: &NoCapacityError{Resource: "vcpus", Request: 2, Largest: 0},
		},
		{
			// n1: 16 − 2 reserved = 14 vcpus, 12 allocated, 4 do not fit.
			// n2: 14 vcpus, 4 allocated; 16384 − 2048 = 14336 MiB, 8192
			// allocated, 4096 fit.
			name:   "reserves",
			nodes:  []NodeState{node("n1", Capacity{16, 65536, 100}, Capacity{12, 0, 0}), node("n2", Capacity{16, 16384, 100}, Capacity{4, 8192, 0})},
			req:    Capacity{4, 4096, 10},
			policy: groups(map[string]Policy{"": {ReserveVCPUs: 2, ReserveMemoryMiB: 2048}}),
			want:   "n2",
		},
		{
			name:  "offline nodes are skipped",
			nodes: []NodeState{offline, node("small", Capacity{4, 8192, 100}, Capacity{2, 0, 0})},
			req:   Capacity{2, 1024, 10},
			want:  "small",
		},
		{
			// dense: 8 × 4 = 32 allocatable, 12 allocated; plain: 16, 12.
			name:   "groups have their own policies",
			nodes:  []NodeState{plain, dense},
			req:    Capacity{8, 1024, 0},
			policy: groups(map[string]Policy{"dense": {CPURatio: 4}}),
			want:   "dense",
		},
		{
			// plain allows 16 × 0.5 = 8 vcpus and dense 8 × 1, both with
			// 12 allocated: vcpus fail on both.
			name:    "a group's policy can also forbid",
			nodes:   []NodeState{plain, dense},
			req:     Capacity{4, 1024, 0},
			policy:  groups(map[string]Policy{"plain": {CPURatio: 0.5}}),
			wantErr: &NoCapacityError{Resource: "vcpus", Request: 4, Largest: 0},
		},
		{
			name:  "ties go to the first name",
			nodes: []NodeState{node("b", Capacity{8, 8192, 100}, Capacity{}), node("c", Capacity{8, 8192, 100}, Capacity{}), node("a", Capacity{8, 8192, 100}, Capacity{})},
			req:   Capacity{1, 1024, 1},
			want:  "a",
		},
		{
			name:  "exact fit",
			nodes: []NodeState{node("n1", Capacity{8, 8192, 100}, Capacity{4, 4096, 50})},
			req:   Capacity{4, 4096, 50},
			want:  "n1",
		},
		{
			// After placement a has fractions (0.5, 0.125, 0.9), minimum
			// 0.125; b has (0.25, 0.25, 0.25), minimum 0.25.
			name: "largest minimum remaining fraction wins",
			nodes: []NodeState{
				node("a", Capacity{8, 8192, 100}, Capacity{2, 5120, 0}),
				node("b", Capacity{8, 8192, 100}, Capacity{4, 4096, 65}),
			},
			req:  Capacity{2, 2048, 10},
			want: "b",
		},
		{
			// a-overdisk has 150 GiB allocated on 100; a request without
			// local disk still fits.
			name:  "a request without disk ignores overcommitted disk",
			nodes: []NodeState{overDisk},
			req:   Capacity{2, 2048, 0},
			want:  "a-overdisk",
		},
		{
			// a-overdisk's disk fraction is −0.5; b's minimum is 0.1
			// (disk).
			name:  "overcommitted disk ranks last",
			nodes: []NodeState{overDisk, node("b", Capacity{16, 32768, 100}, Capacity{8, 16384, 90})},
			req:   Capacity{2, 2048, 0},
			want:  "b",
		},
		{
			// A node without local disk is not scored on disk for a request
			// without disk: its minimum is 0.5, above b's 0.25.
			name:  "no local disk and no disk request",
			nodes: []NodeState{node("b", Capacity{8, 8192, 100}, Capacity{4, 4096, 65}), node("diskless", Capacity{8, 8192, 0}, Capacity{2, 2048, 0})},
			req:   Capacity{2, 2048, 0},
			want:  "diskless",
		},
		{
			// vcpus fail on all three online nodes, memory only on n3:
			// vcpus is reported, with the most vcpu headroom of any online
			// node (n3: 6); the offline node's 128 do not count.
			name: "no fit names the resource that fails most",
			nodes: []NodeState{
				node("n1", Capacity{8, 65536, 100}, Capacity{4, 0, 0}),
				node("n2", Capacity{8, 65536, 100}, Capacity{6, 0, 0}),
				node("n3", Capacity{8, 8192, 100}, Capacity{2, 4096, 0}),
				offline,
			},
			req:     Capacity{8, 8192, 10},
			wantErr: &NoCapacityError{Resource: "vcpus", Request: 8, Largest: 6},
		},
		{
			// memory and disk fail on one node each: memory comes first.
			name: "ties between failing resources go in order",
			nodes: []NodeState{
				node("n1", Capacity{8, 4096, 100}, Capacity{}),
				node("n2", Capacity{8, 65536, 10}, Capacity{}),
			},
			req:     Capacity{2, 8192, 20},
			wantErr: &NoCapacityError{Resource: "memory_mib", Request: 8192, Largest: 65536},
		},
		{
			name: "overcommitted nodes have no headroom",
			nodes: []NodeState{
				node("n1", Capacity{8, 4096, 100}, Capacity{10, 0, 0}),
			},
			req:     Capacity{1, 0, 0},
			wantErr: &NoCapacityError{Resource: "vcpus", Request: 1, Largest: 0},
		},
		{
			name:    "no online node",
			nodes:   []NodeState{offline},
			req:     Capacity{0, 1024, 0},
			wantErr: &NoCapacityError{Resource: "memory_mib", Request: 1024, Largest: 0},
		},
		{
			name:    "no node at all",
			req:     Capacity{},
			wantErr: &NoCapacityError{Resource: "vcpus", Request: 0, Largest: 0},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Place(tc.nodes, tc.req, tc.policy)
			if tc.wantErr == nil {
				if err != nil || got != tc.want {
					t.Fatalf("Place() = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			var nc *NoCapacityError
			if !errors.As(err, &nc) || !errors.Is(err, ErrNoCapacity) {
				t.Fatalf("Place() = %q, %v; want a *NoCapacityError", got, err)
			}
			if *nc != *tc.wantErr {
				t.Fatalf("Place() error = %+v, want %+v", *nc, *tc.wantErr)
			}
		})
	}
}

func TestPlace_InvalidRequest(t *testing.T) {
	_, err := Place(nil, Capacity{VCPUs: 1, MemoryMiB: -1}, nil)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "memory_mib") {
		t.Fatalf("Place() = %v, want ErrInvalid naming memory_mib", err)
	}
}

func TestNoCapacityError_Error(t *testing.T) {
	err := error(&NoCapacityError{Resource: "vcpus", Request: 8, Largest: 6})
	if got, want := err.Error(), "no node has room for 8 vcpus (largest headroom 6)"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestSummarize(t *testing.T) {
	nodes := []NodeState{
		{Name: "n1", Group: "dense", Online: true, Physical: Capacity{8, 16384, 100}, Allocated: Capacity{20, 8192, 40}, Used: Capacity{5, 6000, 30}},
		{Name: "n2", Online: true, Physical: Capacity{16, 32768, 200}, Allocated: Capacity{20, 4096, 10}, Used: Capacity{12, 3000, 8}},
		{Name: "down", Online: false, Physical: Capacity{64, 262144, 1000}, Allocated: Capacity{4, 4096, 20}, Used: Capacity{}},
	}
	policy := func(g string) Policy {
		if g == "dense" {
			return Policy{CPURatio: 2, ReserveMemoryMiB: 1024}
		}
		return DefaultPolicy()
	}
	perNode, cluster := Summarize(nodes, policy)
	want := map[string]Headroom{
		// 8 × 2 = 16 vcpus, 16384 − 1024 MiB: 20 vcpus allocated is 4
		// beyond the policy.
		"n1":   {Allocatable: Capacity{16, 15360, 100}, Allocated: Capacity{20, 8192, 40}, Used: Capacity{5, 6000, 30}, Free: Capacity{-4, 7168, 60}},
		"n2":   {Allocatable: Capacity{16, 32768, 200}, Allocated: Capacity{20, 4096, 10}, Used: Capacity{12, 3000, 8}, Free: Capacity{-4, 28672, 190}},
		"down": {Allocatable: Capacity{}, Allocated: Capacity{4, 4096, 20}, Free: Capacity{-4, -4096, -20}},
	}
	if len(perNode) != len(want) {
		t.Fatalf("Summarize returned %d nodes, want %d", len(perNode), len(want))
	}
	for name, w := range want {
		if got := perNode[name]; got != w {
			t.Errorf("perNode[%q] = %+v, want %+v", name, got, w)
		}
	}
	wantCluster := Headroom{
		Allocatable: Capacity{32, 48128, 300},
		Allocated:   Capacity{44, 16384, 70},
		Used:        Capacity{17, 9000, 38},
		Free:        Capacity{-12, 31744, 230},
	}
	if cluster != wantCluster {
		t.Errorf("cluster = %+v, want %+v", cluster, wantCluster)
	}
}

func TestSummarize_NilPolicy(t *testing.T) {
	nodes := []NodeState{{Name: "n1", Online: true, Physical: Capacity{8, 1024, 10}}}
	perNode, _ := Summarize(nodes, nil)
	if got, want := perNode["n1"].Free, (Capacity{8, 1024, 10}); got != want {
		t.Fatalf("Free = %+v, want %+v", got, want)
	}
}
