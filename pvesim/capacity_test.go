package pvesim_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
	"github.com/moxxie/moxxie/pvesim"
)

func TestCapacity(t *testing.T) {
	// One small standalone host: 4 CPUs, 8 GiB, a 40 GiB thin pool.
	e := newTestEnv(t, pvesim.Config{Seed: pvesim.Seed{Nodes: 1, CPUs: 4, MemoryGiB: 8, LocalLVMGiB: 40, Templates: []pvesim.SeedGuest{}}})
	ctx := context.Background()
	n := testNode(t, e.client, "pve1")

	c := testCluster(t, e)
	if c.Name != "" || len(c.Nodes) != 1 || c.Nodes[0].Local != 1 {
		t.Fatalf("a standalone host has no cluster entry: %+v", c)
	}

	create := func(vmid int, opts ...proxmox.VirtualMachineOption) *proxmox.Task {
		task, err := n.NewVirtualMachine(ctx, vmid, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return task
	}
	mem := func(mib int) proxmox.VirtualMachineOption {
		return proxmox.VirtualMachineOption{Name: "memory", Value: mib}
	}
	disk := func(gib string) proxmox.VirtualMachineOption {
		return proxmox.VirtualMachineOption{Name: "scsi0", Value: "local-lvm:" + gib}
	}

	// Disks beyond the pool fail the create; the VM is gone again.
	waitTaskFailed(t, create(100, mem(1024), disk("64")), "unable to create VM 100 - lvcreate 'pve/vm-100-disk-0' error:   Insufficient free space")
	if _, ok := testGuest(t, e.sim, 100); ok {
		t.Fatal("the failed VM exists")
	}

	// Memory is only checked on start, like QEMU allocating guest RAM.
	waitTaskOK(t, create(101, mem(4096), disk("16")))
	waitTaskOK(t, create(102, mem(4096), disk("16")))
	task, err := testVM(t, e.client, "pve1", 101).Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)
	task, err = testVM(t, e.client, "pve1", 102).Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskFailed(t, task, "start failed: QEMU exited with code 1")
	log, _ := task.Log(ctx, 0, 0)
	if log[0] != "kvm: cannot set up guest memory 'pc.ram': Cannot allocate memory" {
		t.Fatalf("log %v", log)
	}

	// More vCPUs than the host has.
	waitTaskOK(t, create(103, mem(512), proxmox.VirtualMachineOption{Name: "cores", Value: 8}))
	task, err = testVM(t, e.client, "pve1", 103).Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskFailed(t, task, "MAX 4 vcpus allowed per VM on this node")

	// Running guests use the node's memory.
	nodes, _ := e.client.Nodes(ctx)
	if nodes[0].Mem < 4<<30 {
		t.Fatalf("node memory used %d with a 4 GiB VM running", nodes[0].Mem)
	}
}

func TestSeed_LargeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("the 64-node, 10,000-guest seed is not run in -short mode")
	}
	start := time.Now()
	e := newTestEnv(t, pvesim.Config{Seed: pvesim.Seed{Nodes: 64, Guests: 10000}})
	t.Logf("built 64 nodes and 10000 guests in %v", time.Since(start))
	ctx := context.Background()
	c := testCluster(t, e)
	if len(c.Nodes) != 64 || c.Quorate != 1 {
		t.Fatalf("cluster: %d nodes", len(c.Nodes))
	}
	start = time.Now()
	rs, err := c.Resources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster/resources with %d entries through go-proxmox in %v", len(rs), time.Since(start))
	count := map[string]int{}
	running := 0
	for _, r := range rs {
		count[r.Type]++
		if r.Type != "node" && r.Status == "running" {
			running++
		}
	}
	if count["qemu"]+count["lxc"] != 10002 || count["node"] != 64 || count["storage"] != 128 || count["lxc"] == 0 {
		t.Fatalf("resources by type: %v", count)
	}
	if running == 0 {
		t.Fatal("no running guests generated")
	}
	vms, err := testNode(t, e.client, "pve17").VirtualMachines(ctx)
	if err != nil || len(vms) == 0 {
		t.Fatalf("VMs on pve17: %d, %v", len(vms), err)
	}
	// The generated cluster works like any other.
	task, err := vms[0].Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)
}

// BenchmarkClusterResources10k measures GET /cluster/resources on a
// 64-node cluster with 10,000 guests, answered by the handler in process.
func BenchmarkClusterResources10k(b *testing.B) {
	sim, err := pvesim.New(pvesim.Config{
		Seed:   pvesim.Seed{Nodes: 64, Guests: 10000},
		Tokens: map[string]string{testTokenID: testTokenSecret},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	h := sim.Handler()
	req := httptest.NewRequest(http.MethodGet, "/api2/json/cluster/resources", nil)
	req.Header.Set("Authorization", "PVEAPIToken="+testTokenID+"="+testTokenSecret)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
		b.SetBytes(int64(w.Body.Len()))
	}
}
