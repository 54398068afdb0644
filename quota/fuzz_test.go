package quota

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/shopspring/decimal"
)

// FuzzAccrueAdditive checks that splitting an interval anywhere accrues
// the same as accruing it whole. The start is kept within ±1,100 years of
// 1970 and each part under 50 days; rates are reduced into
// (−MaxRate, MaxRate].
func FuzzAccrueAdditive(f *testing.F) {
	f.Fuzz(func(t *testing.T, a int64, ab, bc uint32, r0, r1, r2, r3, r4, r5 int64) {
		a %= 1 << 45
		b := a + int64(ab)
		c := b + int64(bc)
		var r Rates
		for i, v := range [NumMeters]int64{r0, r1, r2, r3, r4, r5} {
			r[i] = v % (MaxRate + 1)
		}
		checkAdditive(t, a, b, c, r)
	})
}

// FuzzRateCardValidate checks that Validate never panics on a card decoded
// from arbitrary JSON, that it refuses with ErrInvalid, and that a card it
// accepts prices any non-negative quantity at a non-negative cost, the
// same in integers as with decimals.
func FuzzRateCardValidate(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, q int64) {
		var c RateCard
		if json.Unmarshal(data, &c) != nil {
			return
		}
		if err := c.Validate(); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate() = %v, not ErrInvalid", err)
			}
			return
		}
		if err := ValidateCards([]RateCard{c}); err != nil {
			t.Fatalf("Validate() = nil but ValidateCards() = %v", err)
		}
		if got, ok := CardAt([]RateCard{c}, c.Currency, c.EffectiveFrom); !ok || got.ID != c.ID {
			t.Fatalf("CardAt(effective_from) = %v, %v", got, ok)
		}
		if q < 0 {
			q = -(q + 1)
		}
		for m, text := range c.Rates {
			rate, err := decimal.NewFromString(text)
			if err != nil {
				t.Fatalf("rates.%s: Validate accepted %q, which does not parse: %v", m, text, err)
			}
			cost := Cost(rate, m, q)
			if cost.Sign() < 0 {
				t.Fatalf("Cost(%s, %s, %d) = %s is negative", rate, m, q, cost)
			}
			if s, ok := scaleRate(rate); ok {
				if micros, ok := costMicros(s, m, q); ok && !decimal.New(micros, -costPlaces).Equal(cost) {
					t.Fatalf("costMicros(%s, %s, %d) = %d millionths, Cost = %s", rate, m, q, micros, cost)
				}
			}
		}
	})
}
