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

// SnapshotRestore replaces the state with a verified archive. Raft installs
// it on the leader and sends it to every follower as a snapshot.
func (s *Server) SnapshotRestore(ctx context.Context, a *fsm.Archive) error {
	if !s.IsLeader() {
		return api.ErrNotLeader
	}
	meta := &raft.SnapshotMeta{
		Version: raft.SnapshotVersionMax,
		Index:   a.Meta.Index,
		Term:    a.Meta.Term,
		Size:    int64(len(a.Data)),
	}
	if err := s.raft.Restore(meta, bytes.NewReader(a.Data), timeoutFrom(ctx)); err != nil {
		return mapRaftError(err)
	}
	s.logger.Info("state restored from snapshot", "snapshot_index", a.Meta.Index, "created_at", a.Meta.CreatedAt, "from_server", a.Meta.ServerID)
	return nil
}
