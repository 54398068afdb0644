package storage

import (
	"fmt"
	"strings"
	"time"
)

// A calendar is matched against civil time: UTC, or a policy's time zone.
// In a zone, civil time skips an hour when the clocks go forward and
// repeats one when they go back. An event is placed at the first instant
// whose civil time is at or past the event's (instantOf): an event in a
// skipped hour runs when the clocks skip (02:30 runs at 03:00), and one
// in a repeated hour runs at its first occurrence only. That mapping never
// goes backwards, so events keep their order and each runs once.

// NextIn returns the first event of c strictly after t in loc's civil time
// (nil: UTC), or the zero time if there is none within 400 years.
func (c *Calendar) NextIn(t time.Time, loc *time.Location) time.Time {
	if loc == nil || loc == time.UTC {
		return c.Next(t)
	}
	civ := civilOf(t, loc)
	// In a repeated hour t's civil time comes round again: the events
	// between are placed at their first occurrence, before t, and are
	// passed over. The hour holds at most 3600 of them.
	for range 3602 {
		civ = c.Next(civ)
		if civ.IsZero() {
			return civ
		}
		if at := instantOf(civ, loc); at.After(t) {
			return at
		}
	}
	return time.Time{}
}

// lastIn returns the last event of c at or before t in loc's civil time
// (nil: UTC), or the zero time if there is none within 400 years.
func (c *Calendar) lastIn(t time.Time, loc *time.Location) time.Time {
	if loc == nil || loc == time.UTC {
		return c.last(t)
	}
	// The last event at or before t's civil time is placed at or before
	// t: t itself has a civil time at or past it.
	civ := c.last(civilOf(t, loc))
	if civ.IsZero() {
		return civ
	}
	return instantOf(civ, loc)
}

// civilOf returns t's civil time in loc, as a UTC time.
func civilOf(t time.Time, loc *time.Location) time.Time {
	_, off := t.In(loc).Zone()
	return time.Unix(t.Unix()+int64(off), 0).UTC()
}

// instantOf returns the first instant whose civil time in loc is at or
// past civ (a civil time as a UTC time): the instant civ names; the first
// of the two in a repeated hour; the moment the clocks skip, for a civ
// they skip.
func instantOf(civ time.Time, loc *time.Location) time.Time {
	u := civ.Unix()
	// Every instant with civil time civ lies within 14 hours before and
	// 12 after u (UTC offsets span -12h to +14h); the offsets in force
	// then are those at either end, as a zone changes its offset at most
	// once in a day.
	_, early := time.Unix(u-15*3600, 0).In(loc).Zone()
	_, late := time.Unix(u+13*3600, 0).In(loc).Zone()
	var best time.Time
	for _, off := range []int{early, late} {
		at := time.Unix(u-int64(off), 0)
		if _, o := at.In(loc).Zone(); o == off && (best.IsZero() || at.Before(best)) {
			best = at
		}
	}
	if !best.IsZero() {
		return best.UTC()
	}
	// Skipped: the clocks went forward over civ. They did so when the
	// offset in force after the skip began.
	start, _ := time.Unix(u-int64(early), 0).In(loc).ZoneBounds()
	return start.UTC()
}

// ValidZoneName checks the form of an IANA time zone name (such as
// "Europe/Berlin", "UTC" or "Etc/GMT+5"), without loading it: empty, or
// at most 64 letters, digits and "_-+" in non-empty parts separated by
// "/", and not "Local". Whether the zone exists is for
// time.LoadLocation to say.
func ValidZoneName(name string) error {
	if name == "" {
		return nil
	}
	if name == "Local" {
		return fmt.Errorf(`time zone "Local" is each server's own: name the zone, such as Europe/Berlin`)
	}
	if len(name) > 64 {
		return fmt.Errorf("time zone %.64q... is longer than 64 bytes", name)
	}
	for _, r := range name {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("/_-+", r)) {
			return fmt.Errorf("time zone %q has %q: want a name such as Europe/Berlin", name, r)
		}
	}
	for part := range strings.SplitSeq(name, "/") {
		if part == "" {
			return fmt.Errorf("time zone %q is not a zone name such as Europe/Berlin", name)
		}
	}
	return nil
}
