package agent

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moxxie/moxxie/sdn"
)

func TestCoalesce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kick := make(chan struct{}, 1)
	var (
		mu    sync.Mutex
		calls []time.Time
	)
	fn := func() {
		mu.Lock()
		calls = append(calls, time.Now())
		mu.Unlock()
	}
	done := make(chan struct{})
	go func() { coalesce(ctx, kick, 50*time.Millisecond, fn); close(done) }()
	send := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(calls)
	}
	send()
	waitFor(t, time.Second, func() bool { return count() == 1 })
	for range 20 { // a burst within the interval: one more call
		send()
	}
	waitFor(t, time.Second, func() bool { return count() == 2 })
	time.Sleep(120 * time.Millisecond)
	if n := count(); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
	mu.Lock()
	if gap := calls[1].Sub(calls[0]); gap < 50*time.Millisecond {
		t.Errorf("calls %v apart, want at least 50ms", gap)
	}
	mu.Unlock()
	cancel()
	<-done
}

// waitFor checks cond every 5 ms until it holds, and fails the test
// when it does not within timeout.
func waitFor(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("condition not met within %v", timeout)
		}
	}
}

// TestKernel_WatchRestoresBridge deletes a managed bridge by hand; Watch
// calls back and a re-Apply restores it within 2 s. Changes of unmanaged
// links do not call back.
func TestKernel_WatchRestoresBridge(t *testing.T) {
	needRoot(t)
	ns := newNS(t, "watch")
	h := handle(t, ns)
	k := newKernel(t, KernelConfig{Netns: ns})
	plan := sdn.Plan{Host: "h", Links: []sdn.Link{{Name: "v1", Kind: sdn.LinkBridge, Alias: "moxxie:v1", Vnet: "v1", MTU: 1500,
		Addresses: []string{"10.1.0.1/24"}}}}
	apply(t, k, plan)

	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	restored := make(chan []string, 16)
	watchErr := make(chan error, 1)
	go func() {
		watchErr <- k.Watch(ctx, func() {
			calls.Add(1)
			acts, err := k.Apply(ctx, plan)
			if err != nil && ctx.Err() == nil {
				t.Errorf("Apply from Watch: %v", err)
			}
			if len(acts) > 0 {
				restored <- acts
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-watchErr:
			if err != nil {
				t.Errorf("Watch: %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Error("Watch did not return after its context ended")
		}
	})
	time.Sleep(100 * time.Millisecond) // let the subscription start

	ipn(t, ns, "link", "add", "other", "type", "bridge")
	ipn(t, ns, "link", "set", "other", "up")
	time.Sleep(300 * time.Millisecond)
	if n := calls.Load(); n != 0 {
		t.Errorf("unmanaged link changes called back %d times", n)
	}

	before := link(t, h, "v1").Attrs().Index
	start := time.Now()
	ipn(t, ns, "link", "del", "v1")
	var acts []string
	select {
	case acts = <-restored:
	case <-time.After(2 * time.Second):
		t.Fatal("v1 not restored within 2s")
	}
	took := time.Since(start)
	t.Logf("managed bridge deleted by hand: restored in %v by %q", took.Round(time.Microsecond), acts)
	l := link(t, h, "v1")
	if l.Attrs().Index == before || l.Attrs().Alias != "moxxie:v1" {
		t.Errorf("v1 after restore: index %d (was %d) alias %q", l.Attrs().Index, before, l.Attrs().Alias)
	}
	if drift, err := k.Verify(plan); err != nil || len(drift) != 0 {
		t.Errorf("Verify after restore = %q, %v", drift, err)
	}
	if took > time.Second {
		t.Errorf("restore took %v; want well within 2s", took)
	}

	// An MTU changed by hand is restored too, in place.
	start = time.Now()
	ipn(t, ns, "link", "set", "v1", "mtu", "1400")
	select {
	case acts = <-restored:
		t.Logf("mtu changed by hand: restored in %v by %q", time.Since(start).Round(time.Microsecond), acts)
	case <-time.After(2 * time.Second):
		t.Fatal("v1's MTU not restored within 2s")
	}
	if mtu := link(t, h, "v1").Attrs().MTU; mtu != 1500 {
		t.Errorf("mtu %d", mtu)
	}
}
