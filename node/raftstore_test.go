package node

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// A raft store moves between servers that write bbolt's list of free
// pages (bbolt's defaults, as earlier versions) and servers that do not,
// both ways, after compactions that free pages, and stays whole: every
// kept log reads back and bbolt's own check finds nothing.
func TestRaftStore_FreePagesBothWays(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	data := make([]byte, 6000) // two pages
	var last uint64
	for round, opts := range []*bbolt.Options{nil, raftStoreOptions(0), nil, raftStoreOptions(0)} {
		s, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: opts})
		if err != nil {
			t.Fatalf("round %d: open: %v", round, err)
		}
		first, err := s.FirstIndex()
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := s.LastIndex(); got != last {
			t.Fatalf("round %d: last index %d, want %d", round, got, last)
		}
		for i := first; i <= last && last > 0; i++ {
			var l raft.Log
			if err := s.GetLog(i, &l); err != nil || len(l.Data) != len(data) {
				t.Fatalf("round %d: log %d: %v", round, i, err)
			}
		}
		// Write 400 logs in batches, then keep the last 100, as raft
		// does after a snapshot.
		for range 40 {
			logs := make([]*raft.Log, 10)
			for i := range logs {
				last++
				logs[i] = &raft.Log{Index: last, Term: 1, Type: raft.LogCommand, Data: data}
			}
			if err := s.StoreLogs(logs); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.DeleteRange(1, last-100); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *bbolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return fmt.Errorf("bbolt check: %v", errs)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkRaftStoreCommit measures a commit of one 8 KiB log to the raft
// store with bbolt's defaults and with raftStoreOptions, on a new store
// and after a compaction like raft's after a snapshot (20,000 logs
// written, the last 10,240 kept), and reports how long opening the
// compacted store takes.
func BenchmarkRaftStoreCommit(b *testing.B) {
	variants := []struct {
		name string
		opts *bbolt.Options
	}{{"bbolt-defaults", nil}, {"moxxie", raftStoreOptions(0)}}
	data := make([]byte, 8<<10)
	store := func(b *testing.B, s *raftboltdb.BoltStore, last *uint64, n int) {
		logs := make([]*raft.Log, n)
		for i := range logs {
			*last++
			logs[i] = &raft.Log{Index: *last, Term: 1, Type: raft.LogCommand, Data: data}
		}
		if err := s.StoreLogs(logs); err != nil {
			b.Fatal(err)
		}
	}
	for _, compacted := range []bool{false, true} {
		for _, v := range variants {
			name := v.name + "/new"
			if compacted {
				name = v.name + "/compacted"
			}
			b.Run(name, func(b *testing.B) {
				path := filepath.Join(b.TempDir(), "raft.db")
				s, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: v.opts})
				if err != nil {
					b.Fatal(err)
				}
				var last uint64
				if compacted {
					for range 200 {
						store(b, s, &last, 100)
					}
					if err := s.DeleteRange(1, last-10240); err != nil {
						b.Fatal(err)
					}
				}
				for b.Loop() {
					store(b, s, &last, 1)
				}
				b.StopTimer()
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				if compacted {
					start := time.Now()
					s, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: v.opts})
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(time.Since(start).Microseconds()), "open-µs")
					s.Close()
				}
			})
		}
	}
}
