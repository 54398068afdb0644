package client

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
)

// Paths of the reports and rate cards (docs/tenancy.md).
const (
	reportsPath   = "/v1/reports"
	rateCardsPath = "/v1/rate-cards"
)

// The meters usage is metered by, in the order report rows list them.
// Memory is metered in MiB and priced per GiB-hour, disk in GiB.
const (
	MeterVCPURunning   = "vcpu_running"
	MeterVCPUStopped   = "vcpu_stopped"
	MeterMemoryRunning = "memory_running"
	MeterMemoryStopped = "memory_stopped"
	MeterDisk          = "disk"
	MeterAddresses     = "addresses"
)

// Meters lists the meters in the order report rows list them.
var Meters = []string{MeterVCPURunning, MeterVCPUStopped, MeterMemoryRunning, MeterMemoryStopped, MeterDisk, MeterAddresses}

// The kinds of report ReportCSV reads.
const (
	ReportUsage      = "usage"
	ReportChargeback = "chargeback"
)

// ReportQuery selects a usage or chargeback report. Empty fields take the
// server's defaults: every tenant the token may read, from the start of
// this month to the start of tomorrow (UTC), grouped by tenant.
type ReportQuery struct {
	// Tenant limits the report to one tenant; a tenant token always
	// reads its own.
	Tenant string
	// From and To (exclusive) are dates such as "2026-11-01" or RFC 3339
	// times. Whole days read the daily rollups; otherwise both must be
	// whole hours, at most 93 days apart.
	From, To string
	// GroupBy is a comma-separated list of tenant, project and one of
	// hour, day and month, such as "tenant,project,day".
	GroupBy string
	// Currency selects the rate cards of a chargeback, such as "EUR";
	// a chargeback needs it, a usage report ignores it.
	Currency string
}

// values returns the query parameters of q for a report of kind.
func (q ReportQuery) values(kind string) url.Values {
	v := url.Values{}
	setNonEmpty(v, "tenant", q.Tenant)
	setNonEmpty(v, "from", q.From)
	setNonEmpty(v, "to", q.To)
	setNonEmpty(v, "group_by", q.GroupBy)
	if kind == ReportChargeback {
		setNonEmpty(v, "currency", q.Currency)
	}
	return v
}

// UsageRow is one row of a usage report: the group (columns the report
// is not grouped by are empty), the meter, and the quantity in
// unit-milliseconds and in unit-hours (memory in GiB-hours), a decimal
// string with at most 6 fraction digits.
type UsageRow struct {
	Tenant    string `json:"tenant"`
	Project   string `json:"project"`
	Period    string `json:"period"`
	Meter     string `json:"meter"`
	Quantity  int64  `json:"quantity_unit_ms"`
	UnitHours string `json:"unit_hours"`
}

// UsageReport is metered usage summed per group and meter (GET
// /v1/reports/usage). From and To are RFC 3339; MeteredUntil says how far
// usage has been metered (empty before the first metering tick): later
// usage is not in the report yet.
type UsageReport struct {
	Tenant       string     `json:"tenant,omitempty"`
	From         string     `json:"from"`
	To           string     `json:"to"`
	GroupBy      string     `json:"group_by"`
	MeteredUntil string     `json:"metered_until,omitempty"`
	Rows         []UsageRow `json:"rows"`
}

// ChargeRow is one row of a chargeback report: a usage row priced. Rate is
// the price per unit-hour as the rate card writes it, or "mixed" when the
// row's usage was priced at different rates; Cost is a decimal string.
type ChargeRow struct {
	Tenant    string `json:"tenant"`
	Project   string `json:"project"`
	Period    string `json:"period"`
	Meter     string `json:"meter"`
	Quantity  int64  `json:"quantity_unit_ms"`
	UnitHours string `json:"unit_hours"`
	Rate      string `json:"rate"`
	Cost      string `json:"cost"`
	Currency  string `json:"currency"`
}

// MixedRate is the Rate of a ChargeRow whose usage was priced at
// different rates.
const MixedRate = "mixed"

// ChargebackReport is usage priced with rate cards (GET
// /v1/reports/chargeback). Total is the exact sum of the rows' costs, a
// decimal string.
type ChargebackReport struct {
	Tenant       string      `json:"tenant,omitempty"`
	From         string      `json:"from"`
	To           string      `json:"to"`
	GroupBy      string      `json:"group_by"`
	MeteredUntil string      `json:"metered_until,omitempty"`
	Currency     string      `json:"currency"`
	Rows         []ChargeRow `json:"rows"`
	Total        string      `json:"total"`
}

// UsageReport reads metered usage (GET /v1/reports/usage).
func (c *Client) UsageReport(ctx context.Context, q ReportQuery) (*UsageReport, *Meta, error) {
	return getOne[UsageReport](ctx, c, reportsPath+"/"+ReportUsage, q.values(ReportUsage), nil)
}

// ChargebackReport prices metered usage with the rate cards of
// q.Currency (GET /v1/reports/chargeback). Usage on a day no card of the
// currency covers is a 409 conflict naming the day.
func (c *Client) ChargebackReport(ctx context.Context, q ReportQuery) (*ChargebackReport, *Meta, error) {
	return getOne[ChargebackReport](ctx, c, reportsPath+"/"+ReportChargeback, q.values(ReportChargeback), nil)
}

// ReportCSV reads a report of kind ReportUsage or ReportChargeback as the
// CSV the server writes (format=csv), byte for byte.
func (c *Client) ReportCSV(ctx context.Context, kind string, q ReportQuery) ([]byte, *Meta, error) {
	if kind != ReportUsage && kind != ReportChargeback {
		return nil, nil, fmt.Errorf("client: report kind %q: want %q or %q", kind, ReportUsage, ReportChargeback)
	}
	v := q.values(kind)
	v.Set("format", "csv")
	r := readRequest(reportsPath+"/"+kind, v, nil)
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	m := meta(resp, resp.Request.URL.Scheme+"://"+resp.Request.URL.Host)
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/csv" {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, m, fmt.Errorf("GET %s: %s answered %q, not text/csv", r.path, m.Address, resp.Header.Get("Content-Type"))
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, m, fmt.Errorf("GET %s: read answer from %s: %s", r.path, m.Address, describe(err))
	}
	return b, m, nil
}

// RateCard prices usage in one currency from EffectiveFrom to EffectiveTo
// (dates such as "2026-11-01", UTC; EffectiveTo exclusive, empty when
// open-ended). Rates maps a meter to a decimal price per unit-hour (memory
// per GiB-hour) as a string such as "0.0125"; a meter without a rate is
// free.
type RateCard struct {
	ID            string            `json:"id"`
	Currency      string            `json:"currency"`
	EffectiveFrom string            `json:"effective_from"`
	EffectiveTo   string            `json:"effective_to,omitempty"`
	Rates         map[string]string `json:"rates"`
	CreateIndex   uint64            `json:"create_index"`
	ModifyIndex   uint64            `json:"modify_index"`
	UpdatedAt     Time              `json:"updated_at,omitzero"`
}

// RateCardRequest describes a rate card to create or replace. Cards of one
// currency must not overlap in time; they change at UTC midnight.
type RateCardRequest struct {
	Currency      string            `json:"currency"`
	EffectiveFrom string            `json:"effective_from"`
	EffectiveTo   string            `json:"effective_to,omitempty"`
	Rates         map[string]string `json:"rates"`
}

// RateCardList lists the rate cards by ID (GET /v1/rate-cards).
func (c *Client) RateCardList(ctx context.Context, q *QueryOptions) ([]RateCard, *Meta, error) {
	return getList[RateCard](ctx, c, rateCardsPath, "rate_cards", nil, q)
}

// RateCardGet reads a rate card (GET /v1/rate-cards/{id}).
func (c *Client) RateCardGet(ctx context.Context, id string, q *QueryOptions) (*RateCard, *Meta, error) {
	return getOne[RateCard](ctx, c, itemPath(rateCardsPath, id), nil, q)
}

// RateCardPut creates or replaces a rate card (PUT /v1/rate-cards/{id}).
// A card overlapping another of its currency is a 409 conflict.
func (c *Client) RateCardPut(ctx context.Context, id string, req RateCardRequest, w *WriteOptions) (*RateCard, *Meta, error) {
	if req.Rates == nil {
		req.Rates = map[string]string{}
	}
	return writeOne[RateCard](ctx, c, http.MethodPut, itemPath(rateCardsPath, id), req, w)
}

// RateCardDelete deletes a rate card (DELETE /v1/rate-cards/{id}) and
// returns it as it was.
func (c *Client) RateCardDelete(ctx context.Context, id string, w *WriteOptions) (*RateCard, *Meta, error) {
	return writeOne[RateCard](ctx, c, http.MethodDelete, itemPath(rateCardsPath, id), nil, w)
}
