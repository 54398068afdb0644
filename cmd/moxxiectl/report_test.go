package main

import (
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moxxie/moxxie/fsm"
)

// newHandlerServer serves h over HTTPS and returns the environment that
// points moxxiectl at it.
func newHandlerServer(t *testing.T, h http.HandlerFunc) map[string]string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return map[string]string{envAddr: srv.URL, envToken: "tok", envCACert: ca}
}

// TestReport_ChargebackCSVIsTheServers checks that --format csv prints
// the server's CSV byte for byte: quoting, CRLF and a missing final
// newline included.
func TestReport_ChargebackCSVIsTheServers(t *testing.T) {
	const body = "tenant,project,period,meter,unit_hours,rate,cost,currency\r\n" +
		"\"acme, inc\",\"web \"\"blue\"\"\",2026-11,vcpu_running,1.500000,0.02,0.030000,EUR\n" +
		"acme,,2026-11,disk,0.000001,mixed,0.000000,EUR\n" +
		"TOTAL,,,,,,0.030000,EUR"
	var mu sync.Mutex
	var got []string
	env := newHandlerServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		_, _ = io.WriteString(w, body)
	})
	out, stderr, code := runCLI(t, env, "report", "chargeback", "--currency", "EUR", "--tenant", "acme",
		"--from", "2026-11-01", "--to", "2026-12-01", "--group-by", "tenant,project,month", "--format", "csv")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if out != body {
		t.Errorf("stdout\n%q\nwant the server's CSV\n%q", out, body)
	}
	want := "GET /v1/reports/chargeback?currency=EUR&format=csv&from=2026-11-01&group_by=tenant%2Cproject%2Cmonth&tenant=acme&to=2026-12-01"
	if len(got) != 1 || got[0] != want {
		t.Errorf("requests %q, want %q", got, want)
	}
	// -o table (the default, given or not) goes with --format csv.
	if out, _, code = runCLI(t, env, "report", "usage", "-o", "table", "--format", "csv"); code != 0 || out != body {
		t.Errorf("-o table --format csv: exit %d, %q", code, out)
	}
}

func TestReport_UsageErrors(t *testing.T) {
	calls := 0
	env := newHandlerServer(t, func(http.ResponseWriter, *http.Request) { calls++ })
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"report", "chargeback"}, "--currency is required, such as --currency EUR"},
		{[]string{"report", "usage", "--format", "xml"}, `invalid --format "xml": want table, csv or json`},
		{[]string{"report", "usage", "--format", "csv", "-o", "json"}, "--format csv and -o json disagree: give one of them"},
		{[]string{"report", "chargeback", "--currency", "EUR", "-o", "json", "--format", "table"}, "--format table and -o json disagree"},
		{[]string{"report", "usage", "acme"}, "moxxiectl report usage takes no arguments"},
		{[]string{"report", "usage", "--tenant", ""}, "--tenant is empty: give it a value, or leave --tenant out"},
		{[]string{"report", "chargeback", "--currency", "EUR", "--tenant", ""}, "--tenant is empty"},
		{[]string{"audit", "list", "--action", ""}, "--action is empty"},
		{[]string{"audit", "list", "--token-id", ""}, "--token-id is empty"},
		{[]string{"audit", "list", "--last", "0"}, "--last must be at least 1, got 0"},
		{[]string{"audit", "list", "--limit", "-1"}, "--limit must be at least 1, got -1"},
		{[]string{"audit", "list", "--last", "2", "--limit", "2"}, "give --limit (the oldest entries from --since-seq) or --last (the newest), not both"},
		{[]string{"rate-card", "put", "x", "--from", "2026-01-01"}, "--currency is required"},
		{[]string{"rate-card", "put", "x", "--currency", "EUR"}, "--from is required"},
		{[]string{"rate-card", "put", "x", "--currency", "EUR", "--from", "2026-01-01", "--rate", "vcpu_running"}, `--rate "vcpu_running" is not METER=PRICE`},
		{[]string{"rate-card", "put", "x", "--currency", "EUR", "--from", "2026-01-01", "--rate", "cpu=1"},
			`--rate "cpu=1": unknown meter "cpu": want one of vcpu_running, vcpu_stopped, memory_running, memory_stopped, disk, addresses`},
		{[]string{"rate-card", "put", "x", "--currency", "EUR", "--from", "2026-01-01", "--rate", "disk=1,disk=2"}, `--rate "disk=2": disk is priced twice`},
	} {
		_, stderr, code := runCLI(t, env, tt.args...)
		if code != exitUsage || !strings.HasPrefix(stderr, "Error: "+tt.want) {
			t.Errorf("%q: exit %d, %s\nwant %s", tt.args, code, stderr, tt.want)
		}
	}
	if calls != 0 {
		t.Errorf("%d requests made", calls)
	}
}

// meterTick applies a metering tick at the leader time at, as the
// leader's metering loop would.
func (p *platformAPI) meterTick(t *testing.T, at time.Time) {
	t.Helper()
	p.mustApply(t, &fsm.MeterTickRequest{WriteMeta: fsm.WriteMeta{Now: at.UnixNano()}})
}

// meteredWorld is the seeded inventory with a project acme/web holding
// guest 104 (1 vCPU, 1 GiB, 10 GiB, running on pve2) and acme holding the
// gateway address of a prefix, metered from 09:00 to 11:00 on the day
// the test clock starts. Between the two ticks guest 105 (4 vCPUs, 4 GiB,
// 10 GiB, no tenant) appears on pve1, so pve1 fills up.
func meteredWorld(t *testing.T) *platformAPI {
	t.Helper()
	p := newPlatformAPI(t)
	p.cli(t, 0, "tenant", "create", "acme")
	p.cli(t, 0, "project", "create", "acme", "web")
	p.createPrefix(t, "10.0.0.0/24", "--gateway", "10.0.0.1", "--tenant", "acme")
	p.mustApply(t, &fsm.InventorySyncRequest{Guests: []fsm.InvGuest{{VMID: 104, Kind: fsm.GuestKindVM, Node: "pve2", Name: "api1",
		Status: "running", Tags: []string{"tenant.acme", "project.web"}, Tenant: "acme", Project: "web", MaxCPU: 1, MaxMem: 1 << 30, MaxDisk: 10 << 30}}})
	day := fakeStart.Truncate(24 * time.Hour)
	p.meterTick(t, day.Add(9*time.Hour))
	p.mustApply(t, &fsm.InventorySyncRequest{Guests: []fsm.InvGuest{{VMID: 105, Kind: fsm.GuestKindVM, Node: "pve1", Name: "batch1",
		Status: "running", MaxCPU: 4, MaxMem: 4 << 30, MaxDisk: 10 << 30}}})
	p.meterTick(t, day.Add(11*time.Hour))
	return p
}

// TestReport_AgainstTheAPI meters two hours on the real API and reads
// the usage and chargeback reports in every format.
//
// Over 09:00-11:00 acme (no project) holds guest 101 running (2 vCPUs,
// 2 GiB, 32 GiB), 103 stopped (4 vCPUs, 8 GiB, 64 GiB) and one address;
// acme/web holds 104. Guest 105 has no tenant and 102 is no one's.
func TestReport_AgainstTheAPI(t *testing.T) {
	p := meteredWorld(t)

	out, _ := p.cli(t, 0, "report", "usage", "--from", "2025-06-01", "--to", "2025-06-02", "--group-by", "tenant,project")
	want := `TENANT  PROJECT  PERIOD  METER           UNIT-HOURS
acme    -        -       vcpu_running    4.000000
acme    -        -       vcpu_stopped    8.000000
acme    -        -       memory_running  4.000000
acme    -        -       memory_stopped  16.000000
acme    -        -       disk            192.000000
acme    -        -       addresses       2.000000
acme    web      -       vcpu_running    2.000000
acme    web      -       memory_running  2.000000
acme    web      -       disk            20.000000

Usage from 2025-06-01T00:00:00Z to 2025-06-02T00:00:00Z, metered until 2025-06-01T11:00:00Z.
`
	if out != want {
		t.Errorf("usage:\n%s\nwant:\n%s", out, want)
	}
	// Hours read the hourly buckets: the same usage, an hour a row.
	out, _ = p.cli(t, 0, "report", "usage", "--from", "2025-06-01T09:00:00Z", "--to", "2025-06-01T11:00:00Z", "--group-by", "project,hour", "--format", "csv")
	want = `tenant,project,period,meter,quantity_unit_ms,unit_hours
acme,,2025-06-01T09:00Z,vcpu_running,7200000,2.000000
acme,,2025-06-01T09:00Z,vcpu_stopped,14400000,4.000000
acme,,2025-06-01T09:00Z,memory_running,7372800000,2.000000
acme,,2025-06-01T09:00Z,memory_stopped,29491200000,8.000000
acme,,2025-06-01T09:00Z,disk,345600000,96.000000
acme,,2025-06-01T09:00Z,addresses,3600000,1.000000
acme,,2025-06-01T10:00Z,vcpu_running,7200000,2.000000
acme,,2025-06-01T10:00Z,vcpu_stopped,14400000,4.000000
acme,,2025-06-01T10:00Z,memory_running,7372800000,2.000000
acme,,2025-06-01T10:00Z,memory_stopped,29491200000,8.000000
acme,,2025-06-01T10:00Z,disk,345600000,96.000000
acme,,2025-06-01T10:00Z,addresses,3600000,1.000000
acme,web,2025-06-01T09:00Z,vcpu_running,3600000,1.000000
acme,web,2025-06-01T09:00Z,memory_running,3686400000,1.000000
acme,web,2025-06-01T09:00Z,disk,36000000,10.000000
acme,web,2025-06-01T10:00Z,vcpu_running,3600000,1.000000
acme,web,2025-06-01T10:00Z,memory_running,3686400000,1.000000
acme,web,2025-06-01T10:00Z,disk,36000000,10.000000
`
	if out != want {
		t.Errorf("hourly usage CSV:\n%s\nwant:\n%s", out, want)
	}

	// No card covers the day yet: the server names it.
	p.cli(t, 0, "rate-card", "put", "eur-late", "--currency", "EUR", "--from", "2025-07-01", "--rate", "disk=1")
	_, stderr := p.cli(t, 1, "report", "chargeback", "--currency", "EUR", "--from", "2025-06-01", "--to", "2025-06-02")
	if want := "Error: 409 conflict: no rate card for EUR on 2025-06-01 (field from, request <req>)\n"; plain(stderr) != want {
		t.Errorf("no card:\n%s\nwant:\n%s", stderr, want)
	}
	// memory_stopped has no rate: it is free.
	out, _ = p.cli(t, 0, "rate-card", "put", "eur-2025", "--currency", "EUR", "--from", "2025-01-01", "--to", "2025-07-01",
		"--rate", "vcpu_running=0.02,vcpu_stopped=0.005", "--rate", "memory_running=0.004", "--rate", "disk=0.0001", "--rate", "addresses=0.0035")
	_, body, _ := p.lastCall()
	checkJSON(t, "rate card body", body, `{"currency": "EUR", "effective_from": "2025-01-01", "effective_to": "2025-07-01",
		"rates": {"vcpu_running": "0.02", "vcpu_stopped": "0.005", "memory_running": "0.004", "disk": "0.0001", "addresses": "0.0035"}}`)
	want = `ID:        eur-2025
Currency:  EUR
From:      2025-01-01
To:        2025-07-01
Updated:   2025-06-01T12:00:14Z

METER           RATE
vcpu_running    0.02
vcpu_stopped    0.005
memory_running  0.004
memory_stopped  free
disk            0.0001
addresses       0.0035
`
	if out != want {
		t.Errorf("rate card put:\n%s\nwant:\n%s", out, want)
	}

	// 0.08 + 0.04 + 0.016 + 0 + 0.0192 + 0.007 for acme, 0.04 + 0.008 +
	// 0.002 for acme/web.
	out, _ = p.cli(t, 0, "report", "chargeback", "--currency", "EUR", "--from", "2025-06-01", "--to", "2025-06-02", "--group-by", "project,day")
	want = `TENANT  PROJECT  PERIOD      METER           UNIT-HOURS  RATE    COST      CURRENCY
acme    -        2025-06-01  vcpu_running    4.000000    0.02    0.080000  EUR
acme    -        2025-06-01  vcpu_stopped    8.000000    0.005   0.040000  EUR
acme    -        2025-06-01  memory_running  4.000000    0.004   0.016000  EUR
acme    -        2025-06-01  memory_stopped  16.000000   0       0.000000  EUR
acme    -        2025-06-01  disk            192.000000  0.0001  0.019200  EUR
acme    -        2025-06-01  addresses       2.000000    0.0035  0.007000  EUR
acme    web      2025-06-01  vcpu_running    2.000000    0.02    0.040000  EUR
acme    web      2025-06-01  memory_running  2.000000    0.004   0.008000  EUR
acme    web      2025-06-01  disk            20.000000   0.0001  0.002000  EUR
TOTAL                                                            0.212200  EUR

Usage from 2025-06-01T00:00:00Z to 2025-06-02T00:00:00Z, metered until 2025-06-01T11:00:00Z.
`
	if out != want {
		t.Errorf("chargeback:\n%s\nwant:\n%s", out, want)
	}
	out, _ = p.cli(t, 0, "report", "chargeback", "--currency", "EUR", "--from", "2025-06-01", "--to", "2025-06-02", "--format", "csv")
	want = `tenant,project,period,meter,unit_hours,rate,cost,currency
acme,,,vcpu_running,6.000000,0.02,0.120000,EUR
acme,,,vcpu_stopped,8.000000,0.005,0.040000,EUR
acme,,,memory_running,6.000000,0.004,0.024000,EUR
acme,,,memory_stopped,16.000000,0,0.000000,EUR
acme,,,disk,212.000000,0.0001,0.021200,EUR
acme,,,addresses,2.000000,0.0035,0.007000,EUR
TOTAL,,,,,,0.212200,EUR
`
	if out != want {
		t.Errorf("chargeback CSV:\n%s\nwant:\n%s", out, want)
	}

	// -o json and --format json print the report as the API does, the
	// decimals as strings.
	for _, args := range [][]string{{"-o", "json"}, {"--format", "json"}} {
		out, _ = p.cli(t, 0, append([]string{"report", "chargeback", "--currency", "EUR", "--from", "2025-06-01", "--to", "2025-06-02"}, args...)...)
		var r struct {
			Total string
			Rows  []struct{ Meter, Cost string }
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil || r.Total != "0.2122" || len(r.Rows) != 6 || r.Rows[4].Meter != "disk" || r.Rows[4].Cost != "0.0212" {
			t.Errorf("%q: %v\n%s", args, err, out)
		}
	}

	// A range in the future has no usage.
	out, _ = p.cli(t, 0, "report", "usage", "--from", "2025-06-02", "--to", "2025-06-03")
	if want := "No usage from 2025-06-02T00:00:00Z to 2025-06-03T00:00:00Z, metered until 2025-06-01T11:00:00Z.\n"; out != want {
		t.Errorf("empty report: %q", out)
	}
	_, stderr = p.cli(t, 1, "report", "usage", "--from", "2025-06-01T09:30:00Z", "--to", "2025-06-01T11:00:00Z")
	if !strings.Contains(stderr, "Error: 400 invalid_request: usage is metered by the hour: 2025-06-01T09:30:00Z must be a whole hour") {
		t.Errorf("half an hour: %s", stderr)
	}
}

func TestRateCard_ListGetDelete(t *testing.T) {
	p := newPlatformAPI(t)
	_, stderr := p.cli(t, 1, "rate-card", "get", "eur")
	if !strings.Contains(plain(stderr), `Error: 404 not_found: rate card "eur" not found`) {
		t.Errorf("get missing: %s", stderr)
	}
	p.cli(t, 0, "rate-card", "put", "eur", "--currency", "EUR", "--from", "2025-01-01", "--rate", "vcpu_running=0.02", "--rate", "disk=0.0001")
	p.cli(t, 0, "rate-card", "put", "usd", "--currency", "USD", "--from", "2025-01-01", "--to", "2026-01-01")
	out, _ := p.cli(t, 0, "rate-card", "list")
	want := `ID   CURRENCY  FROM        TO          RATES
eur  EUR       2025-01-01  -           vcpu_running=0.02 disk=0.0001
usd  USD       2025-01-01  2026-01-01  - (all free)
`
	if out != want {
		t.Errorf("list:\n%s\nwant:\n%s", out, want)
	}
	out, _ = p.cli(t, 0, "rate-card", "get", "eur")
	if !strings.Contains(out, "To:        - (open-ended)\n") || !strings.Contains(out, "\ndisk            0.0001\naddresses       free\n") {
		t.Errorf("get:\n%s", out)
	}
	// Cards of one currency must not overlap.
	_, stderr = p.cli(t, 1, "rate-card", "put", "eur-2", "--currency", "EUR", "--from", "2025-06-01")
	if !strings.Contains(stderr, "Error: 409 conflict:") {
		t.Errorf("overlap: %s", stderr)
	}
	out, _ = p.cli(t, 0, "rate-card", "list", "-o", "json")
	var list []struct {
		ID          string
		EffectiveTo string `json:"effective_to"`
		Rates       map[string]string
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 2 || list[0].Rates["disk"] != "0.0001" || list[1].EffectiveTo != "2026-01-01" {
		t.Errorf("list -o json: %v\n%s", err, out)
	}
	out, _ = p.cli(t, 0, "rate-card", "delete", "usd")
	if out != "Rate card usd deleted\n" {
		t.Errorf("delete: %q", out)
	}
	if out, _ = p.cli(t, 0, "rate-card", "list"); strings.Contains(out, "usd") {
		t.Errorf("list after delete:\n%s", out)
	}
}
