package quota

import (
	"fmt"
	"slices"
	"testing"
)

// benchBuckets returns daily buckets of 1,000 tenants with one project
// each over 90 days from 2026-09-01, every meter nonzero, and two EUR rate
// cards that change on day 45.
func benchBuckets() ([]Bucket, []RateCard) {
	const start = 1788220800000 // 2026-09-01T00:00:00Z
	buckets := make([]Bucket, 0, 1000*90)
	for t := range 1000 {
		for d := range int64(90) {
			var q Quantities
			for i := range q {
				q[i] = int64(t%7+i+1) * (d%5 + 1) * 24 * HourMillis
			}
			buckets = append(buckets, Bucket{Tenant: fmt.Sprintf("tenant-%04d", t), Project: "default", Start: start + d*DayMillis, Span: DayMillis, Q: q})
		}
	}
	cards := []RateCard{
		{ID: "eur-1", Currency: "EUR", EffectiveFrom: start, EffectiveTo: start + 45*DayMillis, Rates: map[Meter]string{
			VCPURunning: "0.0125", VCPUStopped: "0.002", MemoryRunning: "0.0042", MemoryStopped: "0.0007", Disk: "0.00013", Addresses: "0.0035"}},
		{ID: "eur-2", Currency: "EUR", EffectiveFrom: start + 45*DayMillis, Rates: map[Meter]string{
			VCPURunning: "0.0131", VCPUStopped: "0.0021", MemoryRunning: "0.0044", MemoryStopped: "0.00075", Disk: "0.00014", Addresses: "0.004"}},
	}
	return buckets, cards
}

func BenchmarkChargeback1000Tenants90Days(b *testing.B) {
	buckets, cards := benchBuckets()
	g, err := ParseGroupBy("tenant")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		rows, _, err := Chargeback(slices.Values(buckets), cards, "EUR", g)
		if err != nil {
			b.Fatal(err)
		}
		if len(rows) != 1000*NumMeters {
			b.Fatalf("got %d rows, want %d", len(rows), 1000*NumMeters)
		}
	}
}

func BenchmarkUsage(b *testing.B) {
	buckets, _ := benchBuckets()
	g, err := ParseGroupBy("tenant")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		rows := Usage(slices.Values(buckets), g)
		if len(rows) != 1000*NumMeters {
			b.Fatalf("got %d rows, want %d", len(rows), 1000*NumMeters)
		}
	}
}
