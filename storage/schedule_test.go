package storage

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEvaluate(t *testing.T) {
	// Monday 2026-03-02 10:07:30, a grace of 10 minutes.
	now := utc(t, "2026-03-02T10:07:30Z")
	grace := 10 * time.Minute
	every15 := mustCalendar(t, "*/15")
	nightly := mustCalendar(t, "02:00")
	created := utc(t, "2026-03-01T00:00:00Z")
	policies := []Policy{
		// Listed out of order: Evaluate sorts by ID.
		{ID: "q15", Calendar: every15, Selector: Selector{All: true}, Created: created, LastSlot: utc(t, "2026-03-02T09:45:00Z")},
		{ID: "late", Calendar: every15, Selector: Selector{Tags: []string{"web"}}, Created: created, LastSlot: utc(t, "2026-03-02T09:00:00Z")},
		{ID: "nightly", Calendar: nightly, Selector: Selector{All: true}, Created: created, LastSlot: utc(t, "2026-02-28T02:00:00Z")},
		{ID: "nightly-rm", Calendar: nightly, Selector: Selector{Tenant: "acme", Tags: []string{"web", "db"}}, RepeatMissed: true,
			Created: created, LastSlot: utc(t, "2026-02-28T02:00:00Z")},
		{ID: "done", Calendar: every15, Selector: Selector{All: true}, Created: created, LastSlot: utc(t, "2026-03-02T10:00:00Z")},
		{ID: "disabled", Calendar: every15, Selector: Selector{All: true}, Disabled: true, Created: created},
		// Slots at or before Created never run.
		{ID: "new", Calendar: every15, Selector: Selector{All: true}, Created: utc(t, "2026-03-02T10:00:00Z")},
		{ID: "no-calendar", Selector: Selector{All: true}, Created: created},
		// Created long ago and never run: missed slots are counted over
		// the last 400 days only, from 2025-01-26 10:07:30.
		{ID: "ancient", Calendar: mustCalendar(t, "daily"), Selector: Selector{All: true}, Created: utc(t, "2024-01-01T00:00:00Z")},
		// 2047 minutes were missed; the count stops at MaxMissedCount.
		{ID: "minutely", Calendar: mustCalendar(t, "minutely"), Selector: Selector{VMIDs: []int{105, 103, 999}}, Created: created},
		// No event after Created ever.
		{ID: "never", Calendar: mustCalendar(t, "2021-02-29"), Selector: Selector{All: true}, Created: created},
	}
	got := Evaluate(policies, testGuests(), now, grace)
	want := []Due{
		{Policy: "ancient", Slot: utc(t, "2026-03-02T00:00:00Z"), Missed: 399},
		{Policy: "late", Slot: utc(t, "2026-03-02T10:00:00Z"), Missed: 3, Run: true, VMIDs: []int{101, 102}},
		{Policy: "minutely", Slot: utc(t, "2026-03-02T10:07:00Z"), Missed: MaxMissedCount, Run: true, VMIDs: []int{105}},
		{Policy: "nightly", Slot: utc(t, "2026-03-02T02:00:00Z"), Missed: 1},
		{Policy: "nightly-rm", Slot: utc(t, "2026-03-02T02:00:00Z"), Missed: 1, Run: true, VMIDs: []int{101}},
		{Policy: "q15", Slot: utc(t, "2026-03-02T10:00:00Z"), Run: true, VMIDs: []int{101, 102, 104, 105}},
	}
	if a, b := dueLines(got), dueLines(want); a != b {
		t.Errorf("Evaluate:\n got %s\nwant %s", a, b)
	}
}

// dueLines renders dues one per line.
func dueLines(ds []Due) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "\n%s slot=%s missed=%d run=%t vmids=%v", d.Policy, d.Slot.Format(time.RFC3339), d.Missed, d.Run, d.VMIDs)
	}
	return b.String()
}

func TestEvaluateGrace(t *testing.T) {
	c := mustCalendar(t, "*/15")
	created := utc(t, "2026-03-01T00:00:00Z")
	tests := []struct {
		now     string
		grace   time.Duration
		wantRun bool
	}{
		{"2026-03-02T10:00:00Z", 0, true},
		{"2026-03-02T10:05:00Z", 5 * time.Minute, true},
		{"2026-03-02T10:05:01Z", 5 * time.Minute, false},
	}
	for _, tt := range tests {
		p := Policy{ID: "p", Calendar: c, Selector: Selector{All: true}, Created: created, LastSlot: utc(t, "2026-03-02T09:45:00Z")}
		got := Evaluate([]Policy{p}, nil, utc(t, tt.now), tt.grace)
		if len(got) != 1 || got[0].Run != tt.wantRun || !got[0].Slot.Equal(utc(t, "2026-03-02T10:00:00Z")) {
			t.Errorf("Evaluate at %s grace %s = %s, want run=%t", tt.now, tt.grace, dueLines(got), tt.wantRun)
		}
	}
}

func TestEvaluateExactlyOnce(t *testing.T) {
	// A leader ticks every 20 seconds for a day, recording each due slot
	// as handled: every slot of "*/15" after 00:00, when the policies
	// were created, runs once, in order. The "outage" policy is not
	// evaluated from 10:00 to 13:00: at 13:00 it runs once, with the 12
	// slots from 10:00 to 12:45 missed, and carries on.
	every15 := mustCalendar(t, "*/15")
	start := utc(t, "2026-03-02T00:00:00Z")
	policies := []Policy{
		{ID: "outage", Calendar: every15, Selector: Selector{All: true}, Created: start},
		{ID: "steady", Calendar: every15, Selector: Selector{All: true}, Created: start},
	}
	ran := map[string][]time.Time{}
	missed := map[string]int{}
	for now := start; now.Before(start.Add(24 * time.Hour)); now = now.Add(20 * time.Second) {
		ps := policies
		if now.After(utc(t, "2026-03-02T09:59:59Z")) && now.Before(utc(t, "2026-03-02T13:00:00Z")) {
			ps = policies[1:]
		}
		for _, d := range Evaluate(ps, testGuests(), now, time.Minute) {
			if !d.Run {
				t.Fatalf("%s: slot %s not run", d.Policy, d.Slot)
			}
			ran[d.Policy] = append(ran[d.Policy], d.Slot)
			missed[d.Policy] += d.Missed
			i := slices.IndexFunc(policies, func(p Policy) bool { return p.ID == d.Policy })
			policies[i].LastSlot = d.Slot
		}
	}
	if n := len(ran["steady"]); n != 95 || missed["steady"] != 0 {
		t.Errorf("steady ran %d slots with %d missed, want 95 and 0", n, missed["steady"])
	}
	if n := len(ran["outage"]); n != 95-12 || missed["outage"] != 12 {
		t.Errorf("outage ran %d slots with %d missed, want 83 and 12", n, missed["outage"])
	}
	for id, slots := range ran {
		for i := 1; i < len(slots); i++ {
			if !slots[i].After(slots[i-1]) {
				t.Errorf("%s ran %s after %s", id, slots[i], slots[i-1])
			}
		}
	}
}

func TestNextRun(t *testing.T) {
	c := mustCalendar(t, "mon..fri 02:00")
	tests := []struct {
		p    Policy
		want string
	}{
		{Policy{Calendar: c, Created: utc(t, "2026-03-06T03:00:00Z")}, "2026-03-09T02:00:00Z"},
		{Policy{Calendar: c, Created: utc(t, "2026-03-01T00:00:00Z"), LastSlot: utc(t, "2026-03-03T02:00:00Z")}, "2026-03-04T02:00:00Z"},
		{Policy{Calendar: c, Created: utc(t, "2026-03-05T00:00:00Z"), LastSlot: utc(t, "2026-03-03T02:00:00Z")}, "2026-03-05T02:00:00Z"},
	}
	for _, tt := range tests {
		if got := tt.p.NextRun(); !got.Equal(utc(t, tt.want)) {
			t.Errorf("NextRun() = %s, want %s", got, tt.want)
		}
	}
	if got := (&Policy{Created: utc(t, "2026-03-05T00:00:00Z")}).NextRun(); !got.IsZero() {
		t.Errorf("NextRun() without a calendar = %s, want the zero time", got)
	}
}
