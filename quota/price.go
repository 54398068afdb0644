package quota

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"math/bits"
	"regexp"
	"slices"

	"github.com/shopspring/decimal"
)

// DayMillis is one day in milliseconds, the span of a daily rollup and the
// granularity of rate card validity.
const DayMillis = 86_400_000

// costPlaces is the number of fraction digits costs and unit-hours are
// rounded to.
const costPlaces = 6

// RateCard prices usage in one currency over a span of whole UTC days.
// EffectiveFrom is the first millisecond it applies, EffectiveTo the first
// it no longer does (0: open-ended); both are unix milliseconds at UTC
// midnight. Rates maps a meter to a decimal price per unit-hour, written
// as a plain decimal such as "0.0125"; memory meters are priced per
// GiB-hour. A meter without a rate is free.
type RateCard struct {
	ID            string           `json:"id"`
	Currency      string           `json:"currency"`
	EffectiveFrom int64            `json:"effective_from"`
	EffectiveTo   int64            `json:"effective_to"`
	Rates         map[Meter]string `json:"rates"`
}

var (
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
	rateRE     = regexp.MustCompile(`^[0-9]+(\.[0-9]{1,10})?$`)
)

// Validate checks that the card has an ID, a currency of three upper-case
// letters, validity starting and ending at UTC midnight with the end after
// the start, and for every rate a known meter and a plain non-negative
// decimal with at most 10 fraction digits. The error names the field, as
// in "rates.vcpu_running".
func (c RateCard) Validate() error {
	if field, problem := c.check(); field != "" {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, field, problem)
	}
	return nil
}

// check returns the first invalid field of c and what is wrong with it, or
// two empty strings.
func (c RateCard) check() (field, problem string) {
	switch {
	case c.ID == "":
		return "id", "empty"
	case !currencyRE.MatchString(c.Currency):
		return "currency", fmt.Sprintf("%q is not three upper-case letters", c.Currency)
	case c.EffectiveFrom%DayMillis != 0:
		return "effective_from", fmt.Sprintf("%d is not a UTC midnight in unix milliseconds", c.EffectiveFrom)
	case c.EffectiveTo%DayMillis != 0:
		return "effective_to", fmt.Sprintf("%d is not a UTC midnight in unix milliseconds", c.EffectiveTo)
	case c.EffectiveTo != 0 && c.EffectiveTo <= c.EffectiveFrom:
		return "effective_to", fmt.Sprintf("%d is not after effective_from %d", c.EffectiveTo, c.EffectiveFrom)
	}
	for _, m := range slices.Sorted(maps.Keys(c.Rates)) {
		if !m.Valid() {
			return "rates." + string(m), "unknown meter (one of " + meterList() + ")"
		}
		if !rateRE.MatchString(c.Rates[m]) {
			return "rates." + string(m), fmt.Sprintf("%q is not a plain non-negative decimal with at most 10 fraction digits", c.Rates[m])
		}
	}
	return "", ""
}

// ValidateCards checks every card, that IDs are unique, and that no two
// cards of the same currency are in effect on the same day. The error
// names the card and the field, or both overlapping cards.
func ValidateCards(cards []RateCard) error {
	seen := make(map[string]int, len(cards))
	for i, c := range cards {
		if field, problem := c.check(); field != "" {
			return fmt.Errorf("%w: cards[%d] (id %q): %s: %s", ErrInvalid, i, c.ID, field, problem)
		}
		if j, dup := seen[c.ID]; dup {
			return fmt.Errorf("%w: cards[%d].id: %q is also the id of cards[%d]", ErrInvalid, i, c.ID, j)
		}
		seen[c.ID] = i
	}
	order := make([]int, len(cards))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int {
		a, b := &cards[i], &cards[j]
		return cmp.Or(cmp.Compare(a.Currency, b.Currency), cmp.Compare(a.EffectiveFrom, b.EffectiveFrom), cmp.Compare(a.ID, b.ID))
	})
	// Sorted by start, two cards of a currency overlap if and only if some
	// card overlaps the one after it.
	for k := 1; k < len(order); k++ {
		a, b := &cards[order[k-1]], &cards[order[k]]
		if a.Currency == b.Currency && (a.EffectiveTo == 0 || b.EffectiveFrom < a.EffectiveTo) {
			return fmt.Errorf("%w: rate cards %q and %q for %s overlap on %s", ErrInvalid, a.ID, b.ID, a.Currency, formatDay(b.EffectiveFrom))
		}
	}
	return nil
}

// CardAt returns the card of currency in effect at t, unix milliseconds.
// Among cards that overlap, which ValidateCards refuses, the first wins.
func CardAt(cards []RateCard, currency string, t int64) (*RateCard, bool) {
	for i := range cards {
		if c := &cards[i]; c.Currency == currency && c.covers(t) {
			return c, true
		}
	}
	return nil, false
}

func (c *RateCard) covers(t int64) bool {
	return c.EffectiveFrom <= t && (c.EffectiveTo == 0 || t < c.EffectiveTo)
}

// divisor returns the unit-milliseconds in one priced unit-hour of m: an
// hour for most meters, and an hour of a GiB, 1024 MiB, for memory.
func divisor(m Meter) int64 {
	if m == MemoryRunning || m == MemoryStopped {
		return 1024 * HourMillis
	}
	return HourMillis
}

// UnitHours converts a quantity of m in unit-milliseconds to the unit-hours
// rate cards price (GiB-hours for memory), rounded half away from zero to
// 6 fraction digits.
func UnitHours(m Meter, q int64) decimal.Decimal {
	return decimal.NewFromInt(q).DivRound(decimal.NewFromInt(divisor(m)), costPlaces)
}

// Cost prices a quantity q of m, in unit-milliseconds, at rate per
// unit-hour: rate × q / divisor computed exactly and rounded half away
// from zero to 6 fraction digits, as decimal.DivRound does.
func Cost(rate decimal.Decimal, m Meter, q int64) decimal.Decimal {
	return rate.Mul(decimal.NewFromInt(q)).DivRound(decimal.NewFromInt(divisor(m)), costPlaces)
}

// rateScale is the number of fraction digits of a rate in a rate card,
// and so the scale of a scaledRate.
const rateScale = 10

// scaledRate is a rate card's rate in units of 10^-rateScale, for pricing
// in integers.
type scaledRate uint64

// scaleRate returns rate in units of 10^-rateScale, or false if it is
// negative, has more fraction digits or does not fit.
func scaleRate(rate decimal.Decimal) (scaledRate, bool) {
	s := rate.Shift(rateScale)
	if rate.Sign() < 0 || !s.IsInteger() {
		return 0, false
	}
	b := s.BigInt()
	if !b.IsInt64() {
		return 0, false
	}
	return scaledRate(b.Int64()), true
}

// costMicros is Cost in integers, for the rates and quantities a report
// meets: it returns Cost(rate, m, q) in millionths, or false if q is
// negative or the result does not fit an int64. Cost is rate × q /
// divisor rounded half up at 10^-6, so in millionths it is r × q /
// (divisor × 10^(rateScale−6)) rounded half up, with r × q taken in 128
// bits.
func costMicros(r scaledRate, m Meter, q int64) (int64, bool) {
	if q < 0 {
		return 0, false
	}
	const rescale = 10_000 // 10^(rateScale-costPlaces)
	d := uint64(divisor(m)) * rescale
	hi, lo := bits.Mul64(uint64(r), uint64(q))
	if hi >= d {
		return 0, false
	}
	quo, rem := bits.Div64(hi, lo, d)
	if quo >= math.MaxInt64 {
		return 0, false
	}
	if 2*rem >= d {
		quo++
	}
	return int64(quo), true
}
