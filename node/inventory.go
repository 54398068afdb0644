package node

import (
	"context"
	"errors"
	"time"

	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/provider"
)

// Inventory sync defaults.
const (
	// DefaultSyncInterval is how often the leader reads the platform.
	DefaultSyncInterval = 10 * time.Second
	// syncSeenInterval is how often a sync that finds nothing changed
	// still records that it ran, so last_seen stays current. Syncs in
	// between write nothing.
	syncSeenInterval = time.Minute
	// syncMaxBackoff bounds the wait between attempts while the platform
	// is unreachable.
	syncMaxBackoff = 5 * time.Minute
	// syncChunk bounds the objects one sync command carries.
	syncChunk = 1000
)

// inventorySyncer is the leader's inventory loop: it reads the platform
// every interval and turns what changed into commands.
type inventorySyncer struct {
	s        *Server
	p        provider.Provider
	interval time.Duration
	lastSeen time.Time // when a sync was last recorded, in this term
	failures int
}

// runInventorySync syncs until stop closes. kick makes it sync at once
// (after an operation changed the platform).
func (s *Server) runInventorySync(stop <-chan struct{}) {
	if s.provider == nil {
		return
	}
	y := &inventorySyncer{s: s, p: s.provider, interval: s.cfg.Proxmox.SyncInterval.Duration()}
	if y.interval <= 0 {
		y.interval = DefaultSyncInterval
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-stop
		cancel()
	}()
	wait := time.Duration(0)
	for {
		select {
		case <-stop:
			return
		case <-time.After(wait):
		case <-s.syncKick:
		}
		wait = y.cycle(ctx)
	}
}

// cycle runs one sync and returns how long to wait before the next.
func (y *inventorySyncer) cycle(ctx context.Context) time.Duration {
	start := time.Now()
	defer func() {
		y.s.metrics.syncDuration.Observe(time.Since(start).Seconds())
		y.s.syncCycles.Add(1)
	}()
	cctx, cancel := context.WithTimeout(ctx, max(y.interval, 30*time.Second))
	inv, err := y.p.Inventory(cctx)
	cancel()
	if ctx.Err() != nil {
		return 0
	}
	if err != nil {
		return y.failed(err)
	}
	n, err := y.record(&inv)
	if err != nil {
		// Not the platform's fault: the write did not commit (leadership
		// lost, shutting down). Try again at the next interval.
		y.s.logger.Warn("recording inventory failed", "error", err)
		y.s.metrics.syncRuns.WithLabelValues("error").Inc()
		return y.interval
	}
	if y.failures > 0 {
		y.s.logger.Info("inventory sync recovered", "after_failures", y.failures)
	}
	y.failures = 0
	y.s.metrics.syncRuns.WithLabelValues("ok").Inc()
	y.s.metrics.syncChanges.Add(float64(n))
	return y.interval
}

// record writes what changed since the recorded inventory and returns
// the number of objects written. A cycle that finds nothing changed
// writes nothing, unless the last recorded sync is older than
// syncSeenInterval or the inventory is marked stale.
func (y *inventorySyncer) record(inv *provider.Inventory) (int, error) {
	st := y.s.State()
	rec, err := st.InventoryRecorded()
	if err != nil {
		return 0, err
	}
	req := inventoryDiff(rec, inv)
	if req.Len() == 0 {
		_, state, err := st.InventoryState(nil)
		if err != nil {
			return 0, err
		}
		if !state.Stale && !y.lastSeen.IsZero() && time.Since(y.lastSeen) < syncSeenInterval {
			return 0, nil
		}
	}
	n := 0
	for _, part := range splitSync(req, syncChunk) {
		if _, err := y.s.raftApply(part); err != nil {
			return n, err
		}
		n += part.Len()
	}
	y.lastSeen = time.Now()
	return n, nil
}

// failed records a failed read of the platform: a log line, the metric,
// the inventory marked stale (once per distinct error; every server's
// moxxie_inventory_stale shows it), and a backoff.
func (y *inventorySyncer) failed(err error) time.Duration {
	y.failures++
	y.s.metrics.syncRuns.WithLabelValues("error").Inc()
	backoff := y.interval
	for i := 1; i < y.failures && backoff < syncMaxBackoff; i++ {
		backoff *= 2
	}
	backoff = min(backoff, syncMaxBackoff)
	y.s.logger.Warn("inventory sync failed; inventory kept and marked stale", "error", err,
		"failures", y.failures, "retry_in", backoff.String(), "unavailable", errors.Is(err, provider.ErrUnavailable))
	msg := err.Error()
	if _, state, serr := y.s.State().InventoryState(nil); serr == nil && (!state.Stale || state.Error != msg) {
		if _, aerr := y.s.raftApply(&fsm.InventoryStaleRequest{Error: msg}); aerr != nil {
			y.s.logger.Warn("marking inventory stale failed", "error", aerr)
		}
	}
	return backoff
}

// Platform names the virtualization platform, or "" without one.
func (s *Server) Platform() string {
	if s.provider == nil {
		return ""
	}
	return s.provider.Name()
}
