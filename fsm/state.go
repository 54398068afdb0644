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
}

func newStore(db *memdb.MemDB) *Store {
	return &Store{db: db, abandonCh: make(chan struct{})}
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

// Settings lists all cluster settings ordered by key, with the index of the
// settings table.
func (s *Store) Settings(ws memdb.WatchSet) (uint64, []*Setting, error) {
	txn := s.db.Txn(false)
	it, err := txn.Get(tableSettings, "id")
	if err != nil {
		return 0, nil, err
	}
	ws.Add(it.WatchCh())
	out := []*Setting{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*Setting))
	}
	return s.tableIndex(txn, tableSettings), out, nil
}

// Setting returns one setting, or nil if it does not exist.
func (s *Store) Setting(ws memdb.WatchSet, key string) (uint64, *Setting, error) {
	txn := s.db.Txn(false)
	ch, raw, err := txn.FirstWatch(tableSettings, "id", key)
	if err != nil {
		return 0, nil, err
	}
	ws.Add(ch)
	idx := s.tableIndex(txn, tableSettings)
	if raw == nil {
		return idx, nil, nil
	}
	return idx, raw.(*Setting), nil
}

// Tokens lists all API tokens ordered by accessor ID.
func (s *Store) Tokens(ws memdb.WatchSet) (uint64, []*Token, error) {
	txn := s.db.Txn(false)
	it, err := txn.Get(tableTokens, "id")
	if err != nil {
		return 0, nil, err
	}
	ws.Add(it.WatchCh())
	out := []*Token{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*Token))
	}
	return s.tableIndex(txn, tableTokens), out, nil
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
