package api

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/moxxie/moxxie/fsm"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// limitedLeader is a bootstrapped leader whose limits run on a fake clock.
func limitedLeader(t *testing.T, opts Options) (*testServer, *fakeClock) {
	t.Helper()
	ts := newTestServer(t, newFakeBackend("s1", fsm.New(), true), opts)
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	for _, l := range []*limiter{ts.srv.tokenLimit, ts.srv.addrLimit} {
		if l != nil {
			l.now = clk.now
		}
	}
	ts.bootstrap()
	return ts, clk
}

// from serves a request from a client address, over TLS as the API is.
func (ts *testServer) from(addr, method, target string, hdr ...string) *httptest.ResponseRecorder {
	ts.t.Helper()
	req := httptest.NewRequest(method, target, nil)
	req.RemoteAddr = addr
	req.TLS = &tls.ConnectionState{}
	if ts.secret != "" {
		req.Header.Set("Authorization", "Bearer "+ts.secret)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	ts.h.ServeHTTP(rec, req)
	return rec
}

func wantRateLimited(t *testing.T, rec *httptest.ResponseRecorder, retry int) {
	t.Helper()
	wantError(t, rec, http.StatusTooManyRequests, CodeRateLimited, "")
	if got := rec.Header().Get("Retry-After"); got != strconv.Itoa(retry) {
		t.Errorf("Retry-After %q, want %d", got, retry)
	}
	if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Error("429 without the security headers")
	}
}

func TestRateLimit_PerToken(t *testing.T) {
	// The bootstrap request itself is unauthenticated: it counts against
	// the address, not the token.
	ts, clk := limitedLeader(t, Options{RateLimit: 2, RateBurst: 3})
	admin := ts.secret
	for i := range 3 {
		if rec := ts.from("192.0.2.1:1000", "GET", "/v1/cluster/settings"); rec.Code != http.StatusOK {
			t.Fatalf("request %d within the burst: %d %s", i, rec.Code, rec.Body)
		}
	}
	// The fourth waits for half a second of refill: Retry-After rounds up.
	wantRateLimited(t, ts.from("192.0.2.1:1000", "GET", "/v1/cluster/settings"), 1)
	// The token is limited wherever it comes from.
	wantRateLimited(t, ts.from("198.51.100.7:2000", "GET", "/v1/cluster/settings"), 1)

	// Another token has its own bucket.
	rec := ts.do("POST", "/v1/acl/tokens", `{"role":"admin","description":"second"}`)
	if rec.Code == http.StatusTooManyRequests {
		// ts.do sends the admin token too: wait for a refill first.
		clk.add(time.Second)
		rec = ts.do("POST", "/v1/acl/tokens", `{"role":"admin","description":"second"}`)
	}
	var second TokenResponse
	mustJSON(t, wantStatus(t, rec, http.StatusCreated), &second)
	ts.secret = second.SecretID
	if rec := ts.from("192.0.2.1:1000", "GET", "/v1/cluster/settings"); rec.Code != http.StatusOK {
		t.Fatalf("a second token was limited with the first: %d %s", rec.Code, rec.Body)
	}

	// Time refills the first token's bucket at the configured rate.
	ts.secret = admin
	clk.add(10 * time.Second)
	for i := range 3 {
		if rec := ts.from("192.0.2.1:1000", "GET", "/v1/cluster/settings"); rec.Code != http.StatusOK {
			t.Fatalf("request %d after the refill: %d %s", i, rec.Code, rec.Body)
		}
	}
	wantRateLimited(t, ts.from("192.0.2.1:1000", "GET", "/v1/cluster/settings"), 1)
	clk.add(500 * time.Millisecond)
	if rec := ts.from("192.0.2.1:1000", "GET", "/v1/cluster/settings"); rec.Code != http.StatusOK {
		t.Fatalf("one request after half a second at 2/s: %d %s", rec.Code, rec.Body)
	}
}

func TestRateLimit_RetryAfterCoversTheWait(t *testing.T) {
	ts, _ := limitedLeader(t, Options{RateLimit: 0.1, RateBurst: 1})
	if rec := ts.from("192.0.2.1:1000", "GET", "/v1/cluster/settings"); rec.Code != http.StatusOK {
		t.Fatalf("first request: %d %s", rec.Code, rec.Body)
	}
	// One request every ten seconds.
	wantRateLimited(t, ts.from("192.0.2.1:1000", "GET", "/v1/cluster/settings"), 10)
}

func TestRateLimit_PerAddressWithoutToken(t *testing.T) {
	ts, clk := limitedLeader(t, Options{AddressRateLimit: 1, AddressRateBurst: 2})
	ts.secret = ""
	for i := range 2 {
		if rec := ts.from("203.0.113.1:1000", "GET", "/v1/health"); rec.Code != http.StatusOK {
			t.Fatalf("request %d: %d", i, rec.Code)
		}
	}
	wantRateLimited(t, ts.from("203.0.113.1:1001", "GET", "/v1/health"), 1)
	// A bad token counts against the address, as no token does: guessing
	// secrets is limited.
	wantRateLimited(t, ts.from("203.0.113.1:1002", "GET", "/v1/status", "Authorization", "Bearer mxx_guess"), 1)
	// Another address has its own bucket.
	if rec := ts.from("203.0.113.2:1000", "GET", "/v1/health"); rec.Code != http.StatusOK {
		t.Fatalf("another address was limited: %d", rec.Code)
	}
	// IPv6 clients are counted by their /64.
	for i := range 2 {
		if rec := ts.from("[2001:db8:1:2::1]:1000", "GET", "/v1/health"); rec.Code != http.StatusOK {
			t.Fatalf("IPv6 request %d: %d", i, rec.Code)
		}
	}
	wantRateLimited(t, ts.from("[2001:db8:1:2:ffff::9]:1000", "GET", "/v1/health"), 1)
	if rec := ts.from("[2001:db8:1:3::1]:1000", "GET", "/v1/health"); rec.Code != http.StatusOK {
		t.Fatalf("another /64 was limited: %d", rec.Code)
	}
	clk.add(time.Second)
	if rec := ts.from("203.0.113.1:1000", "GET", "/v1/health"); rec.Code != http.StatusOK {
		t.Fatalf("after a second at 1/s: %d", rec.Code)
	}
}

// TestRateLimit_Forwarded checks the two sides of a forwarded request: a
// request forwarded by a peer (not over the client TLS listener) is not
// counted against the forwarding server's address, but its token is
// counted; a client cannot skip the address limit by sending the
// forwarding header itself.
func TestRateLimit_Forwarded(t *testing.T) {
	ts, _ := limitedLeader(t, Options{RateLimit: 1, RateBurst: 1, AddressRateLimit: 1, AddressRateBurst: 1})
	admin := ts.secret
	ts.secret = ""
	forwarded := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/v1/health", nil)
		req.RemoteAddr = "127.0.0.1:7301"
		req.Header.Set(headerForwarded, "s2")
		rec := httptest.NewRecorder()
		ts.h.ServeHTTP(rec, req)
		return rec
	}
	for i := range 3 {
		if rec := forwarded(); rec.Code != http.StatusOK {
			t.Fatalf("forwarded request %d without a token: %d %s", i, rec.Code, rec.Body)
		}
	}
	// A client sending the header over TLS is still counted.
	if rec := ts.from("192.0.2.9:1000", "GET", "/v1/health", headerForwarded, "s2"); rec.Code != http.StatusOK {
		t.Fatalf("first: %d", rec.Code)
	}
	wantRateLimited(t, ts.from("192.0.2.9:1000", "GET", "/v1/health", headerForwarded, "s2"), 1)

	// A forwarded request with a token counts against the token.
	ts.secret = admin
	if rec := ts.do("GET", "/v1/cluster/settings", "", headerForwarded, "s2"); rec.Code != http.StatusOK {
		t.Fatalf("forwarded request with a token: %d %s", rec.Code, rec.Body)
	}
	// Its 429 goes back to the forwarding server, which adds the security
	// headers to its own answer.
	rec := ts.do("GET", "/v1/cluster/settings", "", headerForwarded, "s2")
	wantError(t, rec, http.StatusTooManyRequests, CodeRateLimited, "")
	if got := rec.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
}

func TestRateLimit_Off(t *testing.T) {
	ts, _ := limitedLeader(t, Options{RateLimit: -1, AddressRateLimit: -1})
	if ts.srv.tokenLimit != nil || ts.srv.addrLimit != nil {
		t.Fatal("negative rates left a limiter on")
	}
	for i := range 50 {
		if rec := ts.from("192.0.2.1:1000", "GET", "/v1/cluster/settings"); rec.Code != http.StatusOK {
			t.Fatalf("request %d: %d", i, rec.Code)
		}
	}
}

func TestRateLimit_Defaults(t *testing.T) {
	ts := newTestServer(t, newFakeBackend("s1", fsm.New(), true), Options{})
	for _, c := range []struct {
		l     *limiter
		rate  float64
		burst int
	}{
		{ts.srv.tokenLimit, DefaultRateLimit, DefaultRateBurst},
		{ts.srv.addrLimit, DefaultAddressRateLimit, DefaultAddressRateBurst},
	} {
		if c.l == nil || c.l.rate != c.rate || c.l.burst != float64(c.burst) {
			t.Errorf("limiter %+v, want rate %v burst %d", c.l, c.rate, c.burst)
		}
	}
}

// TestLimiter_Memory checks that refilled buckets are forgotten and that
// the number of buckets is bounded.
func TestLimiter_Memory(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	l := newLimiter(10, 1, 0, 0)
	l.now = clk.now
	for i := range maxBuckets + 10 {
		if ok, _ := l.allow("k" + strconv.Itoa(i)); !ok && i < maxBuckets {
			t.Fatalf("key %d refused", i)
		}
	}
	if n := len(l.buckets); n > maxBuckets {
		t.Fatalf("%d buckets, more than %d", n, maxBuckets)
	}
	// Newcomers beyond the bound share one bucket of burst 1.
	if ok, _ := l.allow("newcomer"); ok {
		t.Error("a newcomer beyond the bound had a bucket of its own")
	}
	clk.add(time.Second) // every bucket is full again
	l.allow("k0")
	if n := len(l.buckets); n != 1 {
		t.Fatalf("%d buckets after a refill and sweep, want 1", n)
	}
}

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:80":              "192.0.2.1",
		"[::ffff:192.0.2.1]:80":     "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:80": "2001:db8:1:2::/64",
		"[fe80::1%eth0]:80":         "fe80::/64",
		"@":                         "@",
	} {
		if got := addressKey(in); got != want {
			t.Errorf("addressKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	ts := newLeader(t)
	want := map[string]string{
		"X-Content-Type-Options":    "nosniff",
		"Cache-Control":             "no-store",
		"Strict-Transport-Security": "max-age=31536000",
		"X-Frame-Options":           "DENY",
		"Content-Security-Policy":   "default-src 'none'; frame-ancestors 'none'",
	}
	for _, rc := range []struct {
		method, path string
		hdr          []string
	}{
		{"GET", "/v1/cluster/settings", nil},                           // success
		{"GET", "/v1/health", nil},                                     // public
		{"GET", "/v1/nothing", nil},                                    // 404
		{"DELETE", "/v1/health", nil},                                  // 405
		{"GET", "/v1/status", []string{"Authorization", "Bearer bad"}}, // 401
		{"POST", "/v1/ipam/prefixes", nil},                             // 400: no body
	} {
		rec := ts.do(rc.method, rc.path, "", rc.hdr...)
		for k, v := range want {
			if got := rec.Header().Get(k); got != v {
				t.Errorf("%s %s (%d): %s %q, want %q", rc.method, rc.path, rec.Code, k, got, v)
			}
		}
	}
	// The answer to a request another server forwarded goes back to that
	// server, which sets them on its own answer to the client.
	rec := ts.do("GET", "/v1/cluster/settings", "", headerForwarded, "s2")
	for k := range want {
		if got := rec.Header().Get(k); got != "" {
			t.Errorf("answer to a forwarded request (%d): %s %q, want none", rec.Code, k, got)
		}
	}
}
