package api

import (
	"strings"
	"testing"

	"github.com/moxxie/moxxie/auth"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/telemetry"
	"github.com/moxxie/moxxie/telemetry/promtest"
)

func TestMetrics_NeedMetricsRead(t *testing.T) {
	ts := newLeader(t)
	wantError(t, ts.do("GET", "/v1/metrics", "", "Authorization", ""), 401, CodeUnauthorized, "")
	for _, role := range auth.Roles {
		tenant := ""
		if role.Tenanted() {
			tenant = "acme"
		}
		tok := ts.createToken(role, tenant)
		rec := ts.do("GET", "/v1/metrics", "", "Authorization", "Bearer "+tok.SecretID)
		switch role {
		case auth.RoleAdmin, auth.RoleOperator, auth.RoleAuditor:
			body := string(wantStatus(t, rec, 200))
			if !strings.Contains(body, "# TYPE moxxie_api_requests_total counter") || !strings.Contains(body, "moxxie_build_info{") {
				t.Errorf("%s: metrics lack the API's requests or build info:\n%s", role, body)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q", ct)
			}
		default:
			wantError(t, rec, 403, CodeForbidden, "")
		}
	}
}

func TestMetrics_RequestsByRoutePatternMethodAndCode(t *testing.T) {
	reg := telemetry.NewRegistry()
	ts := newTestServer(t, newFakeBackend("s1", fsm.New(), true), Options{Metrics: reg})
	ts.bootstrap()
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/a", `{"value":"1"}`), 200)
	wantStatus(t, ts.do("GET", "/v1/cluster/settings/a", ""), 200)
	wantStatus(t, ts.do("GET", "/v1/cluster/settings/b", ""), 404)
	wantStatus(t, ts.do("HEAD", "/v1/cluster/settings/a", ""), 200)
	wantStatus(t, ts.do("GET", "/v1/no/such/route", ""), 404)
	wantStatus(t, ts.do("BREW", "/v1/cluster/settings/a", ""), 405)
	wantStatus(t, ts.do("GET", "/v1/cluster/settings?index=1&wait=1ms", ""), 200)

	got := promtest.Values(t, reg, "moxxie_api_requests_total")
	for labels, want := range map[string]float64{
		"code=201,method=POST,route=/v1/acl/bootstrap":          1,
		"code=200,method=PUT,route=/v1/cluster/settings/{key}":  1,
		"code=200,method=GET,route=/v1/cluster/settings/{key}":  1,
		"code=404,method=GET,route=/v1/cluster/settings/{key}":  1,
		"code=200,method=HEAD,route=/v1/cluster/settings/{key}": 1,
		"code=404,method=GET,route=unmatched":                   1,
		"code=405,method=other,route=unmatched":                 1,
		"code=200,method=GET,route=/v1/cluster/settings":        1,
	} {
		if got[labels] != want {
			t.Errorf("requests{%s} = %v, want %v (all: %v)", labels, got[labels], want, got)
		}
	}
	// Raw paths never become labels.
	for labels := range got {
		if strings.Contains(labels, "settings/a") || strings.Contains(labels, "settings/b") || strings.Contains(labels, "such") {
			t.Errorf("a raw path in the labels: %s", labels)
		}
	}
	durations := promtest.Values(t, reg, "moxxie_api_request_duration_seconds")
	if durations["method=GET,route=/v1/cluster/settings/{key}"] != 2 || durations["method=HEAD,route=/v1/cluster/settings/{key}"] != 1 {
		t.Errorf("durations %v", durations)
	}
	if n, ok := durations["method=GET,route=/v1/cluster/settings"]; ok && n != 0 {
		t.Errorf("the blocking query was timed: %v", durations)
	}
}

func TestMetrics_PanicCountsAs500(t *testing.T) {
	reg := telemetry.NewRegistry()
	b := newFakeBackend("s1", fsm.New(), true)
	ts := newTestServer(t, b, Options{Metrics: reg})
	ts.bootstrap()
	b.statusPanic = true
	wantStatus(t, ts.do("GET", "/v1/status", ""), 500)
	if v := promtest.Value(t, reg, "moxxie_api_requests_total", "code=500,method=GET,route=/v1/status"); v != 1 {
		t.Fatalf("panics counted %v", v)
	}
}

func TestMetrics_Forwards(t *testing.T) {
	c := newCluster(t, false)
	wantStatus(t, c.follower.do("PUT", "/v1/cluster/settings/fwd", `{"value":"x"}`), 200)
	c.follower.b.leaderURL = ""
	wantError(t, c.follower.do("PUT", "/v1/cluster/settings/fwd", `{"value":"y"}`), 503, CodeNoLeader, "")
	reg := c.follower.srv.metrics.reg
	if ok, bad := promtest.Value(t, reg, "moxxie_api_forwards_total", "result=ok"), promtest.Value(t, reg, "moxxie_api_forwards_total", "result=error"); ok != 1 || bad != 1 {
		t.Fatalf("forwards ok %v error %v", ok, bad)
	}
	if n := promtest.Value(t, reg, "moxxie_api_forward_duration_seconds", ""); n != 2 {
		t.Fatalf("forward durations %v", n)
	}
	// Both servers count the request: the follower as forwarded, the
	// leader as served.
	if v := promtest.Value(t, c.leader.srv.metrics.reg, "moxxie_api_requests_total", "code=200,method=PUT,route=/v1/cluster/settings/{key}"); v != 1 {
		t.Fatalf("leader counted %v", v)
	}
	if v := promtest.Value(t, reg, "moxxie_api_requests_total", "code=200,method=PUT,route=/v1/cluster/settings/{key}"); v != 1 {
		t.Fatalf("follower counted %v", v)
	}
}

func TestMetrics_RateLimitedCountAsRequests(t *testing.T) {
	ts, _ := limitedLeader(t, Options{AddressRateLimit: 1, AddressRateBurst: 1})
	ts.secret = ""
	wantStatus(t, ts.from("192.0.2.7:1000", "GET", "/v1/health"), 200)
	wantError(t, ts.from("192.0.2.7:1000", "GET", "/v1/health"), 429, CodeRateLimited, "")
	reg := ts.srv.metrics.reg
	if v := promtest.Value(t, reg, "moxxie_api_requests_total", "code=429,method=GET,route=/v1/health"); v != 1 {
		t.Fatalf("429s counted %v", v)
	}
	if v := promtest.Value(t, reg, "moxxie_api_rate_limited_requests_total", "kind=address"); v != 1 {
		t.Fatalf("rate limited %v", v)
	}
}

func TestMetrics_PromtoolClean(t *testing.T) {
	ts := newLeader(t)
	wantStatus(t, ts.do("GET", "/v1/status", ""), 200)
	promtest.Check(t, wantStatus(t, ts.do("GET", "/v1/metrics", ""), 200))
}

func TestMetrics_Labels(t *testing.T) {
	for pattern, want := range map[string]string{
		"GET /v1/ipam/prefixes/{id}": "/v1/ipam/prefixes/{id}",
		"/":                          routeUnmatched,
		"":                           routeUnmatched,
	} {
		if got := routeLabel(pattern); got != want {
			t.Errorf("routeLabel(%q) = %q, want %q", pattern, got, want)
		}
	}
	for m, want := range map[string]string{"GET": "GET", "DELETE": "DELETE", "get": "other", "PROPFIND": "other"} {
		if got := methodLabel(m); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", m, got, want)
		}
	}
	for q, want := range map[string]bool{"": false, "index=5": true, "stale&index=5&wait=1s": true, "index=0": false, "vm_index=5": false, "index=": false} {
		if got := isBlocking(q); got != want {
			t.Errorf("isBlocking(%q) = %v, want %v", q, got, want)
		}
	}
}
