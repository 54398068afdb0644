package quota

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

// Days of November 2026 and the first of October, in unix milliseconds.
const (
	oct01 = 1790812800000
	nov01 = 1793491200000
	nov02 = nov01 + DayMillis
	nov03 = nov02 + DayMillis
)

// testRates is a full set of rates.
func testRates() map[Meter]string {
	return map[Meter]string{VCPURunning: "0.01", VCPUStopped: "0.002", MemoryRunning: "0.005", MemoryStopped: "0.001", Disk: "0.0001", Addresses: "0.004"}
}

func TestRateCard_Validate(t *testing.T) {
	valid := RateCard{ID: "eur-2026-10", Currency: "EUR", EffectiveFrom: oct01, EffectiveTo: nov02, Rates: testRates()}
	with := func(f func(c *RateCard)) RateCard {
		c := valid
		c.Rates = testRates()
		f(&c)
		return c
	}
	rate := func(m Meter, v string) RateCard { return with(func(c *RateCard) { c.Rates[m] = v }) }
	cases := []struct {
		name    string
		card    RateCard
		wantErr string // substring; "" means valid
	}{
		{"valid", valid, ""},
		{"open-ended", with(func(c *RateCard) { c.EffectiveTo = 0 }), ""},
		{"no rates", with(func(c *RateCard) { c.Rates = nil }), ""},
		{"zero rate", rate(Disk, "0"), ""},
		{"integer rate", rate(Disk, "12"), ""},
		{"ten fraction digits", rate(Disk, "0.0000000001"), ""},
		{"no id", with(func(c *RateCard) { c.ID = "" }), "id: empty"},
		{"lower-case currency", with(func(c *RateCard) { c.Currency = "eur" }), "currency"},
		{"long currency", with(func(c *RateCard) { c.Currency = "EURO" }), "currency"},
		{"no currency", with(func(c *RateCard) { c.Currency = "" }), "currency"},
		{"from not at midnight", with(func(c *RateCard) { c.EffectiveFrom = oct01 + 1 }), "effective_from"},
		{"to not at midnight", with(func(c *RateCard) { c.EffectiveTo = nov02 - HourMillis }), "effective_to"},
		{"to equals from", with(func(c *RateCard) { c.EffectiveTo = oct01 }), "effective_to"},
		{"to before from", with(func(c *RateCard) { c.EffectiveTo = oct01 - DayMillis }), "effective_to"},
		{"unknown meter", rate("gpu", "1"), "rates.gpu: unknown meter"},
		{"exponent", rate(Disk, "1e3"), "rates.disk"},
		{"negative", rate(VCPURunning, "-0.1"), "rates.vcpu_running"},
		{"plus sign", rate(Disk, "+1"), "rates.disk"},
		{"no integer part", rate(Disk, ".5"), "rates.disk"},
		{"no fraction digits", rate(Disk, "1."), "rates.disk"},
		{"NaN", rate(Disk, "NaN"), "rates.disk"},
		{"infinity", rate(Disk, "Infinity"), "rates.disk"},
		{"space", rate(Disk, " 1"), "rates.disk"},
		{"hexadecimal", rate(Disk, "0x10"), "rates.disk"},
		{"underscore", rate(Disk, "1_000"), "rates.disk"},
		{"empty rate", rate(Disk, ""), "rates.disk"},
		{"eleven fraction digits", rate(Addresses, "0.12345678901"), "rates.addresses"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.card.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want ErrInvalid with %q", err, tc.wantErr)
			}
		})
	}
}

func TestValidateCards(t *testing.T) {
	card := func(id, currency string, from, to int64) RateCard {
		return RateCard{ID: id, Currency: currency, EffectiveFrom: from, EffectiveTo: to, Rates: testRates()}
	}
	cases := []struct {
		name    string
		cards   []RateCard
		wantErr string // substring; "" means valid
	}{
		{"none", nil, ""},
		{"consecutive", []RateCard{card("a", "EUR", oct01, nov02), card("b", "EUR", nov02, 0)}, ""},
		{"gap", []RateCard{card("a", "EUR", oct01, nov02), card("b", "EUR", nov03, 0)}, ""},
		{"other currency at the same time", []RateCard{card("a", "EUR", oct01, 0), card("b", "USD", oct01, 0)}, ""},
		{"open-ended then later", []RateCard{card("a", "EUR", oct01, 0), card("b", "EUR", nov02, 0)}, `rate cards "a" and "b" for EUR overlap on 2026-11-02`},
		{"one day in common", []RateCard{card("a", "EUR", oct01, nov03), card("b", "EUR", nov02, 0)}, `rate cards "a" and "b" for EUR overlap on 2026-11-02`},
		{"same start", []RateCard{card("b", "EUR", nov01, nov02), card("a", "EUR", nov01, nov03)}, `rate cards "a" and "b" for EUR overlap on 2026-11-01`},
		{"overlap apart in the list", []RateCard{card("late", "EUR", nov02, 0), card("usd", "USD", oct01, 0), card("early", "EUR", oct01, nov03)}, `rate cards "early" and "late" for EUR overlap`},
		{"invalid card", []RateCard{card("a", "EUR", oct01, nov02), card("b", "eur", nov02, 0)}, `cards[1] (id "b"): currency`},
		{"duplicate id", []RateCard{card("a", "EUR", oct01, nov02), card("a", "USD", nov02, 0)}, `cards[1].id: "a" is also the id of cards[0]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateCards(tc.cards)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateCards() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ValidateCards() = %v, want ErrInvalid with %q", err, tc.wantErr)
			}
		})
	}
}

func TestCardAt(t *testing.T) {
	cards := []RateCard{
		{ID: "usd", Currency: "USD", EffectiveFrom: oct01},
		{ID: "eur-old", Currency: "EUR", EffectiveFrom: oct01, EffectiveTo: nov02},
		{ID: "eur-new", Currency: "EUR", EffectiveFrom: nov02},
	}
	cases := []struct {
		name     string
		currency string
		t        int64
		want     string // "" means none
	}{
		{"before any card", "EUR", oct01 - 1, ""},
		{"first millisecond", "EUR", oct01, "eur-old"},
		{"last millisecond", "EUR", nov02 - 1, "eur-old"},
		{"change at midnight", "EUR", nov02, "eur-new"},
		{"open-ended", "EUR", math.MaxInt64, "eur-new"},
		{"other currency", "USD", nov02, "usd"},
		{"unknown currency", "GBP", nov02, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := CardAt(cards, tc.currency, tc.t)
			switch {
			case tc.want == "" && (ok || c != nil):
				t.Fatalf("CardAt() = %v, %v; want none", c, ok)
			case tc.want != "" && (!ok || c.ID != tc.want):
				t.Fatalf("CardAt() = %v, %v; want %q", c, ok, tc.want)
			}
		})
	}
}

func TestUnitHours(t *testing.T) {
	cases := []struct {
		m    Meter
		q    int64
		want string
	}{
		{VCPURunning, HourMillis, "1"},
		{Disk, 50 * DayMillis, "1200"},
		{MemoryRunning, 1024 * HourMillis, "1"},
		{MemoryStopped, 8192 * HourMillis, "8"},
		// 3000 MiB for 24 h: 3000 × 24 / 1024 = 70.3125 GiB-hours.
		{MemoryRunning, 3000 * DayMillis, "70.3125"},
		// 1000 MiB for 7 h: 7000 / 1024 = 6.8359375, half rounded up.
		{MemoryRunning, 1000 * 7 * HourMillis, "6.835938"},
		// 9 ms is 0.0000025 h: half rounded away from zero either way.
		{Addresses, 9, "0.000003"},
		{Addresses, -9, "-0.000003"},
		// 1 ms is 0.000000277… h.
		{VCPUStopped, 1, "0"},
		{VCPUStopped, 0, "0"},
	}
	for _, tc := range cases {
		if got := UnitHours(tc.m, tc.q); !got.Equal(decimal.RequireFromString(tc.want)) {
			t.Errorf("UnitHours(%s, %d) = %s, want %s", tc.m, tc.q, got, tc.want)
		}
	}
}

func TestCost(t *testing.T) {
	cases := []struct {
		rate string
		m    Meter
		q    int64
		want string
	}{
		{"0.01", VCPURunning, 96 * HourMillis, "0.96"},
		// 70.3125 GiB-hours × 0.005 = 0.3515625, half rounded up.
		{"0.005", MemoryRunning, 3000 * DayMillis, "0.351563"},
		// 70.3125 × 0.0045 = 0.31640625.
		{"0.0045", MemoryRunning, 3000 * DayMillis, "0.316406"},
		// 6.8359375 × 0.0045 = 0.03076171875: the exact product is
		// rounded, not the rounded unit-hours (6.835938 × 0.0045 =
		// 0.030761721).
		{"0.0045", MemoryRunning, 1000 * 7 * HourMillis, "0.030762"},
		{"1", Addresses, 9, "0.000003"},
		{"1", Addresses, -9, "-0.000003"},
		{"0", Disk, 1 << 40, "0"},
		{"123.45", Disk, 0, "0"},
		// (10^20 − 10^−10) × (2^63 − 1) / 3.6e6, rounded.
		{"99999999999999999999.9999999999", Disk, math.MaxInt64, "256204778801521550194444444444188.239666"},
	}
	for _, tc := range cases {
		got := Cost(decimal.RequireFromString(tc.rate), tc.m, tc.q)
		if !got.Equal(decimal.RequireFromString(tc.want)) {
			t.Errorf("Cost(%s, %s, %d) = %s, want %s", tc.rate, tc.m, tc.q, got, tc.want)
		}
	}
}

func TestScaleRate(t *testing.T) {
	cases := []struct {
		rate string
		want scaledRate
		ok   bool
	}{
		{"0", 0, true},
		{"0.0045", 45_000_000, true},
		{"0.0000000001", 1, true},
		{"922337203.6854775807", math.MaxInt64, true},
		{"922337203.6854775808", 0, false},
		{"0.00000000001", 0, false},
		{"-1", 0, false},
	}
	for _, tc := range cases {
		if got, ok := scaleRate(decimal.RequireFromString(tc.rate)); got != tc.want || ok != tc.ok {
			t.Errorf("scaleRate(%s) = %d, %v; want %d, %v", tc.rate, got, ok, tc.want, tc.ok)
		}
	}
}

// TestCostMicros checks the integer pricing Chargeback uses against Cost
// over a grid of rates and quantities, and that it declines what does not
// fit.
func TestCostMicros(t *testing.T) {
	rates := []string{"0", "0.0000000001", "0.0045", "0.005", "1", "123.4567890123", "922337203.6854775807"}
	quantities := []int64{0, 1, 9, 1799, 1800, 1801, HourMillis, 3000 * DayMillis, 1 << 40, 1 << 53, math.MaxInt64}
	for _, text := range rates {
		rate := decimal.RequireFromString(text)
		s, ok := scaleRate(rate)
		if !ok {
			t.Fatalf("scaleRate(%s) failed", text)
		}
		for _, m := range Meters {
			for _, q := range quantities {
				micros, ok := costMicros(s, m, q)
				if !ok {
					continue
				}
				if want := Cost(rate, m, q); !decimal.New(micros, -costPlaces).Equal(want) {
					t.Errorf("costMicros(%s, %s, %d) = %d millionths, Cost = %s", text, m, q, micros, want)
				}
			}
		}
	}
	declined := []struct {
		rate string
		q    int64
	}{
		{"1", -1},                               // negative quantity
		{"922337203.6854775807", math.MaxInt64}, // quotient beyond 64 bits
		{"100000000", 1 << 62},                  // quotient beyond 64 bits
		{"5", math.MaxInt64},                    // quotient beyond int64
	}
	for _, tc := range declined {
		s, _ := scaleRate(decimal.RequireFromString(tc.rate))
		if micros, ok := costMicros(s, VCPURunning, tc.q); ok {
			t.Errorf("costMicros(%s, vcpu_running, %d) = %d, want it declined", tc.rate, tc.q, micros)
		}
	}
}
