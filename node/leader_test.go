package node

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/moxxie/moxxie/fsm"
)

// pendingFuture is a raft.Future answered only when its channel delivers,
// like a barrier that raft dropped at shutdown when nothing ever does.
type pendingFuture chan error

func (f pendingFuture) Error() error { return <-f }

func TestAwaitFuture(t *testing.T) {
	t.Run("answered", func(t *testing.T) {
		f := make(pendingFuture, 1)
		want := errors.New("leadership lost")
		f <- want
		done, err := awaitFuture(make(chan struct{}), f)
		if !done || !errors.Is(err, want) {
			t.Fatalf("awaitFuture = %v, %v; want true, %v", done, err, want)
		}
	})
	t.Run("never answered, stopped", func(t *testing.T) {
		// A barrier raft never answers must not keep the leader loop,
		// and with it Shutdown, waiting forever.
		stop := make(chan struct{})
		close(stop)
		done, err := awaitFuture(stop, make(pendingFuture))
		if done || err != nil {
			t.Fatalf("awaitFuture = %v, %v; want false, nil", done, err)
		}
	})
}

// TestShutdown_RightAfterGainingLeadership shuts servers down at random
// moments just after they become leader, while the leader loop's barrier
// may be on its way to the FSM. raft drops such a barrier at shutdown
// without answering it; the leader loop used to wait for it forever, and
// Shutdown with it. (It hung within 60 rounds before awaitFuture.)
func TestShutdown_RightAfterGainingLeadership(t *testing.T) {
	for i := range 60 {
		c := TestConfig(t, fmt.Sprintf("s%d", i))
		c.BootstrapExpect = 1
		s, err := New(c, Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		WaitForLeader(t, s)
		// The moment of shutdown is what this test varies: up to 3 ms
		// after leadership, the span in which the barrier commits.
		<-time.After(time.Duration(rand.IntN(3000)) * time.Microsecond)
		done := make(chan struct{})
		go func() {
			_ = s.Shutdown(false)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(time.Minute):
			// Not t.Fatal: the test's cleanups would wait for the same
			// Shutdown. The stacks show where it waits.
			buf := make([]byte, 1<<20)
			panic(fmt.Sprintf("round %d: Shutdown did not return within a minute\n%s", i, buf[:runtime.Stack(buf, true)]))
		}
	}
}

// TestPruneHistory: the leader deletes finished operations and gone
// inventory once they are older than their retention, by its own clock,
// and keeps them forever with a retention of zero.
func TestPruneHistory(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	c := TestConfig(t, "s1")
	c.BootstrapExpect = 1
	c.Retention.Operations = 0 // forever, for now
	s, err := New(c, Options{Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(false) })
	WaitForLeader(t, s)
	apply := func(cmd fsm.Command) {
		t.Helper()
		if _, err := s.raftApply(cmd); err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
	}
	// The leader's runner takes the operation; without a platform it fails
	// it at once, which finishes it as well as any end would.
	apply(&fsm.OperationCreateRequest{Op: fsm.Operation{ID: "op-1", Kind: fsm.OpVMStart, VMID: 100}})
	WaitForResult(t, 10*time.Second, func() error {
		if _, op, _ := s.State().Operation(nil, "op-1"); op == nil || op.FinishedAt == 0 {
			return fmt.Errorf("operation op-1 not finished: %+v", op)
		}
		return nil
	})
	apply(&fsm.InventorySyncRequest{Guests: []fsm.InvGuest{{VMID: 100, Kind: fsm.GuestKindVM, Node: "pve1"}, {VMID: 101, Kind: fsm.GuestKindVM, Node: "pve1"}}})
	apply(&fsm.InventorySyncRequest{GoneGuests: []int{101}})

	// Within the retention nothing is due, and nothing is proposed.
	prunes := func() float64 {
		var m dto.Metric
		if err := s.metrics.applies[fsm.RetentionPruneType].Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	clock.Add(int64(89 * 24 * time.Hour))
	if p, err := s.pruneHistory(); err != nil || p != (fsm.RetentionPruned{}) {
		t.Fatalf("prune within the retention: %+v, %v", p, err)
	}
	if n := prunes(); n != 0 {
		t.Fatalf("%v prunes applied with nothing due", n)
	}

	// Past the default 90 days the gone guest goes; operations are kept
	// forever with retention.operations 0.
	clock.Add(int64(2 * 24 * time.Hour))
	if p, err := s.pruneHistory(); err != nil || p != (fsm.RetentionPruned{Guests: 1}) {
		t.Fatalf("prune past the retention: %+v, %v", p, err)
	}
	if n := prunes(); n != 1 {
		t.Fatalf("%v prunes applied, want 1", n)
	}
	if _, g, _ := s.State().InventoryGuest(nil, 101); g != nil {
		t.Fatalf("gone guest kept: %+v", g)
	}
	if _, g, _ := s.State().InventoryGuest(nil, 100); g == nil {
		t.Fatal("present guest deleted")
	}
	if _, op, _ := s.State().Operation(nil, "op-1"); op == nil {
		t.Fatal("operation deleted with retention.operations 0")
	}

	s.cfg.Retention.Operations = defaultRetention
	if p, err := s.pruneHistory(); err != nil || p != (fsm.RetentionPruned{Operations: 1}) {
		t.Fatalf("prune of operations: %+v, %v", p, err)
	}
	if _, op, _ := s.State().Operation(nil, "op-1"); op != nil {
		t.Fatalf("finished operation kept: %+v", op)
	}

	// A long history goes pruneMax objects per entry.
	many := make([]fsm.InvGuest, pruneMax+1)
	gone := make([]int, len(many))
	for i := range many {
		many[i] = fsm.InvGuest{VMID: 1000 + i, Kind: fsm.GuestKindVM, Node: "pve1"}
		gone[i] = many[i].VMID
	}
	apply(&fsm.InventorySyncRequest{Guests: many})
	apply(&fsm.InventorySyncRequest{GoneGuests: gone})
	clock.Add(int64(91 * 24 * time.Hour))
	for _, want := range []int{pruneMax, 1, 0} {
		if p, err := s.pruneHistory(); err != nil || p != (fsm.RetentionPruned{Guests: want}) {
			t.Fatalf("prune of a long history: %+v, %v; want %d guests", p, err, want)
		}
	}
}

func TestReapIdempotency(t *testing.T) {
	// Every reading of the clock moves it on by a microsecond, so that the
	// records are created at different times, as they are.
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	var clock atomic.Int64
	clock.Store(start)
	c := TestConfig(t, "s1")
	c.BootstrapExpect = 1
	opts := Options{Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return time.Unix(0, clock.Add(1000)) }}
	s, err := New(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(false) })
	WaitForLeader(t, s)
	start = clock.Load()
	reaps := func() float64 {
		var m dto.Metric
		if err := s.metrics.applies[fsm.IdempotencyReapType].Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}

	// 2.5 reaps' worth of keyed writes, from concurrent clients as the
	// API batches them.
	const n, clients = 5 * idempotencyReapMax / 2, 50
	write := func(from, to int) {
		t.Helper()
		errs := make(chan error, clients)
		for w := range clients {
			go func() {
				for i := from + w; i < to; i += clients {
					cmd := &fsm.SettingUpsertRequest{Key: "k", Value: "v", WriteMeta: fsm.WriteMeta{IdempotencyKey: fmt.Sprintf("key-%d", i), RequestHash: "h"}}
					if _, err := s.raftApply(cmd); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		for range clients {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
	// Half of them before a snapshot, half after; then the server
	// restarts, so its state comes from the snapshot (which rebuilds the
	// list of records by entry) and the log after it.
	write(0, n/2)
	if err := s.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	write(n/2, n)
	if err := s.Shutdown(false); err != nil {
		t.Fatal(err)
	}
	if s, err = New(c, opts); err != nil {
		t.Fatal(err)
	}
	WaitForLeader(t, s)
	WaitForApplied(t, s.LastIndex(), s)
	if got := s.State().IdempotencyRecords(); got != n {
		t.Fatalf("%d idempotency records after a restart, want %d", got, n)
	}

	// Within the retention nothing is due, and nothing is proposed.
	clock.Store(start + int64(idempotencyRetention))
	if got, err := s.reapIdempotency(nil, time.Minute); err != nil || got != 0 {
		t.Fatalf("reap within the retention: %d, %v", got, err)
	}
	if r := reaps(); r != 0 {
		t.Fatalf("%v reaps applied with nothing due", r)
	}

	// Past it, every record goes, in entries of about idempotencyReapMax:
	// one entry when the time for reaping is up at once, the rest at the
	// next tick.
	clock.Store(start + int64(idempotencyRetention+time.Second))
	first, err := s.reapIdempotency(nil, 0)
	if err != nil || first == 0 || first > idempotencyReapMax+clients {
		t.Fatalf("reap without time for more than one entry: %d, %v", first, err)
	}
	if r := reaps(); r != 1 {
		t.Fatalf("%v reaps applied without time for more than one", r)
	}
	if got, err := s.reapIdempotency(nil, time.Minute); err != nil || first+got != n {
		t.Fatalf("reap past the retention: %d after %d, %v; want %d in all", got, first, err, n)
	}
	if r := reaps(); r < 3 || r > 4 {
		t.Fatalf("%v reaps applied for %d records, want 3 or 4", r, n)
	}
	if got := s.State().IdempotencyRecords(); got != 0 {
		t.Fatalf("%d idempotency records left", got)
	}
	if got, err := s.reapIdempotency(nil, time.Minute); err != nil || got != 0 {
		t.Fatalf("reap with nothing left: %d, %v", got, err)
	}
}
