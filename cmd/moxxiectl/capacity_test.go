package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/client"
)

// TestCapacity_AgainstTheAPI reads the capacity of the metered world:
// pve1 and pve2 have 16 CPUs, 64 GiB and 350 GiB of local image storage,
// pve3 (8 CPUs, no local image storage) is offline. The built-in policy
// gives 4 vCPUs per CPU.
//
// pve1 went from guest 101 (2 vCPUs, 2 GiB, 32 GiB) at 09:00 to 101 and
// 105 (4 vCPUs, 4 GiB, 10 GiB) at 11:00: 48 vCPUs and 48 GiB a day. At
// noon, when the test clock stands, the fitted line is at 8 vCPUs of 64
// and 8 GiB of 64, so both fill up in 56/48 = 1.2 days. pve2 (guests 102,
// 103 and 104) does not grow. The cluster's memory, 17.5 GiB at noon of
// 128, fills up in 110.5/48 = 2.3 days.
func TestCapacity_AgainstTheAPI(t *testing.T) {
	p := meteredWorld(t)
	out, _ := p.cli(t, 0, "capacity")
	if call, _, _ := p.lastCall(); call != "GET /v1/capacity" {
		t.Errorf("call %s", call)
	}
	want := `NODE     GROUP  ONLINE  VCPUS   MEMORY (GiB)  DISK (GiB)  FULL IN
pve1     -      yes     6/64    6/64          42/350      1.2 days (vcpus)
pve2     -      yes     6/64    9.5/64        82/350      -
pve3     -      no      0/0     0/0           0/-         -
CLUSTER         2 of 3  12/128  15.5/128      124/700     2.3 days (memory)

Forecasts fit the hourly allocation samples of the last 30 days.
`
	if out != want {
		t.Errorf("capacity:\n%s\nwant:\n%s", out, want)
	}
	out, _ = p.cli(t, 0, "capacity", "--window", "7d", "-o", "json")
	if call, _, _ := p.lastCall(); call != "GET /v1/capacity?window=7d" {
		t.Errorf("call %s", call)
	}
	var r struct {
		WindowDays int `json:"window_days"`
		Nodes      []struct {
			Name      string
			Allocated struct{ VCPUs int64 }
			Forecast  struct{ VCPUs *float64 } `json:"forecast_days"`
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.WindowDays != 7 || len(r.Nodes) != 3 || r.Nodes[0].Allocated.VCPUs != 6 ||
		r.Nodes[0].Forecast.VCPUs == nil || *r.Nodes[0].Forecast.VCPUs != 1.2 || r.Nodes[1].Forecast.VCPUs != nil {
		t.Errorf("-o json: %v\n%s", err, out)
	}
	_, stderr := p.cli(t, 1, "capacity", "--window", "1y")
	if !strings.Contains(stderr, `Error: 400 invalid_request: must be 1d to 90d, not "1y" (field window`) {
		t.Errorf("bad window: %s", stderr)
	}

	// Policies: the built-in default until one is stored.
	out, _ = p.cli(t, 0, "capacity", "policy", "list")
	want = `ID                  NODES                CPU RATIO  MEMORY RATIO  DISK RATIO  RESERVE VCPUS  RESERVE MEMORY  RESERVE DISK
default (built-in)  (nodes in no group)  4          1             1           -              -               -
`
	if out != want {
		t.Errorf("policy list:\n%s\nwant:\n%s", out, want)
	}
	// pve1 under 8 vCPUs per CPU less 2, 64 GiB less 8, 350 GiB less 100:
	// memory fills up in (56 - 8)/48 = 1 day. pve2 under the default
	// policy set below has 32 vCPUs and 96 GiB: the cluster's memory fills
	// up in (152 - 17.5)/48 = 2.8 days.
	out, _ = p.cli(t, 0, "capacity", "policy", "set", "dense", "--nodes", "pve1", "--cpu-ratio", "8",
		"--reserve-vcpus", "2", "--reserve-memory", "8GiB", "--reserve-disk", "100GiB")
	if call, body, _ := p.lastCall(); call != "PUT /v1/capacity/policies/dense" {
		t.Errorf("call %s", call)
	} else {
		checkJSON(t, "policy body", body, `{"nodes": ["pve1"], "cpu_ratio": 8, "reserve_vcpus": 2, "reserve_memory_mib": 8192, "reserve_disk_gib": 100}`)
	}
	want = `ID     NODES  CPU RATIO  MEMORY RATIO  DISK RATIO  RESERVE VCPUS  RESERVE MEMORY  RESERVE DISK
dense  pve1   8          1             1           2              8 GiB           100 GiB
`
	if out != want {
		t.Errorf("policy set:\n%s\nwant:\n%s", out, want)
	}
	// set replaces the whole policy: what is not given is 1 or none.
	p.cli(t, 0, "capacity", "policy", "set", "default", "--cpu-ratio", "2", "--memory-ratio", "1.5")
	_, body, _ := p.lastCall()
	checkJSON(t, "default body", body, `{"cpu_ratio": 2, "memory_ratio": 1.5}`)
	out, _ = p.cli(t, 0, "capacity", "policy", "list")
	want = `ID       NODES                CPU RATIO  MEMORY RATIO  DISK RATIO  RESERVE VCPUS  RESERVE MEMORY  RESERVE DISK
default  (nodes in no group)  2          1.5           1           -              -               -
dense    pve1                 8          1             1           2              8 GiB           100 GiB
`
	if out != want {
		t.Errorf("policy list:\n%s\nwant:\n%s", out, want)
	}
	out, _ = p.cli(t, 0, "capacity")
	want = `NODE     GROUP  ONLINE  VCPUS   MEMORY (GiB)  DISK (GiB)  FULL IN
pve1     dense  yes     6/126   6/56          42/250      1 day (memory)
pve2     -      yes     6/32    9.5/96        82/350      -
pve3     -      no      0/0     0/0           0/-         -
CLUSTER         2 of 3  12/158  15.5/152      124/600     2.8 days (memory)
`
	if !strings.HasPrefix(out, want) {
		t.Errorf("capacity under the policies:\n%s\nwant:\n%s", out, want)
	}

	_, stderr = p.cli(t, 1, "capacity", "policy", "set", "dense", "--cpu-ratio", "8")
	if !strings.Contains(stderr, "Error: 400 invalid_request: a node group needs at least one node (field nodes") {
		t.Errorf("group without nodes: %s", stderr)
	}
	_, stderr = p.cli(t, 1, "capacity", "policy", "set", "other", "--nodes", "pve1")
	if !strings.Contains(stderr, "Error: 409 conflict: node pve1 is in group dense already") {
		t.Errorf("node in two groups: %s", stderr)
	}
	out, _ = p.cli(t, 0, "capacity", "policy", "delete", "dense")
	if out != "Capacity policy dense deleted\n" {
		t.Errorf("delete: %q", out)
	}
	out, _ = p.cli(t, 0, "capacity", "policy", "list", "-o", "json")
	var l struct {
		Policies []struct{ ID string }
		Builtin  struct {
			CPURatio float64 `json:"cpu_ratio"`
		} `json:"builtin_default"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil || len(l.Policies) != 1 || l.Policies[0].ID != "default" || l.Builtin.CPURatio != 4 {
		t.Errorf("list -o json: %v\n%s", err, out)
	}
}

func TestCapacity_UsageErrors(t *testing.T) {
	p := newPlatformAPI(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"capacity", "pve1"}, "moxxiectl capacity takes no arguments"},
		{[]string{"capacity", "policy", "set"}, "moxxiectl capacity policy set needs ID"},
		{[]string{"capacity", "policy", "set", "x", "--cpu-ratio", "0"}, "--cpu-ratio must be positive, got 0"},
		{[]string{"capacity", "policy", "set", "x", "--memory-ratio", "-1"}, "--memory-ratio must be positive, got -1"},
		{[]string{"capacity", "policy", "set", "x", "--reserve-vcpus", "-2"}, "--reserve-vcpus must not be negative, got -2"},
		{[]string{"capacity", "policy", "set", "x", "--reserve-memory", "8"}, `--reserve-memory: "8" needs a unit: MiB, GiB or TiB`},
		{[]string{"capacity", "policy", "set", "x", "--reserve-disk", "100MiB"}, `--reserve-disk: "100MiB" is not a whole number of GiB`},
	} {
		_, stderr, code := runCLI(t, p.env(), tt.args...)
		if code != exitUsage || !strings.HasPrefix(stderr, "Error: "+tt.want) {
			t.Errorf("%q: exit %d, %s\nwant %s", tt.args, code, stderr, tt.want)
		}
	}
	if n := p.callCount(); n != 0 {
		t.Errorf("%d requests made", n)
	}
}

func TestFullIn(t *testing.T) {
	d := func(v float64) *float64 { return &v }
	for _, tt := range []struct {
		vcpus, mem, disk *float64
		want             string
	}{
		{nil, nil, nil, "-"},
		{d(9), d(14), nil, "9 days (vcpus)"},
		{d(9), d(2.5), d(30), "2.5 days (memory)"},
		{nil, nil, d(1), "1 day (disk)"},
		{d(3), d(0), d(0), "now (memory)"},
	} {
		if got := fullIn(client.CapacityForecast{VCPUs: tt.vcpus, MemoryMiB: tt.mem, DiskGiB: tt.disk}); got != tt.want {
			t.Errorf("fullIn(%v, %v, %v) = %q, want %q", tt.vcpus, tt.mem, tt.disk, got, tt.want)
		}
	}
}
