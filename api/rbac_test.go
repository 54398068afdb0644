package api

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/auth"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the generated table of docs/security.md")

// pathParam matches a path template parameter such as {id}.
var pathParam = regexp.MustCompile(`\{[a-z_]+\}`)

// concretePath fills the parameters of an OpenAPI path template with
// values of the right shape.
func concretePath(template string) string {
	return pathParam.ReplaceAllStringFunc(template, func(p string) string {
		if p == "{vmid}" {
			return "101"
		}
		return "x"
	})
}

// documentedRoutes returns every "METHOD /path" of openapi.json, sorted.
func documentedRoutes(t *testing.T) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	mustJSON(t, OpenAPI(), &doc)
	var out []string
	for path, ops := range doc.Paths {
		for method := range ops {
			switch m := strings.ToUpper(method); m {
			case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
				out = append(out, m+" "+path)
			}
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		t.Fatal("openapi.json documents no operations")
	}
	return out
}

// matrixQuery holds the query strings the matrix sends to routes that
// would otherwise take long: a CPU profile runs 30 seconds by default.
var matrixQuery = map[string]string{
	"GET /debug/pprof/profile": "seconds=0.05",
	"GET /debug/pprof/trace":   "seconds=0.05",
}

// TestRBAC_RoleByRouteMatrix calls every documented route with a token of
// every role, and checks the answer against the policy: 403 exactly when
// auth.Authorize denies, and neither 401 nor 403 when it allows. Whatever
// else the handler answers (400 or 404 for the empty requests sent here)
// does not matter. A documented route that is not routed, or routed
// without a declared permission, fails.
func TestRBAC_RoleByRouteMatrix(t *testing.T) {
	ts := newLeader(t)
	ts.b.platform = "proxmox"
	routes := map[string]Route{}
	for _, r := range Routes() {
		routes[r.Pattern()] = r
	}
	type caller struct {
		role   auth.Role
		tenant string
		secret string
	}
	var callers []caller
	for _, role := range auth.Roles {
		tenant := ""
		if role.Tenanted() {
			tenant = "acme"
		}
		callers = append(callers, caller{role, tenant, ts.createToken(role, tenant).SecretID})
	}

	allowed, denied := 0, 0
	documented := documentedRoutes(t)
	for _, pattern := range documented {
		rt, ok := routes[pattern]
		if !ok {
			t.Errorf("%s: documented but not routed", pattern)
			continue
		}
		if rt.Perm == "" {
			t.Errorf("%s: declares no permission", pattern)
			continue
		}
		method, path, _ := strings.Cut(pattern, " ")
		target := concretePath(path)
		if q := matrixQuery[pattern]; q != "" {
			target += "?" + q
		}
		body := ""
		if method != http.MethodGet && method != http.MethodDelete {
			body = "{}"
		}

		rec := ts.do(method, target, body, "Authorization", "")
		if rt.Auth() && rec.Code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d, want 401", pattern, rec.Code)
		}
		if !rt.Auth() && (rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden) {
			t.Errorf("%s is public but answers %d without a token", pattern, rec.Code)
		}

		for _, c := range callers {
			d := auth.Authorize(c.role, c.tenant, rt.Perm, rt.Scope)
			if d.Allowed {
				allowed++
			} else {
				denied++
			}
			rec := ts.do(method, target, body, "Authorization", "Bearer "+c.secret)
			switch {
			case !d.Allowed && rec.Code != http.StatusForbidden:
				t.Errorf("%s as %s: %d, want 403 (%s); body %s", pattern, c.role, rec.Code, d.Reason, rec.Body)
			case !d.Allowed:
				var er ErrorResponse
				mustJSON(t, rec.Body.Bytes(), &er)
				if er.Error.Code != CodeForbidden || er.Error.Message != d.Reason {
					t.Errorf("%s as %s: error %+v, want %q", pattern, c.role, er.Error, d.Reason)
				}
			case rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden:
				t.Errorf("%s as %s: %d, want it allowed; body %s", pattern, c.role, rec.Code, rec.Body)
			}
		}
	}
	t.Logf("%d routes by %d roles: %d calls allowed, %d denied", len(documented), len(callers), allowed, denied)
	if allowed == 0 || denied == 0 {
		t.Fatal("the matrix checked nothing")
	}
}

// TestRBAC_Policy spot-checks the policy the matrix relies on, so that a
// change to the grants that loosens them is seen here too.
func TestRBAC_Policy(t *testing.T) {
	routes := map[string]Route{}
	for _, r := range Routes() {
		routes[r.Pattern()] = r
	}
	for _, c := range []struct {
		pattern string
		role    auth.Role
		allowed bool
	}{
		{"POST /v1/acl/tokens", auth.RoleAdmin, true},
		{"POST /v1/acl/tokens", auth.RoleOperator, false},
		{"GET /v1/acl/tokens", auth.RoleAuditor, true},
		{"DELETE /v1/acl/tokens/{accessor_id}", auth.RoleAuditor, false},
		{"PUT /v1/snapshot", auth.RoleOperator, false},
		{"GET /v1/snapshot", auth.RoleOperator, true},
		{"PUT /v1/cluster/settings/{key}", auth.RoleAuditor, false},
		{"GET /v1/ipam/prefixes", auth.RoleTenantViewer, true},
		{"POST /v1/ipam/prefixes", auth.RoleTenantAdmin, false},
		{"POST /v1/ipam/prefixes/{id}/allocate", auth.RoleTenantUser, true},
		{"POST /v1/ipam/prefixes/{id}/allocate", auth.RoleTenantViewer, false},
		{"POST /v1/vms", auth.RoleTenantAdmin, true},
		{"POST /v1/vms", auth.RoleTenantUser, false},
		{"POST /v1/vms/{vmid}/start", auth.RoleTenantUser, true},
		{"GET /v1/inventory/nodes", auth.RoleTenantAdmin, false},
		{"GET /v1/status", auth.RoleTenantAdmin, false},
		{"GET /v1/status", auth.RoleAgent, true},
		{"GET /v1/ipam/prefixes", auth.RoleAgent, false},
		{"POST /v1/vms", auth.RoleAuditor, false},
		{"POST /v1/sdn/apply", auth.RoleOperator, true},
		{"POST /v1/sdn/apply", auth.RoleAuditor, false},
		{"POST /v1/sdn/apply", auth.RoleAgent, false},
		{"GET /v1/sdn/status", auth.RoleAuditor, true},
		{"GET /v1/sdn/vnets", auth.RoleTenantAdmin, false},
		{"PUT /v1/sdn/zones/{id}", auth.RoleAgent, false},
		{"PUT /v1/sdn/hosts/{name}", auth.RoleAgent, true},
		{"PUT /v1/sdn/hosts/{name}", auth.RoleOperator, false},
		{"PUT /v1/sdn/hosts/{name}", auth.RoleAdmin, true},
		{"GET /v1/sdn/hosts/{name}/plan", auth.RoleAgent, true},
		{"GET /v1/sdn/hosts/{name}/plan", auth.RoleAuditor, false},
		{"POST /v1/sdn/hosts/{name}/report", auth.RoleAgent, true},
		{"DELETE /v1/sdn/hosts/{name}", auth.RoleAgent, false},
		{"GET /v1/sdn/hosts", auth.RoleAgent, false},
	} {
		rt, ok := routes[c.pattern]
		if !ok {
			t.Errorf("no route %s", c.pattern)
			continue
		}
		tenant := ""
		if c.role.Tenanted() {
			tenant = "acme"
		}
		if d := auth.Authorize(c.role, tenant, rt.Perm, rt.Scope); d.Allowed != c.allowed {
			t.Errorf("%s as %s: allowed %v, want %v (%s)", c.pattern, c.role, d.Allowed, c.allowed, d.Reason)
		}
	}
}

func TestRBAC_EveryRouteDeclaresAPermission(t *testing.T) {
	if err := checkRoutes(routeTable); err != nil {
		t.Fatal(err)
	}
	handle := func(*server, *call) error { return nil }
	for _, c := range []struct {
		rt   route
		want string
	}{
		{route{Route{Method: http.MethodGet, Path: "/v1/new"}, bodyNone, handle},
			"api: route GET /v1/new declares no permission"},
		{route{Route{Method: http.MethodGet, Path: "/v1/new", Perm: "ipam:raed"}, bodyNone, handle},
			`api: route GET /v1/new needs permission "ipam:raed", which no role holds`},
		{route{Route{Method: http.MethodGet, Path: "/v1/new", Perm: auth.PermIPAMRead}, bodyNone, nil},
			"api: route GET /v1/new has no handler"},
	} {
		err := checkRoutes(append(slices.Clone(routeTable), c.rt))
		if err == nil || err.Error() != c.want {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}

// Markers around the generated table in docs/security.md.
const (
	roleTableBegin = "<!-- BEGIN role table: generated from package auth; go test ./api -run SecurityDoc -update-docs -->"
	roleTableEnd   = "<!-- END role table -->"
)

// roleTable renders auth's grants as a Markdown table: one row per
// permission (in the order the roles first name them), one column per
// role.
func roleTable() string {
	var perms []auth.Permission
	for _, r := range auth.Roles {
		for _, p := range auth.Grants(r) {
			if !slices.Contains(perms, p) {
				perms = append(perms, p)
			}
		}
	}
	var b strings.Builder
	b.WriteString("| permission |")
	for _, r := range auth.Roles {
		fmt.Fprintf(&b, " %s |", r)
	}
	b.WriteString("\n|---|")
	b.WriteString(strings.Repeat("---|", len(auth.Roles)))
	b.WriteString("\n")
	for _, p := range perms {
		fmt.Fprintf(&b, "| `%s` |", p)
		for _, r := range auth.Roles {
			mark := " "
			if slices.Contains(auth.Grants(r), p) {
				mark = "✓"
			}
			fmt.Fprintf(&b, " %s |", mark)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestSecurityDoc_RoleTable checks that the role table of
// docs/security.md is the one auth's grants make, so the document never
// drifts from the policy. -update-docs rewrites it.
func TestSecurityDoc_RoleTable(t *testing.T) {
	path := filepath.Join("..", "docs", "security.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	before, rest, ok1 := strings.Cut(doc, roleTableBegin+"\n")
	table, after, ok2 := strings.Cut(rest, roleTableEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the markers %q and %q", path, roleTableBegin, roleTableEnd)
	}
	want := roleTable()
	if table == want {
		return
	}
	if *updateDocs {
		if err := os.WriteFile(path, []byte(before+roleTableBegin+"\n"+want+roleTableEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the role table of %s differs from auth's grants; run go test ./api -run SecurityDoc -update-docs. Want:\n%s", path, want)
}
