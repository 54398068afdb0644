package api

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/moxxie/moxxie/fsm"
)

// BenchmarkReport1000Tenants90Days measures the usage and chargeback
// reports over 1,000 tenants and 90 days (daily rollups of every meter)
// through the API handler: the target is under 500 ms.
func BenchmarkReport1000Tenants90Days(b *testing.B) {
	ts := newTestServer(b, newFakeBackend("s1", fsm.New(), true), Options{})
	ts.bootstrap()
	apply := func(cmd fsm.Command) {
		if res, _, err := ts.b.Apply(b.Context(), cmd); err != nil || res.Err != nil {
			b.Fatalf("%T: %v %v", cmd, err, res.Err)
		}
	}
	// One running and one stopped guest, and addresses, per tenant.
	var guests []fsm.InvGuest
	for i := range 1000 {
		tenant := fmt.Sprintf("t%04d", i)
		for j, status := range []string{"running", "stopped"} {
			guests = append(guests, fsm.InvGuest{VMID: 1000 + 2*i + j, Kind: fsm.GuestKindVM, Node: "pve1", Status: status,
				Tenant: tenant, MaxCPU: 2, MaxMem: 4 << 30, MaxDisk: 32 << 30})
		}
	}
	apply(&fsm.InventorySyncRequest{Nodes: []fsm.InvNode{{Name: "pve1", Status: "online"}}, Guests: guests})
	apply(&fsm.PrefixCreateRequest{Prefix: fsm.Prefix{ID: "p", Prefix: "10.0.0.0/16", VRF: "global", Status: fsm.PrefixActive}})
	for i := range 1000 {
		apply(&fsm.AddressAllocateRequest{PrefixID: "p", Count: 3, IDs: []string{fmt.Sprintf("a%d-0", i), fmt.Sprintf("a%d-1", i), fmt.Sprintf("a%d-2", i)},
			Tenant: fmt.Sprintf("t%04d", i), Status: fsm.AddressActive})
	}
	start := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	for d := range 91 {
		apply(&fsm.MeterTickRequest{WriteMeta: fsm.WriteMeta{Now: start.Add(time.Duration(d) * 24 * time.Hour).UnixNano()}})
	}
	if code := ts.do("PUT", "/v1/rate-cards/eur", `{"currency":"EUR","effective_from":"2026-01-01",
		"rates":{"vcpu_running":"0.02","vcpu_stopped":"0.005","memory_running":"0.004","memory_stopped":"0.001","disk":"0.0001","addresses":"0.003"}}`).Code; code != http.StatusOK {
		b.Fatalf("rate card: %d", code)
	}
	q := "from=2026-08-01&to=2026-10-30&group_by=tenant"
	for _, r := range []struct{ name, path string }{
		{"usage", "/v1/reports/usage?" + q},
		{"usage-csv", "/v1/reports/usage?format=csv&" + q},
		{"chargeback", "/v1/reports/chargeback?currency=EUR&" + q},
		{"chargeback-by-day", "/v1/reports/chargeback?currency=EUR&from=2026-08-01&to=2026-10-30&group_by=tenant,day"},
	} {
		b.Run(r.name, func(b *testing.B) {
			for b.Loop() {
				if rec := ts.do("GET", r.path, ""); rec.Code != http.StatusOK {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
