package storage

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// MaxKeep bounds each count of a Keep.
const MaxKeep = 10000

// Keep is a retention policy with Proxmox Backup Server's prune options:
// keep the Last n snapshots, and the newest snapshot of each of the last
// Hourly hours, Daily days, Weekly ISO weeks, Monthly months and Yearly
// years that have one. A zero count disables its rule; a Keep without any
// rule keeps everything.
type Keep struct {
	Last    int `json:"keep_last,omitempty"`
	Hourly  int `json:"keep_hourly,omitempty"`
	Daily   int `json:"keep_daily,omitempty"`
	Weekly  int `json:"keep_weekly,omitempty"`
	Monthly int `json:"keep_monthly,omitempty"`
	Yearly  int `json:"keep_yearly,omitempty"`
}

// Validate checks that every count lies in [0, MaxKeep]; the error is a
// *FieldError naming the JSON field, for example
// "keep_daily: must not be negative".
func (k Keep) Validate() error {
	for _, r := range pruneRules {
		n := r.count(k)
		switch {
		case n < 0:
			return fieldErr(r.field, "must not be negative")
		case n > MaxKeep:
			return fieldErr(r.field, fmt.Sprintf("must be at most %d", MaxKeep))
		}
	}
	return nil
}

// KeepsSomething reports whether any rule of k is enabled. When none is,
// Prune keeps everything (PBS's keep-all).
func (k Keep) KeepsSomething() bool {
	return k.Last > 0 || k.Hourly > 0 || k.Daily > 0 || k.Weekly > 0 || k.Monthly > 0 || k.Yearly > 0
}

// Item is one snapshot or backup that Prune decides about.
type Item struct {
	ID        string
	Time      time.Time
	Protected bool
}

// Mark is Prune's verdict on an item.
type Mark string

// The marks Prune gives.
const (
	MarkKeep      Mark = "keep"
	MarkRemove    Mark = "remove"
	MarkProtected Mark = "protected"
)

// Decision is Prune's verdict on one item. Reason names the rule that
// keeps it ("keep-last", "keep-hourly", "keep-daily", "keep-weekly",
// "keep-monthly", "keep-yearly" or "keep-all"), or is "protected" for a
// protected item and empty for one to remove.
type Decision struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Mark   Mark      `json:"mark"`
	Reason string    `json:"reason,omitempty"`
}

// pruneRule is one of PBS's retention rules: its option name, its JSON
// field, its count in a Keep and the period an item falls in.
type pruneRule struct {
	name   string
	field  string
	count  func(Keep) int
	period func(index int, t time.Time) int64
}

// pruneRules are the rules in the order PBS applies them. Periods are
// computed from civil time as a UTC time (see PruneIn): hours and days
// since 1970, ISO year and week (weeks
// start on Monday; 1 January may belong to the previous year's week 52 or
// 53), months and years. keep-last gives every item a period of its own.
var pruneRules = []pruneRule{
	{"keep-last", "keep_last", func(k Keep) int { return k.Last },
		func(i int, _ time.Time) int64 { return int64(i) }},
	{"keep-hourly", "keep_hourly", func(k Keep) int { return k.Hourly },
		func(_ int, t time.Time) int64 { return floorDiv(t.Unix(), 3600) }},
	{"keep-daily", "keep_daily", func(k Keep) int { return k.Daily },
		func(_ int, t time.Time) int64 { return floorDiv(t.Unix(), 86400) }},
	{"keep-weekly", "keep_weekly", func(k Keep) int { return k.Weekly },
		func(_ int, t time.Time) int64 { y, w := t.UTC().ISOWeek(); return int64(y)*100 + int64(w) }},
	{"keep-monthly", "keep_monthly", func(k Keep) int { return k.Monthly },
		func(_ int, t time.Time) int64 { y, m, _ := t.UTC().Date(); return int64(y)*12 + int64(m) }},
	{"keep-yearly", "keep_yearly", func(k Keep) int { return k.Yearly },
		func(_ int, t time.Time) int64 { return int64(t.UTC().Year()) }},
}

// floorDiv returns a/b rounded towards minus infinity, for b > 0.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// Prune decides which items to keep as Proxmox Backup Server's prune
// does (compute_prune_info with mark_selections), and returns one
// decision per item, newest first (by Time descending, then by ID).
//
// The rules apply in the order last, hourly, daily, weekly, monthly,
// yearly; each enabled rule with count n walks the items newest to oldest
// and skips those already marked. A protected item is marked protected.
// An item in a period that an earlier rule already keeps an item of is
// left for later rules. The newest item of each new period is kept until
// n periods are kept, which ends the rule's walk; an older item of a
// period the rule keeps is removed. Items left unmarked at the end are
// removed. Protected items are always MarkProtected, and a Keep without
// any rule keeps every item ("keep-all").
func Prune(items []Item, k Keep) []Decision { return PruneIn(items, k, nil) }

// PruneIn is Prune with the periods (hours, days, weeks, months, years)
// of loc's civil time, as PBS uses its host's local time; nil means UTC.
// Items are still ordered by the instant they were made: in an hour
// repeated when the clocks go back, both of its items fall in one
// period.
func PruneIn(items []Item, k Keep, loc *time.Location) []Decision {
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := items[b].Time.Compare(items[a].Time); c != 0 {
			return c
		}
		if c := strings.Compare(items[a].ID, items[b].ID); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	sorted := make([]Item, len(items))
	civil := make([]Item, len(items)) // sorted, with civil times for the periods
	for i, o := range order {
		sorted[i] = items[o]
		civil[i] = items[o]
		if loc != nil {
			civil[i].Time = civilOf(items[o].Time, loc)
		}
	}
	marks := make([]Mark, len(sorted))
	reasons := make([]string, len(sorted))
	keepAll := !k.KeepsSomething()
	if !keepAll {
		for _, r := range pruneRules {
			if n := r.count(k); n > 0 {
				markSelections(civil, marks, reasons, n, r)
			}
		}
	}
	out := make([]Decision, len(sorted))
	for i, it := range sorted {
		d := Decision{ID: it.ID, Time: it.Time}
		switch {
		case it.Protected:
			d.Mark, d.Reason = MarkProtected, "protected"
		case keepAll:
			d.Mark, d.Reason = MarkKeep, "keep-all"
		case marks[i] == MarkKeep:
			d.Mark, d.Reason = MarkKeep, reasons[i]
		default:
			d.Mark = MarkRemove
		}
		out[i] = d
	}
	return out
}

// markSelections applies rule r with count n to items (sorted newest
// first), marking the items it decides about in marks and the rule's
// name in reasons for those it keeps.
func markSelections(items []Item, marks []Mark, reasons []string, n int, r pruneRule) {
	already := make(map[int64]struct{})
	for i, it := range items {
		if marks[i] == MarkKeep {
			already[r.period(i, it.Time)] = struct{}{}
		}
	}
	included := make(map[int64]struct{}, n)
	for i, it := range items {
		if marks[i] != "" {
			continue
		}
		if it.Protected {
			marks[i] = MarkProtected
			continue
		}
		p := r.period(i, it.Time)
		if _, ok := already[p]; ok {
			continue
		}
		if _, ok := included[p]; ok {
			marks[i] = MarkRemove
			continue
		}
		if len(included) >= n {
			return
		}
		included[p] = struct{}{}
		marks[i], reasons[i] = MarkKeep, r.name
	}
}
