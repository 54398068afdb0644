package quota

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Bucket is metered usage of one project of one tenant over a span that
// starts at Start, unix milliseconds: an hour (Span HourMillis) or a UTC
// day (Span DayMillis, Start at midnight).
type Bucket struct {
	Tenant  string     `json:"tenant"`
	Project string     `json:"project"`
	Start   int64      `json:"start"`
	Span    int64      `json:"span"`
	Q       Quantities `json:"quantities"`
}

// GroupBy says which columns a report groups usage by besides the meter,
// which is always one. Its zero value groups everything into one row per
// meter; ParseGroupBy builds the others.
type GroupBy struct {
	tenant  bool
	project bool
	period  string // "", "hour", "day" or "month"
}

// ParseGroupBy parses a comma-separated list of tenant, project, hour, day
// and month; the empty string means tenant. Project implies tenant, since
// a project belongs to a tenant. At most one of hour, day and month may be
// given. The error names the field "group_by".
func ParseGroupBy(s string) (GroupBy, error) {
	if strings.TrimSpace(s) == "" {
		return GroupBy{tenant: true}, nil
	}
	var (
		g    GroupBy
		seen = make(map[string]bool)
	)
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if seen[name] {
			return GroupBy{}, fmt.Errorf("%w: group_by: %q is given twice", ErrInvalid, name)
		}
		seen[name] = true
		switch name {
		case "tenant":
			g.tenant = true
		case "project":
			g.tenant, g.project = true, true
		case "hour", "day", "month":
			if g.period != "" {
				return GroupBy{}, fmt.Errorf("%w: group_by: %q and %q are both periods; give at most one", ErrInvalid, g.period, name)
			}
			g.period = name
		default:
			return GroupBy{}, fmt.Errorf("%w: group_by: unknown column %q (any of tenant, project, hour, day, month)", ErrInvalid, name)
		}
	}
	return g, nil
}

// NeedsHours reports whether g groups by hour, which only hourly buckets
// can answer; a daily bucket is reported in the hour it starts.
func (g GroupBy) NeedsHours() bool { return g.period == "hour" }

// String returns g in the form ParseGroupBy reads, columns in the order
// tenant, project, period; the zero GroupBy is "".
func (g GroupBy) String() string {
	var cols []string
	if g.tenant {
		cols = append(cols, "tenant")
	}
	if g.project {
		cols = append(cols, "project")
	}
	if g.period != "" {
		cols = append(cols, g.period)
	}
	return strings.Join(cols, ",")
}

// groupKey is the group of a report row, without the meter.
type groupKey struct {
	tenant, project, period string
}

func compareKeys(a, b groupKey) int {
	return cmp.Or(cmp.Compare(a.tenant, b.tenant), cmp.Compare(a.project, b.project), cmp.Compare(a.period, b.period))
}

// grouper maps buckets to their groups, formatting each period once.
type grouper struct {
	g       GroupBy
	periods map[int64]string // by bucket start
}

func newGrouper(g GroupBy) *grouper {
	return &grouper{g: g, periods: make(map[int64]string)}
}

func (gr *grouper) key(b *Bucket) groupKey {
	var k groupKey
	if gr.g.tenant {
		k.tenant = b.Tenant
	}
	if gr.g.project {
		k.project = b.Project
	}
	if gr.g.period != "" {
		p, ok := gr.periods[b.Start]
		if !ok {
			p = formatPeriod(gr.g.period, b.Start)
			gr.periods[b.Start] = p
		}
		k.period = p
	}
	return k
}

// formatPeriod names the hour ("2026-11-25T13:00Z"), day ("2026-11-25")
// or month ("2026-11") in UTC that holds t, unix milliseconds.
func formatPeriod(period string, t int64) string {
	layout := time.DateOnly
	switch period {
	case "hour":
		layout = "2006-01-02T15:00Z"
	case "month":
		layout = "2006-01"
	}
	return time.UnixMilli(t).UTC().Format(layout)
}

func formatDay(t int64) string { return formatPeriod("day", t) }

// UsageRow is one row of a usage report: the group (columns not grouped
// by are empty), the meter, the quantity in unit-milliseconds and the same
// in the unit-hours rate cards price.
type UsageRow struct {
	Tenant    string          `json:"tenant"`
	Project   string          `json:"project"`
	Period    string          `json:"period"`
	Meter     Meter           `json:"meter"`
	Quantity  int64           `json:"quantity_unit_ms"`
	UnitHours decimal.Decimal `json:"unit_hours"`
}

// Usage groups buckets by g and sums their quantities. It returns a row
// for each group and meter with a nonzero sum, sorted by tenant, project,
// period and then the order of Meters. The caller chooses which buckets
// to pass, such as those of a time range. Quantities are summed in an
// int64, which holds a million units held for 290 years, or MaxRate units
// for 49 days.
func Usage(buckets iter.Seq[Bucket], g GroupBy) []UsageRow {
	gr := newGrouper(g)
	sums := make(map[groupKey]*Quantities)
	for b := range buckets {
		k := gr.key(&b)
		acc, ok := sums[k]
		if !ok {
			acc = new(Quantities)
			sums[k] = acc
		}
		*acc = acc.Add(b.Q)
	}
	var rows []UsageRow
	for _, k := range slices.SortedFunc(maps.Keys(sums), compareKeys) {
		for i, q := range sums[k] {
			if q == 0 {
				continue
			}
			m := Meters[i]
			rows = append(rows, UsageRow{Tenant: k.tenant, Project: k.project, Period: k.period, Meter: m, Quantity: q, UnitHours: UnitHours(m, q)})
		}
	}
	return rows
}

// ErrNoRateCard means usage fell on a day no rate card of the currency
// covers.
var ErrNoRateCard = errors.New("no rate card")

// ChargeRow is one row of a chargeback report: a usage row priced. Rate
// is the price per unit-hour as the rate card writes it, or "mixed" when
// the row combines buckets priced at different rates; Cost is the exact
// sum of the costs of the row's buckets.
type ChargeRow struct {
	Tenant    string          `json:"tenant"`
	Project   string          `json:"project"`
	Period    string          `json:"period"`
	Meter     Meter           `json:"meter"`
	Quantity  int64           `json:"quantity_unit_ms"`
	UnitHours decimal.Decimal `json:"unit_hours"`
	Rate      string          `json:"rate"`
	Cost      decimal.Decimal `json:"cost"`
	Currency  string          `json:"currency"`
}

// MixedRate is the Rate of a ChargeRow whose buckets were priced at
// different rates.
const MixedRate = "mixed"

// pricedCard is a rate card with its rates parsed, by meter index.
type pricedCard struct {
	card   *RateCard
	rates  [NumMeters]decimal.Decimal
	scaled [NumMeters]scaledRate // valid where fast is true
	fast   [NumMeters]bool
	text   [NumMeters]string
}

// costMicros returns the cost of quantity q of meter i in millionths, or
// false if it must be computed with Cost.
func (pc *pricedCard) costMicros(i int, q int64) (int64, bool) {
	if !pc.fast[i] {
		return 0, false
	}
	return costMicros(pc.scaled[i], Meters[i], q)
}

// chargeAcc accumulates one group of a chargeback, by meter index. The
// cost of a meter is cost + micros millionths: bucket costs are summed in
// micros while they fit an int64, and in cost otherwise.
type chargeAcc struct {
	q      Quantities
	micros [NumMeters]int64
	cost   [NumMeters]decimal.Decimal
	rate   [NumMeters]*pricedCard // the card of the first priced bucket
	mixed  [NumMeters]bool
}

// add adds the cost of quantity q of meter i priced with pc.
func (acc *chargeAcc) add(i int, pc *pricedCard, q int64) {
	acc.q[i] += q
	if c, ok := pc.costMicros(i, q); ok {
		if acc.micros[i] > math.MaxInt64-c {
			acc.cost[i] = acc.cost[i].Add(decimal.New(acc.micros[i], -costPlaces))
			acc.micros[i] = 0
		}
		acc.micros[i] += c
	} else {
		acc.cost[i] = acc.cost[i].Add(Cost(pc.rates[i], Meters[i], q))
	}
	switch first := acc.rate[i]; {
	case first == nil:
		acc.rate[i] = pc
	case first != pc && !first.rates[i].Equal(pc.rates[i]):
		acc.mixed[i] = true
	}
}

// total returns the cost of meter i.
func (acc *chargeAcc) total(i int) decimal.Decimal {
	return acc.cost[i].Add(decimal.New(acc.micros[i], -costPlaces))
}

// Chargeback prices buckets with the rate cards of currency and groups
// them by g. Each bucket is priced meter by meter with Cost at the rate of
// the card in effect at its Start (cards change only at UTC midnight, so
// one card covers a whole hourly or daily bucket). Rows are those of Usage
// with their rate and cost; total is the exact sum of the row costs, which
// are the exact sums of the bucket costs, so the report reconciles to the
// last digit.
//
// Invalid cards or currency are an ErrInvalid error; a bucket with usage
// on a day no card covers is an ErrNoRateCard error naming the day, as in
// "no rate card for EUR on 2026-11-03".
func Chargeback(buckets iter.Seq[Bucket], cards []RateCard, currency string, g GroupBy) (rows []ChargeRow, total decimal.Decimal, err error) {
	if !currencyRE.MatchString(currency) {
		return nil, decimal.Zero, fmt.Errorf("%w: currency: %q is not three upper-case letters", ErrInvalid, currency)
	}
	if err := ValidateCards(cards); err != nil {
		return nil, decimal.Zero, err
	}
	var priced []*pricedCard
	for i := range cards {
		if cards[i].Currency == currency {
			priced = append(priced, priceCard(&cards[i]))
		}
	}

	gr := newGrouper(g)
	groups := make(map[groupKey]*chargeAcc)
	var last *pricedCard
	for b := range buckets {
		if b.Q.IsZero() {
			continue
		}
		if last == nil || !last.card.covers(b.Start) {
			last = nil
			for _, pc := range priced {
				if pc.card.covers(b.Start) {
					last = pc
					break
				}
			}
			if last == nil {
				return nil, decimal.Zero, fmt.Errorf("%w for %s on %s", ErrNoRateCard, currency, formatDay(b.Start))
			}
		}
		k := gr.key(&b)
		acc, ok := groups[k]
		if !ok {
			acc = new(chargeAcc)
			groups[k] = acc
		}
		for i, q := range b.Q {
			if q == 0 {
				continue
			}
			acc.add(i, last, q)
		}
	}

	for _, k := range slices.SortedFunc(maps.Keys(groups), compareKeys) {
		acc := groups[k]
		for i, q := range acc.q {
			if q == 0 {
				continue
			}
			m := Meters[i]
			rate := acc.rate[i].text[i]
			if acc.mixed[i] {
				rate = MixedRate
			}
			cost := acc.total(i)
			rows = append(rows, ChargeRow{
				Tenant: k.tenant, Project: k.project, Period: k.period, Meter: m,
				Quantity: q, UnitHours: UnitHours(m, q), Rate: rate, Cost: cost, Currency: currency,
			})
			total = total.Add(cost)
		}
	}
	return rows, total, nil
}

// priceCard parses the rates of a card ValidateCards accepted; a meter
// without a rate is priced "0".
func priceCard(c *RateCard) *pricedCard {
	pc := &pricedCard{card: c}
	for i, m := range Meters {
		text, ok := c.Rates[m]
		if !ok {
			text = "0"
		}
		pc.text[i] = text
		pc.rates[i] = decimal.RequireFromString(text) // validated
		pc.scaled[i], pc.fast[i] = scaleRate(pc.rates[i])
	}
	return pc
}

// WriteUsageCSV writes rows as CSV with the header
// tenant,project,period,meter,quantity_unit_ms,unit_hours; unit-hours have
// 6 fraction digits.
func WriteUsageCSV(w io.Writer, rows []UsageRow) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"tenant", "project", "period", "meter", "quantity_unit_ms", "unit_hours"}); err != nil {
		return err
	}
	for _, r := range rows {
		rec := []string{r.Tenant, r.Project, r.Period, string(r.Meter), strconv.FormatInt(r.Quantity, 10), r.UnitHours.StringFixed(costPlaces)}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteChargebackCSV writes rows as CSV with the header
// tenant,project,period,meter,unit_hours,rate,cost,currency and a last
// line TOTAL,,,,,,<total>,<currency>; unit-hours and costs have 6
// fraction digits.
func WriteChargebackCSV(w io.Writer, rows []ChargeRow, total decimal.Decimal, currency string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"tenant", "project", "period", "meter", "unit_hours", "rate", "cost", "currency"}); err != nil {
		return err
	}
	for _, r := range rows {
		rec := []string{r.Tenant, r.Project, r.Period, string(r.Meter), r.UnitHours.StringFixed(costPlaces), r.Rate, r.Cost.StringFixed(costPlaces), r.Currency}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	if err := cw.Write([]string{"TOTAL", "", "", "", "", "", total.StringFixed(costPlaces), currency}); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}
