package node

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/provider"
	"github.com/moxxie/moxxie/pvesim"
)

// TestDRRun_GuestsOfAnOrderTogether: a drill brings the guests of one
// recovery order back together, at most drParallel at a time, and
// starts the next order's only once every guest of the earlier one
// runs; every copy gets a VMID of its own, and a node no more copies
// than its memory holds.
func TestDRRun_GuestsOfAnOrderTogether(t *testing.T) {
	// Three nodes of 64 GiB, six stopped guests of 24 GiB: two copies
	// fit on a node.
	seed := pvesim.Seed{Nodes: 3, MemoryGiB: 64, BackupDirs: map[string]string{"dr": t.TempDir()}}
	for i := range 6 {
		seed.GuestList = append(seed.GuestList, pvesim.SeedGuest{VMID: 100 + i, Node: fmt.Sprintf("pve%d", i%3+1), Name: fmt.Sprintf("app-%d", i),
			DiskGiB: 4, MemoryMiB: 24 << 10})
	}
	s, sim, _ := simServer(t, pvesim.Config{TaskDuration: 100 * time.Millisecond, Seed: seed})
	// Six guests: five of order 1 (one more than drParallel), one of
	// order 2.
	replica, originals := drReplica(t, s, sim, 24<<30, 1, 1, 1, 1, 1, 2)
	w := watchCopies(sim, originals)
	items := drDrill(t, s, replica)
	seen := w.stop()

	targets, perNode := map[int]bool{}, map[string]int{}
	var lastOrder1Running, order2Running time.Time
	for _, it := range items {
		if it.Step != fsm.DRStepCleaned || it.TargetVMID == 0 || w.original[it.TargetVMID] || targets[it.TargetVMID] {
			t.Fatalf("item %+v", it)
		}
		targets[it.TargetVMID] = true
		perNode[it.TargetNode]++
		if it.Order == 1 {
			if seen.running[it.TargetVMID].After(lastOrder1Running) {
				lastOrder1Running = seen.running[it.TargetVMID]
			}
		} else {
			order2Running = seen.running[it.TargetVMID]
		}
	}
	t.Logf("at most %d restores at once; order 2 ran %s after the last guest of order 1", seen.mostRestoring, order2Running.Sub(lastOrder1Running))
	if seen.mostRestoring < 2 || seen.mostRestoring > drParallel {
		t.Errorf("at most %d restores at once, want 2 to %d", seen.mostRestoring, drParallel)
	}
	// The copies of a run are placed by the memory they will take, not
	// all on the node that had the most free when the run started.
	if len(perNode) != 3 || perNode["pve1"] != 2 || perNode["pve2"] != 2 || perNode["pve3"] != 2 {
		t.Errorf("copies per node %v, want two on each", perNode)
	}
	if lastOrder1Running.IsZero() || order2Running.IsZero() || !order2Running.After(lastOrder1Running) {
		t.Errorf("order 2's copy ran at %s, the last guest of order 1 at %s", order2Running, lastOrder1Running)
	}
}

// TestDRRun_LaterOrdersRestoreAhead: the guests of later recovery
// orders restore while those of earlier ones still restore, and start
// only once the earlier ones run.
func TestDRRun_LaterOrdersRestoreAhead(t *testing.T) {
	seed := pvesim.Seed{Nodes: 2, BackupDirs: map[string]string{"dr": t.TempDir()}}
	for i := range 3 {
		seed.GuestList = append(seed.GuestList, pvesim.SeedGuest{VMID: 100 + i, Node: "pve1", Name: fmt.Sprintf("app-%d", i), DiskGiB: 4, MemoryMiB: 1024})
	}
	// Restores and starts take 300 ms each in the simulator: a run that
	// restored one order after the other would never restore three at
	// once.
	s, sim, _ := simServer(t, pvesim.Config{TaskDuration: 300 * time.Millisecond, Seed: seed})
	replica, originals := drReplica(t, s, sim, 1<<30, 1, 2, 3)
	w := watchCopies(sim, originals)
	items := drDrill(t, s, replica)
	seen := w.stop()

	if seen.mostRestoring != 3 {
		t.Errorf("at most %d copies restoring at once, want all 3", seen.mostRestoring)
	}
	var prev time.Time
	for _, it := range items {
		ran := seen.running[it.TargetVMID]
		if it.Step != fsm.DRStepCleaned || ran.IsZero() {
			t.Fatalf("item %+v: ran at %s", it, ran)
		}
		if !ran.After(prev) {
			t.Errorf("order %d's copy ran at %s, before order %d's at %s", it.Order, ran, it.Order-1, prev)
		}
		prev = ran
	}
}

// copyWatch records, from the simulator, when each copy (a guest that
// is not one of the originals) was first seen restoring (locked
// "create") and running, and the most copies seen restoring at once.
type copyWatch struct {
	original map[int]bool
	halt     chan struct{}
	done     chan copiesSeen
}

type copiesSeen struct {
	restoring, running map[int]time.Time
	mostRestoring      int
}

func watchCopies(sim *pvesim.Sim, originals []pvesim.Guest) *copyWatch {
	w := &copyWatch{original: map[int]bool{}, halt: make(chan struct{}), done: make(chan copiesSeen, 1)}
	for _, g := range originals {
		w.original[g.VMID] = true
	}
	go func() {
		seen := copiesSeen{restoring: map[int]time.Time{}, running: map[int]time.Time{}}
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.halt:
				w.done <- seen
				return
			case <-tick.C:
			}
			now, n := time.Now(), 0
			for _, g := range sim.Guests() {
				if w.original[g.VMID] || g.Template {
					continue
				}
				if g.Lock == "create" {
					n++
					if _, ok := seen.restoring[g.VMID]; !ok {
						seen.restoring[g.VMID] = now
					}
				}
				if _, ok := seen.running[g.VMID]; !ok && g.Status == "running" {
					seen.running[g.VMID] = now
				}
			}
			seen.mostRestoring = max(seen.mostRestoring, n)
		}
	}()
	return w
}

// stop ends the watch and returns what it saw.
func (w *copyWatch) stop() copiesSeen {
	close(w.halt)
	return <-w.done
}

// drDrill runs a drill of replica on s, requires it to succeed, and
// returns its items.
func drDrill(t *testing.T, s *Server, replica *fsm.DRPlan) []*fsm.DRItem {
	t.Helper()
	op := drDrillRun(t, s, replica)
	if op.Status != fsm.OpSucceeded {
		t.Fatalf("drill %s: %+v", op.Status, op.Error)
	}
	_, items, err := s.State().DRItems(nil, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// drDrillRun runs a drill of replica on s and returns its operation once
// it has finished, whichever way.
func drDrillRun(t *testing.T, s *Server, replica *fsm.DRPlan) *fsm.Operation {
	t.Helper()
	run := fsm.NewDRRun(replica, fsm.OpDRDrill, fsm.DRTriggerManual, false, api.NewID())
	if _, err := s.raftApply(run); err != nil {
		t.Fatal(err)
	}
	return drAwaitRun(t, s, run.Run.ID)
}

// drAwaitRun returns the DR run id once it has finished, whichever way.
func drAwaitRun(t *testing.T, s *Server, id string) *fsm.Operation {
	t.Helper()
	var done *fsm.Operation
	WaitForResult(t, time.Minute, func() error {
		_, op, err := s.State().Operation(nil, id)
		if err != nil || op == nil || op.FinishedAt == 0 {
			return fmt.Errorf("run %s not finished: %+v %v", id, op, err)
		}
		done = op
		return nil
	})
	return done
}

// TestDRRun_FailoverHoldsCopiesForFenceGrace: a failover restores its
// copies at once but starts none before site.fence_grace has passed
// since it started, and its step says until when; then it starts them
// in order as usual.
func TestDRRun_FailoverHoldsCopiesForFenceGrace(t *testing.T) {
	const grace = 1500 * time.Millisecond
	seed := pvesim.Seed{Nodes: 2, BackupDirs: map[string]string{"dr": t.TempDir()}}
	for i := range 2 {
		seed.GuestList = append(seed.GuestList, pvesim.SeedGuest{VMID: 100 + i, Node: "pve1", Name: fmt.Sprintf("app-%d", i), DiskGiB: 4, MemoryMiB: 1024})
	}
	s, sim, _ := simServer(t, pvesim.Config{TaskDuration: 50 * time.Millisecond, Seed: seed},
		func(c *Config) { c.Site.FenceGrace = Duration(grace) })
	replica, originals := drReplica(t, s, sim, 1<<30, 1, 2)
	isOriginal := map[int]bool{}
	for _, g := range originals {
		isOriginal[g.VMID] = true
	}

	run := fsm.NewDRRun(replica, fsm.OpDRFailover, fsm.DRTriggerAutomatic, false, api.NewID())
	if _, err := s.raftApply(run); err != nil {
		t.Fatal(err)
	}
	_, op, err := s.State().Operation(nil, run.Run.ID)
	if err != nil || op == nil {
		t.Fatalf("operation: %v %v", op, err)
	}
	until := op.CreatedAt.Time().Add(grace)

	// Before the grace ends: both copies restored, none running.
	restoredEarly := false
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for ; time.Now().Before(until.Add(-200 * time.Millisecond)); <-tick.C {
		restored := 0
		for _, g := range sim.Guests() {
			if isOriginal[g.VMID] || g.Template {
				continue
			}
			if g.Status == "running" {
				t.Fatalf("copy %d runs %s before the fence grace ends", g.VMID, time.Until(until))
			}
			if g.Lock == "" {
				restored++
			}
		}
		restoredEarly = restoredEarly || restored == 2
	}
	if !restoredEarly {
		t.Error("not both copies restored during the fence grace: restores, of every order, must not wait for it")
	}
	_, op, _ = s.State().Operation(nil, run.Run.ID)
	if want := "copies start from " + until.UTC().Format(time.TimeOnly) + " UTC"; !strings.Contains(op.Step, want) {
		t.Errorf("step %q, want it to contain %q", op.Step, want)
	}

	WaitForResult(t, 30*time.Second, func() error {
		_, op, err := s.State().Operation(nil, run.Run.ID)
		if err != nil || op == nil || op.FinishedAt == 0 {
			return fmt.Errorf("failover not finished: %+v %v", op, err)
		}
		if op.Status != fsm.OpSucceeded {
			t.Fatalf("failover %s: %+v", op.Status, op.Error)
		}
		return nil
	})
	_, items, err := s.State().DRItems(nil, run.Run.ID)
	if err != nil {
		t.Fatal(err)
	}
	status := map[int]string{}
	for _, g := range sim.Guests() {
		status[g.VMID] = g.Status
	}
	for _, it := range items {
		if it.Step != fsm.DRStepRunning || status[it.TargetVMID] != "running" {
			t.Errorf("item %d: step %s, copy %d %q; want both running", it.VMID, it.Step, it.TargetVMID, status[it.TargetVMID])
		}
	}
}

func TestDRPickNode(t *testing.T) {
	const gib = 1 << 30
	nodes := []*fsm.InvNode{
		{Name: "pve1", Status: "online", MaxMem: 64 * gib, Mem: 8 * gib},
		{Name: "pve2", Status: "online", MaxMem: 64 * gib, Mem: 16 * gib},
		{Name: "pve3", Status: "offline", MaxMem: 256 * gib},
		{Name: "pve4", Status: "online", MaxMem: 256 * gib, InvMeta: fsm.InvMeta{Gone: true}},
	}
	tests := []struct {
		reserved map[string]uint64
		want     string
	}{
		{nil, "pve1"},
		{map[string]uint64{"pve1": 9 * gib}, "pve2"},
		{map[string]uint64{"pve1": 100 * gib, "pve2": 100 * gib}, "pve1"}, // both over: the least over
	}
	for _, tt := range tests {
		if got := drPickNode(nodes, tt.reserved); got != tt.want {
			t.Errorf("reserved %v: %q, want %q", tt.reserved, got, tt.want)
		}
	}
	if got := drPickNode(nodes[2:], nil); got != "" {
		t.Errorf("no online node: %q", got)
	}
	// A resumed run counts what its items took before.
	a := newDRAlloc([]*fsm.DRItem{
		{VMID: 100, TargetVMID: 2100, TargetNode: "pve1", Memory: 4 * gib},
		{VMID: 101, TargetVMID: 2101, TargetNode: "pve1", Memory: 2 * gib},
		{VMID: 102},
	})
	if !a.taken[2100] || !a.taken[2101] || len(a.taken) != 2 || a.reserved["pve1"] != 6*gib {
		t.Errorf("resumed allocator: taken %v, reserved %v", a.taken, a.reserved)
	}
}

// drReplica backs up the first len(orders) VMs of sim to the storage
// "dr" and makes s, as site west, hold a replica of plan "shop" of site
// east protecting them, the i-th in recovery order orders[i], each of
// memory bytes.
func drReplica(t *testing.T, s *Server, sim *pvesim.Sim, memory uint64, orders ...int) (*fsm.DRPlan, []pvesim.Guest) {
	t.Helper()
	return drReplicaWith(t, s, sim, memory, nil, orders...)
}

// drReplicaWith is drReplica with edit changing the plan before it is
// sent (nil: none).
func drReplicaWith(t *testing.T, s *Server, sim *pvesim.Sim, memory uint64, edit func(*fsm.DRPlan), orders ...int) (*fsm.DRPlan, []pvesim.Guest) {
	t.Helper()
	syncNow(t, s, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var originals []pvesim.Guest
	for _, g := range sim.Guests() {
		if !g.Template && g.Type == "qemu" && len(originals) < len(orders) {
			originals = append(originals, g)
		}
	}
	if len(originals) < len(orders) {
		t.Fatalf("the simulator has %d VMs, want %d", len(originals), len(orders))
	}
	plan := fsm.DRPlan{ID: "shop", SourceSite: "east", RecoverySite: "west", BackupStorage: "dr", TargetStorage: "local-lvm",
		UpdatedAt: fsm.Timestamp(time.Now().UnixNano())}
	for i, g := range originals {
		ref := provider.GuestRef{Node: g.Node, VMID: g.VMID, Kind: provider.KindVM}
		task, err := s.provider.Backup(ctx, ref, provider.BackupSpec{Storage: "dr", Mode: "snapshot"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.provider.WaitTask(ctx, task, nil); err != nil {
			t.Fatal(err)
		}
		list, err := s.provider.StorageContent(ctx, g.Node, "dr", "backup")
		if err != nil {
			t.Fatal(err)
		}
		j := slices.IndexFunc(list, func(c provider.Content) bool { return c.VMID == g.VMID })
		if j < 0 {
			t.Fatalf("no backup of %d", g.VMID)
		}
		plan.Guests = append(plan.Guests, fsm.DRGuest{VMID: g.VMID, Order: orders[i]})
		plan.Status = append(plan.Status, fsm.DRGuestStatus{VMID: g.VMID, Name: g.Name, Kind: "qemu", Backup: list[j].VolID, Memory: memory})
	}
	if edit != nil {
		edit(&plan)
	}
	if _, err := s.raftApply(&fsm.DRReplicaSyncRequest{Source: "east", LocalSite: "west", Plans: []fsm.DRPlan{plan}, ConflictIDs: []string{api.NewID()}}); err != nil {
		t.Fatal(err)
	}
	_, replica, err := s.State().DRPlan(nil, "shop")
	if err != nil || replica == nil {
		t.Fatalf("replica: %v %v", replica, err)
	}
	return replica, originals
}

// TestDRRun_DrillChecksTheAddressing: a drill gives its copies no
// addresses, but fails before it restores anything, naming the guests,
// when a failover could not give them theirs: the plan's prefix is not
// one of this site's, hands out no addresses, or has too few free. With
// an active prefix of the site with room it passes.
func TestDRRun_DrillChecksTheAddressing(t *testing.T) {
	seed := pvesim.Seed{Nodes: 1, BackupDirs: map[string]string{"dr": t.TempDir()},
		GuestList: []pvesim.SeedGuest{{VMID: 100, Node: "pve1", Name: "app", DiskGiB: 4, MemoryMiB: 1024}}}
	s, sim, _ := simServer(t, pvesim.Config{TaskDuration: 20 * time.Millisecond, Seed: seed})
	if _, err := s.raftApply(&fsm.PrefixCreateRequest{Prefix: fsm.Prefix{ID: "c1", Prefix: "10.9.0.0/16", Status: fsm.PrefixContainer}}); err != nil {
		t.Fatal(err)
	}
	// A full /30: its two addresses taken.
	if _, err := s.raftApply(&fsm.PrefixCreateRequest{Prefix: fsm.Prefix{ID: "full", Prefix: "10.9.9.0/30"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.raftApply(&fsm.AddressAllocateRequest{PrefixID: "full", Count: 2, IDs: []string{"f1", "f2"}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ prefix, says string }{
		{"PREFIX-ID-AT-WEST", `prefix "PREFIX-ID-AT-WEST" of the plan's network mapping is not a prefix of this site: a failover would give guests 100 (app.moxxie.test) no address`},
		{"c1", "is a container, which hands out no addresses"},
		{"full", "has 0 free addresses, and a failover would need 1, for guests 100 (app.moxxie.test)"},
	} {
		replica, _ := drReplicaWith(t, s, sim, 1<<30, func(p *fsm.DRPlan) {
			p.Networks = []fsm.DRNetwork{{Source: "vmbr0", Target: "vmbr0", Prefix: c.prefix}}
			p.Guests[0].DNSName = "app.moxxie.test"
		}, 1)
		if op := drDrillRun(t, s, replica); op.Status != fsm.OpFailed || op.Error == nil || !strings.Contains(op.Error.Message, c.says) {
			t.Fatalf("drill with prefix %s: %s %+v", c.prefix, op.Status, op.Error)
		}
	}
	// Nothing was restored for them.
	for _, g := range sim.Guests() {
		if !g.Template && g.VMID != 100 {
			t.Fatalf("a refused drill restored guest %d", g.VMID)
		}
	}
	if _, err := s.raftApply(&fsm.PrefixCreateRequest{Prefix: fsm.Prefix{ID: "p1", Prefix: "10.9.1.0/24"}}); err != nil {
		t.Fatal(err)
	}
	replica, _ := drReplicaWith(t, s, sim, 1<<30, func(p *fsm.DRPlan) {
		p.Networks = []fsm.DRNetwork{{Source: "vmbr0", Target: "vmbr0", Prefix: "p1"}}
		p.Guests[0].DNSName = "app.moxxie.test"
	}, 1)
	drDrill(t, s, replica)
}

// TestDRRun_FailedFailoverRunsAgain: a failover whose guest failed for
// want of an address (its prefix full) fails, its copy restored. Asked
// again once the prefix has room, the same run goes on from that copy:
// it is not restored a second time, and it gets its address and runs.
func TestDRRun_FailedFailoverRunsAgain(t *testing.T) {
	s, sim := drSimServer(t, pvesim.SeedGuest{VMID: 100, Node: "pve1", Name: "app", DiskGiB: 4, MemoryMiB: 1024})
	drFullPrefix(t, s)
	replica, _ := drReplicaWith(t, s, sim, 1<<30, func(p *fsm.DRPlan) {
		p.Networks = []fsm.DRNetwork{{Source: "vmbr0", Target: "vmbr0", Prefix: "p"}}
		p.Guests[0].DNSName = "app.moxxie.test"
	}, 1)
	run := fsm.NewDRRun(replica, fsm.OpDRFailover, fsm.DRTriggerManual, false, api.NewID())
	if _, err := s.raftApply(run); err != nil {
		t.Fatal(err)
	}
	copies := func() []pvesim.Guest {
		var out []pvesim.Guest
		for _, g := range sim.Guests() {
			if !g.Template && g.VMID != 100 {
				out = append(out, g)
			}
		}
		return out
	}
	if op := drAwaitRun(t, s, run.Run.ID); op.Status != fsm.OpFailed {
		t.Fatalf("failover into a full prefix: %s %+v", op.Status, op.Error)
	}
	_, items, _ := s.State().DRItems(nil, run.Run.ID)
	if len(items) != 1 || items[0].Step != fsm.DRStepFailed || !strings.Contains(items[0].Error, "available") || items[0].TargetVMID == 0 {
		t.Fatalf("items %+v", items)
	}
	target := items[0].TargetVMID
	if c := copies(); len(c) != 1 || c[0].VMID != target {
		t.Fatalf("copies %+v, want the one at %d", c, target)
	}

	if _, err := s.raftApply(&fsm.AddressReleaseRequest{ID: "a1", Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.raftApply(&fsm.DRRunRetryRequest{Plan: "shop"}); err != nil {
		t.Fatal(err)
	}
	if op := drAwaitRun(t, s, run.Run.ID); op.Status != fsm.OpSucceeded {
		t.Fatalf("failover run again: %s %+v", op.Status, op.Error)
	}
	_, items, _ = s.State().DRItems(nil, run.Run.ID)
	if len(items) != 1 || items[0].Step != fsm.DRStepRunning || items[0].TargetVMID != target || items[0].Address != "10.9.9.1" {
		t.Fatalf("items %+v", items)
	}
	if c := copies(); len(c) != 1 || c[0].VMID != target || c[0].Status != "running" {
		t.Fatalf("copies %+v, want the one at %d, running", c, target)
	}
	if _, p, _ := s.State().DRPlan(nil, "shop"); p.Failover == nil || p.Failover.State != fsm.OpSucceeded || p.ActiveRun != "" {
		t.Fatalf("plan %+v", p)
	}
}

// TestDRRun_RunAgainTakesNoStrangerAsItsCopy: a failover whose restore
// was refused because another guest, of the same name, holds its target
// VMID fails; asked again, it fails the same way rather than take that
// guest as its copy, and a release for the failback neither stops nor
// backs that guest up: it stays as it was.
func TestDRRun_RunAgainTakesNoStrangerAsItsCopy(t *testing.T) {
	s, sim := drSimServer(t,
		pvesim.SeedGuest{VMID: 100, Node: "pve1", Name: "app", DiskGiB: 4, MemoryMiB: 1024},
		pvesim.SeedGuest{VMID: 150, Node: "pve1", Name: "app", DiskGiB: 4, MemoryMiB: 512})
	replica, originals := drReplicaWith(t, s, sim, 1<<30, func(p *fsm.DRPlan) {
		p.Guests[0].TargetVMID, p.TargetNode = 150, "pve1"
	}, 1)
	if originals[0].VMID != 100 {
		t.Fatalf("the plan protects %d, want 100", originals[0].VMID)
	}
	stranger := func() pvesim.Guest {
		for _, g := range sim.Guests() {
			if g.VMID == 150 {
				return g
			}
		}
		t.Fatal("guest 150 is gone")
		return pvesim.Guest{}
	}
	before := stranger()
	run := fsm.NewDRRun(replica, fsm.OpDRFailover, fsm.DRTriggerManual, false, api.NewID())
	if _, err := s.raftApply(run); err != nil {
		t.Fatal(err)
	}
	for attempt := range 2 {
		if attempt > 0 {
			if _, err := s.raftApply(&fsm.DRRunRetryRequest{Plan: "shop"}); err != nil {
				t.Fatal(err)
			}
		}
		if op := drAwaitRun(t, s, run.Run.ID); op.Status != fsm.OpFailed {
			t.Fatalf("attempt %d: %s %+v", attempt+1, op.Status, op.Error)
		}
		_, items, _ := s.State().DRItems(nil, run.Run.ID)
		if len(items) != 1 || items[0].Step != fsm.DRStepFailed || !strings.Contains(items[0].Error, "already exists") {
			t.Fatalf("attempt %d: items %+v", attempt+1, items)
		}
	}
	// The failback's release at this site finds no copy of the guest
	// here, and leaves guest 150 alone too.
	_, items, _ := s.State().DRItems(nil, run.Run.ID)
	released := drRelease(t, s, items)
	if len(released) != 1 || released[0].Step != fsm.DRStepBackedUp || released[0].Backup != "" {
		t.Fatalf("released %+v, want backed_up with no backup: nothing of it ran here", released)
	}
	if after := stranger(); after.Status != before.Status || !maps.Equal(after.Config, before.Config) {
		t.Errorf("guest 150 changed:\n%+v\nwas\n%+v", after, before)
	}
}

// TestDRRun_ReleaseTakesOnlyCopiesThatRan: a failover that failed with
// one copy running and another restored but never started (its prefix
// full): the release for a failback stops and backs up the copy that
// ran, and leaves the other, which holds only the backup it came from,
// so that the failback starts that guest's newer original as it is.
func TestDRRun_ReleaseTakesOnlyCopiesThatRan(t *testing.T) {
	s, sim := drSimServer(t,
		pvesim.SeedGuest{VMID: 100, Node: "pve1", Name: "app", DiskGiB: 4, MemoryMiB: 1024},
		pvesim.SeedGuest{VMID: 101, Node: "pve1", Name: "db", DiskGiB: 4, MemoryMiB: 1024})
	drFullPrefix(t, s)
	replica, _ := drReplicaWith(t, s, sim, 1<<30, func(p *fsm.DRPlan) {
		p.Networks = []fsm.DRNetwork{{Source: "vmbr0", Target: "vmbr0", Prefix: "p"}}
		p.Guests[1].DNSName = "db.moxxie.test" // no address for it: it fails
	}, 1, 2)
	run := fsm.NewDRRun(replica, fsm.OpDRFailover, fsm.DRTriggerManual, false, api.NewID())
	if _, err := s.raftApply(run); err != nil {
		t.Fatal(err)
	}
	if op := drAwaitRun(t, s, run.Run.ID); op.Status != fsm.OpFailed {
		t.Fatalf("failover: %s %+v", op.Status, op.Error)
	}
	_, items, _ := s.State().DRItems(nil, run.Run.ID)
	copyOf := map[int]int{}
	for _, it := range items {
		copyOf[it.VMID] = it.TargetVMID
	}
	if len(items) != 2 || items[0].Step != fsm.DRStepRunning || items[1].Step != fsm.DRStepFailed || copyOf[101] == 0 {
		t.Fatalf("items %+v", items)
	}

	released := drRelease(t, s, items)
	backup := map[int]string{}
	for _, it := range released {
		if it.Step != fsm.DRStepBackedUp {
			t.Fatalf("released %+v", released)
		}
		backup[it.VMID] = it.Backup
	}
	if backup[100] == "" || backup[101] != "" {
		t.Fatalf("backups %v: want one of the copy that ran (100's) only", backup)
	}
	list, err := s.provider.StorageContent(t.Context(), "pve1", "dr", "backup")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.VMID == copyOf[101] {
			t.Errorf("the copy of 101 that never ran was backed up: %s", c.VolID)
		}
	}
}

// drSimServer is a server over a simulator of one node
// holding guests, with a backup storage dr and a fence grace too short
// to wait for.
func drSimServer(t *testing.T, guests ...pvesim.SeedGuest) (*Server, *pvesim.Sim) {
	t.Helper()
	seed := pvesim.Seed{Nodes: 1, BackupDirs: map[string]string{"dr": t.TempDir()}, GuestList: guests}
	s, sim, _ := simServer(t, pvesim.Config{TaskDuration: 20 * time.Millisecond, Seed: seed},
		func(c *Config) { c.Site.FenceGrace = Duration(time.Millisecond) })
	return s, sim
}

// drFullPrefix creates prefix p, a /30 whose two addresses are taken.
func drFullPrefix(t *testing.T, s *Server) {
	t.Helper()
	for _, cmd := range []fsm.Command{
		&fsm.PrefixCreateRequest{Prefix: fsm.Prefix{ID: "p", Prefix: "10.9.9.0/30"}},
		&fsm.AddressAllocateRequest{PrefixID: "p", Count: 2, IDs: []string{"a1", "a2"}},
	} {
		if _, err := s.raftApply(cmd); err != nil {
			t.Fatal(err)
		}
	}
}

// drRelease runs, as the API starts it for a failback, the release of
// plan shop's failover whose items are items, and returns its items once
// it has succeeded.
func drRelease(t *testing.T, s *Server, items []*fsm.DRItem) []*fsm.DRItem {
	t.Helper()
	rel := &fsm.DRRunStartRequest{Plan: "shop", Kind: fsm.OpDRRelease, Trigger: fsm.DRTriggerManual, Run: fsm.Operation{ID: api.NewID()}}
	for _, it := range items {
		rel.Items = append(rel.Items, fsm.DRItem{VMID: it.VMID, Order: it.Order, Name: it.Name, Kind: it.Kind,
			TargetVMID: it.TargetVMID, TargetNode: it.TargetNode, Address: it.Address, DNSName: it.DNSName})
	}
	if _, err := s.raftApply(rel); err != nil {
		t.Fatal(err)
	}
	if op := drAwaitRun(t, s, rel.Run.ID); op.Status != fsm.OpSucceeded {
		t.Fatalf("release: %s %+v", op.Status, op.Error)
	}
	_, released, err := s.State().DRItems(nil, rel.Run.ID)
	if err != nil {
		t.Fatal(err)
	}
	return released
}

// TestDRRun_FailoverKeepsUnmappedNICs: a failover moves the NICs its
// plan maps to their target bridge, without their VLAN tag, and gives the
// first of them the copy's address (the others DHCP); a NIC the plan does
// not map keeps its bridge, VLAN tag and addresses, and a NIC after a gap
// in the numbering is kept too.
func TestDRRun_FailoverKeepsUnmappedNICs(t *testing.T) {
	s, sim := drSimServer(t, pvesim.SeedGuest{VMID: 100, Node: "pve1", Name: "app", DiskGiB: 4, MemoryMiB: 1024, Config: map[string]string{
		"net0": "virtio=BC:24:11:00:00:10,bridge=vmbr0,tag=10", "ipconfig0": "ip=10.0.10.5/24,gw=10.0.10.1",
		"net1": "virtio=BC:24:11:00:00:30,bridge=vmbr9,tag=30", "ipconfig1": "ip=192.168.30.5/24,gw=192.168.30.1",
		"net3": "virtio=BC:24:11:00:00:40,bridge=vmbr0,tag=40", // after a gap, mapped
	}})
	if _, err := s.raftApply(&fsm.PrefixCreateRequest{Prefix: fsm.Prefix{ID: "p", Prefix: "10.9.9.0/29", Gateway: "10.9.9.6"}, GatewayID: api.NewID()}); err != nil {
		t.Fatal(err)
	}
	replica, _ := drReplicaWith(t, s, sim, 1<<30, func(p *fsm.DRPlan) {
		p.Networks = []fsm.DRNetwork{{Source: "vmbr0", Target: "vmbr1", Prefix: "p"}}
		p.Guests[0].DNSName = "app.moxxie.test"
	}, 1)
	run := fsm.NewDRRun(replica, fsm.OpDRFailover, fsm.DRTriggerManual, false, api.NewID())
	if _, err := s.raftApply(run); err != nil {
		t.Fatal(err)
	}
	if op := drAwaitRun(t, s, run.Run.ID); op.Status != fsm.OpSucceeded {
		t.Fatalf("failover: %s %+v", op.Status, op.Error)
	}
	_, items, _ := s.State().DRItems(nil, run.Run.ID)
	if len(items) != 1 || items[0].Address == "" {
		t.Fatalf("items %+v", items)
	}
	conf, err := s.provider.GuestConfig(context.Background(), provider.GuestRef{Node: items[0].TargetNode, VMID: items[0].TargetVMID, Kind: provider.KindVM})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"net0": "virtio=BC:24:11:00:00:10,bridge=vmbr1", "ipconfig0": "ip=" + items[0].Address + "/29,gw=10.9.9.6",
		"net1": "virtio=BC:24:11:00:00:30,bridge=vmbr9,tag=30", "ipconfig1": "ip=192.168.30.5/24,gw=192.168.30.1",
		"net3": "virtio=BC:24:11:00:00:40,bridge=vmbr1", "ipconfig3": "ip=dhcp",
	}
	if got := networkConfig(conf); !maps.Equal(got, want) {
		t.Fatalf("the copy's network %v, want %v", got, want)
	}
}

// TestCameHome: a failback run again after a failed one leaves alone a
// guest the failed one restored from the same backup and got past
// putting its network back; any other it restores (or takes over the
// restore of, drRestoredBy).
func TestCameHome(t *testing.T) {
	released := &fsm.DRItem{Step: fsm.DRStepReleased, Backup: "dr:backup/b1"}
	for _, c := range []struct {
		name string
		it   *fsm.DRItem
		prev *fsm.DRItem
		want bool
	}{
		{"no earlier run", released, nil, false},
		{"running", released, &fsm.DRItem{Step: fsm.DRStepRunning, Backup: "dr:backup/b1"}, true},
		{"starting", released, &fsm.DRItem{Step: fsm.DRStepStarting, Backup: "dr:backup/b1"}, true},
		{"restored", released, &fsm.DRItem{Step: fsm.DRStepRestored, Backup: "dr:backup/b1"}, true},
		{"failed after its restore", released, &fsm.DRItem{Step: fsm.DRStepFailed, Backup: "dr:backup/b1", Task: "UPID:r"}, false},
		{"restoring", released, &fsm.DRItem{Step: fsm.DRStepRestoring, Backup: "dr:backup/b1"}, false},
		{"another backup", released, &fsm.DRItem{Step: fsm.DRStepRunning, Backup: "dr:backup/b0"}, false},
		{"resumed past released", &fsm.DRItem{Step: fsm.DRStepRestoring, Backup: "dr:backup/b1"}, &fsm.DRItem{Step: fsm.DRStepRunning, Backup: "dr:backup/b1"}, false},
	} {
		if got := cameHome(c.it, c.prev); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
