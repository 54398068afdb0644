package node

import (
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"

	"github.com/moxxie/moxxie/fsm"
)

// Idempotency records are kept this long, then reaped by the leader, at
// most about idempotencyReapMax in one log entry: a reap of 1,024 records
// among 500,000 applies in 2-4 ms, while one of 4,096 changes more radix
// nodes than go-memdb tracks and costs 160-260 ms on every server
// (fsm.BenchmarkIdempotencyReap).
const (
	idempotencyRetention = time.Hour
	reapInterval         = time.Minute
	idempotencyReapMax   = 1000
)

// retentionInterval is how often the leader looks for history past its
// retention (RetentionConfig); the first look is at the first reap tick
// after it gains leadership. One prune deletes at most pruneMax
// operations and inventory objects; when it hits that bound the leader
// prunes again at the next reap tick.
const (
	retentionInterval = time.Hour
	pruneMax          = 5000
)

// drainGap is the least time between two drains of addresses whose
// quarantine has passed. Allocations release them anyway; the drains keep
// listings, available addresses and utilization current between
// allocations, at most a log entry per drainGap however many quarantines
// end.
const drainGap = time.Second

// monitorLeadership starts the leader-only loops when this server gains
// leadership and stops them when it loses it.
func (s *Server) monitorLeadership() {
	var stop chan struct{}
	var done chan struct{}
	for {
		select {
		case isLeader := <-s.raft.LeaderCh():
			if isLeader && stop == nil {
				stop, done = make(chan struct{}), make(chan struct{})
				go func(stop, done chan struct{}) {
					defer close(done)
					s.leaderLoop(stop)
				}(stop, done)
			} else if !isLeader && stop != nil {
				close(stop)
				<-done
				stop = nil
			}
		case <-s.shutdownCh:
			if stop != nil {
				close(stop)
				<-done
			}
			return
		}
	}
}

func (s *Server) leaderLoop(stop chan struct{}) {
	defer s.consistentReady.Store(false)
	s.logger.Info("gained leadership", "term", s.raft.CurrentTerm())
	// A barrier makes the FSM apply every entry of earlier terms, so
	// ?consistent reads are served from a complete store.
	for {
		done, err := awaitFuture(stop, s.raft.Barrier(time.Minute))
		if !done {
			return
		}
		if err == nil {
			break
		}
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	// The first command of the term tells every server the lineage of the
	// leader's state; one whose state has another halts on it (a restore
	// that reached it alone: fsm.LineageCheckRequest). Writes wait for it.
	if !s.checkLineage(stop) {
		return
	}
	s.consistentReady.Store(true)
	var loops sync.WaitGroup
	defer loops.Wait()
	loops.Go(s.markDNSSerials)
	loops.Go(func() { s.runInventorySync(stop) })
	loops.Go(func() { s.runOperations(stop) })
	loops.Go(func() { s.runSecretRewrap(stop) })
	loops.Go(func() { s.runAudit(stop) })
	loops.Go(func() { s.runMetering(stop) })
	loops.Go(func() { s.runSDNRollouts(stop) })
	loops.Go(func() { s.runSDNMirror(stop) })
	loops.Go(func() { s.runStorageSync(stop) })
	loops.Go(func() { s.runPolicies(stop) })
	loops.Go(func() { s.runDR(stop) })
	loops.Go(func() { s.runQuarantineDrain(stop) })
	t := time.NewTicker(reapInterval)
	defer t.Stop()
	lt := time.NewTicker(lineageInterval)
	defer lt.Stop()
	var pruned time.Time // when this leader last looked for history to prune
	for {
		select {
		case <-stop:
			s.logger.Info("lost leadership")
			return
		case <-lt.C:
			s.recheckLineage(stop)
		case <-t.C:
			s.markDNSSerials() // after a restore of an unmarked state, or a failed mark
			if _, err := s.reapIdempotency(stop, reapInterval/2); err != nil {
				s.logger.Warn("reaping idempotency records failed", "error", err)
			}
			if time.Since(pruned) >= retentionInterval {
				pruned = time.Now()
				p, err := s.pruneHistory()
				if err != nil {
					s.logger.Warn("deleting history past its retention failed", "error", err)
				} else if p.Operations+p.Nodes+p.Guests+p.Storage >= pruneMax {
					pruned = time.Time{} // more is due: go on at the next tick
				}
			}
		}
	}
}

// markDNSSerials marks a state that has no DNSSerialMarkRequest yet (a new
// cluster, one upgraded from a version without it, or one restored from
// such a version's snapshot), so that SOA serials move with the changes
// DNS shows only. The leader calls it when it starts to lead and at every
// reap tick, so a failed mark is tried again. A marked state is left as it
// is: a restart or an election changes nothing.
func (s *Server) markDNSSerials() {
	if s.State().DNSSerialsMarked() {
		return
	}
	if _, err := s.raftApply(&fsm.DNSSerialMarkRequest{}); err != nil {
		s.logger.Warn("marking the state for DNS serials failed", "error", err)
	}
}

// runQuarantineDrain releases the addresses whose quarantine has passed
// when the first of them ends, drainGap after the last drain at the
// soonest, until stop is closed. It waits on the store for the next end,
// which a release or a drain changes.
func (s *Server) runQuarantineDrain(stop chan struct{}) {
	var last time.Time
	for {
		st := s.State()
		ws := memdb.NewWatchSet()
		ws.Add(stop)
		ws.Add(st.AbandonCh()) // a restore replaces the store
		var t *time.Timer
		var timeout <-chan time.Time // none: until the store changes
		if until, ok := st.QuarantineEnd(ws); ok {
			t = time.NewTimer(max(time.Duration(until-s.now().UnixNano()), drainGap-time.Since(last), 0))
			timeout = t.C
		}
		timedOut := ws.Watch(timeout)
		if t != nil {
			t.Stop()
		}
		select {
		case <-stop:
			return
		default:
		}
		if !timedOut || !s.State().QuarantineDue(s.now().UnixNano()) {
			continue
		}
		last = time.Now()
		if _, err := s.raftApply(&fsm.QuarantineDrainRequest{}); err != nil {
			s.logger.Warn("releasing addresses out of quarantine failed", "error", err)
		}
	}
}

// pruneHistory deletes the finished operations and gone inventory that
// are older than the configured retention, if there are any, and returns
// what it deleted.
func (s *Server) pruneHistory() (fsm.RetentionPruned, error) {
	now := s.now()
	cutoff := func(keep Duration) int64 {
		if keep <= 0 {
			return 0 // kept forever
		}
		return now.Add(-keep.Duration()).UnixNano()
	}
	opsBefore, goneBefore := cutoff(s.cfg.Retention.Operations), cutoff(s.cfg.Retention.GoneInventory)
	if due, err := s.State().RetentionDue(opsBefore, goneBefore); err != nil || !due {
		return fsm.RetentionPruned{}, err
	}
	v, err := s.raftApply(&fsm.RetentionPruneRequest{OperationsBefore: opsBefore, GoneBefore: goneBefore, Max: pruneMax})
	if err != nil {
		return fsm.RetentionPruned{}, err
	}
	p := *v.(*fsm.RetentionPruned)
	s.logger.Info("deleted history past its retention", "operations", p.Operations, "items", p.Items,
		"nodes", p.Nodes, "guests", p.Guests, "storage", p.Storage)
	return p, nil
}

// reapIdempotency deletes the idempotency records older than the
// retention, in entries of about idempotencyReapMax records each, for up
// to budget (at least one entry; a backlog left goes on at the next
// tick), and returns how many it deleted. It proposes nothing when no
// record is due.
func (s *Server) reapIdempotency(stop <-chan struct{}, budget time.Duration) (int, error) {
	cutoff := s.now().Add(-idempotencyRetention).UnixNano()
	deadline := time.Now().Add(budget)
	total := 0
	for {
		before, ok := s.State().IdempotencyReapBefore(cutoff, idempotencyReapMax)
		if !ok {
			return total, nil
		}
		v, err := s.raftApply(&fsm.IdempotencyReapRequest{Before: before})
		if err != nil {
			return total, err
		}
		m, _ := v.(map[string]int)
		n := m["reaped"]
		total += n
		// The leader's own state has applied the reap: what it chose is
		// gone, and the next choice starts after it.
		if before >= cutoff || n == 0 || time.Now().After(deadline) {
			return total, nil
		}
		select {
		case <-stop:
			return total, nil
		default:
		}
	}
}

// awaitFuture waits for f until stop is closed and reports whether f
// finished, and its error. hashicorp/raft 1.7.3 never answers a barrier or
// apply future that is waiting for the FSM when raft shuts down, so a loop
// that must end on stop cannot block in f.Error(). If stop wins, the
// goroutine waiting for f stays until f is answered, which may be never; it
// holds only f.
func awaitFuture(stop <-chan struct{}, f raft.Future) (done bool, err error) {
	errc := make(chan error, 1)
	go func() { errc <- f.Error() }()
	select {
	case err := <-errc:
		return true, err
	case <-stop:
		return false, nil
	}
}

// kickSync asks the inventory loop to sync now, without waiting for its
// interval; a kick while one is pending is dropped.
func (s *Server) kickSync() {
	select {
	case s.syncKick <- struct{}{}:
	default:
	}
}

// lineageInterval is how often a leader commits its lineage check again
// after the first of its term. A server that holds a restore the others
// never got, at an index above their log's (a backup restored into a new
// cluster), applies none of the entries below it, the first check of the
// leader's term among them: it meets the next check above it, at most
// this long after the cluster's log passed the restore's index. A leader
// reads it when it starts to lead (tests that count log entries set it
// longer before they start their servers).
var lineageInterval = 5 * time.Second

// recheckLineage commits one lineage check, unless a restore holds the
// write fence (it changes the lineage: the check would be of the state
// before it).
func (s *Server) recheckLineage(stop chan struct{}) {
	if !s.writes.TryRLock() {
		return
	}
	defer s.writes.RUnlock()
	buf, err := s.lineageCheck()
	if err != nil {
		s.logger.Error("encoding the lineage check", "err", err)
		return
	}
	if _, err := awaitFuture(stop, s.raft.Apply(buf, time.Minute)); err != nil {
		s.logger.Warn("the lineage check did not commit", "err", err)
	}
}

// lineageCheck encodes a lineage check of the leader's state.
func (s *Server) lineageCheck() ([]byte, error) {
	return fsm.Encode(&fsm.LineageCheckRequest{
		WriteMeta: fsm.WriteMeta{Now: s.now().UnixNano()},
		Lineage:   s.State().Lineage(),
	})
}

// checkLineage commits a lineage check of the leader's state, trying again
// until it commits or stop closes; it reports whether it committed.
func (s *Server) checkLineage(stop chan struct{}) bool {
	buf, err := s.lineageCheck()
	if err != nil {
		s.logger.Error("encoding the lineage check", "err", err)
		return false
	}
	for {
		done, err := awaitFuture(stop, s.raft.Apply(buf, time.Minute))
		if !done {
			return false
		}
		if err == nil {
			return true
		}
		select {
		case <-stop:
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}
