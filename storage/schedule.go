package storage

import (
	"slices"
	"strings"
	"time"
)

// MaxMissedCount bounds Due.Missed: Evaluate stops counting missed slots
// there.
const MaxMissedCount = 1000

// missedWindow bounds how far back Evaluate counts missed slots.
const missedWindow = 400 * 24 * time.Hour

// Policy is what schedule evaluation knows of a snapshot or backup
// policy.
type Policy struct {
	ID       string
	Calendar *Calendar
	// Location is the time zone whose civil time the calendar is matched
	// against; nil means UTC.
	Location     *time.Location
	Selector     Selector
	Disabled     bool
	RepeatMissed bool
	// Created is when the policy was created; slots at or before it
	// never run.
	Created time.Time
	// LastSlot is the last slot already handled, run or skipped; zero
	// means none.
	LastSlot time.Time
}

// Due is a policy with a slot to handle.
type Due struct {
	Policy string
	// Slot is the newest slot in (base, now], where base is the later of
	// the policy's LastSlot and Created.
	Slot time.Time
	// Missed counts the other slots in (base, now], at most
	// MaxMissedCount, and only those of the last 400 days.
	Missed int
	// Run is true when the slot is within the grace period or the policy
	// repeats missed runs; false means the slot is too old and is to be
	// recorded as skipped.
	Run bool
	// VMIDs are the sorted VMIDs of the guests the policy selects, when
	// Run.
	VMIDs []int
}

// base returns the time after which p's slots count: the later of
// LastSlot and Created.
func (p *Policy) base() time.Time {
	if p.LastSlot.After(p.Created) {
		return p.LastSlot
	}
	return p.Created
}

// NextRun returns the first slot after the later of p's LastSlot and
// Created, for display; it is the zero time without a calendar or a next
// slot.
func (p *Policy) NextRun() time.Time {
	if p.Calendar == nil {
		return time.Time{}
	}
	return p.Calendar.NextIn(p.base(), p.Location)
}

// Evaluate returns the policies due at now, sorted by policy ID: every
// enabled policy with a calendar and a slot after its base, with the
// guests it selects when it runs. It is deterministic: the leader calls it
// with its own stamped time and proposes the result. A slot runs when it
// is at most grace old, or when the policy repeats missed runs; then only
// the newest slot runs, once, however many were missed. The guests are
// indexed once per call, and only if something runs.
func Evaluate(policies []Policy, guests []Guest, now time.Time, grace time.Duration) []Due {
	order := make([]*Policy, len(policies))
	for i := range policies {
		order[i] = &policies[i]
	}
	slices.SortStableFunc(order, func(a, b *Policy) int { return strings.Compare(a.ID, b.ID) })
	var index *guestIndex
	var due []Due
	for _, p := range order {
		d, ok := p.due(now, grace)
		if !ok {
			continue
		}
		if d.Run {
			if index == nil {
				index = newGuestIndex(guests)
			}
			d.VMIDs = index.selectVMIDs(p.Selector)
		}
		due = append(due, d)
	}
	return due
}

// due returns p's slot to handle at now, without its guests, and whether
// there is one.
func (p *Policy) due(now time.Time, grace time.Duration) (Due, bool) {
	if p.Disabled || p.Calendar == nil {
		return Due{}, false
	}
	base := p.base()
	slot := p.Calendar.lastIn(now, p.Location)
	if slot.IsZero() || !slot.After(base) {
		return Due{}, false
	}
	from := base
	if now.Sub(base) > missedWindow {
		from = now.Add(-missedWindow)
	}
	missed := 0
	for t := p.Calendar.NextIn(from, p.Location); missed < MaxMissedCount && !t.IsZero() && t.Before(slot); t = p.Calendar.NextIn(t, p.Location) {
		missed++
	}
	return Due{
		Policy: p.ID,
		Slot:   slot,
		Missed: missed,
		Run:    now.Sub(slot) <= grace || p.RepeatMissed,
	}, true
}
