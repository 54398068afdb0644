package dns

import (
	"slices"
	"strings"
	"sync"
)

// StaticSource is a ChangeSource holding records set by its owner, for
// tests and standalone serving. Set replaces them and Update changes them,
// waking the servers using it. Unlike the plugin, it keeps records outside
// every zone (see Change).
type StaticSource struct {
	mu      sync.Mutex
	recs    *Records // guarded by mu
	journal Journal
}

// NewStaticSource returns a source serving recs. The zero StaticSource
// serves nothing until Set.
func NewStaticSource(recs *Records) *StaticSource {
	return &StaticSource{recs: recs}
}

// Snapshot implements Source.
func (s *StaticSource) Snapshot() (*Records, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, changed := s.journal.Version()
	if s.recs == nil {
		return nil, changed
	}
	recs := *s.recs
	recs.Version = v
	return &recs, changed
}

// Changes implements ChangeSource.
func (s *StaticSource) Changes(since uint64) ([]Change, uint64, <-chan struct{}, bool) {
	return s.journal.Changes(since)
}

// Set replaces the records. recs must not be modified afterwards.
func (s *StaticSource) Set(recs *Records) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = recs
	s.journal.Reset()
}

// Update changes the records by c. c must not be modified afterwards.
func (s *StaticSource) Update(c Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := &Records{}
	if s.recs != nil {
		next.Zones = slices.Clone(s.recs.Zones)
		next.Records = slices.Clone(s.recs.Records)
	}
	for _, r := range c.Remove {
		if i := slices.IndexFunc(next.Records, func(have Record) bool { return sameRecord(have, r) }); i >= 0 {
			next.Records = slices.Delete(next.Records, i, i+1)
		}
	}
	for _, name := range c.RemoveZones {
		next.Zones = slices.DeleteFunc(next.Zones, func(z Zone) bool { return sameName(z.Name, name) })
	}
	next.Zones = append(next.Zones, c.Zones...)
	next.Records = append(next.Records, c.Add...)
	if c.Serial != 0 {
		for i := range next.Zones {
			next.Zones[i].Serial = c.Serial
		}
	}
	s.recs = next
	s.journal.Append(c)
}

// sameRecord reports whether a and b are the same record but for TTL, as
// the plugin tells records apart.
func sameRecord(a, b Record) bool {
	return a.Type == b.Type && sameName(a.Name, b.Name) && (a.Value == b.Value || a.Type == TypePTR && sameName(a.Value, b.Value))
}

// sameName reports whether two domain names are the same, in any case,
// fully qualified or not.
func sameName(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}
