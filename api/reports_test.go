package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/auth"
	"github.com/moxxie/moxxie/fsm"
)

// meterWorld is the tenant world metered for two hours from 10:00 UTC on
// 2026-11-25: acme and globex each hold two stopped guests (2 vCPUs, 2 GiB
// of memory and 10 GiB of disk each) and one address.
func meterWorld(t *testing.T) *tenantWorld {
	t.Helper()
	w := newTenantWorld(t)
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, d := range []time.Duration{0, 2 * time.Hour} {
		cmd := &fsm.MeterTickRequest{WriteMeta: fsm.WriteMeta{Now: t0.Add(d).UnixNano()}}
		if res, _, err := w.b.Apply(t.Context(), cmd); err != nil || res.Err != nil {
			t.Fatalf("meter tick: %v %v", err, res.Err)
		}
	}
	wantStatus(t, w.do("PUT", "/v1/rate-cards/eur-2026", `{"currency":"EUR","effective_from":"2026-01-01","effective_to":"2027-01-01",
		"rates":{"vcpu_stopped":"0.01","memory_stopped":"0.002","disk":"0.0001","addresses":"0.005"}}`), 200)
	return w
}

func TestReports_Chargeback(t *testing.T) {
	w := meterWorld(t)
	// Per tenant, over two hours: 8 vCPU-hours at 0.01, 8 GiB-hours of
	// memory at 0.002, 40 GiB-hours of disk at 0.0001 and 2 address-hours
	// at 0.005: 0.08 + 0.016 + 0.004 + 0.01 = 0.11 EUR.
	want := `tenant,project,period,meter,unit_hours,rate,cost,currency
acme,,2026-11-25,vcpu_stopped,8.000000,0.01,0.080000,EUR
acme,,2026-11-25,memory_stopped,8.000000,0.002,0.016000,EUR
acme,,2026-11-25,disk,40.000000,0.0001,0.004000,EUR
acme,,2026-11-25,addresses,2.000000,0.005,0.010000,EUR
TOTAL,,,,,,0.110000,EUR
`
	viewer := w.as(auth.RoleTenantViewer, "acme")
	rec := w.do("GET", "/v1/reports/chargeback?from=2026-11-25&to=2026-11-26&group_by=tenant,day&currency=EUR&format=csv", "", viewer...)
	if got := string(wantStatus(t, rec, 200)); got != want {
		t.Fatalf("chargeback CSV:\n%s\nwant:\n%s", got, want)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Errorf("Content-Type %q", ct)
	}
	// The admin's report holds both tenants, and the hourly buckets add up
	// to the same total.
	var all ChargebackReport
	mustJSON(t, wantStatus(t, w.do("GET", "/v1/reports/chargeback?from=2026-11-25T00:00:00Z&to=2026-11-26T00:00:00Z&group_by=tenant,hour&currency=EUR", ""), 200), &all)
	if all.Total.String() != "0.22" || len(all.Rows) != 16 {
		t.Fatalf("admin chargeback: total %s, %d rows", all.Total, len(all.Rows))
	}
	if all.MeteredUntil != "2026-11-25T12:00:00Z" {
		t.Errorf("metered until %q", all.MeteredUntil)
	}
	// A tenant token cannot read another tenant's report.
	wantError(t, w.do("GET", "/v1/reports/chargeback?tenant=globex&currency=EUR&from=2026-11-25&to=2026-11-26", "", viewer...), 403, CodeForbidden, "tenant")
}

func TestReports_Usage(t *testing.T) {
	w := meterWorld(t)
	var r UsageReport
	mustJSON(t, wantStatus(t, w.do("GET", "/v1/reports/usage?from=2026-11-01&to=2026-12-01&group_by=tenant,month", "", w.as(auth.RoleTenantAdmin, "acme")...), 200), &r)
	if r.Tenant != "acme" || len(r.Rows) != 4 {
		t.Fatalf("usage report %+v", r)
	}
	for _, row := range r.Rows {
		if row.Tenant != "acme" || row.Period != "2026-11" {
			t.Errorf("row %+v", row)
		}
	}
	if got := r.Rows[0]; got.Meter != "vcpu_stopped" || got.Quantity != 4*2*3_600_000 || got.UnitHours.String() != "8" {
		t.Errorf("first row %+v", got)
	}
}

func TestReports_BadInput(t *testing.T) {
	w := meterWorld(t)
	for _, tc := range []struct {
		query, field string
		status       int
	}{
		{"from=yesterday", "from", http.StatusBadRequest},
		{"from=2026-11-25&to=2026-11-24", "to", http.StatusBadRequest},
		{"from=2026-11-25T10:30:00Z&to=2026-11-26", "from", http.StatusBadRequest},
		{"group_by=colour", "group_by", http.StatusBadRequest},
		{"format=xml", "format", http.StatusBadRequest},
		{"tenant=Acme!", "tenant", http.StatusBadRequest},
	} {
		wantError(t, w.do("GET", "/v1/reports/usage?"+tc.query, ""), tc.status, CodeInvalidRequest, tc.field)
	}
	wantError(t, w.do("GET", "/v1/reports/chargeback?from=2026-11-25&to=2026-11-26", ""), 400, CodeInvalidRequest, "currency")
	wantError(t, w.do("GET", "/v1/reports/chargeback?currency=USD&from=2026-11-25&to=2026-11-26", ""), 400, CodeInvalidRequest, "currency")
	// Usage in a day no card covers cannot be priced.
	wantStatus(t, w.do("PUT", "/v1/rate-cards/eur-2026", `{"currency":"EUR","effective_from":"2026-11-26","rates":{}}`), 200)
	wantError(t, w.do("GET", "/v1/reports/chargeback?currency=EUR&from=2026-11-25&to=2026-11-26", ""), 409, CodeConflict, "from")
	// Rate cards: bad rates and overlapping cards.
	wantError(t, w.do("PUT", "/v1/rate-cards/x", `{"currency":"EUR","effective_from":"2026-01-01","rates":{"disk":"-1"}}`), 400, CodeInvalidRequest, "rate_card")
	wantError(t, w.do("PUT", "/v1/rate-cards/x", `{"currency":"EUR","effective_from":"2026-1-1","rates":{}}`), 400, CodeInvalidRequest, "effective_from")
	wantError(t, w.do("PUT", "/v1/rate-cards/other", `{"currency":"EUR","effective_from":"2026-12-01","rates":{}}`), 409, CodeConflict, "rate_card")
}
