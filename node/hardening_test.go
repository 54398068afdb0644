package node

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/pki"
)

func TestConfig_APIRateLimit(t *testing.T) {
	base := func() *Config {
		c := DefaultConfig()
		c.NodeID = "s1"
		c.DataDir = t.TempDir()
		c.TLS = TLSConfig{CAFile: "ca.pem", CertFile: "s1.pem", KeyFile: "s1-key.pem"}
		return c
	}
	for _, tc := range []struct {
		name string
		rl   RateLimitConfig
		want string // "" when valid
	}{
		{"defaults", RateLimitConfig{}, ""},
		{"set", RateLimitConfig{PerSecond: 100, Burst: 10, AddressPerSecond: 5, AddressBurst: 1}, ""},
		{"off", RateLimitConfig{PerSecond: -1, AddressPerSecond: -1}, ""},
		{"negative burst", RateLimitConfig{Burst: -1}, "api_rate_limit.burst"},
		{"negative address burst", RateLimitConfig{AddressBurst: -5}, "api_rate_limit.address_burst"},
		{"burst of no limit", RateLimitConfig{PerSecond: -1, Burst: 5}, "api_rate_limit.burst"},
		{"address burst of no limit", RateLimitConfig{AddressPerSecond: -1, AddressBurst: 5}, "api_rate_limit.address_burst"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			c.APIRateLimit = tc.rl
			err := c.Validate()
			if tc.want == "" && err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate: %v, want an error naming %s", err, tc.want)
			}
		})
	}

	// From the file and the environment.
	path := filepath.Join(t.TempDir(), "moxxied.yaml")
	if err := os.WriteFile(path, []byte("api_rate_limit:\n  per_second: 50\n  burst: 100\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := base()
	if err := c.LoadConfigFile(path); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MOXXIE_API_RATE_LIMIT_ADDRESS_PER_SECOND": "7"}
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	want := RateLimitConfig{PerSecond: 50, Burst: 100, AddressPerSecond: 7}
	if c.APIRateLimit != want {
		t.Fatalf("api_rate_limit %+v, want %+v", c.APIRateLimit, want)
	}
	o := c.APIRateLimit.apiOptions(api.Options{})
	if o.RateLimit != 50 || o.RateBurst != 100 || o.AddressRateLimit != 7 || o.AddressRateBurst != 0 {
		t.Fatalf("api options %+v", o)
	}
}

// TestServer_RateLimitOverHTTPS checks that the configured limit reaches
// the API of a real server: the burst passes, the next request is a 429
// with Retry-After.
func TestServer_RateLimitOverHTTPS(t *testing.T) {
	s := TestServer(t, func(c *Config) {
		// A rate so low that no refill happens during the test.
		c.APIRateLimit = RateLimitConfig{PerSecond: 1, Burst: 3, AddressPerSecond: -1}
	})
	WaitForLeader(t, s)
	token := bootstrapToken(t, s)
	var last httpResult
	n := 0
	// The burst passes; refill while the loop runs (one a second) may let
	// a few more through, but not a hundred.
	for ; n < 100; n++ {
		last = call(t, s, "GET", "/v1/cluster/settings", token, nil, nil)
		if last.status != http.StatusOK {
			break
		}
	}
	if n < 3 || last.status != http.StatusTooManyRequests {
		t.Fatalf("%d requests passed, then %d %s", n, last.status, last.body)
	}
	if ra, err := strconv.Atoi(last.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q", last.header.Get("Retry-After"))
	}
	if !contains(last.body, `"rate_limited"`) {
		t.Errorf("429 body %s", last.body)
	}
	// Requests without a token are not limited by this configuration.
	for i := range 10 {
		if r := call(t, s, "GET", "/v1/health", "", nil, nil); r.status != http.StatusOK {
			t.Fatalf("health %d: %d", i, r.status)
		}
	}
}

// TestServer_HTTPLimits checks the limits of the API and forward servers
// and that the API refuses an oversized header.
func TestServer_HTTPLimits(t *testing.T) {
	s := TestServer(t, nil)
	WaitForLeader(t, s)
	for name, srv := range map[string]*http.Server{"api": s.apiSrv, "forward": s.fwdSrv} {
		if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
			t.Errorf("%s server: %+v", name, srv)
		}
		// A blocking query may wait 10 minutes (?wait's maximum) and then
		// answer; a forwarded one as long, plus the hold timeout.
		if srv.WriteTimeout <= 10*time.Minute+s.cfg.HoldTimeout.Duration() {
			t.Errorf("%s server: WriteTimeout %s does not outlast the longest blocking query", name, srv.WriteTimeout)
		}
	}
	req, _ := http.NewRequest("GET", s.URL()+"/v1/health", nil)
	req.Header.Set("X-Padding", strings.Repeat("a", 2*httpMaxHeaderBytes))
	resp, err := TestHTTPClient(t, s).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a %d-byte header: %s", 2*httpMaxHeaderBytes, resp.Status)
	}
	// Security headers come over the real listener too.
	r := call(t, s, "GET", "/v1/health", "", nil, nil)
	if r.header.Get("Strict-Transport-Security") == "" || r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", r.header)
	}
}

// certExpiryMetrics reads GET /v1/metrics of s and returns the values of
// moxxie_tls_certificate_expiry_timestamp_seconds by role and name.
func certExpiryMetrics(t *testing.T, s *Server, token string) map[[2]string]float64 {
	t.Helper()
	r := call(t, s, "GET", "/v1/metrics", token, nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("metrics: %d", r.status)
	}
	if !contains(r.body, "# TYPE moxxie_tls_certificate_expiry_timestamp_seconds gauge\n") {
		t.Fatalf("no gauge moxxie_tls_certificate_expiry_timestamp_seconds in the metrics")
	}
	re := regexp.MustCompile(`(?m)^moxxie_tls_certificate_expiry_timestamp_seconds\{name="([^"]*)",role="([^"]*)"\} (\S+)$`)
	out := map[[2]string]float64{}
	for _, m := range re.FindAllStringSubmatch(string(r.body), -1) {
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatal(err)
		}
		out[[2]string{m[2], m[1]}] = v
	}
	return out
}

// statusOf returns the status entry of server id as s reports it.
func statusOf(t *testing.T, s *Server, id string) api.ServerStatus {
	t.Helper()
	st, err := s.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, ss := range st.Servers {
		if ss.ID == id {
			return ss
		}
	}
	t.Fatalf("no server %s in %+v", id, st)
	return api.ServerStatus{}
}

// TestCertificateExpiry_StatusMetricsAndReload checks that every server's
// certificate expiry is in the status and the metrics, and that a renewed
// certificate loaded by ReloadCertificates (SIGHUP) shows in both and is
// presented to new connections while open ones keep working.
func TestCertificateExpiry_StatusMetricsAndReload(t *testing.T) {
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	token := bootstrapToken(t, leader)

	// The status over HTTP names every server's expiry.
	r := call(t, leader, "GET", "/v1/status", token, nil, nil)
	var st api.Status
	if r.status != http.StatusOK || jsonUnmarshal(r.body, &st) != nil {
		t.Fatalf("status: %d %s", r.status, r.body)
	}
	for _, ss := range st.Servers {
		var s *Server
		for _, c := range servers {
			if c.ID() == ss.ID {
				s = c
			}
		}
		if !ss.CertNotAfter.Equal(s.certs.NotAfter()) {
			t.Errorf("%s: cert_not_after %s, want %s", ss.ID, ss.CertNotAfter, s.certs.NotAfter())
		}
	}
	if !contains(r.body, `"cert_not_after":"`) {
		t.Errorf("status body %s", r.body)
	}

	// Each server's metrics hold its own certificate and the CA.
	WaitForApplied(t, leader.raft.AppliedIndex(), servers...) // every server knows the token
	ca := clusterCA(t).cert
	for _, s := range servers {
		m := certExpiryMetrics(t, s, token)
		if got, want := m[[2]string{"server", s.ID()}], float64(s.certs.NotAfter().Unix()); got != want {
			t.Errorf("metric of %s: %v, want %v", s.ID(), got, want)
		}
		if got := m[[2]string{"ca", ca.Subject.CommonName}]; got != float64(ca.NotAfter.Unix()) {
			t.Errorf("CA metric of %s: %v, want %v", s.ID(), got, ca.NotAfter.Unix())
		}
		if len(m) != 2 {
			t.Errorf("%s reports certificates %v, want its own and the CA", s.ID(), m)
		}
	}

	// Renew one follower's certificate in place and reload it.
	var f *Server
	for _, s := range servers {
		if s != leader {
			f = s
		}
	}
	old := f.certs.leaf()
	hc := TestHTTPClient(t, f)
	get := func() (*x509.Certificate, error) {
		resp, err := hc.Get(f.URL() + "/v1/health")
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body) // so the connection is kept
		return resp.TLS.PeerCertificates[0], nil
	}
	if c, err := get(); err != nil || !c.Equal(old) {
		t.Fatalf("before the reload: %v", err)
	}
	caDir := filepath.Join(filepath.Dir(f.cfg.TLS.CAFile))
	if err := pki.CreateCert(caDir, filepath.Dir(f.cfg.TLS.CertFile), f.ID(), pki.RoleServer, []string{"127.0.0.1"}, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := f.ReloadCertificates(); err != nil {
		t.Fatal(err)
	}
	renewed := f.certs.leaf()
	if !renewed.NotAfter.After(old.NotAfter) {
		t.Fatalf("NotAfter %s after the reload, was %s", renewed.NotAfter, old.NotAfter)
	}
	// The open keep-alive connection goes on with the old certificate...
	if c, err := get(); err != nil || !c.Equal(old) {
		t.Fatalf("the open connection after the reload: %v", err)
	}
	// ...and a new one gets the renewed certificate.
	hc.Transport.(*http.Transport).CloseIdleConnections()
	if c, err := get(); err != nil || !c.Equal(renewed) {
		t.Fatalf("a new connection after the reload: %v", err)
	}
	if got := statusOf(t, leader, f.ID()).CertNotAfter; !got.Equal(renewed.NotAfter) {
		t.Errorf("the leader's status of %s: %s, want %s", f.ID(), got, renewed.NotAfter)
	}
	if got := certExpiryMetrics(t, f, token)[[2]string{"server", f.ID()}]; got != float64(renewed.NotAfter.Unix()) {
		t.Errorf("metric after the reload %v, want %v", got, renewed.NotAfter.Unix())
	}
	// Raft still reaches the reloaded server: a write applies everywhere.
	if r := put(t, leader, token, "site.name", "after-reload"); r.status != http.StatusOK {
		t.Fatalf("write after the reload: %d %s", r.status, r.body)
	}

	// A reload that finds a key open to others is refused; the renewed
	// pair stays in use.
	if err := os.Chmod(f.cfg.TLS.KeyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.ReloadCertificates(); !errors.Is(err, pki.ErrKeyFileMode) || !strings.Contains(err.Error(), f.cfg.TLS.KeyFile) {
		t.Fatalf("reload with a 0644 key: %v", err)
	}
	if !f.certs.leaf().Equal(renewed) {
		t.Fatal("a refused reload replaced the certificate")
	}
}

// TestServer_RefusesOpenKeyFile checks that a server does not start with
// a key file others can read.
func TestServer_RefusesOpenKeyFile(t *testing.T) {
	c := TestConfig(t, "open-key")
	c.BootstrapExpect = 1
	if err := os.Chmod(c.TLS.KeyFile, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := New(c, Options{})
	if !errors.Is(err, pki.ErrKeyFileMode) || !strings.Contains(err.Error(), c.TLS.KeyFile) || !strings.Contains(err.Error(), "0640") {
		t.Fatalf("New with a 0640 key file: %v", err)
	}
}
