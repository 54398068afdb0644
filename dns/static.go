package dns

import "sync"

// StaticSource is a Source holding records set by its owner, for tests and
// standalone serving. Set replaces them and wakes the servers using it.
type StaticSource struct {
	mu      sync.Mutex
	recs    *Records      // guarded by mu
	changed chan struct{} // guarded by mu; closed by Set
}

// NewStaticSource returns a source serving recs. The zero StaticSource
// serves nothing until Set.
func NewStaticSource(recs *Records) *StaticSource {
	return &StaticSource{recs: recs, changed: make(chan struct{})}
}

// Snapshot implements Source.
func (s *StaticSource) Snapshot() (*Records, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.recs, s.changed
}

// Set replaces the records. recs must not be modified afterwards.
func (s *StaticSource) Set(recs *Records) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = recs
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
}
