package storage

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// pruneItems builds items from "RFC3339-TIME [protected]" lines; the ID
// of each is its time text.
func pruneItems(t *testing.T, lines []string) []Item {
	t.Helper()
	items := make([]Item, len(lines))
	for i, line := range lines {
		stamp, flag, _ := strings.Cut(line, " ")
		items[i] = Item{ID: stamp, Time: utc(t, stamp), Protected: flag == "protected"}
	}
	return items
}

// decisionLines renders decisions as "ID MARK [REASON]" lines.
func decisionLines(ds []Decision) []string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = strings.TrimSpace(d.ID + " " + string(d.Mark) + " " + d.Reason)
	}
	return lines
}

func TestPrune(t *testing.T) {
	// The cases of Proxmox Backup Server's own prune tests
	// (tests/prune.rs), with each item's verdict written out, then the
	// behaviour its documentation describes, ISO week edges, protected
	// items, ties and keep-all.
	elsa := []string{ // test_prune_simple
		"2019-12-02T11:59:15Z", "2019-12-03T11:59:15Z", "2019-12-04T11:59:15Z", "2019-12-04T12:59:15Z",
	}
	elsa2 := []string{ // test_prune_simple2
		"2018-11-15T11:59:15Z", "2019-11-15T11:59:15Z", "2019-11-21T11:59:15Z", "2019-11-22T11:59:15Z",
		"2019-11-29T11:59:15Z", "2019-12-01T11:59:15Z", "2019-12-02T11:59:15Z", "2019-12-03T11:59:15Z",
		"2019-12-04T11:59:15Z",
	}
	hourly := []string{ // test_prune_hourly
		"2019-11-15T09:39:15Z", "2019-11-15T10:49:15Z", "2019-11-15T10:59:15Z",
		"2019-11-15T11:39:15Z", "2019-11-15T11:49:15Z", "2019-11-15T11:59:15Z",
	}
	protected := []string{ // test_prune_protected
		"2019-11-15T09:39:15Z protected", "2019-11-15T10:39:15Z", "2019-11-15T10:49:15Z", "2019-11-15T10:59:15Z protected",
	}
	tests := []struct {
		name  string
		items []string
		keep  Keep
		want  []string // newest first
	}{
		{"pbs simple keep-last 4", elsa, Keep{Last: 4}, []string{
			"2019-12-04T12:59:15Z keep keep-last", "2019-12-04T11:59:15Z keep keep-last",
			"2019-12-03T11:59:15Z keep keep-last", "2019-12-02T11:59:15Z keep keep-last"}},
		{"pbs simple keep-last 3", elsa, Keep{Last: 3}, []string{
			"2019-12-04T12:59:15Z keep keep-last", "2019-12-04T11:59:15Z keep keep-last",
			"2019-12-03T11:59:15Z keep keep-last", "2019-12-02T11:59:15Z remove"}},
		{"pbs simple keep-last 1", elsa, Keep{Last: 1}, []string{
			"2019-12-04T12:59:15Z keep keep-last", "2019-12-04T11:59:15Z remove",
			"2019-12-03T11:59:15Z remove", "2019-12-02T11:59:15Z remove"}},
		{"pbs simple keep-last 2 keep-daily 2", elsa, Keep{Last: 2, Daily: 2}, []string{
			"2019-12-04T12:59:15Z keep keep-last", "2019-12-04T11:59:15Z keep keep-last",
			"2019-12-03T11:59:15Z keep keep-daily", "2019-12-02T11:59:15Z keep keep-daily"}},
		{"pbs simple keep-daily 3", elsa, Keep{Daily: 3}, []string{
			"2019-12-04T12:59:15Z keep keep-daily", "2019-12-04T11:59:15Z remove",
			"2019-12-03T11:59:15Z keep keep-daily", "2019-12-02T11:59:15Z keep keep-daily"}},
		{"pbs simple keep-daily 2", elsa, Keep{Daily: 2}, []string{
			"2019-12-04T12:59:15Z keep keep-daily", "2019-12-04T11:59:15Z remove",
			"2019-12-03T11:59:15Z keep keep-daily", "2019-12-02T11:59:15Z remove"}},
		{"pbs simple keep-weekly 5: one week", elsa, Keep{Weekly: 5}, []string{
			"2019-12-04T12:59:15Z keep keep-weekly", "2019-12-04T11:59:15Z remove",
			"2019-12-03T11:59:15Z remove", "2019-12-02T11:59:15Z remove"}},
		{"pbs simple keep-daily 1 keep-weekly 5", elsa, Keep{Daily: 1, Weekly: 5}, []string{
			"2019-12-04T12:59:15Z keep keep-daily", "2019-12-04T11:59:15Z remove",
			"2019-12-03T11:59:15Z remove", "2019-12-02T11:59:15Z remove"}},
		{"pbs simple keep-monthly 6: one month", elsa, Keep{Monthly: 6}, []string{
			"2019-12-04T12:59:15Z keep keep-monthly", "2019-12-04T11:59:15Z remove",
			"2019-12-03T11:59:15Z remove", "2019-12-02T11:59:15Z remove"}},
		{"pbs simple keep-yearly 7: one year", elsa, Keep{Yearly: 7}, []string{
			"2019-12-04T12:59:15Z keep keep-yearly", "2019-12-04T11:59:15Z remove",
			"2019-12-03T11:59:15Z remove", "2019-12-02T11:59:15Z remove"}},
		{"pbs simple weekly monthly yearly", elsa, Keep{Weekly: 5, Monthly: 6, Yearly: 7}, []string{
			"2019-12-04T12:59:15Z keep keep-weekly", "2019-12-04T11:59:15Z remove",
			"2019-12-03T11:59:15Z remove", "2019-12-02T11:59:15Z remove"}},
		{"pbs simple2 keep-daily 1", elsa2, Keep{Daily: 1}, []string{
			"2019-12-04T11:59:15Z keep keep-daily", "2019-12-03T11:59:15Z", "2019-12-02T11:59:15Z",
			"2019-12-01T11:59:15Z", "2019-11-29T11:59:15Z", "2019-11-22T11:59:15Z", "2019-11-21T11:59:15Z",
			"2019-11-15T11:59:15Z", "2018-11-15T11:59:15Z"}},
		{"pbs simple2 keep-last 1 keep-daily 1", elsa2, Keep{Last: 1, Daily: 1}, []string{
			"2019-12-04T11:59:15Z keep keep-last", "2019-12-03T11:59:15Z keep keep-daily", "2019-12-02T11:59:15Z",
			"2019-12-01T11:59:15Z", "2019-11-29T11:59:15Z", "2019-11-22T11:59:15Z", "2019-11-21T11:59:15Z",
			"2019-11-15T11:59:15Z", "2018-11-15T11:59:15Z"}},
		// 2019-12-04 is in ISO week 49 and 2019-12-01 (a Sunday) in week 48.
		{"pbs simple2 keep-daily 1 keep-weekly 1", elsa2, Keep{Daily: 1, Weekly: 1}, []string{
			"2019-12-04T11:59:15Z keep keep-daily", "2019-12-03T11:59:15Z", "2019-12-02T11:59:15Z",
			"2019-12-01T11:59:15Z keep keep-weekly", "2019-11-29T11:59:15Z", "2019-11-22T11:59:15Z",
			"2019-11-21T11:59:15Z", "2019-11-15T11:59:15Z", "2018-11-15T11:59:15Z"}},
		// keep-weekly removes 2019-11-29, the older item of the week it
		// keeps, so keep-monthly keeps 2019-11-22 for November.
		{"pbs simple2 keep-daily 1 keep-weekly 1 keep-monthly 1", elsa2, Keep{Daily: 1, Weekly: 1, Monthly: 1}, []string{
			"2019-12-04T11:59:15Z keep keep-daily", "2019-12-03T11:59:15Z", "2019-12-02T11:59:15Z",
			"2019-12-01T11:59:15Z keep keep-weekly", "2019-11-29T11:59:15Z", "2019-11-22T11:59:15Z keep keep-monthly",
			"2019-11-21T11:59:15Z", "2019-11-15T11:59:15Z", "2018-11-15T11:59:15Z"}},
		{"pbs simple2 keep-monthly 1 keep-yearly 1", elsa2, Keep{Monthly: 1, Yearly: 1}, []string{
			"2019-12-04T11:59:15Z keep keep-monthly", "2019-12-03T11:59:15Z", "2019-12-02T11:59:15Z",
			"2019-12-01T11:59:15Z", "2019-11-29T11:59:15Z", "2019-11-22T11:59:15Z", "2019-11-21T11:59:15Z",
			"2019-11-15T11:59:15Z", "2018-11-15T11:59:15Z keep keep-yearly"}},
		{"pbs hourly keep-hourly 3", hourly, Keep{Hourly: 3}, []string{
			"2019-11-15T11:59:15Z keep keep-hourly", "2019-11-15T11:49:15Z remove", "2019-11-15T11:39:15Z remove",
			"2019-11-15T10:59:15Z keep keep-hourly", "2019-11-15T10:49:15Z remove", "2019-11-15T09:39:15Z keep keep-hourly"}},
		{"pbs hourly keep-hourly 2", hourly, Keep{Hourly: 2}, []string{
			"2019-11-15T11:59:15Z keep keep-hourly", "2019-11-15T11:49:15Z remove", "2019-11-15T11:39:15Z remove",
			"2019-11-15T10:59:15Z keep keep-hourly", "2019-11-15T10:49:15Z remove", "2019-11-15T09:39:15Z remove"}},
		{"pbs protected keep-last 1", protected, Keep{Last: 1}, []string{
			"2019-11-15T10:59:15Z protected protected", "2019-11-15T10:49:15Z keep keep-last",
			"2019-11-15T10:39:15Z remove", "2019-11-15T09:39:15Z protected protected"}},
		{"pbs protected keep-hourly 1", protected, Keep{Hourly: 1}, []string{
			"2019-11-15T10:59:15Z protected protected", "2019-11-15T10:49:15Z keep keep-hourly",
			"2019-11-15T10:39:15Z remove", "2019-11-15T09:39:15Z protected protected"}},

		// "Hours without backups do not count."
		{"hours without backups do not count", []string{
			"2026-03-02T05:10:00Z", "2026-03-02T08:20:00Z", "2026-03-02T10:30:00Z", "2026-03-01T23:00:00Z",
		}, Keep{Hourly: 3}, []string{
			"2026-03-02T10:30:00Z keep keep-hourly", "2026-03-02T08:20:00Z keep keep-hourly",
			"2026-03-02T05:10:00Z keep keep-hourly", "2026-03-01T23:00:00Z remove"}},
		// "The next option does not take care of already covered backups.
		// It will only consider older backups." Daily backups at 02:00
		// from Monday 2026-02-09 to Tuesday 2026-03-03: keep-daily 3
		// covers 03-03, 03-02 and 03-01; keep-weekly 2 skips weeks 10
		// and 9 it covers, and keeps the newest of weeks 8 and 7.
		{"daily backups keep-daily 3 keep-weekly 2", []string{
			"2026-02-09T02:00:00Z", "2026-02-10T02:00:00Z", "2026-02-11T02:00:00Z", "2026-02-12T02:00:00Z",
			"2026-02-13T02:00:00Z", "2026-02-14T02:00:00Z", "2026-02-15T02:00:00Z", "2026-02-16T02:00:00Z",
			"2026-02-17T02:00:00Z", "2026-02-18T02:00:00Z", "2026-02-19T02:00:00Z", "2026-02-20T02:00:00Z",
			"2026-02-21T02:00:00Z", "2026-02-22T02:00:00Z", "2026-02-23T02:00:00Z", "2026-02-24T02:00:00Z",
			"2026-02-25T02:00:00Z", "2026-02-26T02:00:00Z", "2026-02-27T02:00:00Z", "2026-02-28T02:00:00Z",
			"2026-03-01T02:00:00Z", "2026-03-02T02:00:00Z", "2026-03-03T02:00:00Z",
		}, Keep{Daily: 3, Weekly: 2}, []string{
			"2026-03-03T02:00:00Z keep keep-daily", "2026-03-02T02:00:00Z keep keep-daily", "2026-03-01T02:00:00Z keep keep-daily",
			"2026-02-28T02:00:00Z", "2026-02-27T02:00:00Z", "2026-02-26T02:00:00Z", "2026-02-25T02:00:00Z",
			"2026-02-24T02:00:00Z", "2026-02-23T02:00:00Z",
			"2026-02-22T02:00:00Z keep keep-weekly", "2026-02-21T02:00:00Z", "2026-02-20T02:00:00Z",
			"2026-02-19T02:00:00Z", "2026-02-18T02:00:00Z", "2026-02-17T02:00:00Z", "2026-02-16T02:00:00Z",
			"2026-02-15T02:00:00Z keep keep-weekly", "2026-02-14T02:00:00Z", "2026-02-13T02:00:00Z",
			"2026-02-12T02:00:00Z", "2026-02-11T02:00:00Z", "2026-02-10T02:00:00Z", "2026-02-09T02:00:00Z"}},

		// ISO weeks: Friday 2021-01-01 and Monday 2020-12-28 are both in
		// 2020-W53, Sunday 2020-12-27 in 2020-W52, Monday 2021-01-04 in
		// 2021-W01. keep-weekly groups by ISO week, keep-yearly by
		// calendar year.
		{"iso week 53 across new year keep-weekly", []string{
			"2020-12-27T12:00:00Z", "2020-12-28T12:00:00Z", "2021-01-01T12:00:00Z", "2021-01-04T12:00:00Z",
		}, Keep{Weekly: 2}, []string{
			"2021-01-04T12:00:00Z keep keep-weekly", "2021-01-01T12:00:00Z keep keep-weekly",
			"2020-12-28T12:00:00Z remove", "2020-12-27T12:00:00Z remove"}},
		{"iso week 53 across new year keep-weekly 3", []string{
			"2020-12-27T12:00:00Z", "2020-12-28T12:00:00Z", "2021-01-01T12:00:00Z", "2021-01-04T12:00:00Z",
		}, Keep{Weekly: 3}, []string{
			"2021-01-04T12:00:00Z keep keep-weekly", "2021-01-01T12:00:00Z keep keep-weekly",
			"2020-12-28T12:00:00Z remove", "2020-12-27T12:00:00Z keep keep-weekly"}},
		{"iso week 53 across new year keep-yearly", []string{
			"2020-12-27T12:00:00Z", "2020-12-28T12:00:00Z", "2021-01-01T12:00:00Z", "2021-01-04T12:00:00Z",
		}, Keep{Yearly: 2}, []string{
			"2021-01-04T12:00:00Z keep keep-yearly", "2021-01-01T12:00:00Z remove",
			"2020-12-28T12:00:00Z keep keep-yearly", "2020-12-27T12:00:00Z remove"}},
		// Friday 2027-01-01 is in 2026-W53, with Monday 2026-12-28.
		{"iso week 53 keep-daily then keep-weekly", []string{
			"2026-12-28T00:00:00Z", "2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z", "2027-01-04T00:00:00Z",
		}, Keep{Daily: 1, Weekly: 2}, []string{
			"2027-01-04T00:00:00Z keep keep-daily", "2027-01-02T00:00:00Z keep keep-weekly",
			"2027-01-01T00:00:00Z remove", "2026-12-28T00:00:00Z remove"}},
		// Periods are UTC: 23:30 and 00:30 UTC are different days even if
		// the times carry another zone.
		{"periods in utc", []string{
			"2026-03-02T00:30:00+02:00", "2026-03-01T23:30:00Z", "2026-03-02T00:30:00Z",
		}, Keep{Daily: 2}, []string{
			"2026-03-02T00:30:00Z keep keep-daily", "2026-03-01T23:30:00Z keep keep-daily",
			"2026-03-02T00:30:00+02:00 remove"}},

		// Before 1970 too.
		{"periods before 1970", []string{
			"1969-12-31T22:30:00Z", "1969-12-31T23:30:00Z", "1970-01-01T00:30:00Z",
		}, Keep{Hourly: 2, Daily: 1}, []string{
			"1970-01-01T00:30:00Z keep keep-hourly", "1969-12-31T23:30:00Z keep keep-hourly",
			"1969-12-31T22:30:00Z remove"}},

		// A protected item is not kept by a rule and does not take a
		// period: keep-daily 2 still keeps two other days.
		{"protected in the middle", []string{
			"2026-03-03T02:00:00Z", "2026-03-02T02:00:00Z protected", "2026-03-02T01:00:00Z",
			"2026-03-01T02:00:00Z", "2026-02-28T02:00:00Z",
		}, Keep{Daily: 2}, []string{
			"2026-03-03T02:00:00Z keep keep-daily", "2026-03-02T02:00:00Z protected protected",
			"2026-03-02T01:00:00Z keep keep-daily", "2026-03-01T02:00:00Z remove", "2026-02-28T02:00:00Z remove"}},
		{"protected past the last kept", []string{
			"2026-03-03T02:00:00Z", "2026-03-02T02:00:00Z", "2026-03-01T02:00:00Z protected",
		}, Keep{Last: 1}, []string{
			"2026-03-03T02:00:00Z keep keep-last", "2026-03-02T02:00:00Z remove", "2026-03-01T02:00:00Z protected protected"}},

		// keep-all.
		{"no rule keeps all", []string{"2026-03-03T02:00:00Z", "2026-03-02T02:00:00Z protected", "2026-03-01T02:00:00Z"},
			Keep{}, []string{
				"2026-03-03T02:00:00Z keep keep-all", "2026-03-02T02:00:00Z protected protected", "2026-03-01T02:00:00Z keep keep-all"}},
		{"nothing to prune", nil, Keep{Last: 1}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decisionLines(Prune(pruneItems(t, tt.items), tt.keep))
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				if !strings.Contains(w, " ") {
					w += " remove"
				}
				want[i] = w
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("Prune(%+v):\n got %s\nwant %s", tt.keep, strings.Join(got, "\n     "), strings.Join(want, "\n     "))
			}
		})
	}
}

func TestPruneTies(t *testing.T) {
	at := utc(t, "2026-03-02T02:00:00Z")
	items := []Item{{ID: "b", Time: at}, {ID: "c", Time: at.Add(-time.Hour)}, {ID: "a", Time: at}, {ID: "b", Time: at}}
	tests := []struct {
		keep Keep
		want []string
	}{
		{Keep{Last: 1}, []string{"a keep keep-last", "b remove", "b remove", "c remove"}},
		{Keep{Last: 2}, []string{"a keep keep-last", "b keep keep-last", "b remove", "c remove"}},
		{Keep{Daily: 1}, []string{"a keep keep-daily", "b remove", "b remove", "c remove"}},
		{Keep{Hourly: 2}, []string{"a keep keep-hourly", "b remove", "b remove", "c keep keep-hourly"}},
	}
	for _, tt := range tests {
		got := decisionLines(Prune(items, tt.keep))
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("Prune(%+v) = %q, want %q", tt.keep, got, tt.want)
		}
	}
	if items[0].ID != "b" {
		t.Errorf("Prune reordered its input: %v", items)
	}
}

func TestKeepValidate(t *testing.T) {
	tests := []struct {
		keep Keep
		want string
	}{
		{Keep{}, ""},
		{Keep{Last: 3, Daily: 13, Weekly: 8, Monthly: 11, Yearly: 9}, ""},
		{Keep{Hourly: MaxKeep}, ""},
		{Keep{Last: -1}, "keep_last: must not be negative"},
		{Keep{Hourly: -1}, "keep_hourly: must not be negative"},
		{Keep{Daily: -1}, "keep_daily: must not be negative"},
		{Keep{Weekly: MaxKeep + 1}, "keep_weekly: must be at most 10000"},
		{Keep{Monthly: -5}, "keep_monthly: must not be negative"},
		{Keep{Yearly: 1 << 40}, "keep_yearly: must be at most 10000"},
	}
	for _, tt := range tests {
		err := tt.keep.Validate()
		if tt.want == "" {
			if err != nil {
				t.Errorf("%+v.Validate() = %v", tt.keep, err)
			}
			continue
		}
		var fe *FieldError
		if err == nil || err.Error() != tt.want || !errors.As(err, &fe) {
			t.Errorf("%+v.Validate() = %v, want *FieldError %q", tt.keep, err, tt.want)
		}
	}
}

func TestKeepsSomething(t *testing.T) {
	for _, k := range []Keep{{Last: 1}, {Hourly: 1}, {Daily: 1}, {Weekly: 1}, {Monthly: 1}, {Yearly: 1}} {
		if !k.KeepsSomething() {
			t.Errorf("%+v.KeepsSomething() = false", k)
		}
	}
	if (Keep{}).KeepsSomething() {
		t.Error("Keep{}.KeepsSomething() = true")
	}
}
