package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

// Answers in the shapes of api/handlers_tenancy.go.
var (
	testTenant = map[string]any{"id": "acme", "description": "ACME Corp", "quota": map[string]any{"vcpus": 16, "ipv4_addresses": 5},
		"usage": []any{
			map[string]any{"resource": "vcpus", "limit": 16, "used": 6, "free": 10},
			map[string]any{"resource": "memory_mib", "used": 10240},
			map[string]any{"resource": "ipv4_addresses", "limit": 5, "used": 7, "free": 0},
		},
		"addresses": 8, "create_index": 3, "modify_index": 4, "created_at": "2025-06-01T12:00:00Z", "updated_at": "2025-06-01T12:30:00Z"}
	testProject = map[string]any{"id": "acme/web", "tenant": "acme", "name": "web", "quota": map[string]any{"guests": 2},
		"usage":     []any{map[string]any{"resource": "guests", "limit": 2, "used": 1, "free": 1}},
		"addresses": 1, "create_index": 5, "modify_index": 5, "created_at": "2025-06-01T12:00:00Z", "updated_at": "2025-06-01T12:00:00Z"}
)

func tenancyFake(t *testing.T) *fake {
	routes := map[string]func() (int, any){
		"GET /v1/tenants":                        func() (int, any) { return 200, map[string]any{"tenants": []any{testTenant}} },
		"POST /v1/tenants":                       func() (int, any) { return 201, testTenant },
		"GET /v1/tenants/acme":                   func() (int, any) { return 200, testTenant },
		"PATCH /v1/tenants/acme":                 func() (int, any) { return 200, testTenant },
		"DELETE /v1/tenants/acme":                func() (int, any) { return 200, testTenant },
		"GET /v1/tenants/acme/projects":          func() (int, any) { return 200, map[string]any{"projects": []any{testProject}} },
		"POST /v1/tenants/acme/projects":         func() (int, any) { return 201, testProject },
		"GET /v1/tenants/acme/projects/web":      func() (int, any) { return 200, testProject },
		"PATCH /v1/tenants/acme/projects/web":    func() (int, any) { return 200, testProject },
		"DELETE /v1/tenants/acme/projects/web":   func() (int, any) { return 200, testProject },
		"GET /v1/tenants/a%2Fb/projects/c%20d":   func() (int, any) { return 200, testProject },
		"POST /v1/ipam/prefixes/p1/allocate":     nil,
		"POST /v1/tenants/acme/projects/refused": nil,
	}
	return newFake(t, func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.EscapedPath()
		h, ok := routes[key]
		switch {
		case !ok:
			writeErr(w, 404, "not_found", "no route "+key, "")
		case h == nil:
			writeJSON(w, 409, map[string]any{"error": map[string]any{
				"code": "quota_exceeded", "field": "quota", "request_id": "req-9",
				"message": "quota ipv4_addresses of tenant acme exceeded: limit 5, usage 5, request 1",
				"quota":   map[string]any{"scope": "tenant acme", "resource": "ipv4_addresses", "limit": 5, "usage": 5, "request": 1},
			}})
		default:
			status, body := h()
			writeJSON(w, status, body)
		}
	})
}

func TestTenancy_Requests(t *testing.T) {
	f := tenancyFake(t)
	c := f.client(t, Config{})
	ctx := context.Background()
	str := func(s string) *string { return &s }
	limits := func(m map[string]int64) *map[string]int64 { return &m }

	tests := []struct {
		name  string
		call  func() (any, error)
		req   string // METHOD path?query
		body  string // JSON, compared as values; empty: no body
		check func(t *testing.T, v any)
	}{
		{"tenant list", func() (any, error) { v, _, err := c.TenantList(ctx, &QueryOptions{Stale: true}); return v, err },
			"GET /v1/tenants?stale=true", "", func(t *testing.T, v any) {
				l := v.([]Tenant)
				if len(l) != 1 {
					t.Fatalf("%+v", l)
				}
				tn := l[0]
				if tn.ID != "acme" || tn.Description != "ACME Corp" || tn.Quota["vcpus"] != 16 || tn.Addresses != 8 || tn.ModifyIndex != 4 || tn.UpdatedAt.IsZero() {
					t.Errorf("%+v", tn)
				}
				if len(tn.Usage) != 3 {
					t.Fatalf("usage %+v", tn.Usage)
				}
				if u := tn.Usage[0]; u.Resource != ResourceVCPUs || u.Limit == nil || *u.Limit != 16 || u.Used != 6 || u.Free == nil || *u.Free != 10 {
					t.Errorf("vcpus %+v", u)
				}
				if u := tn.Usage[1]; u.Resource != ResourceMemoryMiB || u.Limit != nil || u.Free != nil || u.Used != 10240 {
					t.Errorf("unlimited memory %+v", u)
				}
			}},
		{"tenant get", func() (any, error) { v, _, err := c.TenantGet(ctx, "acme", nil); return v, err },
			"GET /v1/tenants/acme", "", nil},
		{"tenant create", func() (any, error) {
			v, _, err := c.TenantCreate(ctx, TenantCreate{ID: "acme", Description: "ACME Corp", Quota: map[string]int64{"vcpus": 16, "memory_mib": 0}}, nil)
			return v, err
		}, "POST /v1/tenants", `{"id": "acme", "description": "ACME Corp", "quota": {"vcpus": 16, "memory_mib": 0}}`, nil},
		{"tenant create without quota", func() (any, error) {
			v, _, err := c.TenantCreate(ctx, TenantCreate{ID: "acme"}, nil)
			return v, err
		}, "POST /v1/tenants", `{"id": "acme"}`, nil},
		{"tenant update description", func() (any, error) {
			v, _, err := c.TenantUpdate(ctx, "acme", TenancyUpdate{Description: str("")}, nil)
			return v, err
		}, "PATCH /v1/tenants/acme", `{"description": ""}`, nil},
		{"tenant update quota", func() (any, error) {
			v, _, err := c.TenantUpdate(ctx, "acme", TenancyUpdate{Quota: limits(map[string]int64{"guests": 10})}, nil)
			return v, err
		}, "PATCH /v1/tenants/acme", `{"quota": {"guests": 10}}`, nil},
		{"tenant clear quota", func() (any, error) {
			v, _, err := c.TenantUpdate(ctx, "acme", TenancyUpdate{Quota: limits(nil)}, nil)
			return v, err
		}, "PATCH /v1/tenants/acme", `{"quota": {}}`, nil},
		{"tenant delete", func() (any, error) { v, _, err := c.TenantDelete(ctx, "acme", nil); return v, err },
			"DELETE /v1/tenants/acme", "", func(t *testing.T, v any) {
				if v.(*Tenant).ID != "acme" {
					t.Errorf("%+v", v)
				}
			}},
		{"project list", func() (any, error) { v, _, err := c.ProjectList(ctx, "acme", nil); return v, err },
			"GET /v1/tenants/acme/projects", "", func(t *testing.T, v any) {
				l := v.([]Project)
				if len(l) != 1 || l[0].ID != "acme/web" || l[0].Tenant != "acme" || l[0].Name != "web" || l[0].Quota["guests"] != 2 ||
					len(l[0].Usage) != 1 || l[0].Usage[0].Used != 1 || l[0].Addresses != 1 {
					t.Errorf("%+v", l)
				}
			}},
		{"project get", func() (any, error) { v, _, err := c.ProjectGet(ctx, "acme", "web", nil); return v, err },
			"GET /v1/tenants/acme/projects/web", "", nil},
		{"project get escapes", func() (any, error) { v, _, err := c.ProjectGet(ctx, "a/b", "c d", nil); return v, err },
			"GET /v1/tenants/a/b/projects/c d", "", nil}, // the fake routes on the escaped path
		{"project create", func() (any, error) {
			v, _, err := c.ProjectCreate(ctx, "acme", ProjectCreate{Name: "web", Quota: map[string]int64{"guests": 2}}, nil)
			return v, err
		}, "POST /v1/tenants/acme/projects", `{"name": "web", "quota": {"guests": 2}}`, nil},
		{"project update", func() (any, error) {
			v, _, err := c.ProjectUpdate(ctx, "acme", "web", TenancyUpdate{Description: str("front"), Quota: limits(map[string]int64{})}, nil)
			return v, err
		}, "PATCH /v1/tenants/acme/projects/web", `{"description": "front", "quota": {}}`, nil},
		{"project delete", func() (any, error) { v, _, err := c.ProjectDelete(ctx, "acme", "web", nil); return v, err },
			"DELETE /v1/tenants/acme/projects/web", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.requests())
			v, err := tt.call()
			if err != nil {
				t.Fatal(err)
			}
			reqs := f.requests()[before:]
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			got := r.method + " " + r.path
			if r.query != "" {
				got += "?" + r.query
			}
			if got != tt.req {
				t.Errorf("request %q, want %q", got, tt.req)
			}
			if write := r.method != http.MethodGet; write != (r.header.Get("Idempotency-Key") != "") {
				t.Errorf("%s with Idempotency-Key %q", r.method, r.header.Get("Idempotency-Key"))
			}
			if tt.body == "" {
				if len(r.body) != 0 {
					t.Errorf("body %s, want none", r.body)
				}
			} else {
				checkBody(t, r.body, tt.body)
			}
			if tt.check != nil {
				tt.check(t, v)
			}
		})
	}
}

// checkBody fails the test unless got and want are the same JSON value.
func checkBody(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gj, _ := json.Marshal(g)
	wj, _ := json.Marshal(w)
	if string(gj) != string(wj) {
		t.Errorf("body %s, want %s", gj, wj)
	}
}

// TestTenancy_ProjectFields checks that the requests naming a project
// send it.
func TestTenancy_ProjectFields(t *testing.T) {
	str := func(s string) *string { return &s }
	for _, tt := range []struct {
		v    any
		want string
	}{
		{AllocateRequest{Tenant: "acme", Project: "web"}, `{"tenant": "acme", "project": "web"}`},
		{AddressUpdate{Project: str("")}, `{"project": ""}`},
		{VMCreateRequest{Name: "web2", Tenant: "acme", Project: "web"}, `{"name": "web2", "tenant": "acme", "project": "web"}`},
	} {
		b, err := json.Marshal(tt.v)
		if err != nil {
			t.Fatal(err)
		}
		checkBody(t, b, tt.want)
	}
	var a Address
	if err := json.Unmarshal([]byte(`{"id": "a1", "tenant": "acme", "project": "web"}`), &a); err != nil || a.Project != "web" {
		t.Errorf("address %+v, %v", a, err)
	}
	var g InvGuest
	if err := json.Unmarshal([]byte(`{"vmid": 101, "tenant": "acme", "project": "web"}`), &g); err != nil || g.Project != "web" {
		t.Errorf("guest %+v, %v", g, err)
	}
}

func TestTenancy_QuotaExceeded(t *testing.T) {
	f := tenancyFake(t)
	c := f.client(t, Config{})
	_, _, err := c.PrefixAllocate(context.Background(), "p1", AllocateRequest{Tenant: "acme"}, nil)
	const want = "409 quota_exceeded: quota ipv4_addresses of tenant acme exceeded: limit 5, usage 5, request 1 (request req-9)"
	if err == nil || err.Error() != want {
		t.Fatalf("err %v\nwant %s", err, want)
	}
	// Wrapped, as callers do, the details are still found.
	err = fmt.Errorf("allocating for web2: %w", err)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != CodeQuotaExceeded || ae.Status != 409 || ae.Field != "quota" {
		t.Fatalf("APIError %+v", ae)
	}
	wantQuota := QuotaExceeded{Scope: "tenant acme", Resource: ResourceIPv4, Limit: 5, Usage: 5, Request: 1}
	if ae.Quota == nil || *ae.Quota != wantQuota {
		t.Errorf("Quota %+v, want %+v", ae.Quota, wantQuota)
	}
	var qe *QuotaExceeded
	if !errors.As(err, &qe) || *qe != wantQuota {
		t.Errorf("errors.As QuotaExceeded: %+v", qe)
	}
	if qe.Error() != "quota ipv4_addresses of tenant acme exceeded: limit 5, usage 5, request 1" {
		t.Errorf("QuotaExceeded.Error() = %q", qe.Error())
	}

	// Another error has no quota, and errors.As finds none.
	_, _, err = c.TenantGet(context.Background(), "nope", nil)
	if !IsNotFound(err) || errors.As(err, &qe) {
		t.Errorf("not found: %v, quota %+v", err, qe)
	}
}

func TestAPIError_QuotaWithoutMessage(t *testing.T) {
	e := &APIError{Status: 409, Code: CodeQuotaExceeded, Field: "quota",
		Quota: &QuotaExceeded{Scope: "project acme/web", Resource: ResourceGuests, Limit: 2, Usage: 2, Request: 1}}
	const want = "409 quota_exceeded: quota guests of project acme/web exceeded: limit 2, usage 2, request 1"
	if got := e.Error(); got != want {
		t.Errorf("Error() = %q\nwant      %q", got, want)
	}
}
