package fsm

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/hashicorp/go-memdb"
)

// Idempotency records are kept for a retention and then reaped: the
// leader proposes an IdempotencyReapRequest, which deletes every record
// created before its cut-off. Finding those records must not cost a scan
// of all of them on every server (a server can hold millions after a busy
// hour), and one reap must not delete so many that it holds up every
// server's Apply for seconds. Both are what the table of record entries
// is for.
//
// tableIdemEntries is an index of the idempotency records by the write
// transaction that created them: one row per transaction that created
// records, with the keys of those still stored and the oldest creation
// time among them, ordered by that time. It is derived state: rows are
// written in the transactions that write the records they list, Restore
// rebuilds them from the records (one row per raft entry), and snapshots
// do not hold them. Its invariant, on every server: every stored record's
// key is listed in exactly one row, whose Index is the record's and whose
// Oldest is the least CreatedAt of the records it lists, and rows list no
// other keys. Servers may cut the rows differently (one restored from a
// snapshot, one that applied the entries), which changes no reap.
//
// Every record created before a cut-off is therefore listed in a row
// whose Oldest is before the cut-off, so a reap visits only those rows,
// in order of Oldest, and deletes the same records a scan would have.
// The leader bounds a reap by choosing its cut-off (IdempotencyReapBefore):
// the command's meaning is the same as it always was, so servers of every
// version apply it alike.
const tableIdemEntries = "idempotency_entries"

// idemEntry is a row of tableIdemEntries.
type idemEntry struct {
	Index  uint64
	Oldest int64
	Keys   []string
}

func idemEntryTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableIdemEntries: {Name: tableIdemEntries, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: idemEntryIndexer{}},
		}},
	}
}

// idemEntryIndexer indexes rows by (Oldest, Index, first key): in order of
// Oldest, and unique, as a key is listed in one row only. The index is
// only listed, never searched.
type idemEntryIndexer struct{}

func (idemEntryIndexer) FromObject(obj any) (bool, []byte, error) {
	e, ok := obj.(*idemEntry)
	if !ok || len(e.Keys) == 0 {
		return false, nil, fmt.Errorf("fsm: idemEntryIndexer: unexpected %T or no keys", obj)
	}
	b := make([]byte, 0, 16+len(e.Keys[0]))
	// The sign bit flipped orders negative times before positive ones.
	b = binary.BigEndian.AppendUint64(b, uint64(e.Oldest)^(1<<63))
	b = binary.BigEndian.AppendUint64(b, e.Index)
	return true, append(b, e.Keys[0]...), nil
}

func (idemEntryIndexer) FromArgs(args ...any) ([]byte, error) {
	return nil, fmt.Errorf("fsm: idemEntryIndexer: the index is only listed")
}

// idemPending collects the idempotency records the write transaction being
// applied creates, for their entry's row; only Apply's goroutine uses it.
type idemPending struct {
	index  uint64
	oldest int64
	keys   []string
}

func (p *idemPending) add(rec *IdempotencyRecord) {
	if len(p.keys) == 0 || rec.CreatedAt < p.oldest {
		p.oldest = rec.CreatedAt
	}
	p.index = rec.Index
	p.keys = append(p.keys, rec.Key)
}

func (p *idemPending) reset() { p.keys = p.keys[:0] }

// flush writes the row of the records collected in txn and resets p.
func (p *idemPending) flush(txn *memdb.Txn) {
	if len(p.keys) == 0 {
		return
	}
	must(txn.Insert(tableIdemEntries, &idemEntry{Index: p.index, Oldest: p.oldest, Keys: slices.Clone(p.keys)}))
	p.reset()
}

// rebuildIdemEntries writes the rows of tableIdemEntries for the records
// in txn (Restore).
func rebuildIdemEntries(txn *memdb.Txn) error {
	rows := map[uint64]*idemEntry{}
	var order []uint64
	it, err := txn.Get(tableIdempotency, "id")
	if err != nil {
		return err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		rec := raw.(*IdempotencyRecord)
		e := rows[rec.Index]
		if e == nil {
			e = &idemEntry{Index: rec.Index, Oldest: rec.CreatedAt}
			rows[rec.Index] = e
			order = append(order, rec.Index)
		}
		e.Oldest = min(e.Oldest, rec.CreatedAt)
		e.Keys = append(e.Keys, rec.Key)
	}
	for _, i := range order {
		if err := txn.Insert(tableIdemEntries, rows[i]); err != nil {
			return fmt.Errorf("insert %s: %w", tableIdemEntries, err)
		}
	}
	return nil
}

func applyIdempotencyReap(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*IdempotencyReapRequest)
	it, err := txn.Get(tableIdemEntries, "id")
	if err != nil {
		return nil, err
	}
	var due []*idemEntry
	for raw := it.Next(); raw != nil; raw = it.Next() {
		e := raw.(*idemEntry)
		if e.Oldest >= req.Before {
			break
		}
		due = append(due, e)
	}
	// Everything is read before anything is written: a read of an index
	// this transaction has written would drop the nodes it has copied
	// (see lookahead), making each delete copy its path again.
	var stale []*IdempotencyRecord
	var kept []*idemEntry
	for _, e := range due {
		k := &idemEntry{Index: e.Index}
		for _, key := range e.Keys {
			rec := idempotencyRecord(txn, key)
			if rec == nil || rec.Index != e.Index {
				return nil, fmt.Errorf("fsm: idempotency entry %d lists %q, which is not its record", e.Index, key)
			}
			if rec.CreatedAt < req.Before {
				stale = append(stale, rec)
				continue
			}
			if len(k.Keys) == 0 || rec.CreatedAt < k.Oldest {
				k.Oldest = rec.CreatedAt
			}
			k.Keys = append(k.Keys, key)
		}
		if len(k.Keys) > 0 {
			kept = append(kept, k)
		}
	}
	for _, rec := range stale {
		if err := remove(txn, tableIdempotency, index, rec); err != nil {
			return nil, err
		}
	}
	for _, e := range due {
		if err := txn.Delete(tableIdemEntries, e); err != nil {
			return nil, fmt.Errorf("fsm: delete %s: %w", tableIdemEntries, err)
		}
	}
	for _, e := range kept {
		if err := txn.Insert(tableIdemEntries, e); err != nil {
			return nil, fmt.Errorf("fsm: insert %s: %w", tableIdemEntries, err)
		}
	}
	return map[string]int{"reaped": len(stale)}, nil
}

// IdempotencyReapBefore returns the cut-off of the next reap for a
// retention that ends at cutoff (leader time, Unix nanoseconds): cutoff
// itself, or an earlier time when more than max records were created
// before cutoff, so that one reap deletes about max of the oldest (at
// least one entry's worth). ok is false when no record was created before
// cutoff and there is nothing to reap.
func (s *Store) IdempotencyReapBefore(cutoff int64, max int) (before int64, ok bool) {
	it, err := s.db.Txn(false).Get(tableIdemEntries, "id")
	if err != nil {
		return 0, false
	}
	n := 0
	var first int64
	for raw := it.Next(); raw != nil; raw = it.Next() {
		e := raw.(*idemEntry)
		if e.Oldest >= cutoff {
			break
		}
		if n == 0 {
			first = e.Oldest
		} else if n+len(e.Keys) > max && e.Oldest > first {
			// Records before this entry's oldest: at least the
			// first entry's oldest record.
			return e.Oldest, true
		}
		n += len(e.Keys)
	}
	return cutoff, n > 0
}
