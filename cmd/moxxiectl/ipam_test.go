package main

import (
	"encoding/json"
	"github.com/moxxie/moxxie/client"
	"strings"
	"testing"
)

// cli runs moxxiectl against f and fails the test unless it exits with
// want.
func (f *ipamFakeAPI) cli(t *testing.T, want int, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, code := runCLI(t, f.env(), args...)
	if code != want {
		t.Fatalf("moxxiectl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, stdout, stderr)
	}
	return stdout, stderr
}

// checkBody compares the last request's JSON body with want.
func (f *ipamFakeAPI) checkBody(t *testing.T, want string) {
	t.Helper()
	_, body, _ := f.lastCall()
	var got, w any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	g, _ := json.Marshal(got)
	wj, _ := json.Marshal(w)
	if string(g) != string(wj) {
		t.Errorf("body %s, want %s", g, wj)
	}
}

func (f *ipamFakeAPI) checkCall(t *testing.T, want string) {
	t.Helper()
	if call, _, _ := f.lastCall(); call != want {
		t.Errorf("request %q, want %q", call, want)
	}
}

func TestIPAM_VRF(t *testing.T) {
	f := newIPAMFakeAPI(t)
	out, _ := f.cli(t, 0, "ipam", "vrf", "create", "blue", "--tenant", "acme", "--description", "blue net")
	f.checkCall(t, "POST /v1/ipam/vrfs")
	f.checkBody(t, `{"id": "blue", "tenant": "acme", "description": "blue net"}`)
	want := `ID:           blue
Tenant:       acme
Description:  blue net
Created:      2025-06-01T12:00:00Z
`
	if out != want {
		t.Errorf("create:\n%s\nwant:\n%s", out, want)
	}
	out, _ = f.cli(t, 0, "ipam", "vrf", "list")
	want = `ID      TENANT  DESCRIPTION
global  -       -
blue    acme    blue net
`
	if out != want {
		t.Errorf("list:\n%s\nwant:\n%s", out, want)
	}
	out, _ = f.cli(t, 0, "ipam", "vrf", "get", "blue", "-o", "json", "--stale")
	f.checkCall(t, "GET /v1/ipam/vrfs/blue?stale=true")
	var v map[string]any
	if json.Unmarshal([]byte(out), &v) != nil || v["id"] != "blue" || v["tenant"] != "acme" || v["created_at"] != "2025-06-01T12:00:00Z" {
		t.Errorf("get json: %s", out)
	}
	_, stderr := f.cli(t, 1, "ipam", "vrf", "create", "blue")
	if got := oneErrorLine(t, stderr); got != `409 conflict: VRF "blue" exists (field id, request req-7)` {
		t.Errorf("duplicate: %q", got)
	}
	out, _ = f.cli(t, 0, "ipam", "vrf", "delete", "blue")
	if out != "VRF blue deleted\n" {
		t.Errorf("delete: %q", out)
	}
	_, stderr = f.cli(t, 1, "ipam", "vrf", "get", "blue")
	if got := oneErrorLine(t, stderr); got != `404 not_found: VRF "blue" not found (request req-7)` {
		t.Errorf("get deleted: %q", got)
	}
	out, _ = f.cli(t, 0, "ipam", "vrf", "list", "-o", "json")
	var list []map[string]any
	if json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0]["id"] != "global" {
		t.Errorf("list json: %s", out)
	}
}

func TestIPAM_Prefix(t *testing.T) {
	f := newIPAMFakeAPI(t)
	_, stderr := f.cli(t, 1, "ipam", "prefix", "create", "10.0.0.5/24")
	if got := oneErrorLine(t, stderr); got != "400 invalid: 10.0.0.5/24 is not canonical: did you mean 10.0.0.0/24? (field prefix, request req-7)" {
		t.Errorf("not canonical: %q", got)
	}
	f.cli(t, 0, "ipam", "prefix", "create", "10.0.0.0/16", "--container")
	f.checkBody(t, `{"prefix": "10.0.0.0/16", "status": "container"}`)
	out, _ := f.cli(t, 0, "ipam", "prefix", "create", "10.0.0.0/24", "--tenant", "acme", "--gateway", "10.0.0.1", "--description", "lab")
	f.checkBody(t, `{"prefix": "10.0.0.0/24", "tenant": "acme", "gateway": "10.0.0.1", "description": "lab"}`)
	want := `ID:           p2
Prefix:       10.0.0.0/24
VRF:          global
Status:       active
Pool:         no
Parent:       p1
Tenant:       acme
Gateway:      10.0.0.1
Description:  lab
Utilization:  1 of 254 (0.39%)
Created:      2025-06-01T12:00:00Z
Updated:      2025-06-01T12:00:00Z
`
	if out != want {
		t.Errorf("create:\n%s\nwant:\n%s", out, want)
	}
	_, stderr = f.cli(t, 1, "ipam", "prefix", "create", "10.0.0.128/25")
	if got := oneErrorLine(t, stderr); got != "409 conflict: 10.0.0.128/25 overlaps 10.0.0.0/24 (field prefix, request req-7)" {
		t.Errorf("overlap: %q", got)
	}
	f.cli(t, 0, "ipam", "prefix", "create", "192.168.0.0/30", "--pool", "--vrf", "global")
	f.checkBody(t, `{"prefix": "192.168.0.0/30", "is_pool": true, "vrf": "global"}`)

	out, _ = f.cli(t, 0, "ipam", "prefix", "list")
	want = `PREFIX          VRF     STATUS         UTILIZATION  TENANT  ID
10.0.0.0/16     global  container      0%           -       p1
10.0.0.0/24     global  active         0.39%        acme    p2
192.168.0.0/30  global  active (pool)  0%           -       p5
`
	if out != want {
		t.Errorf("list:\n%s\nwant:\n%s", out, want)
	}
	f.cli(t, 0, "ipam", "prefix", "list", "--vrf", "global", "--tenant", "acme", "--parent", "p1", "--status", "active",
		"--family", "4", "--contains", "10.0.0.7")
	f.checkCall(t, "GET /v1/ipam/prefixes?contains=10.0.0.7&family=4&parent_id=p1&status=active&tenant=acme&vrf=global")
	_, stderr, code := runCLI(t, f.env(), "ipam", "prefix", "list", "--family", "5")
	if code != 2 || !strings.Contains(stderr, "--family must be 4 or 6, got 5") {
		t.Errorf("bad family: exit %d, %q", code, stderr)
	}

	// Allocation.
	out, _ = f.cli(t, 0, "ipam", "prefix", "allocate", "p2", "--count", "2", "--dns-name", "web.moxxie.test", "--owner", "vm:101/net0")
	f.checkCall(t, "POST /v1/ipam/prefixes/p2/allocate")
	f.checkBody(t, `{"count": 2, "dns_name": "web.moxxie.test", "owner": "vm:101/net0"}`)
	if _, _, key := f.lastCall(); key == "" {
		t.Error("allocate sent no Idempotency-Key")
	}
	want = `ADDRESS   VRF     DNS NAME         STATUS  OWNER        TENANT  ID
10.0.0.2  global  web.moxxie.test  active  vm:101/net0  -       a6
10.0.0.3  global  web.moxxie.test  active  vm:101/net0  -       a7
`
	if out != want {
		t.Errorf("allocate:\n%s\nwant:\n%s", out, want)
	}
	out, _ = f.cli(t, 0, "ipam", "prefix", "allocate", "p2", "--ip", "10.0.0.2", "--fallback", "--status", "reserved", "-o", "json")
	f.checkBody(t, `{"address": "10.0.0.2", "fallback": true, "status": "reserved"}`)
	var addrs []map[string]any
	if json.Unmarshal([]byte(out), &addrs) != nil || len(addrs) != 1 || addrs[0]["address"] != "10.0.0.4" || addrs[0]["status"] != "reserved" || addrs[0]["prefix_id"] != "p2" {
		t.Errorf("allocate json: %s", out)
	}
	if _, stderr, code := runCLI(t, f.env(), "ipam", "prefix", "allocate", "p2", "--count", "3", "--ip", "10.0.0.9"); code != 2 || !strings.Contains(stderr, "--count 3 and --ip exclude each other") {
		t.Errorf("allocate --count 3 --ip: exit %d, %q", code, stderr)
	}
	if _, stderr, code := runCLI(t, f.env(), "ipam", "prefix", "allocate", "p2", "--ip", ""); code != 2 || !strings.Contains(stderr, "--ip is empty") {
		t.Errorf("allocate --ip \"\": exit %d, %q", code, stderr)
	}
	// --force and --fallback act on --ip only.
	for _, fl := range []string{"--force", "--fallback"} {
		if _, stderr, code := runCLI(t, f.env(), "ipam", "prefix", "allocate", "p2", "--count", "2", fl); code != 2 || !strings.Contains(stderr, fl+" takes effect only with --ip") {
			t.Errorf("allocate %s without --ip: exit %d, %q", fl, code, stderr)
		}
	}
	if _, stderr, code := runCLI(t, f.env(), "ipam", "vlan-group", "allocate", "lab", "--fallback"); code != 2 || !strings.Contains(stderr, "--fallback takes effect only with --vid") {
		t.Errorf("vlan allocate --fallback without --vid: exit %d, %q", code, stderr)
	}
	// The global --address still names the server.
	env := f.env()
	delete(env, envAddr)
	if _, stderr, code := runCLI(t, env, "ipam", "prefix", "allocate", "p2", "--address", f.URL, "--ip", "10.0.0.200"); code != 0 {
		t.Errorf("--address with allocate: exit %d, %s", code, stderr)
	}
	_, stderr = f.cli(t, 1, "ipam", "prefix", "allocate", "p2", "--count", "300")
	if got := oneErrorLine(t, stderr); got != "409 exhausted: 300 requested, 249 available (field count, request req-7)" {
		t.Errorf("exhausted: %q", got)
	}
	_, stderr = f.cli(t, 1, "ipam", "prefix", "allocate", "p1")
	if got := oneErrorLine(t, stderr); got != "409 conflict: prefix 10.0.0.0/16 is a container: allocate from one of its active prefixes (field prefix_id, request req-7)" {
		t.Errorf("container: %q", got)
	}
	_, stderr = f.cli(t, 1, "ipam", "prefix", "allocate", "p2", "--dns-name", "bad_name")
	if got := oneErrorLine(t, stderr); got != `400 invalid: "bad_name" is not a valid DNS name (field dns_name, request req-7); check --dns-name` {
		t.Errorf("dns name: %q", got)
	}
	// The field address is set by --ip here: --address is the server's.
	_, stderr = f.cli(t, 1, "ipam", "prefix", "allocate", "p2", "--ip", "10.9.9.9")
	if got := oneErrorLine(t, stderr); !strings.HasSuffix(got, "(request req-7); check --ip") {
		t.Errorf("address: %q", got)
	}
	_, stderr, code = runCLI(t, f.env(), "ipam", "prefix", "allocate", "p2", "--count", "0")
	if code != 2 || !strings.Contains(stderr, "--count must be at least 1") {
		t.Errorf("count 0: exit %d, %q", code, stderr)
	}

	// A repeated allocation with the same key answers the first result.
	first, stderr := f.cli(t, 0, "ipam", "prefix", "allocate", "p2", "--idempotency-key", "vm-103")
	if stderr != "" {
		t.Errorf("first allocation: stderr %q", stderr)
	}
	again, stderr := f.cli(t, 0, "ipam", "prefix", "allocate", "p2", "--idempotency-key", "vm-103")
	if again != first || !strings.Contains(first, "10.0.0.5") {
		t.Errorf("replay answered\n%s\nfirst\n%s", again, first)
	}
	if !strings.Contains(stderr, "earlier request with this idempotency key") {
		t.Errorf("replay: stderr %q", stderr)
	}
	if _, _, key := f.lastCall(); key != "vm-103" {
		t.Errorf("key %q", key)
	}

	out, stderr = f.cli(t, 0, "ipam", "prefix", "available", "p2", "--limit", "3")
	f.checkCall(t, "GET /v1/ipam/prefixes/p2/available?limit=3")
	if out != "10.0.0.6\n10.0.0.7\n10.0.0.8\n" {
		t.Errorf("available: %q", out)
	}
	// As many as the limit: more may follow, which stderr says.
	if stderr != "Note: the first 3 shown; more may be free (--limit, at most 1000; the prefix's utilization counts them).\n" {
		t.Errorf("available --limit 3: stderr %q", stderr)
	}
	if _, stderr = f.cli(t, 0, "ipam", "prefix", "available", "p2", "--limit", "1000"); stderr != "" {
		t.Errorf("available, fewer than the limit: stderr %q", stderr)
	}
	out, _ = f.cli(t, 0, "ipam", "prefix", "available", "p2", "--limit", "2", "-o", "json")
	if strings.Join(strings.Fields(out), "") != `["10.0.0.6","10.0.0.7"]` {
		t.Errorf("available json: %q", out)
	}

	out, _ = f.cli(t, 0, "ipam", "prefix", "allocate-prefix", "p1", "--length", "26", "--tenant", "acme", "--pool")
	f.checkCall(t, "POST /v1/ipam/prefixes/p1/allocate-prefix")
	f.checkBody(t, `{"prefix_length": 26, "tenant": "acme", "is_pool": true}`)
	if !strings.Contains(out, "Prefix:       10.0.1.0/26\n") || !strings.Contains(out, "Parent:       p1\n") {
		t.Errorf("allocate-prefix:\n%s", out)
	}
	f.cli(t, 0, "ipam", "prefix", "allocate-prefix", "p1", "--length", "20", "--container", "-o", "json")
	f.checkBody(t, `{"prefix_length": 20, "status": "container"}`)
	_, stderr, code = runCLI(t, f.env(), "ipam", "prefix", "allocate-prefix", "p1")
	if code != 2 || !strings.Contains(stderr, "needs --length") {
		t.Errorf("no length: exit %d, %q", code, stderr)
	}

	out, _ = f.cli(t, 0, "ipam", "prefix", "update", "p2", "--description", "", "--tenant", "beta")
	f.checkCall(t, "PATCH /v1/ipam/prefixes/p2")
	f.checkBody(t, `{"description": "", "tenant": "beta"}`)
	if !strings.Contains(out, "Description:  -\n") || !strings.Contains(out, "Tenant:       beta\n") {
		t.Errorf("update:\n%s", out)
	}
	f.cli(t, 0, "ipam", "prefix", "update", "p2", "--pool")
	f.checkBody(t, `{"is_pool": true}`)
	f.cli(t, 0, "ipam", "prefix", "update", "p2", "--pool=false")
	f.checkBody(t, `{"is_pool": false}`)
	_, stderr, code = runCLI(t, f.env(), "ipam", "prefix", "update", "p2")
	if code != 2 || !strings.Contains(stderr, "nothing to update") {
		t.Errorf("empty update: exit %d, %q", code, stderr)
	}

	out, _ = f.cli(t, 0, "ipam", "prefix", "get", "p2", "-o", "json")
	var p struct {
		Prefix      string
		Utilization struct {
			Used, Size json.Number
			Percent    float64
		}
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.Prefix != "10.0.0.0/24" || p.Utilization.Used != "6" || p.Utilization.Size != "254" || p.Utilization.Percent != 2.36 {
		t.Errorf("get json: %v\n%s", err, out)
	}
	_, stderr = f.cli(t, 1, "ipam", "prefix", "delete", "p2")
	if got := oneErrorLine(t, stderr); got != "409 conflict: prefix p2 holds addresses (field id, request req-7)" {
		t.Errorf("delete busy: %q", got)
	}
	out, _ = f.cli(t, 0, "ipam", "prefix", "delete", "p5", "--force", "--reparent")
	f.checkCall(t, "DELETE /v1/ipam/prefixes/p5?force=true&reparent=true")
	if out != "Prefix 192.168.0.0/30 deleted (ID p5)\n" {
		t.Errorf("delete: %q", out)
	}
	_, stderr = f.cli(t, 1, "ipam", "prefix", "get", "p5")
	if got := oneErrorLine(t, stderr); got != `404 not_found: prefix "p5" not found (request req-7)` {
		t.Errorf("get deleted: %q", got)
	}
}

func TestIPAM_Range(t *testing.T) {
	f := newIPAMFakeAPI(t)
	f.cli(t, 0, "ipam", "prefix", "create", "10.0.0.0/24")
	out, _ := f.cli(t, 0, "ipam", "range", "create", "p1", "10.0.0.100", "10.0.0.199", "--description", "dhcp")
	f.checkBody(t, `{"prefix_id": "p1", "start_address": "10.0.0.100", "end_address": "10.0.0.199", "description": "dhcp"}`)
	if out != "IP range 10.0.0.100-10.0.0.199 created in prefix p1 (ID r2)\n" {
		t.Errorf("create: %q", out)
	}
	_, stderr := f.cli(t, 1, "ipam", "range", "create", "p1", "10.0.0.20", "10.0.0.10")
	if got := oneErrorLine(t, stderr); got != "400 invalid: invalid range 10.0.0.20-10.0.0.10 (field end_address, request req-7)" {
		t.Errorf("bad range: %q", got)
	}
	out, _ = f.cli(t, 0, "ipam", "range", "list", "--prefix", "p1")
	f.checkCall(t, "GET /v1/ipam/ip-ranges?prefix_id=p1")
	want := `START       END         PREFIX ID  DESCRIPTION  ID
10.0.0.100  10.0.0.199  p1         dhcp         r2
`
	if out != want {
		t.Errorf("list:\n%s\nwant:\n%s", out, want)
	}
	out, _ = f.cli(t, 0, "ipam", "range", "get", "r2")
	f.checkCall(t, "GET /v1/ipam/ip-ranges/r2")
	if want := "ID:           r2\nStart:        10.0.0.100\nEnd:          10.0.0.199\nPrefix ID:    p1\nDescription:  dhcp\n"; !strings.HasPrefix(out, want) {
		t.Errorf("get:\n%s\nwant it to start with:\n%s", out, want)
	}
	out, _ = f.cli(t, 0, "ipam", "prefix", "get", "p1")
	if !strings.Contains(out, "Utilization:  100 of 254 (39.37%)\n") {
		t.Errorf("range not counted:\n%s", out)
	}
	out, _ = f.cli(t, 0, "ipam", "range", "delete", "r2")
	if out != "IP range 10.0.0.100-10.0.0.199 deleted (ID r2)\n" {
		t.Errorf("delete: %q", out)
	}
	f.cli(t, 0, "ipam", "range", "list", "--prefix-id", "p1")
	f.checkCall(t, "GET /v1/ipam/ip-ranges?prefix_id=p1")
	out, _ = f.cli(t, 0, "ipam", "range", "list", "-o", "json")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("empty list json: %q", out)
	}
}

// TestIPAM_AddressPages lists a page with --limit, the next with --after,
// and everything in pages when no --limit is given.
func TestIPAM_AddressPages(t *testing.T) {
	f := newIPAMFakeAPI(t)
	f.cli(t, 0, "ipam", "prefix", "create", "10.0.0.0/24")
	f.cli(t, 0, "ipam", "prefix", "allocate", "p1", "--count", "5")
	// A paging loop starts with an empty cursor: the first page.
	out, stderr := f.cli(t, 0, "ipam", "address", "list", "--limit", "2", "--after", "")
	f.checkCall(t, "GET /v1/ipam/addresses?limit=2")
	if strings.Count(out, "\n") != 3 || !strings.Contains(out, "10.0.0.2 ") || stderr != "More addresses follow: --after a3\n" {
		t.Errorf("first page:\n%s%s", out, stderr)
	}
	out, stderr = f.cli(t, 0, "ipam", "address", "list", "--limit", "2", "--after", "a3")
	f.checkCall(t, "GET /v1/ipam/addresses?after=a3&limit=2")
	if !strings.Contains(out, "10.0.0.3 ") || !strings.Contains(out, "10.0.0.4 ") || stderr != "More addresses follow: --after a5\n" {
		t.Errorf("second page:\n%s%s", out, stderr)
	}
	out, stderr = f.cli(t, 0, "ipam", "address", "list", "--limit", "2", "--after", "a5", "-o", "json")
	var last []map[string]any
	if json.Unmarshal([]byte(out), &last) != nil || len(last) != 1 || last[0]["address"] != "10.0.0.5" || stderr != "" {
		t.Errorf("last page: %s%s", out, stderr)
	}

	defer func(n int) { addressPageSize = n }(addressPageSize)
	addressPageSize = 2
	out, stderr = f.cli(t, 0, "ipam", "address", "list", "-o", "json")
	f.checkCall(t, "GET /v1/ipam/addresses?after=a5&limit=2")
	var all []map[string]any
	if json.Unmarshal([]byte(out), &all) != nil || len(all) != 5 || all[4]["address"] != "10.0.0.5" || stderr != "" {
		t.Errorf("all in pages of 2: %s%s", out, stderr)
	}
}

func TestIPAM_Address(t *testing.T) {
	f := newIPAMFakeAPI(t)
	f.cli(t, 0, "ipam", "vrf", "create", "blue")
	f.cli(t, 0, "ipam", "prefix", "create", "10.0.0.0/24", "--vrf", "blue")
	out, _ := f.cli(t, 0, "ipam", "address", "create", "10.0.0.10", "--vrf", "blue", "--dns-name", "db.moxxie.test",
		"--owner", "vm:102/net0", "--tenant", "acme", "--project", "web", "--description", "database")
	f.checkCall(t, "POST /v1/ipam/addresses")
	f.checkBody(t, `{"address": "10.0.0.10", "vrf": "blue", "dns_name": "db.moxxie.test", "owner": "vm:102/net0", "tenant": "acme", "project": "web", "description": "database"}`)
	if _, _, key := f.lastCall(); key == "" {
		t.Error("create sent no Idempotency-Key")
	}
	want := `ADDRESS    VRF   DNS NAME        STATUS  OWNER        TENANT  ID
10.0.0.10  blue  db.moxxie.test  active  vm:102/net0  acme    a2
`
	if out != want {
		t.Errorf("create:\n%s\nwant:\n%s", out, want)
	}
	_, stderr := f.cli(t, 1, "ipam", "address", "create", "10.0.0.10", "--vrf", "blue")
	if got := oneErrorLine(t, stderr); got != "409 conflict: 10.0.0.10 is taken (field address, request req-7)" {
		t.Errorf("taken: %q", got)
	}
	out, _ = f.cli(t, 0, "ipam", "address", "create", "10.0.0.10", "--vrf", "blue", "--fallback", "--force", "-o", "json")
	f.checkBody(t, `{"address": "10.0.0.10", "vrf": "blue", "fallback": true, "force": true}`)
	var addrs []map[string]any
	if json.Unmarshal([]byte(out), &addrs) != nil || len(addrs) != 1 || addrs[0]["address"] != "10.0.0.1" {
		t.Errorf("fallback json: %s", out)
	}
	_, stderr = f.cli(t, 1, "ipam", "address", "create", "10.9.9.9")
	if got := oneErrorLine(t, stderr); got != "404 not_found: no active prefix of VRF global contains 10.9.9.9 (field address, request req-7)" {
		t.Errorf("outside: %q", got)
	}

	out, _ = f.cli(t, 0, "ipam", "address", "list", "--prefix", "p1", "--vrf", "blue", "--tenant", "acme", "--owner", "vm:102/net0",
		"--dns-name", "db.moxxie.test", "--status", "active", "--limit", "5")
	f.checkCall(t, "GET /v1/ipam/addresses?dns_name=db.moxxie.test&limit=5&owner=vm%3A102%2Fnet0&prefix_id=p1&status=active&tenant=acme&vrf=blue")
	if out != want {
		t.Errorf("list:\n%s\nwant:\n%s", out, want)
	}
	f.cli(t, 0, "ipam", "address", "list", "--prefix-id", "p1")
	f.checkCall(t, "GET /v1/ipam/addresses?limit=5000&prefix_id=p1")
	f.cli(t, 0, "ipam", "address", "list", "--ip", "10.0.0.10")
	f.checkCall(t, "GET /v1/ipam/addresses?address=10.0.0.10&limit=5000")
	if _, stderr, code := runCLI(t, f.env(), "ipam", "address", "list", "--ip", ""); code != 2 || !strings.Contains(stderr, "--ip is empty: give it a value, or leave --ip out") {
		t.Errorf(`--ip "": exit %d, %q`, code, stderr)
	}
	out, _ = f.cli(t, 0, "ipam", "address", "get", "a2")
	want = `ID:           a2
Address:      10.0.0.10
Prefix ID:    p1
VRF:          blue
Status:       active
DNS name:     db.moxxie.test
Tenant:       acme
Owner:        vm:102/net0
Description:  database
Created:      2025-06-01T12:00:00Z
Updated:      2025-06-01T12:00:00Z
`
	if out != want {
		t.Errorf("get:\n%s\nwant:\n%s", out, want)
	}
	out, _ = f.cli(t, 0, "ipam", "address", "update", "a2", "--status", "deprecated", "--dns-name", "", "--owner", "vm:103/net0")
	f.checkCall(t, "PATCH /v1/ipam/addresses/a2")
	f.checkBody(t, `{"status": "deprecated", "dns_name": "", "owner": "vm:103/net0"}`)
	if !strings.Contains(out, "Status:       deprecated\n") || !strings.Contains(out, "DNS name:     -\n") {
		t.Errorf("update:\n%s", out)
	}
	_, stderr, code := runCLI(t, f.env(), "ipam", "address", "update", "a2")
	if code != 2 || !strings.Contains(stderr, "nothing to update") {
		t.Errorf("empty update: exit %d, %q", code, stderr)
	}
	out, _ = f.cli(t, 0, "ipam", "address", "release", "a2")
	f.checkCall(t, "DELETE /v1/ipam/addresses/a2")
	if out != "Address 10.0.0.10 released (ID a2), in quarantine until 2025-06-01T12:10:00Z\n" {
		t.Errorf("release: %q", out)
	}
	out, _ = f.cli(t, 0, "ipam", "address", "release", "a3", "--force", "-o", "json")
	f.checkCall(t, "DELETE /v1/ipam/addresses/a3?force=true")
	var rel map[string]any
	if json.Unmarshal([]byte(out), &rel) != nil || rel["address"].(map[string]any)["address"] != "10.0.0.1" {
		t.Errorf("release json: %s", out)
	}
	if _, ok := rel["quarantined_until"]; ok {
		t.Errorf("forced release shows a quarantine: %s", out)
	}
	_, stderr = f.cli(t, 1, "ipam", "address", "get", "a2")
	if got := oneErrorLine(t, stderr); got != `404 not_found: address "a2" not found (request req-7)` {
		t.Errorf("get released: %q", got)
	}
}

func TestIPAM_VLAN(t *testing.T) {
	f := newIPAMFakeAPI(t)
	out, _ := f.cli(t, 0, "ipam", "vlan-group", "create", "lab", "--range", "100-199", "--range", "300", "--tenant", "acme")
	f.checkCall(t, "POST /v1/ipam/vlan-groups")
	f.checkBody(t, `{"name": "lab", "ranges": [{"first": 100, "last": 199}, {"first": 300, "last": 300}], "tenant": "acme"}`)
	if !strings.Contains(out, "Ranges:       100-199,300\n") || !strings.Contains(out, "Kind:         vlan\n") {
		t.Errorf("create:\n%s", out)
	}
	f.cli(t, 0, "ipam", "vlan-group", "create", "all")
	f.checkBody(t, `{"name": "all"}`)
	for _, bad := range []string{"200-100", "abc", "1-x", "-5"} {
		_, stderr, code := runCLI(t, f.env(), "ipam", "vlan-group", "create", "x", "--range", bad)
		if code != 2 || !strings.Contains(stderr, "invalid --range") {
			t.Errorf("--range %s: exit %d, %q", bad, code, stderr)
		}
	}
	if _, stderr, code := runCLI(t, f.env(), "ipam", "vni-pool", "create", "x", "--range", ""); code != 2 || !strings.Contains(stderr, "--range is empty") {
		t.Errorf(`--range "": exit %d, %q`, code, stderr)
	}
	out, _ = f.cli(t, 0, "ipam", "vlan-group", "list")
	want := `NAME  RANGES       UTILIZATION  TENANT  ID
lab   100-199,300  0%           acme    g1
all   1-4094       0%           -       g2
`
	if out != want {
		t.Errorf("list:\n%s\nwant:\n%s", out, want)
	}
	for _, bad := range []string{"0", "-1"} {
		_, stderr, code := runCLI(t, f.env(), "ipam", "vlan-group", "allocate", "lab", "--vid", bad)
		if code != 2 || !strings.Contains(stderr, "--vid must be in 1-4094") {
			t.Errorf("--vid %s: exit %d, %q", bad, code, stderr)
		}
	}
	out, _ = f.cli(t, 0, "ipam", "vlan-group", "allocate", "lab", "--vid", "100", "--name", "web", "--owner", "vnet:web")
	f.checkCall(t, "POST /v1/ipam/vlan-groups/lab/allocate")
	f.checkBody(t, `{"vid": 100, "name": "web", "owner": "vnet:web"}`)
	if _, _, key := f.lastCall(); key == "" {
		t.Error("allocate sent no Idempotency-Key")
	}
	want = `ID:             vl3
VLAN:           100
VLAN group ID:  g1
Name:           web
Tenant:         -
Project:        -
Owner:          vnet:web
Description:    -
Created:        2025-06-01T12:00:00Z
Updated:        -
`
	if out != want {
		t.Errorf("allocate:\n%s\nwant:\n%s", out, want)
	}
	_, stderr := f.cli(t, 1, "ipam", "vlan-group", "allocate", "lab", "--vid", "100")
	if got := oneErrorLine(t, stderr); got != "409 conflict: VLAN 100 is taken (field vid, request req-7)" {
		t.Errorf("taken: %q", got)
	}
	out, _ = f.cli(t, 0, "ipam", "vlan-group", "allocate", "g1", "--vid", "100", "--fallback", "-o", "json")
	f.checkBody(t, `{"vid": 100, "fallback": true}`)
	var vlan map[string]any
	if json.Unmarshal([]byte(out), &vlan) != nil || vlan["vid"] != 101.0 || vlan["kind"] != "vlan" || vlan["pool_id"] != "g1" {
		t.Errorf("fallback json: %s", out)
	}
	if _, ok := vlan["vni"]; ok {
		t.Errorf("a VLAN shows a vni: %s", out)
	}
	f.cli(t, 0, "ipam", "vlan-group", "allocate", "lab")
	f.checkBody(t, `{}`)

	// An empty filter is refused, not dropped (it would list everything).
	if _, stderr, code := runCLI(t, f.env(), "ipam", "vlan", "list", "--group", "lab", "--tenant", ""); code != 2 || !strings.Contains(stderr, "--tenant is empty") {
		t.Errorf("empty --tenant: exit %d, %q", code, stderr)
	}
	out, _ = f.cli(t, 0, "ipam", "vlan", "list", "--group", "lab")
	f.checkCall(t, "GET /v1/ipam/vlans?group_id=lab&limit=5000") // read 5,000 at a time
	want = `VID  NAME  OWNER     TENANT  GROUP ID  ID
100  web   vnet:web  -       g1        vl3
101  -     -         -       g1        vl4
102  -     -         -       g1        vl5
`
	if out != want {
		t.Errorf("vlan list:\n%s\nwant:\n%s", out, want)
	}
	out, _ = f.cli(t, 0, "ipam", "vlan", "get", "vl4", "-o", "json")
	if json.Unmarshal([]byte(out), &vlan) != nil || vlan["vid"] != 101.0 {
		t.Errorf("get json: %s", out)
	}
	out, _ = f.cli(t, 0, "ipam", "vlan", "release", "vl4")
	if out != "VLAN 101 released to VLAN group g1 (ID vl4)\n" {
		t.Errorf("release: %q", out)
	}
	out, _ = f.cli(t, 0, "ipam", "vlan-group", "get", "lab")
	if !strings.Contains(out, "ID:           g1\n") {
		t.Errorf("get by name:\n%s", out)
	}
	out, _ = f.cli(t, 0, "ipam", "vlan-group", "delete", "all")
	if out != "VLAN group all deleted (ID g2)\n" {
		t.Errorf("delete: %q", out)
	}
	_, stderr = f.cli(t, 1, "ipam", "vlan-group", "get", "all")
	if got := oneErrorLine(t, stderr); got != `404 not_found: vlan group "all" not found (request req-7)` {
		t.Errorf("get deleted: %q", got)
	}
}

func TestIPAM_VNI(t *testing.T) {
	f := newIPAMFakeAPI(t)
	f.cli(t, 0, "ipam", "vni-pool", "create", "overlay", "--range", "10000-19999,30000-30099", "--description", "tenant VNIs")
	f.checkCall(t, "POST /v1/ipam/vni-pools")
	f.checkBody(t, `{"name": "overlay", "ranges": [{"first": 10000, "last": 19999}, {"first": 30000, "last": 30099}], "description": "tenant VNIs"}`)
	out, _ := f.cli(t, 0, "ipam", "vni-pool", "list")
	want := `NAME     RANGES                   UTILIZATION  TENANT  ID
overlay  10000-19999,30000-30099  0%           -       g1
`
	if out != want {
		t.Errorf("list:\n%s\nwant:\n%s", out, want)
	}
	out, _ = f.cli(t, 0, "ipam", "vni-pool", "allocate", "overlay", "--vni", "10001", "--tenant", "acme", "-o", "json")
	f.checkCall(t, "POST /v1/ipam/vni-pools/overlay/allocate")
	f.checkBody(t, `{"vni": 10001, "tenant": "acme"}`)
	var vni map[string]any
	if json.Unmarshal([]byte(out), &vni) != nil || vni["vni"] != 10001.0 || vni["kind"] != "vni" || vni["tenant"] != "acme" {
		t.Errorf("allocate json: %s", out)
	}
	if _, ok := vni["vid"]; ok {
		t.Errorf("a VNI shows a vid: %s", out)
	}
	out, _ = f.cli(t, 0, "ipam", "vni", "list", "--pool", "overlay")
	f.checkCall(t, "GET /v1/ipam/vnis?limit=5000&pool_id=overlay")
	want = `VNI    NAME  OWNER  TENANT  POOL ID  ID
10001  -     -      acme    g1       vn2
`
	if out != want {
		t.Errorf("vni list:\n%s\nwant:\n%s", out, want)
	}
	_, stderr := f.cli(t, 1, "ipam", "vni-pool", "allocate", "overlay", "--vni", "10001")
	if got := oneErrorLine(t, stderr); got != "409 conflict: VNI 10001 is taken (field vni, request req-7)" {
		t.Errorf("taken: %q", got)
	}
	out, _ = f.cli(t, 0, "ipam", "vni", "get", "vn2")
	if !strings.Contains(out, "VNI:          10001\n") || !strings.Contains(out, "VNI pool ID:  g1\n") {
		t.Errorf("get:\n%s", out)
	}
	out, _ = f.cli(t, 0, "ipam", "vni", "release", "vn2")
	if out != "VNI 10001 released to VNI pool g1 (ID vn2)\n" {
		t.Errorf("release: %q", out)
	}
	out, _ = f.cli(t, 0, "ipam", "vni", "list", "-o", "json")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("empty list json: %q", out)
	}
	out, _ = f.cli(t, 0, "ipam", "vni-pool", "delete", "overlay", "-o", "json")
	if json.Unmarshal([]byte(out), &vni) != nil || vni["name"] != "overlay" {
		t.Errorf("delete json: %s", out)
	}
}

func TestDNSZone(t *testing.T) {
	f := newIPAMFakeAPI(t)
	out, _ := f.cli(t, 0, "dns", "zone", "create", "moxxie.test", "--ttl", "60", "--tenant", "acme")
	f.checkCall(t, "POST /v1/dns/zones")
	f.checkBody(t, `{"name": "moxxie.test", "ttl": 60, "tenant": "acme"}`)
	want := `Name:         moxxie.test
TTL:          60
Tenant:       acme
Description:  -
Created:      2025-06-01T12:00:00Z
Updated:      -
`
	if out != want {
		t.Errorf("create:\n%s\nwant:\n%s", out, want)
	}
	f.cli(t, 0, "dns", "zone", "create", "lab.example", "--description", "the lab")
	f.checkBody(t, `{"name": "lab.example", "description": "the lab"}`)
	if _, stderr := f.cli(t, 2, "dns", "zone", "create", "zero.test", "--ttl", "0"); !strings.Contains(stderr, "--ttl must be 1 to 86400 seconds, got 0") {
		t.Errorf("--ttl 0: %q", stderr)
	}
	_, stderr := f.cli(t, 1, "dns", "zone", "create", "moxxie.test")
	if got := oneErrorLine(t, stderr); got != "409 conflict: zone moxxie.test exists (field name, request req-7)" {
		t.Errorf("duplicate: %q", got)
	}
	out, _ = f.cli(t, 0, "dns", "zone", "list")
	want = `NAME         TTL  TENANT  DESCRIPTION
moxxie.test  60   acme    -
lab.example  300  -       the lab
`
	if out != want {
		t.Errorf("list:\n%s\nwant:\n%s", out, want)
	}
	out, _ = f.cli(t, 0, "dns", "zone", "get", "moxxie.test", "-o", "json")
	f.checkCall(t, "GET /v1/dns/zones/moxxie.test")
	var z map[string]any
	if json.Unmarshal([]byte(out), &z) != nil || z["id"] != "moxxie.test" || z["ttl"] != 60.0 {
		t.Errorf("get json: %s", out)
	}
	out, _ = f.cli(t, 0, "dns", "zone", "update", "moxxie.test", "--ttl", "30", "--description", "")
	f.checkCall(t, "PATCH /v1/dns/zones/moxxie.test")
	f.checkBody(t, `{"ttl": 30, "description": ""}`)
	want = `Name:         moxxie.test
TTL:          30
Tenant:       acme
Description:  -
Created:      2025-06-01T12:00:00Z
Updated:      2025-06-01T12:00:00Z
`
	if out != want {
		t.Errorf("update:\n%s\nwant:\n%s", out, want)
	}
	for _, args := range [][]string{{"moxxie.test"}, {"moxxie.test", "--ttl", "0"}} {
		if _, stderr := f.cli(t, 2, append([]string{"dns", "zone", "update"}, args...)...); !strings.Contains(stderr, "nothing to update") && !strings.Contains(stderr, "--ttl must be 1 to 86400 seconds, got 0") {
			t.Errorf("update %v: %q", args, stderr)
		}
	}
	out, _ = f.cli(t, 0, "dns", "zone", "delete", "moxxie.test", "--force")
	f.checkCall(t, "DELETE /v1/dns/zones/moxxie.test?force=true")
	if out != "Zone moxxie.test deleted\n" {
		t.Errorf("delete: %q", out)
	}
	_, stderr = f.cli(t, 1, "dns", "zone", "get", "moxxie.test")
	if got := oneErrorLine(t, stderr); got != `404 not_found: zone "moxxie.test" not found (request req-7)` {
		t.Errorf("get deleted: %q", got)
	}
}

func TestIPAM_Usage(t *testing.T) {
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"ipam"}, "Available Commands"},
		{[]string{"ipam", "prefx"}, `did you mean "prefix"`},
		{[]string{"ipam", "prefix", "create"}, "needs CIDR"},
		{[]string{"ipam", "range", "create", "p1", "10.0.0.1"}, "needs PREFIX_ID START END"},
		{[]string{"ipam", "vlan-group", "allocate", "lab", "--vid", "x"}, `invalid argument "x" for "--vid"`},
		{[]string{"dns"}, "Available Commands"},
		{[]string{"dns", "zone", "create", "z", "--ttl", "-1"}, `invalid argument "-1" for "--ttl"`},
		{[]string{"ipam", "prefix", "available", "p1", "--limit", "-1", "-a", "https://127.0.0.1:1"}, "--limit must be at least 1, got -1"},
		{[]string{"ipam", "prefix", "available", "p1", "--limit", "0", "-a", "https://127.0.0.1:1"}, "--limit must be at least 1, got 0"},
		{[]string{"ipam", "address", "list", "--limit", "0", "-a", "https://127.0.0.1:1"}, "--limit must be at least 1, got 0"},
		// A script's unset variable: refused, not taken as "not given".
		{[]string{"ipam", "prefix", "allocate", "p1", "--idempotency-key", ""}, "the key is empty: give one, or leave --idempotency-key out"},
		{[]string{"ipam", "vlan-group", "allocate", "lab", "--idempotency-key="}, "the key is empty"},
		{[]string{"ipam", "prefix", "create", "10.0.0.0/24", "--vrf", ""}, "--vrf is empty: give it a value, or leave --vrf out"},
		{[]string{"ipam", "prefix", "create", "10.0.0.0/24", "--gateway", ""}, "--gateway is empty"},
		{[]string{"ipam", "prefix", "allocate", "p1", "--dns-name", ""}, "--dns-name is empty"},
		{[]string{"ipam", "prefix", "allocate-prefix", "p1", "--length", "24", "--tenant", ""}, "--tenant is empty"},
		{[]string{"ipam", "address", "create", "10.0.0.5", "--vrf", ""}, "--vrf is empty"},
		{[]string{"ipam", "vlan-group", "allocate", "lab", "--name", ""}, "--name is empty"},
		{[]string{"ipam", "vni-pool", "create", "p", "--tenant", ""}, "--tenant is empty"},
		{[]string{"ipam", "vrf", "create", "v", "--tenant", ""}, "--tenant is empty"},
		{[]string{"dns", "zone", "create", "z.test", "--tenant", ""}, "--tenant is empty"},
		{[]string{"ipam", "vrf", "list", "--wait", "2s", "-a", "https://127.0.0.1:1"}, "--wait takes effect only with --index"},
	}
	for _, tt := range tests {
		out, stderr, code := runCLI(t, nil, tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.stderr) || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and %q", tt.args, code, out, stderr, tt.stderr)
		}
	}
}

// TestIPAM_PoolUpdate changes a VLAN group and a VNI pool.
func TestIPAM_IDUpdate(t *testing.T) {
	f := newIPAMFakeAPI(t)
	for _, k := range []struct{ pools, ids, label string }{{"vlan-group", "vlan", "VLAN: 100"}, {"vni-pool", "vni", "VNI: 100"}} {
		f.cli(t, 0, "ipam", k.pools, "create", "lab", "--range", "100-199")
		out, _ := f.cli(t, 0, "-o", "json", "ipam", k.pools, "allocate", "lab", "--name", "web")
		var v struct{ ID string }
		if err := json.Unmarshal([]byte(out), &v); err != nil || v.ID == "" {
			t.Fatalf("allocate: %v\n%s", err, out)
		}
		// Only the flags given are sent; an empty value clears.
		out, _ = f.cli(t, 0, "ipam", k.ids, "update", v.ID, "--name", "web-1", "--owner", "vm:101/net0", "--description", "")
		f.checkCall(t, "PATCH /v1/ipam/"+k.ids+"s/"+v.ID)
		f.checkBody(t, `{"name": "web-1", "owner": "vm:101/net0", "description": ""}`)
		squeezed := strings.Join(strings.Fields(strings.ReplaceAll(out, "\n", " | ")), " ")
		for _, want := range []string{k.label + " |", "Name: web-1 |", "Owner: vm:101/net0 |", "Project: - |", "Updated: 2025-"} {
			if !strings.Contains(squeezed, want) {
				t.Errorf("%s update: no %q in\n%s", k.ids, want, out)
			}
		}
		f.cli(t, 0, "ipam", k.ids, "update", v.ID, "--tenant", "acme", "--project", "web")
		f.checkBody(t, `{"tenant": "acme", "project": "web"}`)
		if _, stderr, code := runCLI(t, f.env(), "ipam", k.ids, "update", v.ID); code != 2 || !strings.Contains(stderr, "nothing to update") {
			t.Errorf("%s update without flags: exit %d, %q", k.ids, code, stderr)
		}
		if _, stderr, code := runCLI(t, f.env(), "ipam", k.ids, "update", "nope", "--name", "x"); code != 1 || !strings.Contains(stderr, "not found") {
			t.Errorf("%s update of a missing one: exit %d, %q", k.ids, code, stderr)
		}
	}
}

func TestIPAM_PoolUpdate(t *testing.T) {
	f := newIPAMFakeAPI(t)
	f.cli(t, 0, "ipam", "vlan-group", "create", "lab", "--range", "100-199")
	// update: --range replaces the ranges; only the flags given are sent.
	out, _ := f.cli(t, 0, "ipam", "vlan-group", "update", "lab", "--range", "100-149", "--range", "300", "--description", "")
	f.checkCall(t, "PATCH /v1/ipam/vlan-groups/lab")
	f.checkBody(t, `{"ranges": [{"first": 100, "last": 149}, {"first": 300, "last": 300}], "description": ""}`)
	if !strings.Contains(out, "Ranges:       100-149,300\n") {
		t.Errorf("update:\n%s", out)
	}
	f.cli(t, 0, "ipam", "vni-pool", "create", "ovl", "--range", "5000-5099")
	f.cli(t, 0, "ipam", "vni-pool", "update", "ovl", "--name", "overlay")
	f.checkCall(t, "PATCH /v1/ipam/vni-pools/ovl")
	f.checkBody(t, `{"name": "overlay"}`)
	f.cli(t, 0, "ipam", "vni-pool", "update", "overlay", "--tenant", "acme")
	f.checkBody(t, `{"tenant": "acme"}`)
	f.cli(t, 0, "ipam", "vni-pool", "delete", "overlay")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"lab"}, "nothing to update"},
		{[]string{"lab", "--range", ""}, "--range is empty"},
		{[]string{"lab", "--range", "9-1"}, "invalid --range"},
	} {
		if _, stderr, code := runCLI(t, f.env(), append([]string{"ipam", "vlan-group", "update"}, c.args...)...); code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("update %v: exit %d, %q", c.args, code, stderr)
		}
	}
}

// TestNoteReplayed: a replayed answer and the server's warnings are told
// on stderr, one line each.
func TestNoteReplayed(t *testing.T) {
	var stderr strings.Builder
	a := &app{stderr: &stderr}
	a.noteReplayed(nil)
	a.noteReplayed(&client.Meta{Replayed: true, Warnings: []string{"no DNS zone serves web.moxie.test"}})
	want := "Note: an earlier request with this idempotency key was answered: showing its result.\nWarning: no DNS zone serves web.moxie.test\n"
	if stderr.String() != want {
		t.Fatalf("stderr %q, want %q", stderr.String(), want)
	}
}

// TestReadFlags_WaitFromIndexZero: a blocking loop's first read, --index
// 0 with --wait, is a read, not a usage error.
func TestReadFlags_WaitFromIndexZero(t *testing.T) {
	f := newIPAMFakeAPI(t)
	f.cli(t, 0, "ipam", "vrf", "list", "--index", "0", "--wait", "1s")
	f.checkCall(t, "GET /v1/ipam/vrfs?wait=1s")
}
