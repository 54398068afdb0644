package storage

import (
	"fmt"
	"testing"
	"time"
)

func BenchmarkCalendarNext(b *testing.B) {
	at := time.Date(2026, 3, 2, 10, 7, 30, 0, time.UTC)
	for _, spec := range []string{
		"*/15", "mon..fri 02:00", "sat 18:15", "*-*-01 00:00", "12,14,16,18,20,22:5", "*/2:00",
		"fri *-*-13", "mon *-02-29",
	} {
		c, err := ParseCalendar(spec)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(spec, func(b *testing.B) {
			t := at
			for b.Loop() {
				if t = c.Next(t); t.IsZero() {
					t = at
				}
			}
		})
	}
}

func BenchmarkParseCalendar(b *testing.B) {
	for b.Loop() {
		if _, err := ParseCalendar("mon..fri 12,14,16,18,20,22:5"); err != nil {
			b.Fatal(err)
		}
	}
}

// benchGuests returns n guests of 100 tenants with two of 20 tags each,
// every 50th a template.
func benchGuests(n int) []Guest {
	guests := make([]Guest, n)
	for i := range guests {
		guests[i] = Guest{
			VMID:     100 + (i*7919)%n, // out of order
			Name:     fmt.Sprintf("vm-%d", i),
			Node:     fmt.Sprintf("pve%d", i%16),
			Tenant:   fmt.Sprintf("tenant-%02d", i%100),
			Tags:     []string{fmt.Sprintf("tag-%02d", i%20), fmt.Sprintf("tag-%02d", (i/20)%20)},
			Template: i%50 == 0,
		}
	}
	return guests
}

// benchPolicies returns 100 policies that are all due at now, a quarter
// of them selecting every guest (10,000 VMIDs each), the rest a tenant,
// tags, a tenant's tagged guests or a VMID list. Their last slot is two
// hours back, so each counts missed slots too.
func benchPolicies(b *testing.B, now time.Time) []Policy {
	specs := []string{"*/15", "hourly", "*/5", "*:0/10"}
	policies := make([]Policy, 100)
	for i := range policies {
		c, err := ParseCalendar(specs[i%len(specs)])
		if err != nil {
			b.Fatal(err)
		}
		var s Selector
		switch i % 4 {
		case 0:
			s = Selector{All: true}
		case 1:
			s = Selector{Tenant: fmt.Sprintf("tenant-%02d", i)}
		case 2:
			s = Selector{Tags: []string{fmt.Sprintf("tag-%02d", i%20), fmt.Sprintf("tag-%02d", (i+7)%20)}}
		case 3:
			s = Selector{Tenant: fmt.Sprintf("tenant-%02d", i), Tags: []string{"tag-03"}, VMIDs: []int{100 + i, 200 + i, 300 + i}}
		}
		policies[i] = Policy{
			ID:       fmt.Sprintf("policy-%03d", i),
			Calendar: c,
			Selector: s,
			Created:  now.Add(-48 * time.Hour),
			LastSlot: now.Add(-2 * time.Hour),
		}
	}
	return policies
}

func BenchmarkEvaluate10kGuests100Policies(b *testing.B) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	guests := benchGuests(10000)
	policies := benchPolicies(b, now)
	for b.Loop() {
		due := Evaluate(policies, guests, now, time.Minute)
		if len(due) != len(policies) || !due[0].Run || len(due[0].VMIDs) != 9800 {
			b.Fatalf("%d due, the first selecting %d guests", len(due), len(due[0].VMIDs))
		}
	}
}

func BenchmarkPrune(b *testing.B) {
	// Two years of hourly backups, PVE's example retention.
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	items := make([]Item, 2*365*24)
	for i := range items {
		items[i] = Item{ID: fmt.Sprintf("backup-%05d", i), Time: start.Add(time.Duration(i) * time.Hour), Protected: i%1000 == 0}
	}
	k := Keep{Last: 3, Daily: 13, Weekly: 8, Monthly: 11, Yearly: 9}
	for b.Loop() {
		Prune(items, k)
	}
}

func BenchmarkCoverage10kGuests100Policies(b *testing.B) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	guests := benchGuests(10000)
	var policies []PolicySelector
	for _, p := range benchPolicies(b, now) {
		policies = append(policies, PolicySelector{ID: p.ID, Selector: p.Selector})
	}
	backups := make([]BackupRecord, 30000)
	for i := range backups {
		backups[i] = BackupRecord{VMID: 100 + i%10000, Time: now.Add(-time.Duration(i) * time.Minute), VolID: fmt.Sprintf("pbs:backup/%d", i)}
	}
	for b.Loop() {
		Coverage(guests, policies, backups)
	}
}
