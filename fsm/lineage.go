package fsm

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/hashicorp/go-memdb"
)

// A state's lineage is the raft index of the snapshot restore it comes
// from (0: none). A restore reaches the leader's state before a quorum
// has it (hashicorp/raft's Restore installs it there first): a leader that
// fails in that moment comes back with the restored state, while the
// others, which never got it, elect a leader of their own and go on with
// the state from before. Applying the same entries to the two states then
// gives different answers (the same address to two owners). The lineage
// tells the two apart: the node writes it into the snapshot it restores
// (WithLineage), and every leader, before it takes writes and then every
// few seconds, commits a LineageCheckRequest with its own, on which a
// server whose state has another halts instead of drifting apart from the
// others.

// indexLineage is the index table's row that holds the state's lineage:
// an IndexEntry, so that snapshots carry it as they carry the other rows.
// Its index, the restore's raft index, is also the latest index of a
// state restored from it, which is what it is.
const indexLineage = "lineage"

// Lineage returns the raft index of the restore the state comes from, or
// 0 when it comes from none.
func (s *Store) Lineage() uint64 { return lineageOf(s.db.Txn(false)) }

// lineageOf reads the lineage of the state txn sees.
func lineageOf(txn *memdb.Txn) uint64 {
	raw, err := txn.First(tableIndex, "id", indexLineage)
	if err != nil || raw == nil {
		return 0
	}
	return raw.(*IndexEntry).Index
}

// WithLineage returns the snapshot stream data, whole and well formed as
// WriteSnapshot writes it, with lineage recorded in it: a record before
// its end record that replaces the lineage the stream may hold already.
func WithLineage(data []byte, lineage uint64) ([]byte, error) {
	var end bytes.Buffer
	if err := writeRecord(&end, recEnd, nil); err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(data, end.Bytes()) {
		return nil, fmt.Errorf("%w: it does not end with an end record", ErrBadSnapshot)
	}
	body, err := encodeMsgpack(&IndexEntry{Table: indexLineage, Index: lineage})
	if err != nil {
		return nil, err
	}
	out := bytes.NewBuffer(make([]byte, 0, len(data)+len(body)+5))
	out.Write(data[:len(data)-end.Len()])
	if err := writeRecord(out, recIndex, body); err != nil {
		return nil, err
	}
	out.Write(end.Bytes())
	return out.Bytes(), nil
}

// LineageCheckRequest is the first command of every leader's term, and
// the leader commits it again every few seconds: it carries the lineage
// of the leader's state. A server whose state has another halts on it
// (see indexLineage).
type LineageCheckRequest struct {
	WriteMeta
	Lineage uint64
}

// Type returns LineageCheckType.
func (*LineageCheckRequest) Type() MessageType { return LineageCheckType }

// ErrLineage is what a server whose state is not the leader's halts with.
var ErrLineage = errors.New("fsm: this server's state is not the cluster's")

func applyLineageCheck(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*LineageCheckRequest)
	if have := lineageOf(txn); have != req.Lineage {
		// Not an answer to return: going on would apply the log to another
		// state than the other servers', and the entries after this one
		// would have other outcomes here. See docs/runbooks/diverged-server.md.
		return nil, &haltError{fmt.Sprintf("%v: at index %d the leader's state comes from %s, this server's from %s: a snapshot restore that did not reach the other servers (its leader failed while it ran). This server stops rather than drift apart from them: stop it, move its raft directory aside, remove it from the cluster and join it again to take the cluster's state (docs/runbooks/diverged-server.md); then restore the snapshot again if it is still wanted",
			ErrLineage, index, lineageText(req.Lineage), lineageText(have))}
	}
	return nil, nil
}

// lineageText names a lineage for people.
func lineageText(l uint64) string {
	if l == 0 {
		return "no restore"
	}
	return fmt.Sprintf("the restore at index %d", l)
}
