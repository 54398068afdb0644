package fsm

import (
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-memdb"
)

// Store is the read side of the replicated state. Methods taking a
// memdb.WatchSet add the channels that fire when their result may change, so
// callers can block until then (blocking queries).
type Store struct {
	db     *memdb.MemDB
	latest atomic.Uint64

	abandonOnce sync.Once
	abandonCh   chan struct{}

	// named follows the changes of named addresses (addrfeed.go).
	named *namedFeed
}

func newStore(db *memdb.MemDB) *Store {
	return &Store{db: db, abandonCh: make(chan struct{}), named: newNamedFeed(namedFeedSize)}
}

// AbandonCh is closed when a snapshot restore replaces this store; watchers
// must then re-read from the FSM's new store.
func (s *Store) AbandonCh() <-chan struct{} { return s.abandonCh }

func (s *Store) abandon() { s.abandonOnce.Do(func() { close(s.abandonCh) }) }

// LatestIndex returns the raft index of the last command applied to the
// store, successful or not.
func (s *Store) LatestIndex() uint64 { return s.latest.Load() }

func (s *Store) setLatest(i uint64) {
	if i > s.latest.Load() {
		s.latest.Store(i)
	}
}

// watchTable adds to ws a channel that fires at the next write to table:
// that of the table's entry in the index table, which every write
// replaces. Range reads need it: go-memdb's LowerBound iterators have no
// watch channel (theirs is nil, which never fires).
func watchTable(txn *memdb.Txn, ws memdb.WatchSet, table string) {
	if ws == nil {
		return
	}
	if ch, _, err := txn.FirstWatch(tableIndex, "id", table); err == nil {
		ws.Add(ch)
	}
}

// tableIndex returns the raft index at which any of tables last changed.
func (s *Store) tableIndex(txn *memdb.Txn, tables ...string) uint64 {
	var max uint64
	for _, t := range tables {
		raw, err := txn.First(tableIndex, "id", t)
		if err == nil && raw != nil {
			if i := raw.(*IndexEntry).Index; i > max {
				max = i
			}
		}
	}
	return max
}

// getByID reads the object of table whose id index is id, or the zero T
// (nil) when there is none, with the table's index; ws learns when it
// changes.
func getByID[T any](s *Store, ws memdb.WatchSet, table, id string) (uint64, T, error) {
	var zero T
	txn := s.db.Txn(false)
	ch, raw, err := txn.FirstWatch(table, "id", id)
	if err != nil {
		return 0, zero, err
	}
	ws.Add(ch)
	idx := s.tableIndex(txn, table)
	if raw == nil {
		return idx, zero, nil
	}
	return idx, raw.(T), nil
}

// list reads every object of table that index (with args) yields, in
// index order, with the table's index; ws learns when it changes.
func list[T any](s *Store, ws memdb.WatchSet, table, index string, args ...any) (uint64, []T, error) {
	txn := s.db.Txn(false)
	it, err := txn.Get(table, index, args...)
	if err != nil {
		return 0, nil, err
	}
	ws.Add(it.WatchCh())
	out := []T{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(T))
	}
	return s.tableIndex(txn, table), out, nil
}

// Settings lists all cluster settings ordered by key, with the index of the
// settings table.
func (s *Store) Settings(ws memdb.WatchSet) (uint64, []*Setting, error) {
	return list[*Setting](s, ws, tableSettings, "id")
}

// Setting returns one setting, or nil if it does not exist.
func (s *Store) Setting(ws memdb.WatchSet, key string) (uint64, *Setting, error) {
	return getByID[*Setting](s, ws, tableSettings, key)
}

// Tokens lists all API tokens ordered by accessor ID.
func (s *Store) Tokens(ws memdb.WatchSet) (uint64, []*Token, error) {
	return list[*Token](s, ws, tableTokens, "id")
}

// TokenBySecretHash finds the token whose secret hashes to hash, or nil.
func (s *Store) TokenBySecretHash(hash string) (*Token, error) {
	raw, err := s.db.Txn(false).First(tableTokens, "secret", hash)
	if err != nil || raw == nil {
		return nil, err
	}
	return raw.(*Token), nil
}

// ACLBootstrapped reports whether the first admin token has been created.
func (s *Store) ACLBootstrapped() bool {
	raw, err := s.db.Txn(false).First(tableACL, "id", "acl")
	return err == nil && raw != nil && raw.(*ACLState).Bootstrapped
}

// IdempotencyRecords counts the stored idempotency records.
func (s *Store) IdempotencyRecords() int {
	it, err := s.db.Txn(false).Get(tableIdempotency, "id")
	if err != nil {
		return 0
	}
	n := 0
	for raw := it.Next(); raw != nil; raw = it.Next() {
		n++
	}
	return n
}

// IdempotentResult returns the request fingerprint and the JSON result
// stored for actor's Idempotency-Key key, or false when none is stored
// (never used, or reaped).
func (s *Store) IdempotentResult(actor, key string) (requestHash string, result []byte, ok bool) {
	rec := idempotencyRecord(s.db.Txn(false), idempotencyKey(&WriteMeta{Actor: actor, IdempotencyKey: key}))
	if rec == nil {
		return "", nil, false
	}
	return rec.RequestHash, rec.result(), true
}

// clockTables are the tables that change with time alone: the audit log,
// which records refused requests too, and metering, which the leader
// ticks every minute.
var clockTables = map[string]bool{
	tableAudit: true, tableAuditCheckpoints: true,
	tableMeterClock: true, tableMeterRates: true, tableMeterBuckets: true,
}

// StateIndex returns the raft index of the last change to anything but the
// audit log and metering: what tests compare to show that a refused
// request, which is audited, changed nothing else.
func (s *Store) StateIndex() uint64 {
	txn := s.db.Txn(false)
	it, err := txn.Get(tableIndex, "id")
	if err != nil {
		return 0
	}
	var max uint64
	for raw := it.Next(); raw != nil; raw = it.Next() {
		e := raw.(*IndexEntry)
		if !clockTables[e.Table] && e.Index > max {
			max = e.Index
		}
	}
	return max
}
