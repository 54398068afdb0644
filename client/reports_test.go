package client

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Answers in the shapes of api/handlers_reports.go; decimals are JSON
// strings, as shopspring/decimal writes them.
const (
	testUsageJSON = `{"tenant": "acme", "from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z", "group_by": "tenant,day",
		"metered_until": "2026-11-25T12:00:00Z", "rows": [
		{"tenant": "acme", "project": "", "period": "2026-11-25", "meter": "vcpu_stopped", "quantity_unit_ms": 28800000, "unit_hours": "8"},
		{"tenant": "acme", "project": "", "period": "2026-11-25", "meter": "memory_stopped", "quantity_unit_ms": 29491200000, "unit_hours": "8.000000123456"}]}`
	testChargebackJSON = `{"from": "2026-11-25T00:00:00Z", "to": "2026-11-26T00:00:00Z", "group_by": "tenant", "currency": "EUR", "rows": [
		{"tenant": "acme", "project": "", "period": "", "meter": "vcpu_stopped", "quantity_unit_ms": 28800000, "unit_hours": "8", "rate": "0.01", "cost": "0.08", "currency": "EUR"},
		{"tenant": "acme", "project": "", "period": "", "meter": "disk", "quantity_unit_ms": 144000000000, "unit_hours": "40", "rate": "mixed", "cost": "0.000000000000000001", "currency": "EUR"}],
		"total": "0.080000000000000001"}`
	testCSV       = "tenant,project,period,meter,unit_hours,rate,cost,currency\r\n\"a,b\",,,disk,1.000000,0.01,0.010000,EUR\nTOTAL,,,,,,0.010000,EUR"
	testRateCard  = `{"id": "eur-2026", "currency": "EUR", "effective_from": "2026-01-01", "effective_to": "2027-01-01", "rates": {"vcpu_running": "0.02", "disk": "0.0001"}, "create_index": 5, "modify_index": 6, "updated_at": 1764000000000000000}`
	testOpenEnded = `{"id": "usd", "currency": "USD", "effective_from": "2026-01-01", "rates": {}, "create_index": 7, "modify_index": 7, "updated_at": "2026-11-25T10:00:00Z"}`
)

func reportsFake(t *testing.T) *fake {
	raw := func(body string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(body))
		}
	}
	routes := map[string]func(w http.ResponseWriter){
		"GET /v1/reports/usage":          raw(testUsageJSON),
		"GET /v1/reports/chargeback":     raw(testChargebackJSON),
		"GET /v1/rate-cards":             raw(`{"rate_cards": [` + testRateCard + `, ` + testOpenEnded + `]}`),
		"GET /v1/rate-cards/eur-2026":    raw(testRateCard),
		"PUT /v1/rate-cards/eur-2026":    raw(testRateCard),
		"DELETE /v1/rate-cards/eur-2026": raw(testRateCard),
	}
	return newFake(t, func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.EscapedPath()
		q := r.URL.Query()
		switch {
		case q.Get("format") == "csv" && q.Get("from") == "2026-11-03":
			writeJSON(w, 409, map[string]any{"error": map[string]any{"code": "conflict", "field": "from", "request_id": "req-3",
				"message": "no rate card for EUR on 2026-11-03"}})
		case q.Get("format") == "csv" && q.Get("tenant") == "html":
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>proxy</html>"))
		case q.Get("format") == "csv":
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			_, _ = w.Write([]byte(testCSV))
		case routes[key] != nil:
			routes[key](w)
		default:
			writeErr(w, 404, "not_found", "no route "+key, "")
		}
	})
}

func TestReports_Requests(t *testing.T) {
	f := reportsFake(t)
	c := f.client(t, Config{})
	ctx := context.Background()
	full := ReportQuery{Tenant: "acme", From: "2026-11-01", To: "2026-12-01T00:00:00Z", GroupBy: "tenant,project,day", Currency: "EUR"}

	runRequestCases(t, f, []requestCase{
		{"usage", func() (any, error) { v, _, err := c.UsageReport(ctx, full); return v, err },
			// A usage report takes no currency.
			"GET /v1/reports/usage?from=2026-11-01&group_by=tenant%2Cproject%2Cday&tenant=acme&to=2026-12-01T00%3A00%3A00Z", "",
			func(t *testing.T, v any) {
				r := v.(*UsageReport)
				if r.Tenant != "acme" || r.GroupBy != "tenant,day" || r.MeteredUntil != "2026-11-25T12:00:00Z" || len(r.Rows) != 2 {
					t.Fatalf("%+v", r)
				}
				want := UsageRow{Tenant: "acme", Period: "2026-11-25", Meter: MeterMemoryStopped, Quantity: 29491200000, UnitHours: "8.000000123456"}
				if r.Rows[1] != want {
					t.Errorf("row %+v, want %+v", r.Rows[1], want)
				}
			}},
		{"usage defaults", func() (any, error) { v, _, err := c.UsageReport(ctx, ReportQuery{}); return v, err },
			"GET /v1/reports/usage", "", nil},
		{"chargeback", func() (any, error) { v, _, err := c.ChargebackReport(ctx, full); return v, err },
			"GET /v1/reports/chargeback?currency=EUR&from=2026-11-01&group_by=tenant%2Cproject%2Cday&tenant=acme&to=2026-12-01T00%3A00%3A00Z", "",
			func(t *testing.T, v any) {
				// Decimals stay the strings the server wrote, every digit kept.
				r := v.(*ChargebackReport)
				if r.Currency != "EUR" || r.Total != "0.080000000000000001" || r.MeteredUntil != "" || len(r.Rows) != 2 {
					t.Fatalf("%+v", r)
				}
				want := ChargeRow{Tenant: "acme", Meter: MeterDisk, Quantity: 144000000000, UnitHours: "40", Rate: MixedRate, Cost: "0.000000000000000001", Currency: "EUR"}
				if r.Rows[1] != want {
					t.Errorf("row %+v, want %+v", r.Rows[1], want)
				}
			}},
		{"chargeback csv", func() (any, error) { v, _, err := c.ReportCSV(ctx, ReportChargeback, full); return v, err },
			"GET /v1/reports/chargeback?currency=EUR&format=csv&from=2026-11-01&group_by=tenant%2Cproject%2Cday&tenant=acme&to=2026-12-01T00%3A00%3A00Z", "",
			func(t *testing.T, v any) {
				if got := string(v.([]byte)); got != testCSV {
					t.Errorf("CSV %q, want %q", got, testCSV)
				}
			}},
		{"usage csv", func() (any, error) {
			v, _, err := c.ReportCSV(ctx, ReportUsage, ReportQuery{Currency: "EUR"})
			return v, err
		},
			"GET /v1/reports/usage?format=csv", "", nil},
		{"rate card list", func() (any, error) { v, _, err := c.RateCardList(ctx, &QueryOptions{Stale: true}); return v, err },
			"GET /v1/rate-cards?stale=true", "", func(t *testing.T, v any) {
				l := v.([]RateCard)
				if len(l) != 2 {
					t.Fatalf("%+v", l)
				}
				rc := l[0]
				if rc.ID != "eur-2026" || rc.Currency != "EUR" || rc.EffectiveFrom != "2026-01-01" || rc.EffectiveTo != "2027-01-01" ||
					rc.Rates[MeterVCPURunning] != "0.02" || rc.Rates[MeterDisk] != "0.0001" || len(rc.Rates) != 2 || rc.ModifyIndex != 6 ||
					rc.UpdatedAt.UTC().Format("2006-01-02") != "2025-11-24" {
					t.Errorf("%+v", rc)
				}
				if l[1].EffectiveTo != "" || l[1].UpdatedAt.IsZero() {
					t.Errorf("open-ended %+v", l[1])
				}
			}},
		{"rate card get", func() (any, error) { v, _, err := c.RateCardGet(ctx, "eur-2026", nil); return v, err },
			"GET /v1/rate-cards/eur-2026", "", nil},
		{"rate card put", func() (any, error) {
			v, _, err := c.RateCardPut(ctx, "eur-2026", RateCardRequest{Currency: "EUR", EffectiveFrom: "2026-01-01", EffectiveTo: "2027-01-01",
				Rates: map[string]string{MeterVCPURunning: "0.02", MeterDisk: "0.0001"}}, nil)
			return v, err
		}, "PUT /v1/rate-cards/eur-2026", `{"currency": "EUR", "effective_from": "2026-01-01", "effective_to": "2027-01-01",
			"rates": {"vcpu_running": "0.02", "disk": "0.0001"}}`, nil},
		{"rate card put open-ended and free", func() (any, error) {
			v, _, err := c.RateCardPut(ctx, "eur-2026", RateCardRequest{Currency: "EUR", EffectiveFrom: "2026-01-01"}, nil)
			return v, err
		}, "PUT /v1/rate-cards/eur-2026", `{"currency": "EUR", "effective_from": "2026-01-01", "rates": {}}`, nil},
		{"rate card delete", func() (any, error) { v, _, err := c.RateCardDelete(ctx, "eur-2026", nil); return v, err },
			"DELETE /v1/rate-cards/eur-2026", "", nil},
	})
}

func TestReports_CSVErrors(t *testing.T) {
	f := reportsFake(t)
	c := f.client(t, Config{})
	ctx := context.Background()

	// An error answer is an *APIError, whatever format was asked for.
	_, _, err := c.ReportCSV(ctx, ReportChargeback, ReportQuery{From: "2026-11-03", Currency: "EUR"})
	if StatusCode(err) != 409 || err.Error() != "409 conflict: no rate card for EUR on 2026-11-03 (field from, request req-3)" {
		t.Errorf("no rate card: %v", err)
	}
	// Something that is not CSV is not returned as if it were.
	b, _, err := c.ReportCSV(ctx, ReportUsage, ReportQuery{Tenant: "html"})
	if err == nil || b != nil || !strings.Contains(err.Error(), `answered "text/html", not text/csv`) {
		t.Errorf("html: %q, %v", b, err)
	}
	n := len(f.requests())
	if _, _, err := c.ReportCSV(ctx, "invoice", ReportQuery{}); err == nil || !strings.Contains(err.Error(), `report kind "invoice"`) {
		t.Errorf("bad kind: %v", err)
	}
	if len(f.requests()) != n {
		t.Errorf("a bad kind was sent")
	}
}

// TestReports_RoundTrip checks that a report encodes as the API wrote it,
// which is what moxxiectl prints with -o json.
func TestReports_RoundTrip(t *testing.T) {
	for _, tt := range []struct {
		in string
		v  any
	}{{testUsageJSON, new(UsageReport)}, {testChargebackJSON, new(ChargebackReport)}} {
		if err := json.Unmarshal([]byte(tt.in), tt.v); err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(tt.v)
		if err != nil {
			t.Fatal(err)
		}
		checkBody(t, out, tt.in)
	}
}
