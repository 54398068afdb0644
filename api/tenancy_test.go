package api

import (
	"net/http"
	"testing"
)

func TestTenancy_CreateReplayAndQuota(t *testing.T) {
	ts := newLeader(t)
	// A retried create with the same key answers the first result.
	for range 2 {
		var v TenantView
		mustJSON(t, wantStatus(t, ts.do("POST", "/v1/tenants", `{"id":"acme","quota":{"ipv4_addresses":2}}`, "Idempotency-Key", "k1"), http.StatusCreated), &v)
		if v.Tenant == nil || v.ID != "acme" || len(v.Usage) == 0 {
			t.Fatalf("tenant %+v", v)
		}
	}
	wantStatus(t, ts.do("POST", "/v1/tenants/acme/projects", `{"name":"web","quota":{"ipv4_addresses":1}}`, "Idempotency-Key", "k2"), http.StatusCreated)
	wantStatus(t, ts.do("POST", "/v1/tenants/acme/projects", `{"name":"web","quota":{"ipv4_addresses":1}}`, "Idempotency-Key", "k2"), http.StatusCreated)
	wantError(t, ts.do("POST", "/v1/tenants/acme/projects", `{"name":"web"}`), http.StatusConflict, CodeConflict, "name")
	// A missing project, or a project of a missing tenant, is on the name.
	wantError(t, ts.do("PATCH", "/v1/tenants/acme/projects/nope", `{"description":"x"}`), http.StatusNotFound, CodeNotFound, "name")
	wantError(t, ts.do("DELETE", "/v1/tenants/acme/projects/nope", ""), http.StatusNotFound, CodeNotFound, "name")
	wantError(t, ts.do("DELETE", "/v1/tenants/nope/projects/web", ""), http.StatusNotFound, CodeNotFound, "name")

	var p struct{ ID string }
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/ipam/prefixes", `{"prefix":"10.0.0.0/24"}`), http.StatusCreated), &p)
	alloc := "/v1/ipam/prefixes/" + p.ID + "/allocate"
	wantStatus(t, ts.do("POST", alloc, `{"tenant":"acme","project":"web"}`), http.StatusCreated)
	e := wantError(t, ts.do("POST", alloc, `{"tenant":"acme","project":"web"}`), http.StatusConflict, CodeQuotaExceeded, "quota")
	if q := e.Quota; q == nil || q.Scope != "project acme/web" || q.Resource != "ipv4_addresses" || q.Limit != 1 || q.Usage != 1 || q.Request != 1 {
		t.Fatalf("quota detail %+v", e.Quota)
	}
	wantError(t, ts.do("POST", alloc, `{"tenant":"acme","project":"nope"}`), http.StatusNotFound, CodeNotFound, "project")
	wantError(t, ts.do("POST", alloc, `{"project":"web"}`), http.StatusBadRequest, CodeInvalidRequest, "project")
	var v TenantView
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/tenants/acme", ""), http.StatusOK), &v)
	for _, l := range v.Usage {
		if l.Resource == "ipv4_addresses" && (l.Used != 1 || l.Limit == nil || *l.Limit != 2 || *l.Free != 1) {
			t.Fatalf("ipv4 line %+v", l)
		}
	}
	// Bad input names the field.
	wantError(t, ts.do("POST", "/v1/tenants", `{"id":"Bad Name"}`), http.StatusBadRequest, CodeInvalidRequest, "id")
	wantError(t, ts.do("POST", "/v1/tenants", `{"id":"x","quota":{"cpus":1}}`), http.StatusBadRequest, CodeInvalidRequest, "quota")
	wantError(t, ts.do("PATCH", "/v1/tenants/acme", `{"quota":{"guests":-1}}`), http.StatusBadRequest, CodeInvalidRequest, "quota")
	// A null limit is not read as a limit of 0, nor a null quota as none.
	wantError(t, ts.do("POST", "/v1/tenants", `{"id":"y","quota":{"guests":null}}`), http.StatusBadRequest, CodeInvalidRequest, "quota")
	wantError(t, ts.do("POST", "/v1/tenants/acme/projects", `{"name":"y","quota":{"vcpus":2,"guests":null}}`), http.StatusBadRequest, CodeInvalidRequest, "quota")
	wantError(t, ts.do("PATCH", "/v1/tenants/acme", `{"quota":{"guests":null}}`), http.StatusBadRequest, CodeInvalidRequest, "quota")
	wantError(t, ts.do("PATCH", "/v1/tenants/acme", `{"quota":null}`), http.StatusBadRequest, CodeInvalidRequest, "quota")
	mustJSON(t, wantStatus(t, ts.do("PATCH", "/v1/tenants/acme", `{"description":null}`), http.StatusOK), &v)
	if v.Description != "" || len(v.Quota) == 0 {
		t.Fatalf("patched with null %+v", v.Tenant)
	}
	wantError(t, ts.do("DELETE", "/v1/tenants/acme", ""), http.StatusConflict, CodeConflict, "id")
}

func TestTenancy_ProjectsOnPrefixesAndVLANs(t *testing.T) {
	ts := newLeader(t)
	wantStatus(t, ts.do("POST", "/v1/tenants", `{"id":"acme"}`), http.StatusCreated)
	wantStatus(t, ts.do("POST", "/v1/tenants/acme/projects", `{"name":"web","quota":{"prefixes":1,"vlans":1}}`), http.StatusCreated)
	var p struct {
		ID      string
		Project string
	}
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/ipam/prefixes", `{"prefix":"10.0.0.0/24","tenant":"acme","project":"web"}`), http.StatusCreated), &p)
	if p.Project != "web" {
		t.Fatalf("prefix %+v", p)
	}
	e := wantError(t, ts.do("POST", "/v1/ipam/prefixes", `{"prefix":"10.0.1.0/24","tenant":"acme","project":"web"}`), http.StatusConflict, CodeQuotaExceeded, "quota")
	if e.Quota == nil || e.Quota.Scope != "project acme/web" || e.Quota.Resource != "prefixes" {
		t.Fatalf("quota %+v", e.Quota)
	}
	// Out of the project, into the tenant: allowed; then the project has room.
	wantStatus(t, ts.do("PATCH", "/v1/ipam/prefixes/"+p.ID, `{"project":""}`), http.StatusOK)
	wantStatus(t, ts.do("POST", "/v1/ipam/prefixes", `{"prefix":"10.0.1.0/24","tenant":"acme","project":"web"}`), http.StatusCreated)
	wantError(t, ts.do("POST", "/v1/ipam/prefixes", `{"prefix":"10.0.2.0/24","tenant":"acme","project":"nope"}`), http.StatusNotFound, CodeNotFound, "project")

	var g struct{ ID string }
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/ipam/vlan-groups", `{"name":"g","ranges":[{"first":100,"last":110}]}`), http.StatusCreated), &g)
	wantStatus(t, ts.do("POST", "/v1/ipam/vlan-groups/"+g.ID+"/allocate", `{"tenant":"acme","project":"web"}`), http.StatusCreated)
	wantError(t, ts.do("POST", "/v1/ipam/vlan-groups/"+g.ID+"/allocate", `{"tenant":"acme","project":"web"}`), http.StatusConflict, CodeQuotaExceeded, "quota")
	wantError(t, ts.do("POST", "/v1/ipam/vlan-groups/"+g.ID+"/allocate", `{"project":"web"}`), http.StatusBadRequest, CodeInvalidRequest, "project")
}
