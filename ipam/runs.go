package ipam

// Run is an inclusive range [Start, End] of used keys. In a RunStore runs are
// disjoint and merged: no two runs touch, so the key after a run's End is
// always free.
type Run struct {
	Start, End Key
}

// RunStore holds the runs of one allocation space, ordered by Start. The FSM
// implements it over a go-memdb transaction; MemRuns is an in-memory one.
// The allocator keeps the runs disjoint and merged; the store only stores.
type RunStore interface {
	// Floor returns the run with the greatest Start <= a.
	Floor(a Key) (Run, bool)
	// Ceil returns the run with the smallest Start >= a.
	Ceil(a Key) (Run, bool)
	// Put inserts r, or replaces the run with the same Start.
	Put(r Run)
	// Delete removes the run starting at start, if there is one.
	Delete(start Key)
}
