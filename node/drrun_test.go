package node

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/provider"
	"github.com/moxxie/moxxie/pvesim"
)

// TestDRRun_GuestsOfAnOrderTogether: a drill brings the guests of one
// recovery order back together, at most drParallel at a time, and the
// next order only once every guest of the earlier one is done; every
// copy gets a VMID of its own.
func TestDRRun_GuestsOfAnOrderTogether(t *testing.T) {
	seed := pvesim.Seed{Nodes: 3, BackupDirs: map[string]string{"dr": t.TempDir()}}
	for i := range 6 {
		seed.GuestList = append(seed.GuestList, pvesim.SeedGuest{VMID: 100 + i, Node: fmt.Sprintf("pve%d", i%3+1), Name: fmt.Sprintf("app-%d", i), DiskGiB: 4})
	}
	s, sim, _ := simServer(t, pvesim.Config{TaskDuration: 100 * time.Millisecond, Seed: seed})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Six guests: five of order 1 (one more than drParallel), one of
	// order 2; each backed up to the shared storage.
	var originals []pvesim.Guest
	for _, g := range sim.Guests() {
		if !g.Template && g.Type == "qemu" && len(originals) < 6 {
			originals = append(originals, g)
		}
	}
	if len(originals) < 6 {
		t.Fatalf("the simulator has %d VMs, want 6", len(originals))
	}
	plan := fsm.DRPlan{ID: "shop", SourceSite: "east", RecoverySite: "west", BackupStorage: "dr", TargetStorage: "local-lvm",
		UpdatedAt: fsm.Timestamp(time.Now().UnixNano())}
	isOriginal := map[int]bool{}
	for _, g := range originals {
		isOriginal[g.VMID] = true
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
		i := slices.IndexFunc(list, func(c provider.Content) bool { return c.VMID == g.VMID })
		if i < 0 {
			t.Fatalf("no backup of %d", g.VMID)
		}
		order := 1
		if len(plan.Guests) == 5 {
			order = 2
		}
		plan.Guests = append(plan.Guests, fsm.DRGuest{VMID: g.VMID, Order: order})
		plan.Status = append(plan.Status, fsm.DRGuestStatus{VMID: g.VMID, Name: g.Name, Kind: "qemu", Backup: list[i].VolID})
	}
	if _, err := s.raftApply(&fsm.DRReplicaSyncRequest{Source: "east", LocalSite: "west", Plans: []fsm.DRPlan{plan}, ConflictIDs: []string{api.NewID()}}); err != nil {
		t.Fatal(err)
	}
	_, replica, err := s.State().DRPlan(nil, "shop")
	if err != nil || replica == nil {
		t.Fatalf("replica: %v %v", replica, err)
	}

	// Watch the copies: when each is seen restoring (locked "create")
	// and running.
	var (
		mu                sync.Mutex
		restoring, runAt  = map[int]time.Time{}, map[int]time.Time{}
		mostAtOnce        int
		stopWatch, opDone = make(chan struct{}), make(chan struct{})
	)
	go func() {
		defer close(opDone)
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(5 * time.Millisecond):
			}
			now, n := time.Now(), 0
			mu.Lock()
			for _, g := range sim.Guests() {
				if isOriginal[g.VMID] || g.Template {
					continue
				}
				if g.Lock == "create" {
					n++
					if _, ok := restoring[g.VMID]; !ok {
						restoring[g.VMID] = now
					}
				}
				if _, ok := runAt[g.VMID]; !ok && g.Status == "running" {
					runAt[g.VMID] = now
				}
			}
			mostAtOnce = max(mostAtOnce, n)
			mu.Unlock()
		}
	}()
	run := fsm.NewDRRun(replica, fsm.OpDRDrill, fsm.DRTriggerManual, false, api.NewID())
	if _, err := s.raftApply(run); err != nil {
		t.Fatal(err)
	}
	WaitForResult(t, time.Minute, func() error {
		_, op, err := s.State().Operation(nil, run.Run.ID)
		if err != nil || op == nil || op.FinishedAt == 0 {
			return fmt.Errorf("drill not finished: %+v %v", op, err)
		}
		if op.Status != fsm.OpSucceeded {
			t.Fatalf("drill %s: %+v", op.Status, op.Error)
		}
		return nil
	})
	close(stopWatch)
	<-opDone

	_, items, err := s.State().DRItems(nil, run.Run.ID)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[int]bool{}
	var lastOrder1Running time.Time
	var order2Restore time.Time
	mu.Lock()
	defer mu.Unlock()
	for _, it := range items {
		if it.Step != fsm.DRStepCleaned || it.TargetVMID == 0 || isOriginal[it.TargetVMID] || targets[it.TargetVMID] {
			t.Fatalf("item %+v", it)
		}
		targets[it.TargetVMID] = true
		if it.Order == 1 {
			if runAt[it.TargetVMID].After(lastOrder1Running) {
				lastOrder1Running = runAt[it.TargetVMID]
			}
		} else {
			order2Restore = restoring[it.TargetVMID]
		}
	}
	t.Logf("at most %d restores at once; order 2 began restoring %s after the last guest of order 1 ran", mostAtOnce, order2Restore.Sub(lastOrder1Running))
	if mostAtOnce < 2 || mostAtOnce > drParallel {
		t.Errorf("at most %d restores at once, want 2 to %d", mostAtOnce, drParallel)
	}
	if lastOrder1Running.IsZero() || order2Restore.IsZero() || order2Restore.Before(lastOrder1Running) {
		t.Errorf("order 2 began restoring at %s, the last guest of order 1 ran at %s", order2Restore, lastOrder1Running)
	}
}
