package node

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/internal/lockedbuf"
	"github.com/moxxie/moxxie/pki"
)

// These tests hold the raft port, which carries raft, forwarded requests
// and server RPCs, to its contract: only a server certificate of the
// cluster CA, valid now, gets past the handshake, in either direction. The
// connection-type byte is read after the handshake, so a refused handshake
// refuses every kind; each case is still tried on two kinds, the RPC and a
// forwarded HTTP request.

// testAuthority is a CA that signs certificates with any validity.
type testAuthority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// clusterCA returns the CA of the test servers.
func clusterCA(t *testing.T) *testAuthority {
	t.Helper()
	files, err := testCAFiles()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(files["ca.pem"])
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pem.Decode(files["ca-key.pem"])
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return &testAuthority{cert: cert, key: key}
}

// otherCA returns a CA the cluster does not trust, made by the same code
// as the cluster's.
func otherCA(t *testing.T) *testAuthority {
	t.Helper()
	dir := t.TempDir()
	if err := pki.CreateCA(dir, "Moxxie test CA", time.Hour); err != nil { // same name as the real one
		t.Fatal(err)
	}
	pair, err := pki.LoadKeyPair(filepath.Join(dir, pki.CACertFile), filepath.Join(dir, pki.CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return &testAuthority{cert: pair.Leaf, key: pair.PrivateKey.(crypto.Signer)}
}

// issue signs a certificate of role, valid from notBefore to notAfter, as
// pki.CreateCert would (role in the OU and the URI SAN).
func (a *testAuthority) issue(t *testing.T, name string, role pki.Role, notBefore, notAfter time.Time) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"Moxxie"}, OrganizationalUnit: []string{role.OU()}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		URIs:         []*url.URL{role.URI()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// valid issues a certificate valid for the next hour.
func (a *testAuthority) valid(t *testing.T, name string, role pki.Role) *tls.Certificate {
	now := time.Now()
	return a.issue(t, name, role, now.Add(-time.Minute), now.Add(time.Hour))
}

// expired issues a certificate that expired a minute ago.
func (a *testAuthority) expired(t *testing.T, name string, role pki.Role) *tls.Certificate {
	now := time.Now()
	return a.issue(t, name, role, now.Add(-time.Hour), now.Add(-time.Minute))
}

// probeRaftPort connects to a server's raft port as a peer presenting cert
// (nothing when nil), asks for one connection kind and reports whether the
// server answered it: for connRPC the info RPC, for connForward an HTTP
// request for /v1/health.
func probeRaftPort(addr string, cert *tls.Certificate, kind byte) error {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} //nolint:gosec // the peer side is not under test
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	// Bounds the wait for a server that neither answers nor hangs up.
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte{kind}); err != nil {
		return err
	}
	switch kind {
	case connRPC:
		if err := json.NewEncoder(c).Encode(rpcRequest{Op: "info"}); err != nil {
			return err
		}
		var info peerInfo
		if err := json.NewDecoder(c).Decode(&info); err != nil {
			return err
		}
		if info.ID == "" {
			return errors.New("empty info answer")
		}
	case connForward:
		if _, err := io.WriteString(c, "GET /v1/health HTTP/1.1\r\nHost: peer\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("forwarded /v1/health: %s", resp.Status)
		}
	}
	return nil
}

func TestMTLS_RaftPortRefusesAllButServerCertificatesOfTheCA(t *testing.T) {
	s := TestServer(t, nil)
	WaitForLeader(t, s)
	ca, other := clusterCA(t), otherCA(t)
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		ok   bool
	}{
		{"server certificate of the cluster CA", ca.valid(t, "peer", pki.RoleServer), true},
		{"no certificate", nil, false},
		{"server certificate of another CA", other.valid(t, "peer", pki.RoleServer), false},
		{"expired server certificate of the cluster CA", ca.expired(t, "peer", pki.RoleServer), false},
		{"not yet valid server certificate of the cluster CA", ca.issue(t, "peer", pki.RoleServer, time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)), false},
		{"client certificate of the cluster CA", ca.valid(t, "peer", pki.RoleClient), false},
		{"agent certificate of the cluster CA", ca.valid(t, "peer", pki.RoleAgent), false},
		{"self-signed server certificate", selfSigned(t), false},
	} {
		for _, kind := range []struct {
			name string
			b    byte
		}{{"rpc", connRPC}, {"forward", connForward}} {
			t.Run(tc.name+"/"+kind.name, func(t *testing.T) {
				err := probeRaftPort(s.RaftAddress(), tc.cert, kind.b)
				if tc.ok && err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !tc.ok && err == nil {
					t.Fatal("answered")
				}
				t.Logf("probe: %v", err)
			})
		}
	}
}

// selfSigned returns a server-role certificate signed by its own key.
func selfSigned(t *testing.T) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "peer", OrganizationalUnit: []string{pki.RoleServer.OU()}},
		NotBefore:    now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:        []*url.URL{pki.RoleServer.URI()},
		IsCA:        true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// fakePeer listens on loopback as a raft peer presenting cert, accepting
// any client certificate, and returns its address.
func fakePeer(t *testing.T, cert *tls.Certificate) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{*cert},
		ClientAuth:   tls.RequireAnyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestMTLS_ServerRefusesPeersThatAreNotServers has a real server dial peers
// (as raft, forwarding and joins do): it completes the connection only to
// a peer presenting a server certificate of the cluster CA.
func TestMTLS_ServerRefusesPeersThatAreNotServers(t *testing.T) {
	s := TestServer(t, nil)
	WaitForLeader(t, s)
	ca, other := clusterCA(t), otherCA(t)
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		ok   bool
		want string // in the error
	}{
		{"server certificate of the cluster CA", ca.valid(t, "peer", pki.RoleServer), true, ""},
		{"client certificate of the cluster CA", ca.valid(t, "peer", pki.RoleClient), false, `role "client", want server`},
		{"agent certificate of the cluster CA", ca.valid(t, "peer", pki.RoleAgent), false, `role "agent", want server`},
		{"server certificate of another CA", other.valid(t, "peer", pki.RoleServer), false, "unknown authority"},
		{"expired server certificate of the cluster CA", ca.expired(t, "peer", pki.RoleServer), false, "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakePeer(t, tc.cert)
			for _, kind := range []byte{connRaft, connForward, connRPC} {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				c, err := s.mux.dial(ctx, addr, kind)
				cancel()
				if c != nil {
					c.Close()
				}
				if tc.ok && err != nil {
					t.Fatalf("kind %d: refused: %v", kind, err)
				}
				if !tc.ok && (err == nil || !strings.Contains(err.Error(), tc.want)) {
					t.Fatalf("kind %d: dial error %v, want one mentioning %q", kind, err, tc.want)
				}
			}
		})
	}
}

// TestMTLS_ServerRefusesClientCertificateAsItsOwn checks the other half of
// the role rule: a server configured with a client certificate does not
// start, so it can never present one to a peer.
func TestMTLS_ServerRefusesClientCertificateAsItsOwn(t *testing.T) {
	c := TestConfig(t, "client-as-server")
	c.BootstrapExpect = 1
	c.TLS = TestTLS(t, t.TempDir(), "client-as-server", pki.RoleClient)
	_, err := New(c, Options{})
	if err == nil || !strings.Contains(err.Error(), "not a server certificate") {
		t.Fatalf("New with a client certificate: %v", err)
	}
}

// TestLoadCerts_SiteOfTheCertificate: a server certificate that names a
// site must name the server's own; one that names none loads (the server
// warns that other sites refuse its DR plans).
func TestLoadCerts_SiteOfTheCertificate(t *testing.T) {
	dir := t.TempDir()
	base := TestTLS(t, dir, "s0", pki.RoleServer)
	caDir := filepath.Dir(base.CAFile)
	siteTLS := func(name, site string) TLSConfig {
		if err := pki.CreateSiteCert(caDir, dir, name, site, []string{"127.0.0.1"}, time.Hour); err != nil {
			t.Fatal(err)
		}
		return TLSConfig{CAFile: base.CAFile, CertFile: pki.CertPath(dir, name), KeyFile: pki.KeyPath(dir, name)}
	}
	east := siteTLS("s1", "east")
	tests := []struct {
		name     string
		tls      TLSConfig
		site     string
		wantSite string
		wantErr  string
	}{
		{"its own site", east, "east", "east", ""},
		{"another site", east, "west", "", "names site east, but this server is in site west"},
		{"in no site", east, "", "", "names site east, but this server is in no site"},
		{"a certificate naming no site", base, "west", "", ""},
		{"outside the pool", base, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := loadCerts(tt.tls, tt.site)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("loadCerts: %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := *cs.certSite.Load(); got != tt.wantSite {
				t.Errorf("certificate site %q, want %q", got, tt.wantSite)
			}
		})
	}
}

// TestWarnCertNamesNoSite: a server of a site whose certificate names no
// site says so in its log, with the command that fixes it; one whose
// certificate names its site, or a server in no site, says nothing.
func TestWarnCertNamesNoSite(t *testing.T) {
	dir := t.TempDir()
	plain := TestTLS(t, dir, "s0", pki.RoleServer)
	if err := pki.CreateSiteCert(filepath.Dir(plain.CAFile), dir, "s1", "west", []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	sited := TLSConfig{CAFile: plain.CAFile, CertFile: pki.CertPath(dir, "s1"), KeyFile: pki.KeyPath(dir, "s1")}
	for _, tt := range []struct {
		name, site string
		tls        TLSConfig
		warns      bool
	}{
		{"no site in the certificate", "west", plain, true},
		{"the site in the certificate", "west", sited, false},
		{"a server in no site", "", plain, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := loadCerts(tt.tls, tt.site)
			if err != nil {
				t.Fatal(err)
			}
			var logs lockedbuf.Buffer
			s := &Server{cfg: &Config{Site: SiteConfig{Name: tt.site}, TLS: tt.tls}, certs: cs, logger: slog.New(slog.NewTextHandler(&logs, nil))}
			s.warnCertNamesNoSite()
			got := logs.String()
			if warns := strings.Contains(got, "names no site"); warns != tt.warns {
				t.Fatalf("log %q, want a warning: %v", got, tt.warns)
			}
			if tt.warns && !strings.Contains(got, "moxxied tls cert create --server --site west") {
				t.Errorf("the warning does not give the fix: %q", got)
			}
		})
	}
}
