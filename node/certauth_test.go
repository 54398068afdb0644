package node

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/pki"
)

// certClient returns an HTTPS client for s's API that trusts the cluster
// CA and presents cert (nothing when nil).
func certClient(t *testing.T, s *Server, cert *tls.Certificate) *http.Client {
	t.Helper()
	ca, err := os.ReadFile(s.cfg.TLS.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// certRequest sends one request to s with c, retrying 503s (a leader
// change) for a while; hdr holds name, value pairs.
func certRequest(t *testing.T, c *http.Client, s *Server, method, path, body string, hdr ...string) httpResult {
	t.Helper()
	var out httpResult
	// 503 means no leader yet: wait for an answer that is not one.
	WaitForResult(t, 20*time.Second, func() error {
		req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
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
			t.Fatalf("%s %s on %s: %v", method, path, s.ID(), err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = httpResult{status: resp.StatusCode, header: resp.Header, body: b}
		if resp.StatusCode == http.StatusServiceUnavailable {
			return fmt.Errorf("%s %s on %s: 503 %s", method, path, s.ID(), b)
		}
		return nil
	})
	return out
}

func wantResult(t *testing.T, r httpResult, status int, msg string) {
	t.Helper()
	if r.status != status || !bytes.Contains(r.body, []byte(msg)) {
		t.Fatalf("status %d body %s, want %d with %q", r.status, r.body, status, msg)
	}
}

// TestMultiNode_AgentCertificateThroughAFollower runs an agent with a
// certificate against a follower: its writes reach the leader in batch
// frames and its default reads as forwarded HTTP, and on both paths the
// leader authenticates the certificate the follower saw, not a header a
// client wrote.
func TestMultiNode_AgentCertificateThroughAFollower(t *testing.T) {
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	admin := bootstrapToken(t, leader)
	var follower *Server
	for _, s := range servers {
		if s != leader {
			follower = s
			break
		}
	}
	ca := clusterCA(t)
	agent := certClient(t, follower, ca.valid(t, "pve1", pki.RoleAgent))

	wantResult(t, certRequest(t, agent, follower, "PUT", "/v1/sdn/hosts/pve1", `{"address":"192.0.2.1","uplink":"eth0"}`), http.StatusOK, `"name":"pve1"`)
	wantResult(t, certRequest(t, agent, follower, "GET", "/v1/sdn/hosts/pve1/plan", ""), http.StatusOK, `"host":"pve1"`)
	wantResult(t, certRequest(t, agent, follower, "POST", "/v1/sdn/hosts/pve1/report", `{"version":0,"state":"applied"}`), http.StatusOK, `"state":"applied"`)
	wantResult(t, certRequest(t, agent, follower, "PUT", "/v1/sdn/hosts/pve2", `{"address":"192.0.2.2"}`), http.StatusForbidden, "host pve1")
	wantResult(t, certRequest(t, agent, follower, "GET", "/v1/sdn/hosts/pve2/plan", ""), http.StatusForbidden, "host pve1")

	// The leader recorded the enrol as the certificate's.
	r := call(t, follower, "GET", "/v1/audit?action="+url.QueryEscape("PUT /v1/sdn/hosts/{name}"), admin, nil, nil)
	wantResult(t, r, http.StatusOK, `"token_id":"cert:pve1","role":"agent"`)

	// A client cannot write the identity header itself, whether it sends
	// a certificate of another role or none, on a follower or the leader.
	spoof := url.Values{"cn": {"pve2"}, "role": {"agent"}, "not_after": {strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)}}.Encode()
	for _, s := range []*Server{follower, leader} {
		for _, c := range []struct {
			client *http.Client
			msg    string
		}{
			{certClient(t, s, nil), "missing bearer token"},
			{certClient(t, s, ca.valid(t, "alice", pki.RoleClient)), "certificates of role client do not authenticate"},
			{agent, "host pve1"},
		} {
			wantResult(t, certRequest(t, c.client, s, "PUT", "/v1/sdn/hosts/pve2", `{"address":"192.0.2.2"}`, "X-Moxxie-Client-Cert", spoof), statusFor(c.msg), c.msg)
			wantResult(t, certRequest(t, c.client, s, "GET", "/v1/sdn/hosts/pve2/plan", "", "X-Moxxie-Client-Cert", spoof), statusFor(c.msg), c.msg)
		}
	}
	if h := call(t, leader, "GET", "/v1/sdn/hosts", admin, nil, nil); contains(h.body, "pve2") {
		t.Fatalf("a spoofed identity enrolled pve2: %s", h.body)
	}
}

// statusFor returns the status of the refusals in the test above.
func statusFor(msg string) int {
	if msg == "host pve1" {
		return http.StatusForbidden
	}
	return http.StatusUnauthorized
}
