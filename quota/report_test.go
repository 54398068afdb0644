package quota

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

// fixtureBuckets returns three days of daily usage of two tenants, in no
// particular order. In unit-hours (memory in GiB-hours):
//
//	acme/web   2026-11-01: 4 vCPUs running 24 h = 96; 8192 MiB running
//	                       24 h = 192; 50 GiB disk 24 h = 1200; 1 address
//	                       24 h = 24.
//	acme/web   2026-11-02: the guest runs 10 h and is stopped 14 h: vCPUs
//	                       running 40, stopped 56; memory running 80,
//	                       stopped 112; disk 1200; address 24.
//	acme/web   2026-11-03: a bucket of zeros (the guest was deleted).
//	globex/db  2026-11-01: 2 vCPUs 24 h = 48; 3000 MiB 24 h = 3000 × 24 /
//	                       1024 = 70.3125; 20 GiB disk = 480; 2 addresses
//	                       = 48.
//	globex/db  2026-11-02: the same.
//	globex/db  2026-11-03: as before, but 1000 MiB for 7 h: 7000 / 1024 =
//	                       6.8359375, shown as 6.835938.
func fixtureBuckets() []Bucket {
	const h = HourMillis
	globex := Quantities{2 * 24 * h, 0, 3000 * 24 * h, 0, 20 * 24 * h, 2 * 24 * h}
	globex3 := globex
	globex3[2] = 1000 * 7 * h
	return []Bucket{
		{Tenant: "globex", Project: "db", Start: nov02, Span: DayMillis, Q: globex},
		{Tenant: "acme", Project: "web", Start: nov01, Span: DayMillis, Q: Quantities{4 * 24 * h, 0, 8192 * 24 * h, 0, 50 * 24 * h, 24 * h}},
		{Tenant: "acme", Project: "web", Start: nov03, Span: DayMillis},
		{Tenant: "globex", Project: "db", Start: nov03, Span: DayMillis, Q: globex3},
		{Tenant: "acme", Project: "web", Start: nov02, Span: DayMillis, Q: Quantities{4 * 10 * h, 4 * 14 * h, 8192 * 10 * h, 8192 * 14 * h, 50 * 24 * h, 24 * h}},
		{Tenant: "globex", Project: "db", Start: nov01, Span: DayMillis, Q: globex},
	}
}

// fixtureCards returns two EUR rate cards that change at midnight of
// 2026-11-02, and a USD card the EUR reports ignore. From 2026-11-02 vCPUs
// running, memory running and addresses cost more; the other rates stay.
//
// The EUR costs, per tenant and day (memory rounded half up at 10^-6):
//
//	acme   11-01  96 × 0.01 + 192 × 0.005 + 1200 × 0.0001 + 24 × 0.004
//	              = 0.96 + 0.96 + 0.12 + 0.096 = 2.136
//	acme   11-02  40 × 0.012 + 56 × 0.002 + 80 × 0.0045 + 112 × 0.001
//	              + 1200 × 0.0001 + 24 × 0.005
//	              = 0.48 + 0.112 + 0.36 + 0.112 + 0.12 + 0.12 = 1.304
//	globex 11-01  48 × 0.01 + 70.3125 × 0.005 (0.3515625 → 0.351563)
//	              + 480 × 0.0001 + 48 × 0.004
//	              = 0.48 + 0.351563 + 0.048 + 0.192 = 1.071563
//	globex 11-02  48 × 0.012 + 70.3125 × 0.0045 (0.31640625 → 0.316406)
//	              + 0.048 + 48 × 0.005
//	              = 0.576 + 0.316406 + 0.048 + 0.24 = 1.180406
//	globex 11-03  0.576 + 6.8359375 × 0.0045 (0.03076171875 → 0.030762)
//	              + 0.048 + 0.24 = 0.894762
//	total         2.136 + 1.304 + 1.071563 + 1.180406 + 0.894762 = 6.586731
//
// By tenant alone, rows that combine both EUR cards at different rates
// show "mixed": acme vcpu_running 0.96 + 0.48 = 1.44, memory_running
// 0.96 + 0.36 = 1.32, addresses 0.096 + 0.12 = 0.216; globex
// vcpu_running 0.48 + 0.576 + 0.576 = 1.632, memory_running 0.351563 +
// 0.316406 + 0.030762 = 0.698731 over 147.4609375 GiB-hours, addresses
// 0.192 + 0.24 + 0.24 = 0.672. Disk costs 0.0001 on both cards, so its
// rows show that rate: acme 0.24, globex 0.144. Totals: acme 3.44, globex
// 3.146731, together 6.586731 again.
func fixtureCards() []RateCard {
	newer := testRates()
	newer[VCPURunning] = "0.012"
	newer[MemoryRunning] = "0.0045"
	newer[Addresses] = "0.005"
	return []RateCard{
		{ID: "eur-2026-11", Currency: "EUR", EffectiveFrom: nov02, Rates: newer},
		{ID: "usd-2026", Currency: "USD", EffectiveFrom: oct01, Rates: map[Meter]string{VCPURunning: "0.02"}},
		{ID: "eur-2026-10", Currency: "EUR", EffectiveFrom: oct01, EffectiveTo: nov02, Rates: testRates()},
	}
}

func mustGroupBy(t testing.TB, s string) GroupBy {
	t.Helper()
	g, err := ParseGroupBy(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseGroupBy(t *testing.T) {
	cases := []struct {
		in         string
		want       string // String() of the result
		needsHours bool
		wantErr    string // substring; "" means valid
	}{
		{in: "", want: "tenant"},
		{in: "  ", want: "tenant"},
		{in: "tenant", want: "tenant"},
		{in: "project", want: "tenant,project"},
		{in: "day,tenant", want: "tenant,day"},
		{in: " tenant , month ", want: "tenant,month"},
		{in: "month", want: "month"},
		{in: "tenant,project,hour", want: "tenant,project,hour", needsHours: true},
		{in: "day,month", wantErr: `group_by: "day" and "month" are both periods`},
		{in: "tenant,tenant", wantErr: `group_by: "tenant" is given twice`},
		{in: "week", wantErr: `group_by: unknown column "week"`},
		{in: "meter", wantErr: `group_by: unknown column "meter"`},
		{in: "tenant,", wantErr: `group_by: unknown column ""`},
		{in: "Tenant", wantErr: `group_by: unknown column "Tenant"`},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			g, err := ParseGroupBy(tc.in)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseGroupBy(%q) = %v, want ErrInvalid with %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || g.String() != tc.want || g.NeedsHours() != tc.needsHours {
				t.Fatalf("ParseGroupBy(%q) = %q (needs hours %v), %v; want %q (%v)", tc.in, g, g.NeedsHours(), err, tc.want, tc.needsHours)
			}
			if again, err := ParseGroupBy(g.String()); err != nil || again != g {
				t.Fatalf("ParseGroupBy(%q) = %v, %v; want %v", g.String(), again, err, g)
			}
		})
	}
}

func TestUsage_CSV(t *testing.T) {
	rows := Usage(slices.Values(fixtureBuckets()), mustGroupBy(t, "project,day"))
	var buf bytes.Buffer
	if err := WriteUsageCSV(&buf, rows); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), readFixture(t, "usage.csv"); got != want {
		t.Fatalf("usage CSV:\n%s\nwant testdata/usage.csv:\n%s", got, want)
	}
}

func TestUsage_Periods(t *testing.T) {
	// 2 vCPUs from 2026-10-31T23:30Z to 2026-11-01T01:15Z in hourly
	// buckets, as the FSM meters them.
	var buckets []Bucket
	Accrue(nov01-HourMillis/2, nov01+HourMillis+HourMillis/4, Rates{2}, func(start int64, q Quantities) {
		buckets = append(buckets, Bucket{Tenant: "acme", Project: "web", Start: start, Span: HourMillis, Q: q})
	})
	row := func(period string, hours string) UsageRow {
		uh := decimal.RequireFromString(hours)
		return UsageRow{Period: period, Meter: VCPURunning, Quantity: uh.Mul(decimal.NewFromInt(HourMillis)).IntPart(), UnitHours: uh}
	}
	cases := []struct {
		groupBy string
		want    []UsageRow
	}{
		{"hour", []UsageRow{row("2026-10-31T23:00Z", "1"), row("2026-11-01T00:00Z", "2"), row("2026-11-01T01:00Z", "0.5")}},
		{"day", []UsageRow{row("2026-10-31", "1"), row("2026-11-01", "2.5")}},
		{"month", []UsageRow{row("2026-10", "1"), row("2026-11", "2.5")}},
	}
	for _, tc := range cases {
		t.Run(tc.groupBy, func(t *testing.T) {
			got := Usage(slices.Values(buckets), mustGroupBy(t, tc.groupBy))
			if !slices.EqualFunc(got, tc.want, usageRowsEqual) {
				t.Fatalf("Usage() = %v, want %v", got, tc.want)
			}
		})
	}
}

func usageRowsEqual(a, b UsageRow) bool {
	return a.Tenant == b.Tenant && a.Project == b.Project && a.Period == b.Period && a.Meter == b.Meter &&
		a.Quantity == b.Quantity && a.UnitHours.Equal(b.UnitHours)
}

func TestUsage_ZeroGroupBy(t *testing.T) {
	// Everything in one row per meter: 96 + 40 + 48 × 3 vCPU-hours running.
	rows := Usage(slices.Values(fixtureBuckets()), GroupBy{})
	if len(rows) != NumMeters || rows[0].Meter != VCPURunning || !rows[0].UnitHours.Equal(decimal.NewFromInt(280)) || rows[0].Tenant != "" {
		t.Fatalf("Usage() = %v, want %d rows starting with 280 vcpu_running hours", rows, NumMeters)
	}
}

func TestChargeback_CSV(t *testing.T) {
	cases := []struct {
		groupBy string
		file    string
	}{
		{"tenant,day", "chargeback.csv"},
		{"tenant", "chargeback_by_tenant.csv"},
	}
	for _, tc := range cases {
		t.Run(tc.groupBy, func(t *testing.T) {
			rows, total, err := Chargeback(slices.Values(fixtureBuckets()), fixtureCards(), "EUR", mustGroupBy(t, tc.groupBy))
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := WriteChargebackCSV(&buf, rows, total, "EUR"); err != nil {
				t.Fatal(err)
			}
			if got, want := buf.String(), readFixture(t, tc.file); got != want {
				t.Fatalf("chargeback CSV:\n%s\nwant testdata/%s:\n%s", got, tc.file, want)
			}
		})
	}
}

// TestChargeback_Reconciles checks, for every grouping, that the total is
// the sum of the row costs, that it is the sum of the costs of the
// buckets priced one by one, and that rows carry the currency.
func TestChargeback_Reconciles(t *testing.T) {
	buckets, cards := fixtureBuckets(), fixtureCards()
	want := decimal.Zero
	for _, b := range buckets {
		for i, q := range b.Q {
			if q == 0 {
				continue
			}
			c, ok := CardAt(cards, "EUR", b.Start)
			if !ok {
				t.Fatalf("no card at %d", b.Start)
			}
			want = want.Add(Cost(decimal.RequireFromString(c.Rates[Meters[i]]), Meters[i], q))
		}
	}
	if !want.Equal(decimal.RequireFromString("6.586731")) {
		t.Fatalf("bucket costs sum to %s, want 6.586731", want)
	}
	for _, groupBy := range []string{"tenant", "project", "day", "month", "tenant,day", "project,month"} {
		rows, total, err := Chargeback(slices.Values(buckets), cards, "EUR", mustGroupBy(t, groupBy))
		if err != nil {
			t.Fatal(err)
		}
		sum := decimal.Zero
		for _, r := range rows {
			sum = sum.Add(r.Cost)
			if r.Currency != "EUR" {
				t.Errorf("group_by %s: row %v has currency %q", groupBy, r, r.Currency)
			}
		}
		if !total.Equal(want) || !sum.Equal(want) {
			t.Errorf("group_by %s: total %s, rows sum to %s, want %s", groupBy, total, sum, want)
		}
	}
}

func TestChargeback_Errors(t *testing.T) {
	const sep15 = oct01 - 16*DayMillis // 2026-09-15
	usage := Quantities{HourMillis}
	overlapping := append(fixtureCards(), RateCard{ID: "eur-promo", Currency: "EUR", EffectiveFrom: nov03, EffectiveTo: nov03 + DayMillis})
	cases := []struct {
		name     string
		buckets  []Bucket
		cards    []RateCard
		currency string
		wantIs   error
		wantErr  string // "" means no error
	}{
		{
			name:     "usage before the first card",
			buckets:  append(fixtureBuckets(), Bucket{Tenant: "acme", Start: sep15 + 13*HourMillis, Span: HourMillis, Q: usage}),
			cards:    fixtureCards(),
			currency: "EUR",
			wantIs:   ErrNoRateCard,
			wantErr:  "no rate card for EUR on 2026-09-15",
		},
		{
			name:     "no card in the currency",
			buckets:  fixtureBuckets(),
			cards:    fixtureCards(),
			currency: "GBP",
			wantIs:   ErrNoRateCard,
			wantErr:  "no rate card for GBP on 2026-11-0",
		},
		{
			name:     "a bucket of zeros needs no card",
			buckets:  []Bucket{{Tenant: "acme", Start: sep15, Span: DayMillis}},
			cards:    fixtureCards(),
			currency: "EUR",
		},
		{
			name:     "overlapping cards",
			buckets:  fixtureBuckets(),
			cards:    overlapping,
			currency: "EUR",
			wantIs:   ErrInvalid,
			wantErr:  `rate cards "eur-2026-11" and "eur-promo" for EUR overlap on 2026-11-03`,
		},
		{
			name:     "invalid card",
			buckets:  fixtureBuckets(),
			cards:    []RateCard{{ID: "x", Currency: "EUR", Rates: map[Meter]string{Disk: "1e-3"}}},
			currency: "EUR",
			wantIs:   ErrInvalid,
			wantErr:  `cards[0] (id "x"): rates.disk`,
		},
		{
			name:     "bad currency",
			buckets:  fixtureBuckets(),
			cards:    fixtureCards(),
			currency: "eur",
			wantIs:   ErrInvalid,
			wantErr:  "currency",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rows, total, err := Chargeback(slices.Values(tc.buckets), tc.cards, tc.currency, mustGroupBy(t, "tenant"))
			if tc.wantErr == "" {
				if err != nil || len(rows) != 0 || !total.IsZero() {
					t.Fatalf("Chargeback() = %v, %s, %v; want no rows", rows, total, err)
				}
				return
			}
			if !errors.Is(err, tc.wantIs) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Chargeback() error = %v, want %v with %q", err, tc.wantIs, tc.wantErr)
			}
			if rows != nil {
				t.Fatalf("Chargeback() returned rows with an error")
			}
		})
	}
}

// TestChargeback_LargeCosts checks the decimal path of costs that do not
// fit the integer one: a rate too large for 10^-10 units in an int64, and
// sums past an int64 of millionths.
func TestChargeback_LargeCosts(t *testing.T) {
	cards := []RateCard{{ID: "big", Currency: "EUR", EffectiveFrom: oct01, Rates: map[Meter]string{
		VCPURunning: "1000000000", // beyond scaledRate
		Disk:        "40",         // 40 × 2^31 × 24 h = 2.06e12 a day: 5 days pass 9.2e12
	}}}
	q := Quantities{MaxRate * DayMillis, 0, 0, 0, MaxRate * DayMillis, 0}
	var buckets []Bucket
	for d := range int64(90) {
		buckets = append(buckets, Bucket{Tenant: "acme", Start: oct01 + d*DayMillis, Span: DayMillis, Q: q})
	}
	rows, total, err := Chargeback(slices.Values(buckets), cards, "EUR", mustGroupBy(t, "tenant"))
	if err != nil {
		t.Fatal(err)
	}
	perDay := func(rate string) decimal.Decimal {
		return decimal.RequireFromString(rate).Mul(decimal.NewFromInt(MaxRate * 24))
	}
	wantVCPU := perDay("1000000000").Mul(decimal.NewFromInt(90))
	wantDisk := perDay("40").Mul(decimal.NewFromInt(90))
	if len(rows) != 2 || !rows[0].Cost.Equal(wantVCPU) || !rows[1].Cost.Equal(wantDisk) || !total.Equal(wantVCPU.Add(wantDisk)) {
		t.Fatalf("Chargeback() = %v, %s; want vcpu_running %s, disk %s", rows, total, wantVCPU, wantDisk)
	}
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteCSV_Error(t *testing.T) {
	if err := WriteUsageCSV(failingWriter{}, nil); err == nil {
		t.Error("WriteUsageCSV to a failing writer returned nil")
	}
	if err := WriteChargebackCSV(failingWriter{}, nil, decimal.Zero, "EUR"); err == nil {
		t.Error("WriteChargebackCSV to a failing writer returned nil")
	}
}
