package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/moxxie/moxxie/fsm"
)

func TestDRStartGate(t *testing.T) {
	items := func(steps ...string) []*fsm.DRItem {
		orders := []int{1, 1, 2, 3}
		out := make([]*fsm.DRItem, len(steps))
		for i, s := range steps {
			out[i] = &fsm.DRItem{Order: orders[i], Step: s}
		}
		return out
	}
	tests := []struct {
		name  string
		items []*fsm.DRItem
		done  []int
		open  map[int]bool // order → may start
	}{
		{"fresh run: only the first order", items(fsm.DRStepPending, fsm.DRStepPending, fsm.DRStepPending, fsm.DRStepPending), nil,
			map[int]bool{1: true, 2: false, 3: false}},
		{"one guest of order 1 running", items(fsm.DRStepPending, fsm.DRStepPending, fsm.DRStepPending, fsm.DRStepPending), []int{0},
			map[int]bool{1: true, 2: false, 3: false}},
		{"order 1 done", items(fsm.DRStepPending, fsm.DRStepPending, fsm.DRStepPending, fsm.DRStepPending), []int{0, 1},
			map[int]bool{1: true, 2: true, 3: false}},
		{"done twice counts once", items(fsm.DRStepPending, fsm.DRStepPending, fsm.DRStepPending, fsm.DRStepPending), []int{0, 0},
			map[int]bool{2: false}},
		{"a later order's guest done first opens nothing", items(fsm.DRStepPending, fsm.DRStepPending, fsm.DRStepPending, fsm.DRStepPending), []int{2},
			map[int]bool{2: false, 3: false}},
		{"resumed: running, failed and cleaned count as started", items(fsm.DRStepRunning, fsm.DRStepFailed, fsm.DRStepCleaned, fsm.DRStepConfigured), nil,
			map[int]bool{2: true, 3: true}},
		{"resumed: restored or starting still hold later orders back", items(fsm.DRStepRestored, fsm.DRStepStarting, fsm.DRStepPending, fsm.DRStepPending), nil,
			map[int]bool{1: true, 2: false, 3: false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newDRStartGate(tt.items)
			for _, i := range tt.done {
				g.done(i)
			}
			for order, want := range tt.open {
				if got, _ := g.open(order); got != want {
					t.Errorf("order %d may start: %v, want %v", order, got, want)
				}
			}
		})
	}
}

// TestDRStartGate_Wait: a waiter is let through by the last guest of the
// earlier orders, and gives up when its context ends.
func TestDRStartGate_Wait(t *testing.T) {
	g := newDRStartGate([]*fsm.DRItem{{Order: 1}, {Order: 1}, {Order: 2}})
	through := make(chan error, 1)
	go func() { through <- g.wait(context.Background(), 2) }()
	g.done(0)
	select {
	case err := <-through:
		t.Fatalf("let through with a guest of order 1 not started: %v", err)
	default:
	}
	g.done(1)
	select {
	case err := <-through:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not let through once order 1 started")
	}

	g = newDRStartGate([]*fsm.DRItem{{Order: 1}, {Order: 2}})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { through <- g.wait(ctx, 2) }()
	cancel()
	select {
	case err := <-through:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("wait after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait did not end with its context")
	}
}
