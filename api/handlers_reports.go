package api

import (
	"bytes"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/auth"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/quota"
	"github.com/shopspring/decimal"
)

// reportRoutes are the usage and chargeback reports and the rate cards
// that price them. Tenant tokens read their own tenant's reports.
var reportRoutes = []route{
	{Route{http.MethodGet, "/v1/reports/usage", KindRead, auth.PermReportRead, auth.ScopeTenant}, bodyNone, (*server).handleUsageReport},
	{Route{http.MethodGet, "/v1/reports/chargeback", KindRead, auth.PermReportRead, auth.ScopeTenant}, bodyNone, (*server).handleChargebackReport},
	{Route{http.MethodGet, "/v1/rate-cards", KindRead, auth.PermReportRead, auth.ScopeTenant}, bodyNone, (*server).handleRateCardList},
	{Route{http.MethodGet, "/v1/rate-cards/{id}", KindRead, auth.PermReportRead, auth.ScopeTenant}, bodyNone, (*server).handleRateCardGet},
	{Route{http.MethodPut, "/v1/rate-cards/{id}", KindWrite, auth.PermBillingWrite, auth.ScopeCluster}, bodyJSON, (*server).handleRateCardPut},
	{Route{http.MethodDelete, "/v1/rate-cards/{id}", KindWrite, auth.PermBillingWrite, auth.ScopeCluster}, bodyNone, (*server).handleRateCardDelete},
}

// dateLayout is how dates of rate cards and report bounds are written.
const dateLayout = "2006-01-02"

// UsageReport is the body of GET /v1/reports/usage.
type UsageReport struct {
	Tenant  string `json:"tenant,omitempty"`
	From    string `json:"from"`
	To      string `json:"to"`
	GroupBy string `json:"group_by"`
	// MeteredUntil is how far usage has been metered: later usage is not
	// in the report yet.
	MeteredUntil string           `json:"metered_until,omitempty"`
	Rows         []quota.UsageRow `json:"rows"`
}

// ChargebackReport is the body of GET /v1/reports/chargeback. Costs are
// decimal strings; Total is the exact sum of the rows' costs.
type ChargebackReport struct {
	Tenant       string            `json:"tenant,omitempty"`
	From         string            `json:"from"`
	To           string            `json:"to"`
	GroupBy      string            `json:"group_by"`
	MeteredUntil string            `json:"metered_until,omitempty"`
	Currency     string            `json:"currency"`
	Rows         []quota.ChargeRow `json:"rows"`
	Total        decimal.Decimal   `json:"total"`
}

// reportQuery is a report's parsed query: the tenant (forced to a tenant
// token's own), the time range, the grouping, the span of the buckets
// read and the format.
type reportQuery struct {
	tenant   string
	from, to time.Time
	group    quota.GroupBy
	span     int64
	csv      bool
}

// parseReportQuery reads tenant, from, to (RFC 3339 or a date; default
// the start of this month to the start of tomorrow, UTC), group_by and
// format (json or csv). Whole-day ranges read the daily rollups; a range
// or grouping by hour reads the hourly buckets and must be whole hours.
func (s *server) parseReportQuery(c *call) (*reportQuery, error) {
	q := c.r.URL.Query()
	var rq reportQuery
	var err error
	if rq.tenant, err = forTenant(c, q.Get("tenant"), "tenant"); err != nil {
		return nil, err
	}
	if rq.tenant != "" && !fsm.ValidName(rq.tenant) {
		return nil, invalid("tenant", "tenant %q must be 1-63 lower-case letters, digits, '-', '_' or '.'", rq.tenant)
	}
	now := s.b.Now().UTC()
	day := now.Truncate(24 * time.Hour)
	rq.from = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	rq.to = day.Add(24 * time.Hour)
	for _, b := range []struct {
		name string
		dst  *time.Time
	}{{"from", &rq.from}, {"to", &rq.to}} {
		v := q.Get(b.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			if t, err = time.Parse(dateLayout, v); err != nil {
				return nil, invalid(b.name, "must be a date (2026-11-01) or an RFC 3339 time, not %q", v)
			}
		}
		*b.dst = t.UTC()
	}
	if !rq.to.After(rq.from) {
		return nil, invalid("to", "must be after from (%s)", rq.from.Format(time.RFC3339))
	}
	if rq.to.Sub(rq.from) > 3*366*24*time.Hour {
		return nil, invalid("to", "a report covers at most three years")
	}
	if rq.group, err = quota.ParseGroupBy(q.Get("group_by")); err != nil {
		return nil, invalid("group_by", "%v", err)
	}
	rq.span = quota.DayMillis
	whole := func(t time.Time, d time.Duration) bool { return t.Truncate(d).Equal(t) }
	if rq.group.NeedsHours() || !whole(rq.from, 24*time.Hour) || !whole(rq.to, 24*time.Hour) {
		rq.span = quota.HourMillis
		for _, b := range []struct {
			name string
			t    time.Time
		}{{"from", rq.from}, {"to", rq.to}} {
			if !whole(b.t, time.Hour) {
				return nil, invalid(b.name, "usage is metered by the hour: %s must be a whole hour", b.t.Format(time.RFC3339))
			}
		}
		if rq.to.Sub(rq.from) > 93*24*time.Hour {
			return nil, invalid("to", "an hourly report covers at most 93 days; group by day or month for longer ranges")
		}
	}
	switch f := q.Get("format"); f {
	case "", "json":
	case "csv":
		rq.csv = true
	default:
		return nil, invalid("format", "must be json or csv, not %q", f)
	}
	return &rq, nil
}

// buckets reads the buckets of the report's range from st, and how far
// usage was metered, formatted ("" before the first tick).
func (rq *reportQuery) buckets(st *fsm.Store) (uint64, []quota.Bucket, string, error) {
	var out []quota.Bucket
	idx, until, err := st.MeterBuckets(rq.tenant, rq.span, rq.from.UnixMilli(), rq.to.UnixMilli(), func(b *quota.Bucket) {
		out = append(out, *b)
	})
	metered := ""
	if until > 0 {
		metered = time.UnixMilli(until).UTC().Format(time.RFC3339Nano)
	}
	return idx, out, metered, err
}

// writeCSV answers with a CSV body.
func writeCSV(c *call, name string, body []byte) {
	c.w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	c.w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	c.w.WriteHeader(http.StatusOK)
	_, _ = c.w.Write(body)
}

func (s *server) handleUsageReport(c *call) error {
	rq, err := s.parseReportQuery(c)
	if err != nil {
		return err
	}
	idx, bs, metered, err := rq.buckets(s.b.State())
	if err != nil {
		return err
	}
	rows := quota.Usage(slices.Values(bs), rq.group)
	c.setIndex(idx)
	if rq.csv {
		var b bytes.Buffer
		if err := quota.WriteUsageCSV(&b, rows); err != nil {
			return err
		}
		writeCSV(c, "moxxie-usage.csv", b.Bytes())
		return nil
	}
	if rows == nil {
		rows = []quota.UsageRow{}
	}
	writeJSON(c.w, http.StatusOK, UsageReport{
		Tenant: rq.tenant, From: rq.from.Format(time.RFC3339), To: rq.to.Format(time.RFC3339), GroupBy: rq.group.String(),
		MeteredUntil: metered, Rows: rows,
	})
	return nil
}

func (s *server) handleChargebackReport(c *call) error {
	rq, err := s.parseReportQuery(c)
	if err != nil {
		return err
	}
	currency := c.r.URL.Query().Get("currency")
	if currency == "" {
		return invalid("currency", "is required, such as EUR")
	}
	st := s.b.State()
	_, cards, err := st.RateCards(nil)
	if err != nil {
		return err
	}
	plain := make([]quota.RateCard, len(cards))
	for i, rc := range cards {
		plain[i] = rc.RateCard
	}
	if !hasCurrency(plain, currency) {
		return invalid("currency", "no rate card is in %s", currency)
	}
	idx, bs, metered, err := rq.buckets(st)
	if err != nil {
		return err
	}
	rows, total, err := quota.Chargeback(slices.Values(bs), plain, currency, rq.group)
	if errors.Is(err, quota.ErrNoRateCard) {
		return &apiError{status: http.StatusConflict, code: CodeConflict, field: "from", message: err.Error()}
	} else if err != nil {
		return err
	}
	c.setIndex(idx)
	if rq.csv {
		var b bytes.Buffer
		if err := quota.WriteChargebackCSV(&b, rows, total, currency); err != nil {
			return err
		}
		writeCSV(c, "moxxie-chargeback.csv", b.Bytes())
		return nil
	}
	if rows == nil {
		rows = []quota.ChargeRow{}
	}
	writeJSON(c.w, http.StatusOK, ChargebackReport{
		Tenant: rq.tenant, From: rq.from.Format(time.RFC3339), To: rq.to.Format(time.RFC3339), GroupBy: rq.group.String(),
		MeteredUntil: metered, Currency: currency, Rows: rows, Total: total,
	})
	return nil
}

func hasCurrency(cards []quota.RateCard, currency string) bool {
	for _, c := range cards {
		if c.Currency == currency {
			return true
		}
	}
	return false
}

// RateCardRequest is the body of PUT /v1/rate-cards/{id}: prices per
// unit-hour (memory per GiB-hour) as decimal strings, valid from a date
// to a date (exclusive; empty for open-ended), UTC.
type RateCardRequest struct {
	Currency      string                 `json:"currency"`
	EffectiveFrom string                 `json:"effective_from"`
	EffectiveTo   string                 `json:"effective_to"`
	Rates         map[quota.Meter]string `json:"rates"`
}

// RateCardView is a rate card as the API shows it, with dates.
type RateCardView struct {
	ID            string                 `json:"id"`
	Currency      string                 `json:"currency"`
	EffectiveFrom string                 `json:"effective_from"`
	EffectiveTo   string                 `json:"effective_to,omitempty"`
	Rates         map[quota.Meter]string `json:"rates"`
	CreateIndex   uint64                 `json:"create_index"`
	ModifyIndex   uint64                 `json:"modify_index"`
	UpdatedAt     fsm.Timestamp          `json:"updated_at"`
}

// RateCardList is the body of GET /v1/rate-cards.
type RateCardList struct {
	RateCards []RateCardView `json:"rate_cards"`
}

func rateCardView(rc *fsm.RateCard) RateCardView {
	v := RateCardView{
		ID: rc.ID, Currency: rc.Currency, EffectiveFrom: time.UnixMilli(rc.EffectiveFrom).UTC().Format(dateLayout),
		Rates: rc.Rates, CreateIndex: rc.CreateIndex, ModifyIndex: rc.ModifyIndex, UpdatedAt: rc.UpdatedAt,
	}
	if rc.EffectiveTo != 0 {
		v.EffectiveTo = time.UnixMilli(rc.EffectiveTo).UTC().Format(dateLayout)
	}
	return v
}

func rateCardID(c *call) (string, error) {
	id := c.r.PathValue("id")
	if !fsm.ValidName(id) {
		return "", invalid("id", "rate card id %q must be 1-63 lower-case letters, digits, '-', '_' or '.'", id)
	}
	return id, nil
}

func (s *server) handleRateCardList(c *call) error {
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.RateCard, error) {
		return st.RateCards(ws)
	}, func(l []*fsm.RateCard) any {
		out := RateCardList{RateCards: make([]RateCardView, len(l))}
		for i, rc := range l {
			out.RateCards[i] = rateCardView(rc)
		}
		return out
	})
}

func (s *server) handleRateCardGet(c *call) error {
	id, err := rateCardID(c)
	if err != nil {
		return err
	}
	var rc *fsm.RateCard
	idx, err := s.blockingQuery(c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, error) {
		idx, v, err := st.RateCard(ws, id)
		rc = v
		return idx, err
	})
	if err != nil {
		return err
	}
	c.setIndex(idx)
	if rc == nil {
		return notFoundError("id", "rate card", id)
	}
	writeJSON(c.w, http.StatusOK, rateCardView(rc))
	return nil
}

func (s *server) handleRateCardPut(c *call) error {
	id, err := rateCardID(c)
	if err != nil {
		return err
	}
	var req RateCardRequest
	if err := decodeJSON(c.body, &req, true); err != nil {
		return err
	}
	card := quota.RateCard{ID: id, Currency: req.Currency, Rates: req.Rates}
	from, err := time.Parse(dateLayout, req.EffectiveFrom)
	if err != nil {
		return invalid("effective_from", "must be a date such as 2026-11-01, not %q", req.EffectiveFrom)
	}
	card.EffectiveFrom = from.UnixMilli()
	if req.EffectiveTo != "" {
		to, err := time.Parse(dateLayout, req.EffectiveTo)
		if err != nil {
			return invalid("effective_to", "must be a date such as 2026-12-01, not %q", req.EffectiveTo)
		}
		card.EffectiveTo = to.UnixMilli()
	}
	if err := card.Validate(); err != nil {
		return invalid("rate_card", "%v", err)
	}
	cmd := &fsm.RateCardPutRequest{Card: fsm.RateCard{RateCard: card}}
	return s.propose(c, cmd, http.StatusOK, renderRateCard)
}

// renderRateCard shows a written rate card.
func renderRateCard(v any) (any, error) {
	rc, err := resultOf[fsm.RateCard](v)
	if err != nil {
		return nil, err
	}
	return rateCardView(rc), nil
}

func (s *server) handleRateCardDelete(c *call) error {
	id, err := rateCardID(c)
	if err != nil {
		return err
	}
	return s.propose(c, &fsm.RateCardDeleteRequest{ID: id}, http.StatusOK, renderRateCard)
}
