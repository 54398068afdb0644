package dns

import (
	"slices"
	"sync"
)

// Journal limits: how many changes, and how many records in them, a
// Journal keeps. A plugin that falls further behind rebuilds from a
// Snapshot.
const (
	journalChanges = 4096
	journalRecords = 1 << 16
)

// Journal numbers the versions of a ChangeSource's records and keeps the
// recent changes between them, for ChangeSource.Changes. Its zero value
// is at version 0 with no changes. It is safe for concurrent use.
type Journal struct {
	mu      sync.Mutex
	version uint64        // guarded by mu
	first   uint64        // guarded by mu; changes[i] makes version first+i+1
	changes []Change      // guarded by mu
	records int           // guarded by mu; records in changes
	changed chan struct{} // guarded by mu; closed when version moves on
}

// Reset starts a new version that no change leads to, as when the zones
// change or the records are replaced whole, and returns it.
func (j *Journal) Reset() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.version++
	j.first, j.changes, j.records = j.version, nil, 0
	j.wake()
	return j.version
}

// Append records c as the change to a new version and returns it. The
// oldest changes are forgotten beyond the journal's limits.
func (j *Journal) Append(c Change) uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.version++
	j.changes = append(j.changes, c)
	j.records += len(c.Remove) + len(c.Add)
	drop := 0
	for len(j.changes)-drop > journalChanges || (j.records > journalRecords && drop < len(j.changes)) {
		j.records -= len(j.changes[drop].Remove) + len(j.changes[drop].Add)
		drop++
	}
	if drop > 0 {
		j.changes = slices.Delete(j.changes, 0, drop)
		j.first += uint64(drop)
	}
	j.wake()
	return j.version
}

// wake closes the channel of the version that ended. j.mu must be held.
func (j *Journal) wake() {
	if j.changed != nil {
		close(j.changed)
	}
	j.changed = make(chan struct{})
}

// Version returns the current version and a channel closed when it moves
// on.
func (j *Journal) Version() (uint64, <-chan struct{}) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.changed == nil {
		j.changed = make(chan struct{})
	}
	return j.version, j.changed
}

// Changes implements ChangeSource.Changes.
func (j *Journal) Changes(since uint64) ([]Change, uint64, <-chan struct{}, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.changed == nil {
		j.changed = make(chan struct{})
	}
	if since < j.first || since > j.version {
		return nil, j.version, j.changed, false
	}
	return slices.Clone(j.changes[since-j.first:]), j.version, j.changed, true
}
