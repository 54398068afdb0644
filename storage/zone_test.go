package storage

import (
	"fmt"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the same zones on every test machine
)

// mustZone loads the zone name, or returns nil (UTC) for "".
func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	if name == "" {
		return nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// The transitions of 2026 the cases below cross: New York springs
// forward on 8 March at 07:00Z (02:00 EST becomes 03:00 EDT) and falls
// back on 1 November at 06:00Z (02:00 EDT becomes 01:00 EST); Lord Howe
// Island falls back by half an hour on 5 April, local time, at 4 April
// 15:00Z (02:00 +11 becomes 01:30 +10:30).
func TestCalendarNextIn(t *testing.T) {
	tests := []struct {
		name, spec, zone, from, want string
	}{
		{"UTC when no zone", "02:00", "", "2026-06-01T00:00:00Z", "2026-06-01T02:00:00Z"},
		{"summer time", "02:00", "Europe/Berlin", "2026-06-01T00:00:00Z", "2026-06-02T00:00:00Z"},
		{"winter time", "02:00", "Europe/Berlin", "2026-01-10T00:00:00Z", "2026-01-10T01:00:00Z"},
		{"no DST, half-hour offset", "06:00", "Asia/Kolkata", "2026-01-01T00:00:00Z", "2026-01-01T00:30:00Z"},
		{"skipped: runs when the clocks skip", "02:30", "America/New_York", "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z"},
		{"after the skip: the next day", "02:30", "America/New_York", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"},
		{"skipped and the next event: both at the skip, once", "*:00/30", "America/New_York", "2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z"},
		{"after the skip: on", "*:00/30", "America/New_York", "2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z"},
		{"repeated: the first occurrence", "01:30", "America/New_York", "2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z"},
		{"repeated: not the second", "01:30", "America/New_York", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"},
		{"hourly over the repeated hour", "hourly", "America/New_York", "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z"},
		{"inside the repeated hour", "*:00/15", "America/New_York", "2026-11-01T06:10:00Z", "2026-11-01T07:00:00Z"},
		{"half an hour repeated", "01:45", "Australia/Lord_Howe", "2026-04-04T14:00:00Z", "2026-04-04T14:45:00Z"},
		{"half an hour repeated: not the second", "01:45", "Australia/Lord_Howe", "2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"},
		{"weekday in the zone's calendar", "mon 00:30", "Asia/Tokyo", "2026-06-06T00:00:00Z", "2026-06-07T15:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := mustZone(t, tt.zone)
			got := mustCalendar(t, tt.spec).NextIn(utc(t, tt.from), loc)
			if want := utc(t, tt.want); !got.Equal(want) {
				t.Errorf("%q in %s after %s: %s, want %s", tt.spec, tt.zone, tt.from, got.UTC().Format(time.RFC3339), tt.want)
			}
		})
	}
}

func TestCalendarLastIn(t *testing.T) {
	tests := []struct {
		name, spec, zone, at, want string
	}{
		{"UTC when no zone", "02:00", "", "2026-06-01T03:00:00Z", "2026-06-01T02:00:00Z"},
		{"summer time", "02:00", "Europe/Berlin", "2026-06-01T03:00:00Z", "2026-06-01T00:00:00Z"},
		{"at the event", "02:00", "Europe/Berlin", "2026-06-01T00:00:00Z", "2026-06-01T00:00:00Z"},
		{"skipped: placed at the skip", "02:30", "America/New_York", "2026-03-08T07:10:00Z", "2026-03-08T07:00:00Z"},
		{"before the skip: the day before", "02:30", "America/New_York", "2026-03-08T06:59:59Z", "2026-03-07T07:30:00Z"},
		{"repeated: the first occurrence", "01:30", "America/New_York", "2026-11-01T06:40:00Z", "2026-11-01T05:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := mustZone(t, tt.zone)
			got := mustCalendar(t, tt.spec).lastIn(utc(t, tt.at), loc)
			if want := utc(t, tt.want); !got.Equal(want) {
				t.Errorf("%q in %s at %s: %s, want %s", tt.spec, tt.zone, tt.at, got.UTC().Format(time.RFC3339), tt.want)
			}
		})
	}
}

// TestEvaluateAcrossDST: a leader ticking every 20 seconds through both
// of New York's transitions runs every slot once, in order, the skipped
// ones at the skip and the repeated ones at their first occurrence.
func TestEvaluateAcrossDST(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	for _, tt := range []struct {
		spec, from, until string
		want              []string // the slots run, in UTC
	}{
		{"02:30", "2026-03-07T00:00:00Z", "2026-03-10T00:00:00Z",
			[]string{"2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"}},
		{"hourly", "2026-03-08T04:30:00Z", "2026-03-08T09:30:00Z", // 23:30 EST to 05:30 EDT
			[]string{"2026-03-08T05:00:00Z", "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z", "2026-03-08T09:00:00Z"}},
		{"01:30", "2026-10-31T00:00:00Z", "2026-11-03T00:00:00Z",
			[]string{"2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}},
		{"hourly", "2026-11-01T03:30:00Z", "2026-11-01T09:30:00Z", // 23:30 EDT to 04:30 EST
			[]string{"2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z", "2026-11-01T09:00:00Z"}},
	} {
		t.Run(fmt.Sprintf("%s from %s", tt.spec, tt.from), func(t *testing.T) {
			start := utc(t, tt.from)
			p := []Policy{{ID: "p", Calendar: mustCalendar(t, tt.spec), Location: ny, Selector: Selector{All: true}, Created: start}}
			var ran []string
			for now := start; now.Before(utc(t, tt.until)); now = now.Add(20 * time.Second) {
				for _, d := range Evaluate(p, testGuests(), now, time.Minute) {
					if !d.Run || d.Missed != 0 {
						t.Fatalf("at %s: %+v", now, d)
					}
					ran = append(ran, d.Slot.UTC().Format(time.RFC3339))
					p[0].LastSlot = d.Slot
				}
			}
			if fmt.Sprint(ran) != fmt.Sprint(tt.want) {
				t.Errorf("ran %v, want %v", ran, tt.want)
			}
		})
	}
}

func TestValidZoneName(t *testing.T) {
	for _, name := range []string{"", "UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "Etc/GMT-14", "America/Port-au-Prince"} {
		if err := ValidZoneName(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	for _, name := range []string{"/etc/passwd", "Europe/../etc", "Europe//Berlin", "Europe/", "Europe/Berlin ", "CET;rm", "Local", strings.Repeat("a", 65)} {
		if err := ValidZoneName(name); err == nil {
			t.Errorf("%q accepted", name)
		}
	}
}

// TestPruneIn: retention periods are the zone's civil ones, as PBS uses
// its host's local time.
func TestPruneIn(t *testing.T) {
	tests := []struct {
		name, zone string
		times      []string
		keep       Keep
		want       []Mark // newest first
	}{
		{"one UTC day", "", []string{"2026-06-01T21:30:00Z", "2026-06-01T22:30:00Z"}, Keep{Daily: 2},
			[]Mark{MarkKeep, MarkRemove}},
		{"two days in Berlin", "Europe/Berlin", []string{"2026-06-01T21:30:00Z", "2026-06-01T22:30:00Z"}, Keep{Daily: 2},
			[]Mark{MarkKeep, MarkKeep}},
		{"two UTC hours", "", []string{"2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z"}, Keep{Hourly: 2},
			[]Mark{MarkKeep, MarkKeep}},
		{"one repeated hour in New York", "America/New_York", []string{"2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z"}, Keep{Hourly: 2},
			[]Mark{MarkKeep, MarkRemove}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := mustZone(t, tt.zone)
			var items []Item
			for i, s := range tt.times {
				items = append(items, Item{ID: fmt.Sprint(i), Time: utc(t, s)})
			}
			got := PruneIn(items, tt.keep, loc)
			for i, d := range got {
				if d.Mark != tt.want[i] || !d.Time.Equal(utc(t, tt.times[len(tt.times)-1-i])) {
					t.Errorf("decision %d: %+v, want %s of %s", i, d, tt.want[i], tt.times[len(tt.times)-1-i])
				}
			}
		})
	}
}
