package pvesim_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
	"github.com/moxxie/moxxie/pvesim"
)

func TestCluster_NodesStatusResources(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	ctx := context.Background()

	nodes, err := e.client.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 3 {
		t.Fatalf("%d nodes", len(nodes))
	}
	for i, n := range nodes {
		if n.Node != []string{"pve1", "pve2", "pve3"}[i] || n.Status != "online" || n.MaxCPU != 16 || n.MaxMem != 128<<30 ||
			n.Mem == 0 || n.Mem >= n.MaxMem || n.Uptime == 0 || n.ID != "node/"+n.Node {
			t.Fatalf("node %+v", n)
		}
	}
	st := testNode(t, e.client, "pve1")
	if st.CPUInfo.CPUs != 16 || st.Memory.Total != 128<<30 || !strings.HasPrefix(st.PVEVersion, "pve-manager/9.1.3/") || st.RootFS.Total == 0 {
		t.Fatalf("node status %+v", st)
	}

	cl, err := e.client.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Name != "pvesim" || cl.Quorate != 1 || len(cl.Nodes) != 3 || cl.Nodes[0].Local != 1 || cl.Nodes[1].IP != "10.0.0.12" ||
		cl.Nodes[2].Online != 1 || cl.Nodes[2].Status != "online" {
		t.Fatalf("cluster %+v", cl)
	}

	cases := []struct {
		filter string
		types  map[string]int
	}{
		{"", map[string]int{"qemu": 7, "lxc": 3, "node": 3, "storage": 9, "sdn": 3}},
		{"vm", map[string]int{"qemu": 7, "lxc": 3}},
		{"node", map[string]int{"node": 3}},
		{"storage", map[string]int{"storage": 9}},
		{"sdn", map[string]int{"sdn": 3}},
	}
	for _, tc := range cases {
		t.Run("type="+tc.filter, func(t *testing.T) {
			var rs proxmox.ClusterResources
			if tc.filter == "" {
				rs, err = cl.Resources(ctx)
			} else {
				rs, err = cl.Resources(ctx, tc.filter)
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, r := range rs {
				got[r.Type]++
			}
			if len(got) != len(tc.types) {
				t.Fatalf("types %v, want %v", got, tc.types)
			}
			for k, v := range tc.types {
				if got[k] != v {
					t.Fatalf("types %v, want %v", got, tc.types)
				}
			}
		})
	}
	rs, _ := cl.Resources(ctx, "vm")
	byID := map[string]*proxmox.ClusterResource{}
	for _, r := range rs {
		byID[r.ID] = r
	}
	if r := byID["qemu/100"]; r == nil || r.Name != "web-01" || r.Node != "pve1" || r.Status != "running" || r.VMID != 100 ||
		r.Tags != "prod;web" || r.MaxMem != 2<<30 || r.Mem == 0 || r.MaxCPU != 2 || r.MaxDisk != 32<<30 || r.Uptime == 0 {
		t.Fatalf("qemu/100 %+v", r)
	}
	if r := byID["qemu/9000"]; r == nil || r.Template != 1 || r.Status != "stopped" {
		t.Fatalf("qemu/9000 %+v", r)
	}
	if r := byID["lxc/201"]; r == nil || r.Type != "lxc" || r.Status != "stopped" || r.Name != "proxy-01" {
		t.Fatalf("lxc/201 %+v", r)
	}

	// The raw form: booleans as 0/1, the "id" forms of Proxmox.
	_, _, body := e.raw(t, "GET", "/api2/json/cluster/resources?type=storage", "")
	var raw struct{ Data []map[string]any }
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	if r := raw.Data[2]; r["id"] != "storage/pve1/nfs-shared" || r["shared"] != float64(1) || r["plugintype"] != "nfs" {
		t.Fatalf("storage resource %v", r)
	}
}

func TestCluster_NextID(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	ctx := context.Background()
	cl, err := e.client.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id, err := cl.NextID(ctx)
	if err != nil || id != 105 {
		t.Fatalf("next ID %d, %v; want 105", id, err)
	}
	free, err := cl.CheckID(ctx, 100)
	if err != nil || free {
		t.Fatalf("CheckID(100) = %v, %v", free, err)
	}
	free, err = cl.CheckID(ctx, 555)
	if err != nil || !free {
		t.Fatalf("CheckID(555) = %v, %v", free, err)
	}
	code, status, body := e.raw(t, "GET", "/api2/json/cluster/nextid?vmid=100", "")
	if code != 400 || status != "400 Parameter verification failed." || !strings.Contains(body, `"vmid":"VM 100 already exists"`) {
		t.Fatalf("taken VMID: %s %s", status, body)
	}
	// Proxmox answers the next ID as a string.
	if _, _, body := e.raw(t, "GET", "/api2/json/cluster/nextid", ""); body != `{"data":"105"}` {
		t.Fatalf("next ID body %s", body)
	}
}

func TestTasks_ListStatusLog(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	ctx := context.Background()
	v := testVM(t, e.client, "pve1", 103)
	start, err := v.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, start)
	stop, err := v.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, stop)
	if start.PID == 0 || start.PStart == 0 || start.StartTime.IsZero() || start.User != "root@pam" {
		t.Fatalf("task status %+v", start)
	}

	log, err := start.Log(ctx, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) == 0 || log[len(log)-1] != "TASK OK" {
		t.Fatalf("log %v", log)
	}

	tasks, err := testNode(t, e.client, "pve1").Tasks(ctx, &proxmox.NodeTasksOptions{VMID: 103})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 2 || tasks[0].UPID != stop.UPID || tasks[1].UPID != start.UPID || tasks[0].Status != "OK" ||
		tasks[0].User != "root@pam" || tasks[0].Type != "qmstop" {
		t.Fatalf("node tasks %+v", tasks)
	}
	tasks, err = testNode(t, e.client, "pve1").Tasks(ctx, &proxmox.NodeTasksOptions{TypeFilter: "qmstart"})
	if err != nil || len(tasks) != 1 {
		t.Fatalf("qmstart tasks %d, %v", len(tasks), err)
	}
	cl, _ := e.client.Cluster(ctx)
	all, err := cl.Tasks(ctx)
	if err != nil || len(all) < 2 || all[0].UPID != stop.UPID {
		t.Fatalf("cluster tasks %d, %v", len(all), err)
	}

	// Unknown and malformed task IDs.
	code, status, body := e.raw(t, "GET", "/api2/json/nodes/pve2/tasks/"+string(start.UPID)+"/status", "")
	if code != 400 || !strings.Contains(body, `"upid":"no such task"`) {
		t.Fatalf("task on another node: %s %s", status, body)
	}
	code, _, body = e.raw(t, "GET", "/api2/json/nodes/pve1/tasks/UPID:junk/status", "")
	if code != 400 || !strings.Contains(body, "unable to parse worker upid") {
		t.Fatalf("bad UPID: %d %s", code, body)
	}
}

// TestTasks_StateChangesAtTheEnd checks that a task changes state only when
// it finishes, that its log grows while it runs, and that stopping it
// undoes what it started.
func TestTasks_StateChangesAtTheEnd(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{Faults: pvesim.Faults{SlowTasks: time.Hour}})
	ctx := context.Background()
	_, task, err := testVM(t, e.client, "pve1", 9000).Clone(ctx, &proxmox.VirtualMachineCloneOptions{NewID: 400, Name: "slow", Full: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Ping(ctx); err != nil || !task.IsRunning || task.Status != "running" {
		t.Fatalf("task %+v (%v)", task, err)
	}
	g, ok := testGuest(t, e.sim, 400)
	if !ok || g.Lock != "clone" || g.Name != "slow" {
		t.Fatalf("clone while running: %+v", g)
	}
	log, err := task.Log(ctx, 0, 0)
	if err != nil || len(log) == 0 || !strings.Contains(log[0], "create full clone of drive scsi0") {
		t.Fatalf("log while running: %v %v", log, err)
	}
	rs, _ := testCluster(t, e).Resources(ctx, "vm")
	for _, r := range rs {
		if r.VMID == 400 && r.Status != "stopped" {
			t.Fatalf("clone resource %+v", r)
		}
	}
	if err := task.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitTaskFailed(t, task, "interrupted by signal")
	if _, ok := testGuest(t, e.sim, 400); ok {
		t.Fatal("the interrupted clone was not removed")
	}
}

func testCluster(t testing.TB, e *testEnv) *proxmox.Cluster {
	t.Helper()
	c, err := e.client.Cluster(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}
