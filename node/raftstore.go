package node

import (
	"time"

	"go.etcd.io/bbolt"
)

// raftStoreOptions are the bbolt options of the raft log store
// (raft-boltdb), with timeout to wait for the file's lock (0: for ever).
//
// bbolt writes its whole list of free pages at every commit unless told
// not to. After raft compacts its log (every snapshot_threshold entries)
// that list holds the pages of thousands of entries, and writing it made
// a commit of one 8 KiB entry take 1.09-1.55 ms instead of 0.91-1.04 ms
// (BenchmarkRaftStoreCommit; docs/benchmarks.md, "The raft log's free
// pages"). Without it, opening the store rebuilds the list by reading
// every page: 66-79 ms for a 160 MB log, once at start. The hashmap list finds runs of free pages without
// scanning the list. A server of an earlier version opens such a store as
// well (bbolt rebuilds the list), and this one opens theirs.
func raftStoreOptions(timeout time.Duration) *bbolt.Options {
	return &bbolt.Options{Timeout: timeout, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType}
}
