package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/raft"
	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/fsm"
)

// SnapshotSave writes a backup of the state at a consistent point: after a
// quorum check and with every committed write applied.
func (s *Server) SnapshotSave(ctx context.Context, w io.Writer) (*fsm.ArchiveMeta, error) {
	if err := s.VerifyLeader(ctx); err != nil {
		return nil, err
	}
	var data bytes.Buffer
	st := s.fsm.State()
	index, err := st.DumpIndexed(&data)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	meta := fsm.ArchiveMeta{
		Index: index, Term: s.raft.CurrentTerm(), ServerID: s.cfg.NodeID,
		CreatedAt: s.now().UTC().Format(time.RFC3339Nano),
	}
	if err := fsm.WriteArchive(w, meta, data.Bytes()); err != nil {
		return nil, err
	}
	return &meta, nil
}

// SnapshotRestore replaces the state with the archive read returns. Raft
// installs it on the leader and sends it to every follower as a snapshot.
// Writes are fenced from before read until the state is replaced: the
// restore waits for those in flight, and new ones wait for it (Apply), so
// that no write is acknowledged while it runs and then lost to it.
func (s *Server) SnapshotRestore(ctx context.Context, meta fsm.WriteMeta, read func() (*fsm.Archive, error)) (*fsm.Archive, error) {
	mark := &fsm.RestoreMarkRequest{WriteMeta: meta}
	a, marked, err := s.restoreFenced(ctx, read, mark)
	if err != nil {
		return nil, err
	}
	if !marked {
		// The mark did not commit under the fence: the writes that waited
		// come first now, then the mark and its audit entry.
		// Apply, not raftApply, which would record the server as the actor.
		mark.Now, mark.SnapshotIndex = s.now().UnixNano(), a.Meta.Index
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultApplyTimeout)
		defer cancel()
		res, _, err := s.Apply(ctx, mark)
		if err == nil {
			err = res.Err
		}
		if err != nil {
			s.logger.Warn("SOA serials stay at the restored snapshot's index until the next change, and the restore is not audited", "err", err)
		}
	}
	return a, nil
}

// restoreFenced restores the archive read returns while it holds the
// write fence, and then commits mark, still under it, as the first entry
// after the restored state: the restored state carries the snapshot's
// indexes, and SOA serials are an index of it, which the mark moves past
// the log's end so that they do not go back with the state; and mark
// carries the restore's audit entry, which so comes before every write
// that waited. It reports whether the mark committed.
func (s *Server) restoreFenced(ctx context.Context, read func() (*fsm.Archive, error), mark *fsm.RestoreMarkRequest) (*fsm.Archive, bool, error) {
	if !s.IsLeader() {
		return nil, false, api.ErrNotLeader
	}
	done := make(chan struct{})
	if !s.restoring.CompareAndSwap(nil, &done) {
		return nil, false, api.ErrRestoreRunning
	}
	defer func() {
		s.restoring.Store(nil)
		close(done)
	}()
	term := s.raft.CurrentTerm()
	s.writes.Lock()
	defer s.writes.Unlock()
	a, err := read()
	if err != nil {
		return nil, false, err
	}
	// The fence holds this server's writes only: had it stopped leading
	// while the upload ran, other leaders took writes meanwhile, which the
	// restore would drop, even if it leads again now.
	if !s.IsLeader() || s.raft.CurrentTerm() != term {
		return nil, false, fmt.Errorf("%w: this server stopped leading while the snapshot was uploading and nothing was restored; upload it again", api.ErrNotLeader)
	}
	// raft installs the snapshot at the index after both the log's and
	// the snapshot's; the state records it as its lineage, so that a
	// server left with it when the restore reaches no quorum halts at the
	// next leader's lineage check instead of drifting apart.
	before := s.raft.LastIndex()
	lineage := max(before, a.Meta.Index) + 1
	data, err := fsm.WithLineage(a.Data, lineage)
	if err != nil {
		return nil, false, err
	}
	meta := &raft.SnapshotMeta{
		Version: raft.SnapshotVersionMax,
		Index:   a.Meta.Index,
		Term:    a.Meta.Term,
		Size:    int64(len(data)),
	}
	if err := s.raft.Restore(meta, bytes.NewReader(data), timeoutFrom(ctx)); err != nil {
		return nil, false, mapRaftError(err)
	}
	s.logger.Info("state restored from snapshot", "snapshot_index", a.Meta.Index, "created_at", a.Meta.CreatedAt, "from_server", a.Meta.ServerID, "replaced_log_index", before, "lineage", lineage)
	// Straight to raft: the fence keeps every other write out of it.
	m := *mark
	m.Now, m.SnapshotIndex = s.now().UnixNano(), a.Meta.Index
	buf, err := fsm.Encode(&m)
	if err != nil {
		return a, false, nil
	}
	f := s.raft.Apply(buf, timeoutFrom(ctx))
	if err := f.Error(); err != nil {
		s.logger.Warn("the entry after a restore did not commit under its fence", "err", err)
		return a, false, nil
	}
	r, ok := f.Response().(*fsm.Result)
	return a, ok && r.Err == nil, nil
}

// awaitRestore waits until no restore holds the write fence and takes a
// share of it (Apply releases it), for at most the hold timeout.
func (s *Server) awaitRestore(ctx context.Context) error {
	timer := time.NewTimer(time.Duration(s.cfg.HoldTimeout))
	defer timer.Stop()
	for !s.writes.TryRLock() {
		// A restore holds or waits for the fence, and restoring is set
		// for as long as it does; nil means it has just ended.
		p := s.restoring.Load()
		if p == nil {
			continue
		}
		select {
		case <-*p:
		case <-timer.C:
			return api.ErrRestoring
		case <-ctx.Done():
			return ctx.Err()
		case <-s.shutdownCh:
			return api.ErrNotLeader
		}
	}
	return nil
}
