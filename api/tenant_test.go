package api

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/auth"
	"github.com/moxxie/moxxie/fsm"
)

// tenantWorld is a cluster holding the objects of two tenants, acme and
// globex, and a few shared ones: for each, a VRF, a prefix, an address, a
// VLAN group and a VLAN, a VNI pool, a zone, VMs in the inventory and an
// operation on one of them.
type tenantWorld struct {
	*testServer
	// id names each object by what it is, e.g. "prefix acme".
	id map[string]string
}

// as returns the Authorization header pair of a new token.
func (w *tenantWorld) as(role auth.Role, tenant string) []string {
	return []string{"Authorization", "Bearer " + w.createToken(role, tenant).SecretID}
}

// create posts body to path as the admin and returns the new object's
// JSON field key.
func (w *tenantWorld) create(path, body, key string) string {
	w.t.Helper()
	var out map[string]any
	mustJSON(w.t, wantStatus(w.t, w.do("POST", path, body), http.StatusCreated), &out)
	if l, ok := out["addresses"].([]any); ok {
		out = l[0].(map[string]any)
	}
	v, _ := out[key].(string)
	if v == "" {
		w.t.Fatalf("%s: no %s in %v", path, key, out)
	}
	return v
}

func newTenantWorld(t *testing.T) *tenantWorld {
	t.Helper()
	w := &tenantWorld{testServer: newLeader(t), id: map[string]string{}}
	w.b.platform = "proxmox"
	for i, tenant := range []string{"acme", "globex"} {
		n := strconv.Itoa(i + 1)
		w.id["tenant "+tenant] = w.create("/v1/tenants", `{"id":"`+tenant+`","quota":{"guests":10}}`, "id")
		w.id["project "+tenant] = w.create("/v1/tenants/"+tenant+"/projects", `{"name":"web"}`, "id")
		w.id["vrf "+tenant] = w.create("/v1/ipam/vrfs", `{"id":"vrf-`+tenant+`","tenant":"`+tenant+`"}`, "id")
		p := w.create("/v1/ipam/prefixes", `{"prefix":"10.`+n+`.0.0/24","tenant":"`+tenant+`"}`, "id")
		w.id["prefix "+tenant] = p
		w.id["address "+tenant] = w.create("/v1/ipam/prefixes/"+p+"/allocate", `{"tenant":"`+tenant+`"}`, "id")
		w.id["range "+tenant] = w.create("/v1/ipam/ip-ranges", `{"prefix_id":"`+p+`","start_address":"10.`+n+`.0.200","end_address":"10.`+n+`.0.210"}`, "id")
		g := w.create("/v1/ipam/vlan-groups", `{"name":"vlans-`+tenant+`","tenant":"`+tenant+`"}`, "id")
		w.id["vlan group "+tenant] = g
		w.id["vlan "+tenant] = w.create("/v1/ipam/vlan-groups/"+g+"/allocate", `{"tenant":"`+tenant+`"}`, "id")
		// VNI pools may not share numbers: each tenant's has its own.
		v := w.create("/v1/ipam/vni-pools", `{"name":"vnis-`+tenant+`","tenant":"`+tenant+`","ranges":[{"first":`+n+`000,"last":`+n+`999}]}`, "id")
		w.id["vni pool "+tenant] = v
		w.id["vni "+tenant] = w.create("/v1/ipam/vni-pools/"+v+"/allocate", `{"tenant":"`+tenant+`"}`, "id")
		w.id["zone "+tenant] = w.create("/v1/dns/zones", `{"name":"`+tenant+`.test","tenant":"`+tenant+`"}`, "id")
	}
	w.id["prefix shared"] = w.create("/v1/ipam/prefixes", `{"prefix":"10.9.0.0/24"}`, "id")

	guest := func(vmid int, tenant string, template bool) fsm.InvGuest {
		return fsm.InvGuest{VMID: vmid, Kind: fsm.GuestKindVM, Node: "pve1", Name: "vm" + strconv.Itoa(vmid), Status: "stopped",
			Template: template, Tenant: tenant, MaxCPU: 2, MaxMem: 2 << 30, MaxDisk: 10 << 30}
	}
	sync := &fsm.InventorySyncRequest{
		WriteMeta: fsm.WriteMeta{Now: w.b.Now().UnixNano()},
		Nodes:     []fsm.InvNode{{Name: "pve1", Status: "online", MaxCPU: 16, MaxMem: 64 << 30, MaxDisk: 1 << 40}},
		Guests: []fsm.InvGuest{
			guest(101, "acme", false), guest(102, "globex", false), guest(103, "acme", false), guest(104, "globex", false),
			guest(9000, "", true), guest(9001, "globex", true),
		},
	}
	if res, _, err := w.b.Apply(t.Context(), sync); err != nil || res.Err != nil {
		t.Fatalf("inventory sync: %v %v", err, res.Err)
	}
	w.id["op acme"] = w.create202("/v1/vms/101/start", "")
	w.id["op globex"] = w.create202("/v1/vms/102/start", "")
	w.addStorage()
	return w
}

// create202 posts as the admin and returns the ID of the operation
// recorded.
func (w *tenantWorld) create202(path, body string) string {
	w.t.Helper()
	var op fsm.Operation
	mustJSON(w.t, wantStatus(w.t, w.do("POST", path, body), http.StatusAccepted), &op)
	return op.ID
}

// ids returns the "id" (or "vmid") of every object of the list in field.
func ids(t *testing.T, body []byte, field string) []string {
	t.Helper()
	var out map[string][]map[string]any
	mustJSON(t, body, &out)
	var l []string
	for _, o := range out[field] {
		switch v := o["id"].(type) {
		case string:
			l = append(l, v)
		default:
			l = append(l, strconv.Itoa(int(o["vmid"].(float64))))
		}
	}
	return l
}

// listCase is a list read and what a tenant-viewer of acme gets;
// narrowed says the path itself is of acme's, so the admin gets the same.
type listCase struct {
	path, field string
	want        []string
	narrowed    bool
}

func (w *tenantWorld) listCases() []listCase {
	return append([]listCase{
		{"/v1/ipam/vrfs", "vrfs", []string{w.id["vrf acme"]}, false},
		{"/v1/ipam/prefixes", "prefixes", []string{w.id["prefix acme"]}, false},
		{"/v1/ipam/prefixes?tenant=globex", "prefixes", nil, false},
		{"/v1/ipam/addresses", "addresses", []string{w.id["address acme"]}, false},
		{"/v1/ipam/addresses?tenant=globex", "addresses", nil, false},
		{"/v1/ipam/ip-ranges", "ip_ranges", []string{w.id["range acme"]}, false},
		{"/v1/ipam/vlan-groups", "vlan_groups", []string{w.id["vlan group acme"]}, false},
		{"/v1/ipam/vlans", "vlans", []string{w.id["vlan acme"]}, false},
		{"/v1/ipam/vlans?tenant=globex", "vlans", nil, false},
		{"/v1/ipam/vni-pools", "vni_pools", []string{w.id["vni pool acme"]}, false},
		{"/v1/ipam/vnis", "vnis", []string{w.id["vni acme"]}, false},
		{"/v1/dns/zones", "zones", []string{w.id["zone acme"]}, false},
		{"/v1/inventory/guests", "guests", []string{"101", "103"}, false},
		{"/v1/inventory/guests?tenant=globex", "guests", nil, false},
		{"/v1/operations", "operations", []string{w.id["op acme"], w.id["run acme"]}, false},
		{"/v1/tenants", "tenants", []string{"acme"}, false},
		{"/v1/tenants/acme/projects", "projects", []string{"acme/web"}, true},
	}, w.storageListCases()...)
}

// getCase is the read of one object of acme's and of the same kind of
// object of globex's; field is the path parameter a 404 names.
type getCase struct{ own, other, field string }

func (w *tenantWorld) getCases() []getCase {
	return append([]getCase{
		{"/v1/ipam/vrfs/" + w.id["vrf acme"], "/v1/ipam/vrfs/" + w.id["vrf globex"], "id"},
		{"/v1/ipam/prefixes/" + w.id["prefix acme"], "/v1/ipam/prefixes/" + w.id["prefix globex"], "id"},
		{"/v1/ipam/prefixes/" + w.id["prefix acme"] + "/available", "/v1/ipam/prefixes/" + w.id["prefix globex"] + "/available", "id"},
		{"/v1/ipam/addresses/" + w.id["address acme"], "/v1/ipam/addresses/" + w.id["address globex"], "id"},
		{"/v1/ipam/ip-ranges/" + w.id["range acme"], "/v1/ipam/ip-ranges/" + w.id["range globex"], "id"},
		{"/v1/ipam/vlan-groups/" + w.id["vlan group acme"], "/v1/ipam/vlan-groups/" + w.id["vlan group globex"], "id"},
		{"/v1/ipam/vlan-groups/vlans-acme", "/v1/ipam/vlan-groups/vlans-globex", "id"},
		{"/v1/ipam/vlans/" + w.id["vlan acme"], "/v1/ipam/vlans/" + w.id["vlan globex"], "id"},
		{"/v1/ipam/vni-pools/" + w.id["vni pool acme"], "/v1/ipam/vni-pools/" + w.id["vni pool globex"], "id"},
		{"/v1/ipam/vnis/" + w.id["vni acme"], "/v1/ipam/vnis/" + w.id["vni globex"], "id"},
		{"/v1/dns/zones/acme.test", "/v1/dns/zones/globex.test", "name"},
		{"/v1/inventory/guests/101", "/v1/inventory/guests/102", "vmid"},
		{"/v1/operations/" + w.id["op acme"], "/v1/operations/" + w.id["op globex"], "id"},
		{"/v1/tenants/acme", "/v1/tenants/globex", "id"},
		{"/v1/tenants/acme/projects", "/v1/tenants/globex/projects", "id"},
		{"/v1/tenants/acme/projects/web", "/v1/tenants/globex/projects/web", "id"},
	}, w.storageGetCases()...)
}

func TestTenant_ViewerListsOnlyItsTenant(t *testing.T) {
	w := newTenantWorld(t)
	viewer := w.as(auth.RoleTenantViewer, "acme")
	for _, c := range w.listCases() {
		got := ids(t, wantStatus(t, w.do("GET", c.path, "", viewer...), 200), c.field)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.path, got, c.want)
		}
		// The admin sees both tenants' (where the query does not narrow it).
		if all := ids(t, wantStatus(t, w.do("GET", c.path, ""), 200), c.field); len(all) <= len(c.want) && len(c.want) > 0 && !c.narrowed {
			t.Errorf("%s: the admin sees %v", c.path, all)
		}
	}
}

// TestTenant_AddressPagesShowNothingOfOthers lists addresses in pages of
// one: another tenant's are neither listed nor pointed at by a cursor,
// which would say where they are.
func TestTenant_AddressPagesShowNothingOfOthers(t *testing.T) {
	w := newTenantWorld(t)
	user := w.as(auth.RoleTenantUser, "acme")
	// Give globex more than a page of addresses.
	wantStatus(t, w.do("POST", "/v1/ipam/prefixes/"+w.id["prefix globex"]+"/allocate", `{"count":3,"tenant":"globex"}`), http.StatusCreated)
	for _, q := range []string{"?tenant=globex&limit=1", "?owner=vm:1/net0&limit=1", "?limit=1&prefix_id=" + w.id["prefix acme"]} {
		var page AddressList
		mustJSON(t, wantStatus(t, w.do("GET", "/v1/ipam/addresses"+q, "", user...), 200), &page)
		for _, a := range page.Addresses {
			if a.Tenant != "acme" {
				t.Errorf("%s: listed %s of tenant %q", q, a.Address, a.Tenant)
			}
		}
		if strings.HasPrefix(q, "?tenant=globex") && (len(page.Addresses) != 0 || page.Next != "") {
			t.Errorf("%s: %d addresses, next %q; want none and no cursor", q, len(page.Addresses), page.Next)
		}
	}
	// Its own addresses page as usual, every cursor its own.
	wantStatus(t, w.do("POST", "/v1/ipam/prefixes/"+w.id["prefix acme"]+"/allocate", `{"count":2}`, user...), http.StatusCreated)
	seen, after := 0, ""
	for range 10 {
		var page AddressList
		mustJSON(t, wantStatus(t, w.do("GET", "/v1/ipam/addresses?limit=1&after="+after, "", user...), 200), &page)
		for _, a := range page.Addresses {
			if a.Tenant != "acme" {
				t.Fatalf("page after %q: %s of tenant %q", after, a.Address, a.Tenant)
			}
			seen++
		}
		if after = page.Next; after == "" {
			break
		}
	}
	if seen != 3 {
		t.Errorf("paged through %d of acme's 3 addresses", seen)
	}
}

func TestTenant_OtherTenantsObjectsAreNotFound(t *testing.T) {
	w := newTenantWorld(t)
	viewer := w.as(auth.RoleTenantViewer, "acme")
	for _, c := range w.getCases() {
		wantStatus(t, w.do("GET", c.own, "", viewer...), 200)
		// Not 403: the answer must not tell that the object exists.
		wantError(t, w.do("GET", c.other, "", viewer...), 404, CodeNotFound, c.field)
		wantStatus(t, w.do("GET", c.other, ""), 200)
	}
	// Shared objects (of no tenant) are not the tenant's either.
	wantError(t, w.do("GET", "/v1/ipam/prefixes/"+w.id["prefix shared"], "", viewer...), 404, CodeNotFound, "id")
	// Nor does a list filtered by another tenant's object: it is refused as
	// an unknown one is.
	for _, c := range []struct{ path, field string }{
		{"/v1/ipam/addresses?prefix_id=" + w.id["prefix globex"], "prefix_id"},
		{"/v1/ipam/vnis?pool_id=vnis-globex", "pool_id"},
	} {
		e := wantError(t, w.do("GET", c.path, "", viewer...), 400, CodeInvalidRequest, c.field)
		if !strings.Contains(e.Message, "not found") {
			t.Errorf("%s: message %q", c.path, e.Message)
		}
		wantStatus(t, w.do("GET", c.path, ""), 200)
	}
	// Cluster-wide routes refuse tenant tokens whatever they hold.
	wantError(t, w.do("GET", "/v1/inventory/nodes", "", viewer...), 403, CodeForbidden, "")
}

// TestTenant_FiltersByTheVRFsOfItsPrefixes: a tenant's prefix in a VRF of
// no tenant (global) or of another tenant makes that VRF one the tenant's
// lists can be filtered by; they list the tenant's objects in it only.
// Another VRF of another tenant stays unknown.
func TestTenant_FiltersByTheVRFsOfItsPrefixes(t *testing.T) {
	w := newTenantWorld(t)
	viewer := w.as(auth.RoleTenantViewer, "acme")
	in := w.create("/v1/ipam/prefixes", `{"prefix":"10.30.0.0/24","vrf":"vrf-globex","tenant":"acme"}`, "id")
	wantStatus(t, w.do("POST", "/v1/ipam/prefixes/"+in+"/allocate", `{"tenant":"acme"}`), http.StatusCreated)
	for _, c := range []struct {
		vrf, prefix, address string
	}{{"global", "10.1.0.0/24", "10.1.0.1"}, {"vrf-globex", "10.30.0.0/24", "10.30.0.1"}} {
		var prefixes PrefixList
		mustJSON(t, wantStatus(t, w.do("GET", "/v1/ipam/prefixes?vrf="+c.vrf, "", viewer...), 200), &prefixes)
		if len(prefixes.Prefixes) != 1 || prefixes.Prefixes[0].Prefix.Prefix != c.prefix {
			t.Errorf("acme's prefixes in VRF %s: %+v, want %s only", c.vrf, prefixes.Prefixes, c.prefix)
		}
		var addrs AddressList
		mustJSON(t, wantStatus(t, w.do("GET", "/v1/ipam/addresses?vrf="+c.vrf, "", viewer...), 200), &addrs)
		if len(addrs.Addresses) != 1 || addrs.Addresses[0].Address != c.address {
			t.Errorf("acme's addresses in VRF %s: %+v, want %s only", c.vrf, addrs.Addresses, c.address)
		}
		mustJSON(t, wantStatus(t, w.do("GET", "/v1/ipam/addresses?address="+c.address+"&vrf="+c.vrf, "", viewer...), 200), &addrs)
		if len(addrs.Addresses) != 1 {
			t.Errorf("acme's %s in VRF %s: %+v", c.address, c.vrf, addrs.Addresses)
		}
	}
	globex := w.as(auth.RoleTenantViewer, "globex")
	wantError(t, w.do("GET", "/v1/ipam/prefixes?vrf=vrf-acme", "", globex...), 400, CodeInvalidRequest, "vrf")
	wantError(t, w.do("GET", "/v1/ipam/addresses?vrf=nope", "", viewer...), 400, CodeInvalidRequest, "vrf")
}

// tenantReadsUnscoped are the tenant-scoped reads that hold no tenant's
// objects (the state of inventory sync, the rate cards) or that are
// tested elsewhere (the reports).
var tenantReadsUnscoped = []string{"GET /v1/inventory", "GET /v1/rate-cards", "GET /v1/rate-cards/{id}",
	// The reports are checked in reports_test.go, backup coverage in
	// storage_test.go.
	"GET /v1/reports/usage", "GET /v1/reports/chargeback", "GET /v1/backups/coverage"}

// TestTenant_EveryTenantReadIsTested fails when a read route open to
// tenant tokens is added without a case above showing that it is scoped.
func TestTenant_EveryTenantReadIsTested(t *testing.T) {
	w := newTenantWorld(t)
	covered := map[string]bool{}
	for _, c := range w.listCases() {
		covered[routeOf(t, c.path)] = true
	}
	for _, c := range w.getCases() {
		covered[routeOf(t, c.own)] = true
	}
	for _, r := range Routes() {
		if r.Method == http.MethodGet && r.Scope == auth.ScopeTenant && !covered[r.Pattern()] && !slices.Contains(tenantReadsUnscoped, r.Pattern()) {
			t.Errorf("%s is open to tenant tokens but no tenant test reads it", r.Pattern())
		}
	}
}

// routeOf returns the pattern of the GET route serving target.
func routeOf(t *testing.T, target string) string {
	t.Helper()
	path, _, _ := strings.Cut(target, "?")
	segs := strings.Split(path, "/")
	for _, r := range Routes() {
		rs := strings.Split(r.Path, "/")
		if r.Method != http.MethodGet || len(rs) != len(segs) {
			continue
		}
		match := true
		for i := range rs {
			if rs[i] != segs[i] && !strings.HasPrefix(rs[i], "{") {
				match = false
				break
			}
		}
		if match {
			return r.Pattern()
		}
	}
	t.Fatalf("no GET route serves %s", target)
	return ""
}

// TestTenant_AllocationsConfinedWhenApplied moves a tenant's prefix to
// another tenant after the handler checked it and before the allocation
// applies: the allocation is refused as if the prefix were missing, and
// nothing is allocated.
func TestTenant_AllocationsConfinedWhenApplied(t *testing.T) {
	w := newTenantWorld(t)
	user := w.as(auth.RoleTenantUser, "acme")
	prefix := "/v1/ipam/prefixes/" + w.id["prefix acme"]
	move := func(tenant string) {
		wantStatus(t, w.do("PATCH", prefix, `{"tenant":"`+tenant+`"}`), http.StatusOK)
	}
	moveFirst := func(tenant string) {
		// The admin's PATCH applies first, through the same backend.
		f := func() { move(tenant) }
		w.b.interpose.Store(&f)
	}
	count := func() int { return len(ids(t, wantStatus(t, w.do("GET", "/v1/ipam/addresses", ""), 200), "addresses")) }
	before := count()

	moveFirst("globex")
	wantError(t, w.do("POST", prefix+"/allocate", `{}`, user...), 404, CodeNotFound, "id")
	move("acme")
	moveFirst("globex")
	wantError(t, w.do("POST", "/v1/ipam/addresses", `{"address":"10.1.0.50"}`, user...), 404, CodeNotFound, "address")
	if n := count(); n != before {
		t.Fatalf("%d addresses allocated from a prefix moved to another tenant", n-before)
	}
	// Back with acme, its token allocates again.
	move("acme")
	wantStatus(t, w.do("POST", "/v1/ipam/addresses", `{"address":"10.1.0.50"}`, user...), http.StatusCreated)
	wantStatus(t, w.do("POST", prefix+"/allocate", `{}`, user...), http.StatusCreated)
}

func TestTenant_UserAllocatesOnlyFromItsPrefixes(t *testing.T) {
	w := newTenantWorld(t)
	user := w.as(auth.RoleTenantUser, "acme")
	before := w.b.applies.Load()

	// Another tenant's prefix, pool, address and VLAN are missing.
	wantError(t, w.do("POST", "/v1/ipam/prefixes/"+w.id["prefix globex"]+"/allocate", `{}`, user...), 404, CodeNotFound, "id")
	wantError(t, w.do("POST", "/v1/ipam/prefixes/"+w.id["prefix shared"]+"/allocate", `{}`, user...), 404, CodeNotFound, "id")
	wantError(t, w.do("POST", "/v1/ipam/addresses", `{"address":"10.2.0.50"}`, user...), 404, CodeNotFound, "address")
	wantError(t, w.do("POST", "/v1/ipam/vlan-groups/"+w.id["vlan group globex"]+"/allocate", `{}`, user...), 404, CodeNotFound, "id")
	// An Idempotency-Key does not pass another tenant's pool on to the command.
	wantError(t, w.do("POST", "/v1/ipam/vlan-groups/vlans-globex/allocate", `{}`, append(user, "Idempotency-Key", "k1")...), 404, CodeNotFound, "id")
	wantError(t, w.do("PATCH", "/v1/ipam/addresses/"+w.id["address globex"], `{"owner":"vm:1/net0"}`, user...), 404, CodeNotFound, "id")
	wantError(t, w.do("DELETE", "/v1/ipam/addresses/"+w.id["address globex"], "", user...), 404, CodeNotFound, "id")
	wantError(t, w.do("DELETE", "/v1/ipam/vlans/"+w.id["vlan globex"], "", user...), 404, CodeNotFound, "id")
	wantError(t, w.do("PATCH", "/v1/ipam/vlans/"+w.id["vlan globex"], `{"name":"x"}`, user...), 404, CodeNotFound, "id")
	wantError(t, w.do("PATCH", "/v1/ipam/vnis/"+w.id["vni globex"], `{}`, user...), 404, CodeNotFound, "id")
	wantError(t, w.do("PATCH", "/v1/ipam/vlans/"+w.id["vlan acme"], `{"tenant":"globex"}`, user...), 403, CodeForbidden, "tenant")
	wantError(t, w.do("PATCH", "/v1/ipam/vnis/"+w.id["vni acme"], `{"tenant":null}`, user...), 403, CodeForbidden, "tenant")
	// Acting for another tenant is forbidden, naming the field.
	wantError(t, w.do("POST", "/v1/ipam/prefixes/"+w.id["prefix acme"]+"/allocate", `{"tenant":"globex"}`, user...), 403, CodeForbidden, "tenant")
	wantError(t, w.do("PATCH", "/v1/ipam/addresses/"+w.id["address acme"], `{"tenant":"globex"}`, user...), 403, CodeForbidden, "tenant")
	// Cluster-wide IPAM writes are refused.
	wantError(t, w.do("POST", "/v1/ipam/prefixes", `{"prefix":"10.7.0.0/24","tenant":"acme"}`, user...), 403, CodeForbidden, "")
	// A bad address is named in the API's words, not Go's parser's.
	if e := wantError(t, w.do("POST", "/v1/ipam/addresses", `{"address":" 10.1.0.50"}`, user...), 400, CodeInvalidRequest, "address"); strings.Contains(e.Message, "ParseAddr") {
		t.Errorf("message %q", e.Message)
	}
	if n := w.b.applies.Load(); n != before {
		t.Fatalf("%d refused requests reached Apply", n-before)
	}

	// From its own prefix it allocates, and the address is its tenant's.
	var got AddressList
	mustJSON(t, wantStatus(t, w.do("POST", "/v1/ipam/prefixes/"+w.id["prefix acme"]+"/allocate", `{"count":2}`, user...), 201), &got)
	if len(got.Addresses) != 2 || got.Addresses[0].Tenant != "acme" || got.Addresses[1].Tenant != "acme" {
		t.Fatalf("allocated %+v", got.Addresses)
	}
	mustJSON(t, wantStatus(t, w.do("POST", "/v1/ipam/addresses", `{"address":"10.1.0.50","tenant":"acme"}`, user...), 201), &got)
	if got.Addresses[0].Tenant != "acme" {
		t.Fatalf("created %+v", got.Addresses[0])
	}
	// Clearing the tenant is not "the caller's own", as on create: a
	// confined token cannot, and nothing is written.
	before = w.b.applies.Load()
	for _, body := range []string{`{"owner":"vm:103/net0","tenant":""}`, `{"tenant":null}`} {
		wantError(t, w.do("PATCH", "/v1/ipam/addresses/"+got.Addresses[0].ID, body, user...), 403, CodeForbidden, "tenant")
	}
	if n := w.b.applies.Load(); n != before {
		t.Fatalf("%d refused requests reached Apply", n-before)
	}
	var a fsm.Address
	mustJSON(t, wantStatus(t, w.do("PATCH", "/v1/ipam/addresses/"+got.Addresses[0].ID, `{"owner":"vm:103/net0","tenant":"acme"}`, user...), 200), &a)
	if a.Owner != "vm:103/net0" || a.Tenant != "acme" {
		t.Fatalf("updated %+v", a)
	}
	wantStatus(t, w.do("DELETE", "/v1/ipam/addresses/"+got.Addresses[0].ID, "", user...), 200)

	var vlan fsm.IDAllocation
	mustJSON(t, wantStatus(t, w.do("POST", "/v1/ipam/vlan-groups/vlans-acme/allocate", `{}`, user...), 201), &vlan)
	if vlan.Tenant != "acme" {
		t.Fatalf("vlan %+v", vlan)
	}
	mustJSON(t, wantStatus(t, w.do("PATCH", "/v1/ipam/vlans/"+vlan.ID, `{"name":"web","tenant":"acme"}`, user...), 200), &vlan)
	if vlan.Name != "web" || vlan.Tenant != "acme" {
		t.Fatalf("updated vlan %+v", vlan)
	}
	wantStatus(t, w.do("DELETE", "/v1/ipam/vlans/"+vlan.ID, "", user...), 200)

	// VM power only on its tenant's guests; it may not create VMs.
	wantError(t, w.do("POST", "/v1/vms/104/start", "", user...), 404, CodeNotFound, "vmid")
	var op fsm.Operation
	mustJSON(t, wantStatus(t, w.do("POST", "/v1/vms/103/start", "", user...), 202), &op)
	if op.Tenant != "acme" {
		t.Fatalf("operation %+v", op)
	}
	wantError(t, w.do("POST", "/v1/vms", `{"name":"x","disk":1}`, user...), 403, CodeForbidden, "")
}

func TestTenant_AdminCreatesVMsOnlyForItsTenant(t *testing.T) {
	w := newTenantWorld(t)
	admin := w.as(auth.RoleTenantAdmin, "acme")

	d := wantError(t, w.do("POST", "/v1/vms", `{"name":"web","disk":8,"tenant":"globex"}`, admin...), 403, CodeForbidden, "tenant")
	if d.Message != "this token acts within tenant acme; it cannot act for tenant globex" {
		t.Errorf("message %q", d.Message)
	}
	wantError(t, w.do("POST", "/v1/vms", `{"name":"web","template":"9001"}`, admin...), 400, CodeInvalidRequest, "template")
	wantError(t, w.do("POST", "/v1/vms", `{"name":"web","disk":8,"nics":[{"bridge":"vmbr0","prefix_id":"`+w.id["prefix globex"]+`"}]}`, admin...),
		400, CodeInvalidRequest, "nics[0].prefix_id")
	// A NIC's name must be one a zone can serve, as an address's.
	for _, name := range []string{"web.localhost", "9.0.0.10.in-addr.arpa"} {
		wantError(t, w.do("POST", "/v1/vms", `{"name":"web","disk":8,"nics":[{"bridge":"vmbr0","prefix_id":"`+w.id["prefix acme"]+`","dns_name":"`+name+`"}]}`, admin...),
			400, CodeInvalidRequest, "nics[0].dns_name")
	}

	for _, body := range []string{
		`{"name":"web","disk":8}`,
		`{"name":"db","template":"9000","tenant":"acme","nics":[{"bridge":"vmbr0","prefix_id":"` + w.id["prefix acme"] + `"}]}`,
	} {
		var op fsm.Operation
		mustJSON(t, wantStatus(t, w.do("POST", "/v1/vms", body, admin...), 202), &op)
		if op.Spec == nil || op.Spec.Tenant != "acme" || op.Tenant != "acme" {
			t.Fatalf("%s: operation %+v", body, op)
		}
		// Its operations are listed to the tenant and not to another.
		wantStatus(t, w.do("GET", "/v1/operations/"+op.ID, "", admin...), 200)
		wantError(t, w.do("GET", "/v1/operations/"+op.ID, "", w.as(auth.RoleTenantViewer, "globex")...), 404, CodeNotFound, "id")
	}

	wantError(t, w.do("DELETE", "/v1/vms/102", "", admin...), 404, CodeNotFound, "vmid")
	var op fsm.Operation
	mustJSON(t, wantStatus(t, w.do("DELETE", "/v1/vms/103", "", admin...), 202), &op)
	if op.Tenant != "acme" || op.Kind != fsm.OpVMDelete {
		t.Fatalf("operation %+v", op)
	}

	// An unconfined token creates for any tenant.
	wantStatus(t, w.do("POST", "/v1/vms", `{"name":"other","disk":8,"tenant":"globex"}`), 202)
}

// TestTenant_NamesOnlyInItsZones checks the DNS naming rules through the
// API: a tenant's address takes no name in another tenant's zone, nor a
// name another tenant's address holds, whether allocated or renamed.
func TestTenant_NamesOnlyInItsZones(t *testing.T) {
	w := newTenantWorld(t)
	user := w.as(auth.RoleTenantUser, "acme")
	mine := w.id["address acme"]
	wantError(t, w.do("PATCH", "/v1/ipam/addresses/"+mine, `{"dns_name":"www.globex.test"}`, user...), 400, CodeInvalidRequest, "dns_name")
	wantError(t, w.do("POST", "/v1/ipam/prefixes/"+w.id["prefix acme"]+"/allocate", `{"dns_name":"db.globex.test"}`, user...), 400, CodeInvalidRequest, "dns_name")

	// globex names its address outside the tenants' zones; acme may not
	// join that name.
	wantStatus(t, w.do("PATCH", "/v1/ipam/addresses/"+w.id["address globex"], `{"dns_name":"shop.example.net"}`), 200)
	wantError(t, w.do("PATCH", "/v1/ipam/addresses/"+mine, `{"dns_name":"shop.example.net"}`, user...), 409, CodeConflict, "dns_name")

	// In its own zone it names its addresses, two of them alike.
	wantStatus(t, w.do("PATCH", "/v1/ipam/addresses/"+mine, `{"dns_name":"www.acme.test"}`, user...), 200)
	wantStatus(t, w.do("POST", "/v1/ipam/prefixes/"+w.id["prefix acme"]+"/allocate", `{"dns_name":"www.acme.test"}`, user...), 201)

	// Names taken before their zone exists: a zone that would serve them
	// against the rules is refused, naming one.
	wantStatus(t, w.do("POST", "/v1/ipam/prefixes/"+w.id["prefix acme"]+"/allocate", `{"dns_name":"mail.future.test"}`, user...), 201)
	wantStatus(t, w.do("POST", "/v1/ipam/prefixes/"+w.id["prefix acme"]+"/allocate", `{"dns_name":"ns1.later.test"}`, user...), 201)
	for _, body := range []string{`{"name":"future.test","tenant":"globex"}`, `{"name":"later.test"}`} {
		if e := wantError(t, w.do("POST", "/v1/dns/zones", body), 409, CodeConflict, "name"); !strings.Contains(e.Message, "of tenant acme, which the naming rules keep out of this zone") {
			t.Errorf("%s: %q", body, e.Message)
		}
	}
	// Its own zone, or a shared one where the name is no apex or name
	// server, takes them in.
	wantStatus(t, w.do("POST", "/v1/dns/zones", `{"name":"future.test","tenant":"acme"}`), 201)
	wantStatus(t, w.do("POST", "/v1/dns/zones", `{"name":"test"}`), 201)

	// Deleting acme's zone inside globex's would hand acme's names to
	// globex's zone: refused like a delete that takes them out of DNS.
	wantStatus(t, w.do("POST", "/v1/dns/zones", `{"name":"a.globex.test","tenant":"acme"}`), 201)
	wantStatus(t, w.do("POST", "/v1/ipam/prefixes/"+w.id["prefix acme"]+"/allocate", `{"dns_name":"www.a.globex.test"}`, user...), 201)
	if e := wantError(t, w.do("DELETE", "/v1/dns/zones/a.globex.test", ""), 409, CodeConflict, "name"); !strings.Contains(e.Message, "would hand them to zone globex.test, which the naming rules keep them out of") {
		t.Errorf("delete: %q", e.Message)
	}
	// Into a shared zone above, below its apex, they may go.
	wantStatus(t, w.do("DELETE", "/v1/dns/zones/future.test", ""), 200)

	// An IP globex's address has a name at, in acme's own VRF: acme may
	// hold it but not name it, which would add a PTR to globex's.
	var g fsm.Address
	mustJSON(t, wantStatus(t, w.do("PATCH", "/v1/ipam/addresses/"+w.id["address globex"], `{"dns_name":"db.globex.test"}`), 200), &g)
	p := w.create("/v1/ipam/prefixes", `{"prefix":"10.2.0.0/24","vrf":"vrf-acme","tenant":"acme"}`, "id")
	wantError(t, w.do("POST", "/v1/ipam/prefixes/"+p+"/allocate", `{"address":"`+g.Address+`","dns_name":"evil.acme.test"}`, user...), 409, CodeConflict, "dns_name")
	var a AddressList
	mustJSON(t, wantStatus(t, w.do("POST", "/v1/ipam/prefixes/"+p+"/allocate", `{"address":"`+g.Address+`"}`, user...), 201), &a)
	wantError(t, w.do("PATCH", "/v1/ipam/addresses/"+a.Addresses[0].ID, `{"dns_name":"evil.acme.test"}`, user...), 409, CodeConflict, "dns_name")
}
