package fsm

import (
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/quota"
)

// buckets returns the buckets of span of tenant (all when empty) by
// (project, start).
func buckets(t *testing.T, f *FSM, tenant string, span int64) map[string]quota.Quantities {
	t.Helper()
	out := map[string]quota.Quantities{}
	if _, _, err := f.State().MeterBuckets(tenant, span, 0, 1<<62, func(b *quota.Bucket) {
		out[b.Project+"@"+time.UnixMilli(b.Start).UTC().Format("2006-01-02T15:04")] = b.Q
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func qty(pairs ...any) quota.Quantities {
	var q quota.Quantities
	for i := 0; i < len(pairs); i += 2 {
		q[meterIndex(pairs[i].(quota.Meter))] = int64(pairs[i+1].(int))
	}
	return q
}

func TestFSM_Metering(t *testing.T) {
	f := New()
	t0 := time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC)
	at := func(d time.Duration) WriteMeta { return WriteMeta{Now: t0.Add(d).UnixNano()} }
	idx := uint64(0)
	next := func() uint64 { idx++; return idx }
	const min = 60_000 // ms
	applyOK(t, f, next(), &TenantCreateRequest{Tenant: Tenant{ID: "acme"}})
	applyOK(t, f, next(), &ProjectCreateRequest{Project: Project{ID: "acme/web", Tenant: "acme", Name: "web"}})
	applyOK(t, f, next(), &PrefixCreateRequest{Prefix: Prefix{ID: "p", Prefix: "10.0.0.0/24"}})
	applyOK(t, f, next(), &AddressAllocateRequest{PrefixID: "p", Count: 3, IDs: []string{"a", "b", "c"}, Tenant: "acme", Project: "web"})
	applyOK(t, f, next(), &AddressAllocateRequest{PrefixID: "p", Count: 1, IDs: []string{"d"}, Tenant: "acme"})
	run := InvGuest{VMID: 101, Kind: GuestKindVM, Node: "pve1", Status: "running", Tenant: "acme", MaxCPU: 2, MaxMem: 4 << 30, MaxDisk: 10 << 30}
	stop := InvGuest{VMID: 102, Kind: GuestKindVM, Node: "pve1", Status: "stopped", Tenant: "acme", Project: "web", MaxCPU: 4, MaxMem: 8 << 30, MaxDisk: 20 << 30}
	tmpl := InvGuest{VMID: 9000, Kind: GuestKindVM, Node: "pve1", Status: "stopped", Tenant: "acme", Template: true, MaxCPU: 8}
	applyOK(t, f, next(), &InventorySyncRequest{Guests: []InvGuest{run, stop, tmpl}})

	// The first tick starts the clock and accrues nothing.
	if r := applyOK(t, f, next(), &MeterTickRequest{WriteMeta: at(0)}).Value.(*MeterTickResult); r.From != r.To {
		t.Fatalf("first tick accrued %+v", r)
	}
	// 45 minutes later: 30 in the 10:00 hour, 15 in the 11:00 hour.
	applyOK(t, f, next(), &MeterTickRequest{WriteMeta: at(45 * time.Minute)})
	// A tick of a leader whose clock is behind, or a repeated one, adds
	// nothing.
	applyOK(t, f, next(), &MeterTickRequest{WriteMeta: at(44 * time.Minute)})
	applyOK(t, f, next(), &MeterTickRequest{WriteMeta: at(45 * time.Minute)})
	// The guest stops; that counts from the next tick, an hour later, on.
	run.Status = "stopped"
	applyOK(t, f, next(), &InventorySyncRequest{Guests: []InvGuest{run}})
	applyOK(t, f, next(), &MeterTickRequest{WriteMeta: at(105 * time.Minute)})
	applyOK(t, f, next(), &MeterTickRequest{WriteMeta: at(120 * time.Minute)})

	web := func(m int) quota.Quantities {
		return qty(quota.VCPUStopped, 4*m*min, quota.MemoryStopped, 8192*m*min, quota.Disk, 20*m*min, quota.Addresses, 3*m*min)
	}
	acmeRun := func(m int) quota.Quantities {
		return qty(quota.VCPURunning, 2*m*min, quota.MemoryRunning, 4096*m*min, quota.Disk, 10*m*min, quota.Addresses, m*min)
	}
	acmeStop := func(m int) quota.Quantities {
		return qty(quota.VCPUStopped, 2*m*min, quota.MemoryStopped, 4096*m*min, quota.Disk, 10*m*min, quota.Addresses, m*min)
	}
	hourly := buckets(t, f, "acme", quota.HourMillis)
	want := map[string]quota.Quantities{
		"web@2026-11-25T10:00": web(30), "web@2026-11-25T11:00": web(60), "web@2026-11-25T12:00": web(30),
		// Running until the tick at 12:15, the first to see it stopped.
		"@2026-11-25T10:00": acmeRun(30),
		"@2026-11-25T11:00": acmeRun(60),
		"@2026-11-25T12:00": acmeRun(15).Add(acmeStop(15)),
	}
	if len(hourly) != len(want) {
		t.Fatalf("hourly buckets %v", hourly)
	}
	for k, w := range want {
		if hourly[k] != w {
			t.Errorf("bucket %s = %v, want %v", k, hourly[k], w)
		}
	}
	daily := buckets(t, f, "", quota.DayMillis)
	if d := daily["web@2026-11-25T00:00"]; d != web(120) {
		t.Errorf("daily web = %v, want %v", d, web(120))
	}
	if d := daily["@2026-11-25T00:00"]; d != acmeRun(105).Add(acmeStop(15)) {
		t.Errorf("daily acme = %v", d)
	}
	if _, until, _ := f.State().MeterBuckets("", quota.DayMillis, 0, 0, func(*quota.Bucket) {}); until != t0.Add(120*time.Minute).UnixMilli() {
		t.Errorf("metered until %d", until)
	}
	// Hourly buckets go after their retention; daily rollups stay.
	end := t0.Add(101 * 24 * time.Hour)
	applyOK(t, f, next(), &MeterTickRequest{WriteMeta: at(101 * 24 * time.Hour)})
	h := buckets(t, f, "acme", quota.HourMillis)
	if len(h) != 2*100*24 {
		t.Errorf("%d hourly buckets left, want 100 days' of two scopes", len(h))
	}
	for k := range h {
		if start, _ := time.Parse("2006-01-02T15:04", k[strings.Index(k, "@")+1:]); start.Before(end.Add(-100 * 24 * time.Hour).Truncate(time.Hour)) {
			t.Errorf("bucket %s is past the retention", k)
		}
	}
	if d := buckets(t, f, "", quota.DayMillis); len(d) != 2*102 {
		t.Errorf("%d daily rollups, want 102 days' of two scopes", len(d))
	}
	testSnapshotRestore(t, f)
}
