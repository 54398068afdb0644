package node

import (
	"context"
	"sync"

	"github.com/moxxie/moxxie/fsm"
)

// drStartGate holds the guests of a DR run back from starting until
// every guest of the earlier recovery orders has started or failed. The
// guests restore ahead of it: a guest of order 3 restores while those of
// order 1 still restore, and waits at the gate only to start.
type drStartGate struct {
	mu      sync.Mutex
	orders  []int  // the recovery order of each item
	started []bool // whether each item has started or failed
	change  chan struct{}
}

// newDRStartGate returns the gate of a run whose items are items. Items
// that already started or failed (a resumed run) count as started.
func newDRStartGate(items []*fsm.DRItem) *drStartGate {
	g := &drStartGate{orders: make([]int, len(items)), started: make([]bool, len(items)), change: make(chan struct{})}
	for i, it := range items {
		g.orders[i] = it.Order
		g.started[i] = drStarted(it.Step)
	}
	return g
}

// drStarted reports whether an item at step no longer holds back the
// items of later orders: its guest started, or it failed.
func drStarted(step string) bool {
	switch step {
	case fsm.DRStepRunning, fsm.DRStepCleaned, fsm.DRStepFailed:
		return true
	}
	return false
}

// done records that item i started or failed. Calling it again does
// nothing.
func (g *drStartGate) done(i int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started[i] {
		return
	}
	g.started[i] = true
	close(g.change)
	g.change = make(chan struct{})
}

// open reports whether a guest of order may start, and if not, returns a
// channel closed at the next change.
func (g *drStartGate) open(order int) (bool, <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, o := range g.orders {
		if o < order && !g.started[i] {
			return false, g.change
		}
	}
	return true, nil
}

// wait returns once a guest of order may start, or when ctx ends.
func (g *drStartGate) wait(ctx context.Context, order int) error {
	for {
		ok, change := g.open(order)
		if ok {
			return nil
		}
		select {
		case <-change:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
