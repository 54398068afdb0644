package storage

import (
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParseCalendar checks that ParseCalendar never panics, that its
// errors name the calendar, that String round-trips, and that Next from a
// few starting points climbs strictly, lands on matching times, skips
// none (last of the second before an event is at or before the start)
// and agrees with last.
func FuzzParseCalendar(f *testing.F) {
	f.Fuzz(func(t *testing.T, spec string, start int64) {
		c, err := ParseCalendar(spec)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "calendar ") {
				t.Fatalf("ParseCalendar(%q) error %q does not name the calendar", spec, err)
			}
			return
		}
		again, err := ParseCalendar(c.String())
		if err != nil || again.String() != c.String() || !sameCalendar(again, c) {
			t.Fatalf("ParseCalendar(%q).String() = %q does not round-trip: %v", spec, c.String(), err)
		}
		// Start within 1900..2100.
		at := time.Unix(-2208988800+int64(uint64(start)%(200*365*86400)), int64(uint64(start)%1e9)).UTC()
		for range 4 {
			next := c.Next(at)
			if next.IsZero() {
				return
			}
			if !next.After(at) || !matches(c, next) || next.Nanosecond() != 0 {
				t.Fatalf("%q.Next(%s) = %s", spec, at, next)
			}
			if got := c.last(next); !got.Equal(next) {
				t.Fatalf("%q.last(%s) = %s, want itself", spec, next, got)
			}
			if got := c.last(next.Add(-time.Second)); got.After(at) {
				t.Fatalf("%q.Next(%s) = %s skipped %s", spec, at, next, got)
			}
			if got := again.Next(at); !got.Equal(next) {
				t.Fatalf("%q: a reparsed calendar's Next(%s) = %s, want %s", spec, at, got, next)
			}
			at = next
		}
		// In zones with DST (one shifting by half an hour): events come
		// in order, each found again by lastIn, none skipped.
		for _, loc := range fuzzZones {
			at := at
			for range 4 {
				next := c.NextIn(at, loc)
				if next.IsZero() {
					break
				}
				if !next.After(at) || next.Nanosecond() != 0 {
					t.Fatalf("%q.NextIn(%s, %s) = %s", spec, at, loc, next)
				}
				if got := c.lastIn(next, loc); !got.Equal(next) {
					t.Fatalf("%q.lastIn(%s, %s) = %s, want itself", spec, next, loc, got)
				}
				if got := c.lastIn(next.Add(-time.Second), loc); got.After(at) {
					t.Fatalf("%q.NextIn(%s, %s) = %s skipped %s", spec, at, loc, next, got)
				}
				at = next
			}
		}
	})
}

// fuzzZones are the zones FuzzParseCalendar evaluates calendars in.
var fuzzZones = func() []*time.Location {
	var out []*time.Location
	for _, name := range []string{"America/New_York", "Australia/Lord_Howe"} {
		loc, err := time.LoadLocation(name)
		if err != nil {
			panic(err)
		}
		out = append(out, loc)
	}
	return out
}()

// sameCalendar reports whether a and b have the same events.
func sameCalendar(a, b *Calendar) bool {
	if (a.years == nil) != (b.years == nil) || a.years != nil && *a.years != *b.years {
		return false
	}
	return a.months == b.months && a.days == b.days && a.wdays == b.wdays &&
		a.hours == b.hours && a.minutes == b.minutes && a.seconds == b.seconds && a.never == b.never
}

// FuzzPrune checks Prune's invariants on items decoded from data, three
// bytes each: a time in steps of 37 minutes (over four and a half years)
// and a flag byte whose lowest bit protects the item. Every item gets one
// decision, newest first; protected items are always protected; each rule
// keeps at most its count of items, in distinct periods; a Keep without a
// rule keeps everything; otherwise the newest unprotected item is kept.
// It checks them in UTC and in the zones of FuzzParseCalendar.
func FuzzPrune(f *testing.F) {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte, last, hourly, daily, weekly, monthly, yearly uint8) {
		k := Keep{Last: int(last % 8), Hourly: int(hourly % 8), Daily: int(daily % 8),
			Weekly: int(weekly % 8), Monthly: int(monthly % 8), Yearly: int(yearly % 8)}
		var items []Item
		for i := 0; i+3 <= len(data); i += 3 {
			offset := time.Duration(binary.BigEndian.Uint16(data[i:])) * 37 * time.Minute
			items = append(items, Item{ID: strconv.Itoa(i / 3), Time: base.Add(offset), Protected: data[i+2]&1 == 1})
		}
		// In UTC, and in a zone's civil time.
		for _, loc := range append([]*time.Location{nil}, fuzzZones...) {
			ds := PruneIn(items, k, loc)
			if len(ds) != len(items) {
				t.Fatalf("%d decisions for %d items", len(ds), len(items))
			}
			byID := make(map[string]Item, len(items))
			for _, it := range items {
				byID[it.ID] = it
			}
			kept := map[string]map[int64]bool{}
			firstUnprotected := true
			for i, d := range ds {
				it, ok := byID[d.ID]
				if !ok {
					t.Fatalf("decision %d is about %q, decided twice or unknown", i, d.ID)
				}
				delete(byID, d.ID)
				if i > 0 {
					if p := ds[i-1]; p.Time.Before(d.Time) || p.Time.Equal(d.Time) && p.ID > d.ID {
						t.Fatalf("decision %d (%s %s) before %d (%s %s): not newest first", i-1, p.ID, p.Time, i, d.ID, d.Time)
					}
				}
				switch {
				case it.Protected:
					if d.Mark != MarkProtected || d.Reason != "protected" {
						t.Fatalf("protected %s: %s %q", d.ID, d.Mark, d.Reason)
					}
					continue
				case !k.KeepsSomething():
					if d.Mark != MarkKeep || d.Reason != "keep-all" {
						t.Fatalf("keep-all %s: %s %q", d.ID, d.Mark, d.Reason)
					}
					continue
				case firstUnprotected && d.Mark != MarkKeep:
					t.Fatalf("the newest item %s is not kept: %s", d.ID, d.Mark)
				}
				firstUnprotected = false
				switch d.Mark {
				case MarkRemove:
					if d.Reason != "" {
						t.Fatalf("removed %s with reason %q", d.ID, d.Reason)
					}
				case MarkKeep:
					rule := ruleNamed(t, d.Reason)
					if kept[d.Reason] == nil {
						kept[d.Reason] = map[int64]bool{}
					}
					civ := d.Time
					if loc != nil {
						civ = civilOf(d.Time, loc)
					}
					p := rule.period(i, civ)
					if d.Reason != "keep-last" && kept[d.Reason][p] {
						t.Fatalf("%s keeps two items of one period", d.Reason)
					}
					kept[d.Reason][p] = true
					if n := len(kept[d.Reason]); n > rule.count(k) {
						t.Fatalf("%s keeps %d items, more than %d", d.Reason, n, rule.count(k))
					}
				default:
					t.Fatalf("unprotected %s marked %q", d.ID, d.Mark)
				}
			}
		}
	})
}

// ruleNamed returns the prune rule called name.
func ruleNamed(t *testing.T, name string) pruneRule {
	for _, r := range pruneRules {
		if r.name == name {
			return r
		}
	}
	t.Fatalf("unknown reason %q", name)
	return pruneRule{}
}

// FuzzNames checks the names Moxxie gives snapshots and backups, which it
// reads back from Proxmox: a snapshot name parses only as what
// SnapshotName makes of its result, within Proxmox's 40 characters, and
// SnapshotName's output parses back to its policy and slot; the same for
// backup notes, whose other lines are ignored.
func FuzzNames(f *testing.F) {
	f.Add("mx-nightly-20260301020000", "nightly", int64(1772330400), "other line\nmoxxie-policy=nightly run=0199-ab\n", "0199-ab")
	f.Add("mx-a-b-20260301020000", "a-b", int64(0), "moxxie-policy=a run=x run=y", "x")
	f.Add("mx--20260301020000", "Bad", int64(-1), "  moxxie-policy=weekly run=r1  ", "r 1")
	f.Fuzz(func(t *testing.T, name, policy string, unix int64, notes, runID string) {
		if p, slot, ok := ParseSnapshotName(name); ok {
			if !validPolicyID(p) || SnapshotName(p, slot) != name || len(name) > 40 {
				t.Fatalf("ParseSnapshotName(%q) = %q, %v: SnapshotName gives %q", name, p, slot, SnapshotName(p, slot))
			}
		}
		slot := time.Unix(unix%253402300800, 0).UTC() // years 1970-9999 and before
		if validPolicyID(policy) && slot.Year() >= 1 {
			n := SnapshotName(policy, slot)
			p, s, ok := ParseSnapshotName(n)
			if !ok || p != policy || !s.Equal(slot) {
				t.Fatalf("ParseSnapshotName(SnapshotName(%q, %v) = %q) = %q, %v, %v", policy, slot, n, p, s, ok)
			}
		}
		if p, r, ok := ParseBackupNotes(notes); ok {
			if !validPolicyID(p) || r == "" || strings.ContainsAny(r, " \t") || !strings.Contains(notes, BackupNotes(p, r)) {
				t.Fatalf("ParseBackupNotes(%q) = %q, %q", notes, p, r)
			}
		}
		printable := strings.IndexFunc(runID, func(c rune) bool { return c <= ' ' || c > '~' }) < 0
		if validPolicyID(policy) && runID != "" && printable {
			p, r, ok := ParseBackupNotes("vzdump backup\n" + BackupNotes(policy, runID) + "\n")
			if !ok || p != policy || r != runID {
				t.Fatalf("ParseBackupNotes(BackupNotes(%q, %q)) = %q, %q, %v", policy, runID, p, r, ok)
			}
		}
	})
}
