package main

import (
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/fsm"
)

// The seeded inventory gives tenant acme two guests (101 and 103): 2
// guests, 6 vCPUs, 10 GiB of memory and 96 GiB of disk.

func TestTenant_CreateGetListUpdateDelete(t *testing.T) {
	p := newPlatformAPI(t)
	out, _ := p.cli(t, 0, "tenant", "create", "acme", "--description", "ACME Corp",
		"--quota", "vcpus=16, memory=64GiB,disk=1TiB,guests=10")
	_, body, _ := p.lastCall()
	checkJSON(t, "create body", body, `{"id": "acme", "description": "ACME Corp",
		"quota": {"vcpus": 16, "memory_mib": 65536, "disk_gib": 1024, "guests": 10}}`)
	want := `ID:           acme
Description:  ACME Corp
Addresses:    0 (IPv4 and IPv6)
Created:      2025-06-01T12:00:05Z
Updated:      2025-06-01T12:00:05Z

RESOURCE        LIMIT  USED   FREE
vcpus           16     6      10
memory_mib      65536  10240  55296
disk_gib        1024   96     928
guests          10     2      8
snapshots       -      0      -
ipv4_addresses  -      0      -
prefixes        -      0      -
vlans           -      0      -
vnis            -      0      -
`
	if out != want {
		t.Errorf("create:\n%s\nwant:\n%s", out, want)
	}
	p.cli(t, 0, "tenant", "create", "globex")
	_, body, _ = p.lastCall()
	checkJSON(t, "create body without quota", body, `{"id": "globex"}`)

	out, _ = p.cli(t, 0, "tenant", "list")
	want = `ID      GUESTS  VCPUS  MEMORY         IPV4  DESCRIPTION
acme    2/10    6/16   10 GiB/64 GiB  0/-   ACME Corp
globex  0/-     0/-    0 MiB/-        0/-   -
`
	if out != want {
		t.Errorf("list:\n%s\nwant:\n%s", out, want)
	}
	out, _ = p.cli(t, 0, "tenant", "list", "-o", "json")
	var list []struct {
		ID    string
		Quota map[string]int64
		Usage []struct {
			Resource string
			Limit    *int64
			Used     int64
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 2 || list[0].ID != "acme" || list[0].Quota["guests"] != 10 ||
		len(list[0].Usage) != 9 || list[0].Usage[3].Resource != "guests" || list[0].Usage[3].Used != 2 || list[1].Usage[3].Limit != nil {
		t.Errorf("list -o json: %v\n%s", err, out)
	}

	// --quota replaces the whole quota; --clear-quota removes it.
	out, _ = p.cli(t, 0, "tenant", "update", "acme", "--quota", "guests=1")
	_, body, _ = p.lastCall()
	checkJSON(t, "update body", body, `{"quota": {"guests": 1}}`)
	want = `ID:           acme
Description:  ACME Corp
Addresses:    0 (IPv4 and IPv6)
Created:      2025-06-01T12:00:05Z
Updated:      2025-06-01T12:00:07Z

RESOURCE        LIMIT  USED   FREE
vcpus           -      6      -
memory_mib      -      10240  -
disk_gib        -      96     -
guests          1      2      0
snapshots       -      0      -
ipv4_addresses  -      0      -
prefixes        -      0      -
vlans           -      0      -
vnis            -      0      -
`
	if out != want {
		t.Errorf("update below usage:\n%s\nwant:\n%s", out, want)
	}
	p.cli(t, 0, "tenant", "update", "acme", "--description", "")
	_, body, _ = p.lastCall()
	checkJSON(t, "update description", body, `{"description": ""}`)
	out, _ = p.cli(t, 0, "tenant", "update", "acme", "--clear-quota", "-o", "json")
	_, body, _ = p.lastCall()
	checkJSON(t, "clear quota", body, `{"quota": {}}`)
	if !strings.Contains(out, `"quota": {}`) {
		t.Errorf("cleared:\n%s", out)
	}

	out, _ = p.cli(t, 0, "tenant", "delete", "globex")
	if out != "Tenant globex deleted\n" {
		t.Errorf("delete: %q", out)
	}
	_, stderr := p.cli(t, 1, "tenant", "delete", "acme")
	if !strings.Contains(stderr, "Error: 409 conflict: tenant acme still holds 6 vcpus; release them first") {
		t.Errorf("delete a tenant holding guests: %s", stderr)
	}
	_, stderr = p.cli(t, 1, "tenant", "get", "globex")
	if !strings.HasPrefix(plain(stderr), `Error: 404 not_found: tenant "globex" not found (field id, request <req>)`) {
		t.Errorf("get deleted: %s", stderr)
	}
}

func TestProject_CreateGetListUpdateDelete(t *testing.T) {
	p := newPlatformAPI(t)
	p.cli(t, 0, "tenant", "create", "acme")
	out, _ := p.cli(t, 0, "project", "create", "acme", "web", "--description", "front end", "--quota", "guests=2,memory=4096MiB")
	call, body, _ := p.lastCall()
	if call != "POST /v1/tenants/acme/projects" {
		t.Errorf("create: %s", call)
	}
	checkJSON(t, "create body", body, `{"name": "web", "description": "front end", "quota": {"guests": 2, "memory_mib": 4096}}`)
	want := `ID:           acme/web
Tenant:       acme
Name:         web
Description:  front end
Addresses:    0 (IPv4 and IPv6)
Created:      2025-06-01T12:00:06Z
Updated:      2025-06-01T12:00:06Z

RESOURCE        LIMIT  USED  FREE
vcpus           -      0     -
memory_mib      4096   0     4096
disk_gib        -      0     -
guests          2      0     2
snapshots       -      0     -
ipv4_addresses  -      0     -
prefixes        -      0     -
vlans           -      0     -
vnis            -      0     -
`
	if out != want {
		t.Errorf("create:\n%s\nwant:\n%s", out, want)
	}
	if got, _ := p.cli(t, 0, "project", "get", "acme", "web"); got != want {
		t.Errorf("get:\n%s\nwant:\n%s", got, want)
	}
	p.cli(t, 0, "project", "create", "acme", "db")

	out, _ = p.cli(t, 0, "project", "list", "acme")
	want = `NAME  GUESTS  VCPUS  MEMORY       IPV4  DESCRIPTION
db    0/-     0/-    0 MiB/-      0/-   -
web   0/2     0/-    0 MiB/4 GiB  0/-   front end
`
	if out != want {
		t.Errorf("list:\n%s\nwant:\n%s", out, want)
	}

	p.cli(t, 0, "project", "update", "acme", "web", "--quota", "vcpus=4", "--description", "web tier")
	call, body, _ = p.lastCall()
	if call != "PATCH /v1/tenants/acme/projects/web" {
		t.Errorf("update: %s", call)
	}
	checkJSON(t, "update body", body, `{"description": "web tier", "quota": {"vcpus": 4}}`)

	_, stderr := p.cli(t, 1, "tenant", "delete", "acme")
	if !strings.Contains(stderr, "tenant acme still has projects") {
		t.Errorf("delete a tenant with projects: %s", stderr)
	}
	out, _ = p.cli(t, 0, "project", "delete", "acme", "web")
	if out != "Project acme/web deleted\n" {
		t.Errorf("delete: %q", out)
	}
	_, stderr = p.cli(t, 1, "project", "create", "nope", "web")
	if !strings.Contains(stderr, "Error: 404 not_found:") {
		t.Errorf("project of a missing tenant: %s", stderr)
	}
}

func TestTenant_UsageErrors(t *testing.T) {
	p := newPlatformAPI(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"tenant", "create", "x", "--quota", "vcpus"}, `--quota "vcpus": "vcpus" is not resource=number`},
		{[]string{"tenant", "create", "x", "--quota", "vcpus=16,guests=lots"}, `--quota "guests=lots": guests must be a whole number of at least 0, got "lots"`},
		{[]string{"tenant", "create", "x", "--quota", "cpus=4"}, `--quota "cpus=4": unknown resource "cpus"`},
		{[]string{"tenant", "create", "x", "--quota", ""}, `--quota is empty`},
		{[]string{"project", "create", "acme", "web", "--quota", "memory=64"}, `--quota "memory=64": "64" needs a unit: MiB, GiB or TiB`},
		{[]string{"tenant", "update", "x", "--quota", "memory=1GiB,memory_mib=2"}, `--quota "memory_mib=2": memory_mib is limited twice`},
		{[]string{"tenant", "update", "x", "--quota", "guests=1", "--clear-quota"}, "give --quota or --clear-quota, not both"},
		{[]string{"tenant", "update", "x"}, "nothing to update: give --description, --quota or --clear-quota"},
		{[]string{"project", "update", "acme"}, "moxxiectl project update needs TENANT NAME, got 1 argument(s)"},
	} {
		_, stderr, code := runCLI(t, p.env(), tt.args...)
		if code != exitUsage || !strings.HasPrefix(stderr, "Error: "+tt.want) {
			t.Errorf("%q: exit %d, %s\nwant %s", tt.args, code, stderr, tt.want)
		}
	}
	if n := p.callCount(); n != 0 {
		t.Errorf("%d requests made", n)
	}
}

func TestParseQuota(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want map[string]int64
		err  string
	}{
		{"vcpus=16,memory_mib=65536,guests=10", map[string]int64{"vcpus": 16, "memory_mib": 65536, "guests": 10}, ""},
		{" snapshots = 0 , ipv4_addresses=5,prefixes=1,vlans=2,vnis=3,disk_gib=100", map[string]int64{
			"snapshots": 0, "ipv4_addresses": 5, "prefixes": 1, "vlans": 2, "vnis": 3, "disk_gib": 100}, ""},
		{"memory=512MiB", map[string]int64{"memory_mib": 512}, ""},
		{"memory=64GiB", map[string]int64{"memory_mib": 65536}, ""},
		{"memory=2tib", map[string]int64{"memory_mib": 2 << 20}, ""},
		{"memory=8 GiB", map[string]int64{"memory_mib": 8192}, ""},
		{"disk=500GiB", map[string]int64{"disk_gib": 500}, ""},
		{"disk=2048MiB", map[string]int64{"disk_gib": 2}, ""},
		{"disk=3TiB", map[string]int64{"disk_gib": 3072}, ""},
		{"disk=1000MiB", nil, `"1000MiB" is not a whole number of GiB`},
		{"disk=500", nil, `"500" needs a unit`},
		{"disk=500GB", nil, `"500GB" needs a unit`},
		{"memory=1.5GiB", nil, `"1.5GiB" is not a whole number of MiB, GiB or TiB`},
		{"memory=-1GiB", nil, `"-1GiB" is not a whole number`},
		{"memory=9999999999999999TiB", nil, `"9999999999999999TiB" is too large`},
		{"vcpus=-1", nil, `vcpus must be a whole number of at least 0, got "-1"`},
		{"vcpus=16,", nil, `"" is not resource=number`},
		{"=16", nil, `"=16" is not resource=number`},
		{"vcpus=1,vcpus=2", nil, "vcpus is limited twice"},
	} {
		got, err := parseQuota(tt.in)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("parseQuota(%q) error %v, want %q", tt.in, err, tt.err)
		case tt.err == "" && err != nil:
			t.Errorf("parseQuota(%q): %v", tt.in, err)
		case tt.err == "" && !maps.Equal(got, tt.want):
			t.Errorf("parseQuota(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestTenant_QuotaExceeded runs allocations and VM creates past quotas
// on the real API and checks that the refusal prints the server's words.
func TestTenant_QuotaExceeded(t *testing.T) {
	p := newPlatformAPI(t)
	p.cli(t, 0, "tenant", "create", "acme", "--quota", "ipv4_addresses=2,guests=3")
	// The gateway reserved with the prefix is the tenant's first address.
	pfx := p.createPrefix(t, "10.0.0.0/24", "--gateway", "10.0.0.1", "--tenant", "acme")
	p.cli(t, 0, "ipam", "prefix", "allocate", pfx, "--tenant", "acme")
	_, stderr := p.cli(t, 1, "ipam", "prefix", "allocate", pfx, "--tenant", "acme")
	if want := "Error: 409 quota_exceeded: quota ipv4_addresses of tenant acme exceeded: limit 2, usage 2, request 1 (request <req>)\n"; plain(stderr) != want {
		t.Errorf("allocate:\n%s\nwant:\n%s", stderr, want)
	}
	// An address without a tenant is not counted.
	p.cli(t, 0, "ipam", "prefix", "allocate", pfx)

	// A project's quota applies as well as its tenant's.
	p.cli(t, 0, "project", "create", "acme", "web", "--quota", "guests=0")
	_, stderr = p.cli(t, 1, "vm", "create", "web2", "--template", "ubuntu-24.04", "--tenant", "acme", "--project", "web")
	if want := "Error: 409 quota_exceeded: quota guests of project acme/web exceeded: limit 0, usage 0, request 1 (request <req>)\n"; plain(stderr) != want {
		t.Errorf("vm create in project:\n%s\nwant:\n%s", stderr, want)
	}
	body, _ := p.findCall(t, "POST /v1/vms")
	checkJSON(t, "vm create body", body, `{"name": "web2", "template": "ubuntu-24.04", "tenant": "acme", "project": "web"}`)

	// A VM create reserves its size from admission: the third guest takes
	// the last one, and a fourth is refused while the third is in flight.
	p.cli(t, 0, "vm", "create", "web2", "--template", "ubuntu-24.04", "--tenant", "acme")
	_, stderr = p.cli(t, 1, "vm", "create", "web3", "--template", "ubuntu-24.04", "--tenant", "acme")
	if want := "Error: 409 quota_exceeded: quota guests of tenant acme exceeded: limit 3, usage 3, request 1 (request <req>)\n"; plain(stderr) != want {
		t.Errorf("vm create:\n%s\nwant:\n%s", stderr, want)
	}
	out, _ := p.cli(t, 0, "tenant", "list")
	want := `ID    GUESTS  VCPUS  MEMORY    IPV4  DESCRIPTION
acme  3/3     8/-    12 GiB/-  2/2   -
`
	if out != want {
		t.Errorf("list:\n%s\nwant:\n%s", out, want)
	}
}

// TestTenant_TenantToken checks that a tenant token sees its own tenant
// only, and changes none.
func TestTenant_TenantToken(t *testing.T) {
	p := newPlatformAPI(t)
	p.cli(t, 0, "tenant", "create", "acme")
	p.cli(t, 0, "tenant", "create", "globex")
	p.mustApply(t, &fsm.TokenCreateRequest{Token: fsm.Token{AccessorID: "acc-acme", SecretHash: api.HashSecret("tok-acme"),
		Role: "tenant-admin", Tenant: "acme"}})
	env := p.env()
	env[envToken] = "tok-acme"
	out, stderr, code := runCLI(t, env, "tenant", "list")
	if code != 0 || !strings.Contains(out, "\nacme ") || strings.Contains(out, "globex") {
		t.Errorf("list: exit %d\n%s%s", code, out, stderr)
	}
	if _, stderr, code = runCLI(t, env, "tenant", "get", "globex"); code != 1 || !strings.Contains(stderr, "404 not_found") {
		t.Errorf("get another tenant: exit %d, %s", code, stderr)
	}
	if _, stderr, code = runCLI(t, env, "tenant", "update", "acme", "--clear-quota"); code != 1 || !strings.Contains(stderr, "403 forbidden") {
		t.Errorf("update: exit %d, %s", code, stderr)
	}
}

// TestTenant_ProjectFlags checks that --project reaches the address
// requests and shows in their answers.
func TestTenant_ProjectFlags(t *testing.T) {
	addr := map[string]any{"id": "a1", "address": "10.0.0.2", "prefix_id": "p1", "vrf": "global", "status": "active",
		"tenant": "acme", "project": "web", "create_index": 7, "modify_index": 7, "created_at": fakeTime, "updated_at": fakeTime}
	f := newRecorder(t, map[string]any{
		"POST /v1/ipam/prefixes/p1/allocate": map[string]any{"addresses": []any{addr}},
		"PATCH /v1/ipam/addresses/a1":        addr,
	})
	out, stderr, code := runCLI(t, f.env, "ipam", "prefix", "allocate", "p1", "--tenant", "acme", "--project", "web")
	if code != 0 {
		t.Fatalf("allocate: exit %d, %s", code, stderr)
	}
	checkJSON(t, "allocate body", f.lastBody(), `{"count": 1, "tenant": "acme", "project": "web"}`)
	want := `ADDRESS   VRF     DNS NAME  STATUS  OWNER  TENANT    ID
10.0.0.2  global  -         active  -      acme/web  a1
`
	if out != want {
		t.Errorf("allocate:\n%s\nwant:\n%s", out, want)
	}
	out, stderr, code = runCLI(t, f.env, "ipam", "address", "update", "a1", "--project", "web")
	if code != 0 {
		t.Fatalf("update: exit %d, %s", code, stderr)
	}
	checkJSON(t, "update body", f.lastBody(), `{"project": "web"}`)
	if !strings.Contains(out, "\nTenant:       acme\nProject:      web\nOwner:        -\n") {
		t.Errorf("update:\n%s", out)
	}
	runCLI(t, f.env, "ipam", "address", "update", "a1", "--project", "")
	checkJSON(t, "clear project", f.lastBody(), `{"project": ""}`)
}

// recorder is a TLS server that answers each "METHOD path" with a fixed
// body and records the request bodies.
type recorder struct {
	env    map[string]string
	mu     sync.Mutex
	bodies []string // guarded by mu
}

func newRecorder(t *testing.T, answers map[string]any) *recorder {
	t.Helper()
	f := &recorder{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.bodies = append(f.bodies, string(body))
		f.mu.Unlock()
		v, ok := answers[r.Method+" "+r.URL.Path]
		if !ok {
			writeErr(w, 404, "not_found", "no route "+r.URL.Path, "")
			return
		}
		writeJSON(w, 200, v)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	f.env = map[string]string{envAddr: srv.URL, envToken: "tok", envCACert: ca}
	return f
}

func (f *recorder) lastBody() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bodies[len(f.bodies)-1]
}
