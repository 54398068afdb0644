package api

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/auth"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/pki"
)

// certPKI is a cluster CA made by package pki in a temporary directory,
// with the certificates it issued.
type certPKI struct {
	t    *testing.T
	dir  string
	pool *x509.CertPool
}

func newCertPKI(t *testing.T) *certPKI {
	t.Helper()
	dir := t.TempDir()
	if err := pki.CreateCA(dir, "Moxxie test CA", time.Hour); err != nil {
		t.Fatal(err)
	}
	pool, err := pki.LoadCertPool(filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	return &certPKI{t: t, dir: dir, pool: pool}
}

// cert issues a certificate of role for name, as `moxxied tls cert create`
// does.
func (p *certPKI) cert(name string, role pki.Role) *tls.Certificate {
	p.t.Helper()
	return p.issued(name, pki.CreateCert(p.dir, p.dir, name, role, []string{"127.0.0.1", "localhost"}, time.Hour))
}

// siteCert issues a server certificate for name naming site, as
// `moxxied tls cert create --server --site` does.
func (p *certPKI) siteCert(name, site string) *tls.Certificate {
	p.t.Helper()
	return p.issued(name, pki.CreateSiteCert(p.dir, p.dir, name, site, []string{"127.0.0.1", "localhost"}, time.Hour))
}

// issued loads the key pair of name, which the issuing call that returned
// err wrote.
func (p *certPKI) issued(name string, err error) *tls.Certificate {
	p.t.Helper()
	if err != nil {
		p.t.Fatal(err)
	}
	pair, err := pki.LoadKeyPair(pki.CertPath(p.dir, name), pki.KeyPath(p.dir, name))
	if err != nil {
		p.t.Fatal(err)
	}
	return &pair
}

// serveTLS serves h over HTTPS as node's API listener does: with a server
// certificate of the CA, taking a client certificate when one is given
// and verifying it against the CA.
func (p *certPKI) serveTLS(h http.Handler) *httptest.Server {
	p.t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{*p.cert("api-server", pki.RoleServer)},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    p.pool,
	}
	srv.StartTLS()
	p.t.Cleanup(srv.Close)
	return srv
}

// client returns an HTTPS client that trusts the CA and presents cert
// (nothing when nil).
func (p *certPKI) client(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: p.pool}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	p.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// certResult is one answer of certCall.
type certResult struct {
	status int
	header http.Header
	body   []byte
}

// certCall sends one request; hdr holds name, value pairs.
func certCall(t *testing.T, c *http.Client, method, url, body string, hdr ...string) certResult {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return certResult{status: resp.StatusCode, header: resp.Header, body: b}
}

// want fails unless the answer has status and, for an error, a message
// containing every one of msgs.
func (r certResult) want(t *testing.T, status int, msgs ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if len(msgs) == 0 {
		return
	}
	var er ErrorResponse
	mustJSON(t, r.body, &er)
	for _, m := range msgs {
		if !strings.Contains(er.Error.Message, m) {
			t.Errorf("message %q does not contain %q", er.Error.Message, m)
		}
	}
	if status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
}

const enrolBody = `{"address":"192.0.2.1","uplink":"eth0"}`

func TestCertAuth_AgentCertificateActsForItsHostOnly(t *testing.T) {
	ts := newLeader(t)
	p := newCertPKI(t)
	srv := p.serveTLS(ts.h)
	agent := p.client(p.cert("pve1", pki.RoleAgent))

	certCall(t, agent, "PUT", srv.URL+"/v1/sdn/hosts/pve1", enrolBody).want(t, http.StatusOK)
	if m := ts.b.lastMeta.Load(); m.Actor != "cert:pve1" {
		t.Fatalf("enrol stamped actor %q, want cert:pve1", m.Actor)
	}
	var pv fsm.SDNPlanView
	r := certCall(t, agent, "GET", srv.URL+"/v1/sdn/hosts/pve1/plan", "")
	r.want(t, http.StatusOK)
	mustJSON(t, r.body, &pv)
	if pv.Host != "pve1" {
		t.Fatalf("plan %+v", pv)
	}
	certCall(t, agent, "POST", srv.URL+"/v1/sdn/hosts/pve1/report", `{"version":0,"state":"applied"}`).want(t, http.StatusOK)

	// Another host's routes are refused, naming the certificate's host.
	wantStatus(t, ts.do("PUT", "/v1/sdn/hosts/pve2", `{"address":"192.0.2.2"}`), http.StatusOK)
	applies := ts.b.applies.Load()
	certCall(t, agent, "PUT", srv.URL+"/v1/sdn/hosts/pve2", enrolBody).want(t, http.StatusForbidden, "host pve1", "/v1/sdn/hosts/pve1", `"pve2"`)
	certCall(t, agent, "GET", srv.URL+"/v1/sdn/hosts/pve2/plan", "").want(t, http.StatusForbidden, "host pve1")
	certCall(t, agent, "POST", srv.URL+"/v1/sdn/hosts/pve2/report", `{"version":0,"state":"applied"}`).want(t, http.StatusForbidden, "host pve1")
	if ts.b.applies.Load() != applies {
		t.Fatal("a refused agent write reached Apply")
	}

	// Everything else is RBAC for role agent.
	certCall(t, agent, "GET", srv.URL+"/v1/status", "").want(t, http.StatusOK)
	certCall(t, agent, "GET", srv.URL+"/v1/sdn/hosts/pve1", "").want(t, http.StatusForbidden)
	certCall(t, agent, "GET", srv.URL+"/v1/sdn/zones", "").want(t, http.StatusForbidden)
	certCall(t, agent, "PUT", srv.URL+"/v1/cluster/settings/k", `{"value":"v"}`).want(t, http.StatusForbidden)
	certCall(t, agent, "DELETE", srv.URL+"/v1/sdn/hosts/pve1", "").want(t, http.StatusForbidden)

	// A token wins over the certificate: the admin may act on any host,
	// and a bad token is not rescued by a good certificate.
	certCall(t, agent, "PUT", srv.URL+"/v1/sdn/hosts/pve2", `{"address":"192.0.2.3"}`, "Authorization", "Bearer "+ts.secret).want(t, http.StatusOK)
	if m := ts.b.lastMeta.Load(); m.Actor == "cert:pve1" || m.Actor == "" {
		t.Fatalf("token write stamped actor %q", m.Actor)
	}
	certCall(t, agent, "GET", srv.URL+"/v1/sdn/hosts/pve1/plan", "", "Authorization", "Bearer mxx_wrong").want(t, http.StatusUnauthorized, "invalid token")

	// The audit log names the certificate.
	var l AuditList
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/audit?action=PUT+/v1/sdn/hosts/{name}", ""), http.StatusOK), &l)
	var found bool
	for _, e := range l.Entries {
		if e.Object == "/v1/sdn/hosts/pve1" && e.Result == "ok" {
			found = true
			if e.TokenID != "cert:pve1" || e.Role != "agent" {
				t.Errorf("audit entry %+v, want token cert:pve1 role agent", e)
			}
		}
	}
	if !found {
		t.Fatalf("no audit entry of the enrol: %+v", l.Entries)
	}
}

// A server certificate acts with role site: it reads the status and
// sends DR plans (dr:replicate), nothing else.
func TestCertAuth_ServerCertificateActsAsSite(t *testing.T) {
	ts := newLeader(t)
	p := newCertPKI(t)
	srv := p.serveTLS(ts.h)
	c := p.client(p.cert("east-s1", pki.RoleServer))
	certCall(t, c, "GET", srv.URL+"/v1/status", "").want(t, http.StatusOK)
	certCall(t, c, "GET", srv.URL+"/v1/sdn/hosts/east-s1/plan", "").want(t, http.StatusForbidden, "role site lacks permission agent")
	certCall(t, c, "DELETE", srv.URL+"/v1/dr/plans/x", "").want(t, http.StatusForbidden, "role site lacks permission dr:write")
	certCall(t, c, "PUT", srv.URL+"/v1/dr/replicas/east", `{"plans":[]}`).want(t, http.StatusNotFound, "in no site")
}

// A server certificate acts for the site it names and no other: the
// servers of all sites share the CA.
func TestCertAuth_ServerCertificateActsForItsSiteOnly(t *testing.T) {
	ts := newSiteServer(t, "west")
	p := newCertPKI(t)
	srv := p.serveTLS(ts.h)
	replica := func(source, id string) string {
		return `{"plans":[{"id":"` + id + `","source_site":"` + source + `","recovery_site":"west","backup_storage":"dr","target_storage":"local-lvm",
			"guests":[{"vmid":100}],"updated_at":"2026-11-26T10:00:00Z"}]}`
	}
	north := p.client(p.siteCert("north-s1", "north"))
	east := p.client(p.siteCert("east-s1", "east"))
	unsited := p.client(p.cert("old-s1", pki.RoleServer))

	certCall(t, north, "PUT", srv.URL+"/v1/dr/replicas/north", replica("north", "shop")).want(t, http.StatusOK)
	for _, tt := range []struct {
		c    *http.Client
		want []string
	}{
		{east, []string{"server certificate east-s1 is of site east", `not for site "north"`}},
		{unsited, []string{"server certificate old-s1 names no site", "--site"}},
	} {
		r := certCall(t, tt.c, "PUT", srv.URL+"/v1/dr/replicas/north", replica("north", "evil"))
		r.want(t, http.StatusForbidden, tt.want...)
		if !strings.Contains(string(r.body), `"field":"source"`) {
			t.Errorf("refusal does not name the field source: %s", r.body)
		}
		certCall(t, tt.c, "POST", srv.URL+"/v1/dr/plans/shop/release", "").want(t, http.StatusForbidden, "may act")
	}
	// east may still send its own plans.
	certCall(t, east, "PUT", srv.URL+"/v1/dr/replicas/east", `{"plans":[]}`).want(t, http.StatusOK)
	// north passes the binding to release its own plan, which was not
	// failed over.
	certCall(t, north, "POST", srv.URL+"/v1/dr/plans/shop/release", "").want(t, http.StatusConflict, "nothing to release")

	var l DRPlanList
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/dr/plans", ""), http.StatusOK), &l)
	if len(l.Plans) != 1 || l.Plans[0].ID != "shop" {
		t.Fatalf("plans after the refused syncs: %+v", l.Plans)
	}

	// A token of role site names no site, and an admin's token is bound
	// to none.
	site := ts.createToken(auth.RoleSite, "")
	certCall(t, p.client(nil), "PUT", srv.URL+"/v1/dr/replicas/north", replica("north", "evil"), "Authorization", "Bearer "+site.SecretID).
		want(t, http.StatusForbidden, "token "+site.AccessorID+" names no site")
	certCall(t, p.client(nil), "PUT", srv.URL+"/v1/dr/replicas/north", replica("north", "shop"), "Authorization", "Bearer "+ts.secret).want(t, http.StatusOK)

	// A follower passes the site on with the identity; the leader binds
	// by it.
	link := httptest.NewServer(ts.h)
	t.Cleanup(link.Close)
	plain := &http.Client{Timeout: 10 * time.Second}
	fwd := func(site string) string {
		return certIdentity{name: "x-s1", role: pki.RoleServer, notAfter: ts.b.Now().Add(time.Hour), site: site}.encode()
	}
	certCall(t, plain, "PUT", link.URL+"/v1/dr/replicas/north", replica("north", "shop"), headerClientCert, fwd("north"), headerForwarded, "s2").want(t, http.StatusOK)
	certCall(t, plain, "PUT", link.URL+"/v1/dr/replicas/north", replica("north", "evil"), headerClientCert, fwd("east"), headerForwarded, "s2").want(t, http.StatusForbidden, "of site east")
	certCall(t, plain, "PUT", link.URL+"/v1/dr/replicas/north", replica("north", "evil"), headerClientCert, fwd(""), headerForwarded, "s2").want(t, http.StatusForbidden, "names no site")
}

func TestCertAuth_ClientCertificatesDoNotAuthenticate(t *testing.T) {
	ts := newLeader(t)
	p := newCertPKI(t)
	srv := p.serveTLS(ts.h)
	for _, role := range []pki.Role{pki.RoleClient} {
		t.Run(string(role), func(t *testing.T) {
			c := p.client(p.cert("pve1-"+string(role), role))
			for _, path := range []string{"/v1/status", "/v1/sdn/hosts/pve1-" + string(role) + "/plan"} {
				certCall(t, c, "GET", srv.URL+path, "").want(t, http.StatusUnauthorized, "certificates of role "+string(role)+" do not authenticate")
			}
			// With a token, the token decides.
			certCall(t, c, "GET", srv.URL+"/v1/status", "", "Authorization", "Bearer "+ts.secret).want(t, http.StatusOK)
		})
	}
	// No certificate and no token: as before.
	certCall(t, p.client(nil), "GET", srv.URL+"/v1/status", "").want(t, http.StatusUnauthorized, "missing bearer token")
}

func TestCertAuth_ExpiredByTheLeaderClock(t *testing.T) {
	ts := newLeader(t)
	p := newCertPKI(t)
	srv := p.serveTLS(ts.h)
	cert := p.cert("pve1", pki.RoleAgent)
	agent := p.client(cert)
	certCall(t, agent, "GET", srv.URL+"/v1/status", "").want(t, http.StatusOK)
	// The connection stays open past the expiry; the leader's clock says
	// the certificate is no longer good.
	ts.b.advance(cert.Leaf.NotAfter.Sub(ts.b.Now()) + time.Second)
	certCall(t, agent, "GET", srv.URL+"/v1/status", "").want(t, http.StatusUnauthorized, "expired")
}

func TestCertAuth_SpoofedIdentityHeaderIsIgnoredOnPublicRequests(t *testing.T) {
	ts := newLeader(t)
	p := newCertPKI(t)
	srv := p.serveTLS(ts.h)
	spoof := certIdentity{name: "pve1", role: pki.RoleAgent, notAfter: time.Now().Add(time.Hour)}.encode()
	wantStatus(t, ts.do("PUT", "/v1/sdn/hosts/pve1", enrolBody), http.StatusOK)

	for _, hdr := range [][]string{
		{headerClientCert, spoof},
		{headerClientCert, spoof, headerForwarded, "s2"}, // a client claiming to be a server
	} {
		// Without a certificate.
		certCall(t, p.client(nil), "GET", srv.URL+"/v1/sdn/hosts/pve1/plan", "", hdr...).want(t, http.StatusUnauthorized, "missing bearer token")
		// With a client certificate: its own role counts.
		certCall(t, p.client(p.cert("alice", pki.RoleClient)), "GET", srv.URL+"/v1/sdn/hosts/pve1/plan", "", hdr...).
			want(t, http.StatusUnauthorized, "role client")
		// With another host's agent certificate: its own host counts.
		certCall(t, p.client(p.cert("pve2", pki.RoleAgent)), "GET", srv.URL+"/v1/sdn/hosts/pve1/plan", "", hdr...).
			want(t, http.StatusForbidden, "host pve2")
	}
	// Without TLS (as the forwarding link looks) but without the
	// forwarding mark, the header is not believed either.
	wantError(t, ts.do("GET", "/v1/sdn/hosts/pve1/plan", "", "Authorization", "", headerClientCert, spoof), http.StatusUnauthorized, CodeUnauthorized, "")
}

// certCluster is a leader whose forwarding link is plain HTTP (as the
// servers' mutual-TLS link looks to the HTTP server: r.TLS is nil) and a
// follower serving clients over HTTPS and forwarding to it.
type certCluster struct {
	leader, follower *testServer
	link             string // the leader's forwarding link
	public           string // the follower's API
}

func newCertCluster(t *testing.T, p *certPKI) *certCluster {
	t.Helper()
	leader := newLeader(t)
	link := httptest.NewServer(leader.h)
	t.Cleanup(link.Close)
	fb := newFakeBackend("s2", leader.b.fsm, false)
	fb.leaderURL = link.URL
	follower := newTestServer(t, fb, Options{})
	follower.secret = leader.secret
	return &certCluster{leader: leader, follower: follower, link: link.URL, public: p.serveTLS(follower.h).URL}
}

func TestCertAuth_ForwardedIdentity(t *testing.T) {
	p := newCertPKI(t)
	c := newCertCluster(t, p)
	agent := p.client(p.cert("pve1", pki.RoleAgent))

	// Writes and default reads go to the leader with the certificate's
	// identity.
	certCall(t, agent, "PUT", c.public+"/v1/sdn/hosts/pve1", enrolBody).want(t, http.StatusOK)
	if m := c.leader.b.lastMeta.Load(); m.Actor != "cert:pve1" {
		t.Fatalf("forwarded enrol stamped actor %q, want cert:pve1", m.Actor)
	}
	certCall(t, agent, "GET", c.public+"/v1/sdn/hosts/pve1/plan", "").want(t, http.StatusOK)
	certCall(t, agent, "POST", c.public+"/v1/sdn/hosts/pve1/report", `{"version":0,"state":"applied"}`).want(t, http.StatusOK)
	if n := c.follower.b.forwards.Load(); n != 3 {
		t.Fatalf("forwards %d, want 3", n)
	}
	// A stale read is served by the follower from its own connection.
	certCall(t, agent, "GET", c.public+"/v1/sdn/hosts/pve1/plan?stale", "").want(t, http.StatusOK)
	if n := c.follower.b.forwards.Load(); n != 3 {
		t.Fatalf("stale read forwarded (%d forwards)", n)
	}
	// The binding to the host holds on the leader.
	certCall(t, agent, "PUT", c.public+"/v1/sdn/hosts/pve2", enrolBody).want(t, http.StatusForbidden, "host pve1")

	// What a client puts in the identity header does not reach the
	// leader: the follower replaces it with the certificate's identity,
	// or drops it.
	spoof := certIdentity{name: "pve2", role: pki.RoleAgent, notAfter: time.Now().Add(time.Hour)}.encode()
	certCall(t, agent, "PUT", c.public+"/v1/sdn/hosts/pve2", enrolBody, headerClientCert, spoof).want(t, http.StatusForbidden, "host pve1")
	certCall(t, p.client(nil), "PUT", c.public+"/v1/sdn/hosts/pve2", enrolBody, headerClientCert, spoof).want(t, http.StatusUnauthorized, "missing bearer token")
	certCall(t, p.client(p.cert("alice", pki.RoleClient)), "PUT", c.public+"/v1/sdn/hosts/pve2", enrolBody, headerClientCert, spoof).
		want(t, http.StatusUnauthorized, "role client")
	// A client that marks its request as forwarded is turned away by the
	// follower, which is not the leader.
	certCall(t, p.client(nil), "PUT", c.public+"/v1/sdn/hosts/pve2", enrolBody, headerClientCert, spoof, headerForwarded, "s9").
		want(t, http.StatusServiceUnavailable)

	// On the forwarding link the leader believes the header only with the
	// forwarding mark.
	plain := &http.Client{Timeout: 10 * time.Second}
	certCall(t, plain, "PUT", c.link+"/v1/sdn/hosts/pve2", enrolBody, headerClientCert, spoof, headerForwarded, "s2").want(t, http.StatusOK)
	if m := c.leader.b.lastMeta.Load(); m.Actor != "cert:pve2" {
		t.Fatalf("actor %q, want cert:pve2", m.Actor)
	}
	certCall(t, plain, "PUT", c.link+"/v1/sdn/hosts/pve2", enrolBody, headerClientCert, spoof).want(t, http.StatusUnauthorized, "missing bearer token")
	// A malformed header authenticates nothing.
	certCall(t, plain, "GET", c.link+"/v1/status", "", headerClientCert, "cn=pve2&role=agent", headerForwarded, "s2").want(t, http.StatusUnauthorized, "missing bearer token")
	expired := certIdentity{name: "pve2", role: pki.RoleAgent, notAfter: c.leader.b.Now().Add(-time.Second)}.encode()
	certCall(t, plain, "GET", c.link+"/v1/status", "", headerClientCert, expired, headerForwarded, "s2").want(t, http.StatusUnauthorized, "expired")
}

func TestCertAuth_IdentityHeaderRoundTrip(t *testing.T) {
	for _, id := range []certIdentity{
		{name: "pve-1.example", role: pki.RoleAgent, notAfter: time.Unix(1893456000, 0)},
		{name: "s1", role: pki.RoleServer, notAfter: time.Unix(1893456000, 0), site: "east"},
	} {
		got, ok := parseCertIdentity(id.encode())
		if !ok || got != id {
			t.Fatalf("round trip %+v %v, want %+v", got, ok, id)
		}
	}
	for _, bad := range []string{"", "cn=a", "cn=a&role=agent", "cn=a&role=agent&not_after=x", "cn=a&cn=b&role=agent&not_after=1", "%zz",
		"cn=a&role=server&not_after=1&site=east&site=west"} {
		if _, ok := parseCertIdentity(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// FuzzCertIdentityHeader checks the identity header a follower forwards:
// any identity reads back as itself, and any header value that reads as
// an identity writes and reads back as the same one.
func FuzzCertIdentityHeader(f *testing.F) {
	f.Add("pve-1.example", "agent", "", int64(1893456000), "cn=a&role=agent&not_after=1")
	f.Add("s1&role=admin", "server", "east", int64(-1), "cn=a&role=server&not_after=1&site=east&site=west")
	f.Fuzz(func(t *testing.T, cn, role, site string, notAfter int64, header string) {
		id := certIdentity{name: cn, role: pki.Role(role), notAfter: time.Unix(notAfter, 0), site: site}
		if got, ok := parseCertIdentity(id.encode()); !ok || got != id {
			t.Fatalf("round trip of %+v: %+v, %v", id, got, ok)
		}
		if got, ok := parseCertIdentity(header); ok {
			if again, ok := parseCertIdentity(got.encode()); !ok || again != got {
				t.Fatalf("%q reads as %+v, which reads back as %+v, %v", header, got, again, ok)
			}
		}
	})
}

// verifiedAs returns a TLS state whose verified chain is the certificate
// of pair, as the API listener records it.
func verifiedAs(t *testing.T, pair *tls.Certificate) *tls.ConnectionState {
	t.Helper()
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf}}}
}

// TestCertAuth_RateLimitedPerCertificate: an agent certificate is limited
// as a token of its own, whatever address it comes from.
func TestCertAuth_RateLimitedPerCertificate(t *testing.T) {
	ts, _ := limitedLeader(t, Options{RateLimit: 1, RateBurst: 1, AddressRateLimit: 1000, AddressRateBurst: 1000})
	p := newCertPKI(t)
	pve1, pve2 := verifiedAs(t, p.cert("pve1", pki.RoleAgent)), verifiedAs(t, p.cert("pve2", pki.RoleAgent))
	call := func(state *tls.ConnectionState, addr string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/v1/sdn/hosts/pve1/plan", nil)
		req.RemoteAddr, req.TLS = addr, state
		rec := httptest.NewRecorder()
		ts.h.ServeHTTP(rec, req)
		return rec
	}
	if rec := call(pve1, "192.0.2.1:1000"); rec.Code == http.StatusTooManyRequests {
		t.Fatalf("first request of pve1 limited: %s", rec.Body)
	}
	wantRateLimited(t, call(pve1, "192.0.2.99:1000"), 1)
	if rec := call(pve2, "192.0.2.1:1000"); rec.Code == http.StatusTooManyRequests {
		t.Fatalf("pve2 limited by pve1's requests: %s", rec.Body)
	}
}

// TestCertAuth_RefusalAuditedWithTheCertificate: a certificate that does
// not authenticate is audited under its name and role.
func TestCertAuth_RefusalAuditedWithTheCertificate(t *testing.T) {
	stopAuditClock(t)
	ts := newLeader(t)
	p := newCertPKI(t)
	srv := p.serveTLS(ts.h)
	c := p.client(p.cert("ops1", pki.RoleClient))
	certCall(t, c, "GET", srv.URL+"/v1/sdn/zones", "").want(t, http.StatusUnauthorized)
	var l AuditList
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/audit?token=cert:ops1", ""), http.StatusOK), &l)
	if len(l.Entries) != 1 || l.Entries[0].Role != "client" || l.Entries[0].Result != CodeUnauthorized {
		t.Fatalf("audit entries of cert:ops1: %+v", l.Entries)
	}
}
