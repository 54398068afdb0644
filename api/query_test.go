package api

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestQuery_UnknownParametersAreRefused(t *testing.T) {
	ts := newLeader(t)
	before := ts.b.applies.Load()
	e := wantError(t, ts.do("GET", "/v1/ipam/addresses?prefix=10.0.0.0/24", ""), 400, CodeInvalidRequest, "prefix")
	if !strings.Contains(e.Message, "prefix_id") {
		t.Fatalf("message %q does not list the parameters the endpoint takes", e.Message)
	}
	// The first unknown one in name order is named, whatever the order sent.
	wantError(t, ts.do("GET", "/v1/ipam/addresses?zz=1&group_id=v&prefix_id=p", ""), 400, CodeInvalidRequest, "group_id")
	// Writes too, before anything is applied.
	wantError(t, ts.do("DELETE", "/v1/ipam/addresses/a?forced=true", ""), 400, CodeInvalidRequest, "forced")
	if n := ts.b.applies.Load(); n != before {
		t.Fatalf("%d refused requests reached Apply", n-before)
	}
	// A parameter given twice, known or not, whichever value comes first.
	e = wantError(t, ts.do("DELETE", "/v1/ipam/addresses/a?force=true&force=false", ""), 400, CodeInvalidRequest, "force")
	if e.Message != `query parameter "force" is given 2 times; give it once` {
		t.Fatalf("message %q", e.Message)
	}
	wantError(t, ts.do("GET", "/v1/ipam/prefixes/p/available?limit=2&limit=1000", ""), 400, CodeInvalidRequest, "limit")
	wantError(t, ts.do("GET", "/v1/ipam/addresses?prefix_id=x&prefix_id=nosuch&vrf=a&vrf=b", ""), 400, CodeInvalidRequest, "prefix_id")
	wantError(t, ts.do("GET", "/v1/ipam/addresses?stale&stale", ""), 400, CodeInvalidRequest, "stale")
	if n := ts.b.applies.Load(); n != before {
		t.Fatalf("%d refused requests reached Apply", n-before)
	}
	// A filter value no object could have is a mistake, not an empty list.
	for _, c := range []struct{ target, field string }{
		{"/v1/ipam/addresses?tenant=Bad%20T", "tenant"},
		{"/v1/ipam/addresses?owner=garbage", "owner"},
		{"/v1/ipam/addresses?dns_name=a%20b", "dns_name"},
		{"/v1/ipam/prefixes?tenant=ACME", "tenant"},
		{"/v1/ipam/vlans?tenant=a%2Fb", "tenant"},
		{"/v1/ipam/vnis?tenant=-x", "tenant"},
	} {
		wantError(t, ts.do("GET", c.target, ""), 400, CodeInvalidRequest, c.field)
	}
	wantStatus(t, ts.do("GET", "/v1/ipam/addresses?tenant=acme&owner=vm:1/net0&dns_name=Web.Moxxie.Test.", ""), 200)
	// Known parameters, and site on any route, pass.
	wantStatus(t, ts.do("GET", "/v1/ipam/addresses?vrf=global&limit=5&stale", ""), 200)
	wantStatus(t, ts.do("GET", "/v1/cluster/settings?site=", ""), 200)
	// An empty filter is refused rather than listing everything; a boolean
	// may be given bare.
	for _, target := range []string{"/v1/ipam/addresses?prefix_id=", "/v1/ipam/addresses?stale&tenant=", "/v1/ipam/prefixes?vrf=",
		"/v1/ipam/ip-ranges?prefix_id=", "/v1/ipam/vlans?group_id=", "/v1/inventory/guests?node="} {
		name := target[strings.LastIndexAny(target, "?&")+1 : len(target)-1]
		e := wantError(t, ts.do("GET", target, ""), 400, CodeInvalidRequest, name)
		if e.Message != `query parameter "`+name+`" is empty: give it a value, or leave it out` {
			t.Errorf("%s: message %q", target, e.Message)
		}
	}
	wantStatus(t, ts.do("GET", "/v1/ipam/prefixes?stale=&family=4", ""), 200)
	// Paging and blocking parameters select nothing: empty is their
	// default (a paging loop starts with an empty cursor).
	wantStatus(t, ts.do("GET", "/v1/ipam/addresses?after=&limit=", ""), 200)
	wantStatus(t, ts.do("GET", "/v1/ipam/prefixes?index=&wait=", ""), 200)
	wantStatus(t, ts.do("GET", "/v1/ipam/prefixes?consistent", ""), 200)
}

// TestQuery_UnparsableIsRefused: a pair url.Values would drop (a bad
// percent escape, a semicolon) is refused, naming its parameter, rather
// than served as if it were not there: a list without its filter, a
// release without force.
func TestQuery_UnparsableIsRefused(t *testing.T) {
	ts := newLeader(t)
	before := ts.b.applies.Load()
	for _, c := range []struct{ method, target, field, says string }{
		{"GET", "/v1/ipam/addresses?prefix_id=nope%zz", "prefix_id", "not URL-encoded"},
		{"GET", "/v1/ipam/addresses?vrf=blue;x", "vrf", "semicolon"},
		{"GET", "/v1/ipam/prefixes?limit=5&vrf=nope%zz", "vrf", "not URL-encoded"},
		{"GET", "/v1/ipam/prefixes?vr%zzf=x", "vr%zzf", "not URL-encoded"},
		{"DELETE", "/v1/ipam/addresses/a?force=%zz", "force", "not URL-encoded"},
		{"GET", "/v1/cluster/settings?site=%zz", "site", "not URL-encoded"},
	} {
		e := wantError(t, ts.do(c.method, c.target, ""), 400, CodeInvalidRequest, c.field)
		if !strings.Contains(e.Message, c.says) {
			t.Errorf("%s %s: message %q", c.method, c.target, e.Message)
		}
	}
	if n := ts.b.applies.Load(); n != before {
		t.Fatalf("%d refused requests reached Apply", n-before)
	}
	// Escapes that parse are fine.
	wantStatus(t, ts.do("GET", "/v1/ipam/addresses?dns_name=web%2Emoxxie.test&vrf=%67lobal", ""), 200)
}

// TestQuery_PreconditionsAreRefused: a write with If-Match and the like is
// refused, not carried out without its condition; a read ignores them.
func TestQuery_PreconditionsAreRefused(t *testing.T) {
	ts := newLeader(t)
	before := ts.b.applies.Load()
	for _, h := range []string{"If-Match", "If-None-Match", "If-Unmodified-Since"} {
		e := wantError(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"x"}`, h, `"1"`), 400, CodeInvalidRequest, h)
		if !strings.Contains(e.Message, "conditional writes are not supported") {
			t.Errorf("%s: message %q", h, e.Message)
		}
	}
	// Even with an empty value.
	req := httptest.NewRequest("DELETE", "/v1/cluster/settings/k", nil)
	req.Header.Set("Authorization", "Bearer "+ts.secret)
	req.Header["If-Match"] = []string{""}
	rec := httptest.NewRecorder()
	ts.h.ServeHTTP(rec, req)
	wantError(t, rec, 400, CodeInvalidRequest, "If-Match")
	if n := ts.b.applies.Load(); n != before {
		t.Fatalf("%d refused requests reached Apply", n-before)
	}
	wantStatus(t, ts.do("GET", "/v1/cluster/settings", "", "If-None-Match", `"1"`), 200)
}

// TestQuery_EveryOperationIsRead checks that every route has its
// parameters from openapi.json, and that every read takes stale and
// consistent, which dispatch honours on all of them.
func TestQuery_EveryOperationIsRead(t *testing.T) {
	for _, rt := range Routes() {
		params, ok := routeQuery()[rt.Pattern()]
		if !ok {
			t.Errorf("%s: no query parameters read from openapi.json", rt.Pattern())
		}
		flags := map[string]bool{}
		for _, p := range params {
			flags[p.name] = p.emptyOK
		}
		if rt.Kind == KindRead && (!flags["stale"] || !flags["consistent"]) {
			t.Errorf("%s: a read that does not document stale and consistent", rt.Pattern())
		}
	}
}
