package node

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/fsm"
)

// defaultApplyTimeout bounds a write that carries no context deadline.
const defaultApplyTimeout = 10 * time.Second

// maxInflight bounds the log entries batchLoop has in raft at once.
const maxInflight = 1

type applyReq struct {
	buf []byte
	// key is the command's fsm.ObjectKey: two requests with the same key
	// never share a log entry.
	key  string
	done chan applyResp
}

type applyResp struct {
	res   *fsm.Result
	index uint64
	err   error
}

// Apply proposes cmd through raft and returns the FSM's result and the log
// index. Concurrent calls are coalesced into one log entry (see batchLoop).
//
// The write is traced as a "raft.apply" span; its trace context travels in
// the command's WriteMeta.TraceParent to every server's FSM apply (see
// applyTracer).
func (s *Server) Apply(ctx context.Context, cmd fsm.Command) (res *fsm.Result, index uint64, err error) {
	if !s.IsLeader() {
		return nil, 0, api.ErrNotLeader
	}
	if !s.writes.TryRLock() {
		if _, ok := cmd.(*fsm.AuditRecordRequest); ok {
			// The record of a refused request does not wait for a restore
			// (nor hold up its answer): the restore replaces the audit log
			// with the snapshot's in any case.
			return nil, 0, api.ErrRestoring
		}
		if err := s.awaitRestore(ctx); err != nil {
			return nil, 0, err
		}
		// Stamped when the write came, the time would put it before the
		// restore it waited for, in the audit log and in the objects it
		// makes.
		if m := cmd.Meta(); m.Now != 0 {
			m.Now = max(m.Now, s.now().UnixNano())
		}
	}
	defer s.writes.RUnlock()
	defer s.metrics.observeApply(time.Now())
	ctx, span := s.startApplySpan(ctx, cmd)
	start := time.Now()
	defer func() { s.endApplySpan(ctx, span, cmd, start, res, index, err) }()
	buf, err := fsm.Encode(cmd)
	if err != nil {
		return nil, 0, err
	}
	req := &applyReq{buf: buf, key: fsm.ObjectKey(cmd), done: make(chan applyResp, 1)}
	select {
	case s.applyCh <- req:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	case <-s.shutdownCh:
		return nil, 0, api.ErrNotLeader
	}
	select {
	case r := <-req.done:
		return r.res, r.index, r.err
	case <-ctx.Done():
		// The command may still apply; a retry with the same idempotency
		// key returns its result.
		return nil, 0, api.ErrTimeout
	}
}

// batchLoop takes queued writes and proposes them: one alone as itself,
// several together as one fsm.BatchRequest entry, so that concurrent writes
// share one log entry, one disk sync, one replication round and one FSM
// transaction. At most maxInflight entries are in raft at once; writes that
// arrive meanwhile wait and form the next batch (group commit). Under light
// load a write is proposed at once, alone. A write that changes an object
// a write of the batch already changes (the same fsm.ObjectKey) ends the
// batch and starts the next one, so that each answer's index is that of
// the state it shows.
func (s *Server) batchLoop() {
	max := s.cfg.Raft.MaxBatch
	slots := make(chan struct{}, maxInflight)
	var next *applyReq // the write that ended the last batch
	for {
		first := next
		next = nil
		if first == nil {
			select {
			case first = <-s.applyCh:
			case <-s.shutdownCh:
				return
			}
		}
		select {
		case slots <- struct{}{}:
		case <-s.shutdownCh:
			first.done <- applyResp{err: api.ErrNotLeader}
			return
		}
		batch := []*applyReq{first}
		var keys []string // of the batch's writes that have one
		if first.key != "" {
			keys = append(keys, first.key)
		}
	drain:
		for len(batch) < max {
			select {
			case r := <-s.applyCh:
				if r.key != "" {
					if slices.Contains(keys, r.key) {
						next = r
						break drain
					}
					keys = append(keys, r.key)
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		s.propose(batch, func() { <-slots })
	}
}

func (s *Server) propose(batch []*applyReq, release func()) {
	s.proposals.Add(1)
	s.proposed.Add(uint64(len(batch)))
	data := batch[0].buf
	if len(batch) > 1 {
		entries := make([][]byte, len(batch))
		for i, r := range batch {
			entries[i] = r.buf
		}
		var err error
		if data, err = fsm.Encode(&fsm.BatchRequest{Entries: entries}); err != nil {
			release()
			for _, r := range batch {
				r.done <- applyResp{err: err}
			}
			return
		}
	}
	f := s.raft.Apply(data, defaultApplyTimeout)
	go func() {
		err := mapRaftError(f.Error())
		release()
		if err != nil {
			for _, r := range batch {
				r.done <- applyResp{err: err}
			}
			return
		}
		idx := f.Index()
		switch v := f.Response().(type) {
		case *fsm.Result:
			batch[0].done <- applyResp{res: v, index: idx}
		case []*fsm.Result:
			for i, r := range batch {
				r.done <- applyResp{res: v[i], index: idx}
			}
		default:
			for _, r := range batch {
				r.done <- applyResp{err: fmt.Errorf("node: unexpected FSM response %T", v)}
			}
		}
	}()
}

// raftApply proposes a command from the server itself (leader loops),
// returning the command's own error if it was rejected.
func (s *Server) raftApply(cmd fsm.Command) (any, error) {
	cmd.Meta().Now = s.now().UnixNano()
	cmd.Meta().Actor = "server:" + s.cfg.NodeID
	ctx, cancel := context.WithTimeout(context.Background(), defaultApplyTimeout)
	defer cancel()
	res, _, err := s.Apply(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return res.Value, res.Err
}
