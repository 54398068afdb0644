package ipam

import (
	"math"
	"strings"
	"time"
)

// DefaultQuarantine is how long a released address stays unusable unless
// configured otherwise.
const DefaultQuarantine = 10 * time.Minute

// Hold is a released key waiting out its quarantine. The key stays used in
// its space's RunStore while held, so allocation never has to look at
// holds; when the hold expires the caller releases the key for real.
type Hold struct {
	// Space is the caller's ID for the key's space, such as a prefix ID.
	Space string
	// Key is the held key.
	Key Key
	// Until is when the key may be reused, in Unix nanoseconds of leader
	// time: the release time plus the quarantine.
	Until int64
}

// CompareHolds orders holds by Until, then Space, then Key: the order in
// which Expired hands them out, so every server drains alike.
func CompareHolds(a, b Hold) int {
	switch {
	case a.Until < b.Until:
		return -1
	case a.Until > b.Until:
		return 1
	}
	if c := strings.Compare(a.Space, b.Space); c != 0 {
		return c
	}
	return a.Key.Cmp(b.Key)
}

// HoldStore holds the quarantine: holds identified by (Space, Key) and
// ordered by CompareHolds. The FSM implements it over go-memdb with a
// unique index on (Space, Key) and an index on (Until, Space, Key);
// MemHolds is an in-memory one.
type HoldStore interface {
	// Get returns the hold on key k of space.
	Get(space string, k Key) (Hold, bool)
	// First returns the hold that is first by CompareHolds.
	First() (Hold, bool)
	// Put inserts h, or replaces the hold with the same Space and Key.
	Put(h Hold)
	// Delete removes the hold on key k of space, if there is one.
	Delete(space string, k Key)
}

// Quarantine holds key k of space from releasedAt (Unix nanoseconds) for
// d, and returns the hold. The key must still be used in its RunStore; it
// fails with ErrQuarantined if the key is already held.
func Quarantine(q HoldStore, space string, k Key, releasedAt int64, d time.Duration) (Hold, error) {
	if h, ok := q.Get(space, k); ok {
		return Hold{}, errorf(ErrQuarantined, "key %s of %s is already quarantined until %d", k, space, h.Until)
	}
	h := Hold{Space: space, Key: k, Until: addNanos(releasedAt, d)}
	q.Put(h)
	return h, nil
}

// addNanos returns t+d, saturating instead of overflowing.
func addNanos(t int64, d time.Duration) int64 {
	s := t + int64(d)
	switch {
	case d > 0 && s < t:
		return math.MaxInt64
	case d < 0 && s > t:
		return math.MinInt64
	}
	return s
}

// Expired removes and returns, in CompareHolds order, every hold whose
// Until is at or before now. The caller releases each key in its space.
// Called with the leader time stamped into a command, it drains the same
// holds on every server. The work done is proportional to what it returns.
func Expired(q HoldStore, now int64) []Hold {
	var out []Hold
	for {
		h, ok := q.First()
		if !ok || h.Until > now {
			return out
		}
		q.Delete(h.Space, h.Key)
		out = append(out, h)
	}
}

// Lift removes the hold on key k of space early, as a forced release does,
// and returns it; the caller then releases the key.
func Lift(q HoldStore, space string, k Key) (Hold, bool) {
	h, ok := q.Get(space, k)
	if ok {
		q.Delete(space, k)
	}
	return h, ok
}
