package pki

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// handshake runs a TLS handshake over loopback TCP and returns the server's
// and the client's errors. The client then reads one byte, so a refusal the
// server sends after the client finished (TLS 1.3) reaches it too.
func handshake(t *testing.T, srvCfg, cliCfg *tls.Config) (srvErr, cliErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		tc := tls.Server(c, srvCfg)
		if err := tc.Handshake(); err != nil {
			done <- err
			return
		}
		_, err = tc.Write([]byte{1})
		done <- err
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
	cc := tls.Client(raw, cliCfg)
	cliErr = cc.Handshake()
	if cliErr == nil {
		_, cliErr = io.ReadFull(cc, make([]byte, 1))
	}
	if cliErr != nil {
		raw.Close()
	}
	return <-done, cliErr
}

func withServerName(c *tls.Config, name string) *tls.Config {
	c = c.Clone()
	c.ServerName = name
	return c
}

func TestAPIHandshake(t *testing.T) {
	p := newTestPKI(t)
	other := newTestPKI(t)
	srvCert, srvKey := p.issue(t, "s1", RoleServer)
	cliCert, cliKey := p.issue(t, "c1", RoleClient)
	agentCert, agentKey := p.issue(t, "a1", RoleAgent)
	expCert, expKey := p.issueExpired(t, "old", RoleClient)
	strangerCert, strangerKey := other.issue(t, "stranger", RoleClient)
	otherSrvCert, otherSrvKey := other.issue(t, "s9", RoleServer)

	tests := []struct {
		name              string
		srvCert, srvKey   string
		requireClientCert bool
		// client: caFile, cert, key, server name
		caFile, cert, key string
		serverName        string
		expired           bool
		ok                bool
	}{
		{"no client cert, optional", srvCert, srvKey, false, p.caFile(), "", "", "localhost", false, true},
		{"no client cert, required", srvCert, srvKey, true, p.caFile(), "", "", "localhost", false, false},
		{"client cert, required", srvCert, srvKey, true, p.caFile(), cliCert, cliKey, "localhost", false, true},
		{"agent cert, required", srvCert, srvKey, true, p.caFile(), agentCert, agentKey, "127.0.0.1", false, true},
		{"server cert as client", srvCert, srvKey, true, p.caFile(), srvCert, srvKey, "localhost", false, true},
		{"wrong-CA client cert, optional", srvCert, srvKey, false, p.caFile(), strangerCert, strangerKey, "localhost", false, false},
		{"wrong-CA client cert, required", srvCert, srvKey, true, p.caFile(), strangerCert, strangerKey, "localhost", false, false},
		{"expired client cert", srvCert, srvKey, true, p.caFile(), expCert, expKey, "localhost", true, false},
		{"wrong-CA server", otherSrvCert, otherSrvKey, false, p.caFile(), "", "", "localhost", false, false},
		{"wrong host name", srvCert, srvKey, false, p.caFile(), "", "", "moxxie.example", false, false},
		{"client cert cannot serve", cliCert, cliKey, false, p.caFile(), "", "", "localhost", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srvCfg, err := ServerTLSConfig(p.caFile(), tt.srvCert, tt.srvKey, tt.requireClientCert)
			if err != nil {
				t.Fatal(err)
			}
			var cliCfg *tls.Config
			if tt.expired {
				// ClientTLSConfig refuses to load an expired pair; present it anyway.
				pair, err := tls.LoadX509KeyPair(tt.cert, tt.key)
				if err != nil {
					t.Fatal(err)
				}
				cliCfg, err = ClientTLSConfig(tt.caFile, "", "")
				if err != nil {
					t.Fatal(err)
				}
				cliCfg.Certificates = []tls.Certificate{pair}
			} else if cliCfg, err = ClientTLSConfig(tt.caFile, tt.cert, tt.key); err != nil {
				t.Fatal(err)
			}
			srvErr, cliErr := handshake(t, srvCfg, withServerName(cliCfg, tt.serverName))
			if tt.ok && (srvErr != nil || cliErr != nil) {
				t.Fatalf("handshake failed: server %v, client %v", srvErr, cliErr)
			}
			if !tt.ok && srvErr == nil && cliErr == nil {
				t.Fatal("handshake succeeded, want refusal")
			}
		})
	}
}

func TestRaftHandshake(t *testing.T) {
	p := newTestPKI(t)
	other := newTestPKI(t)
	s1Cert, s1Key := p.issue(t, "s1", RoleServer)
	s2Cert, s2Key := p.issue(t, "s2", RoleServer)
	cliCert, cliKey := p.issue(t, "c1", RoleClient)
	agentCert, agentKey := p.issue(t, "a1", RoleAgent)
	expCert, expKey := p.issueExpired(t, "old", RoleServer)
	strangerCert, strangerKey := other.issue(t, "s9", RoleServer)

	// mutual builds both ends from a pair without the Reloader's expiry
	// check, so that expired certificates can be presented.
	mutual := func(t *testing.T, cert, key string) (*tls.Config, *tls.Config) {
		t.Helper()
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		r := &Reloader{certFile: cert, keyFile: key}
		r.cur.Store(&pair)
		s, c, err := r.MutualTLSConfigs(p.caFile())
		if err != nil {
			t.Fatal(err)
		}
		return s, c
	}
	tests := []struct {
		name                 string
		srvCert, srvKey      string
		cliCert, cliKey      string
		refusedBy, errSubstr string
	}{
		{"server to server", s1Cert, s1Key, s2Cert, s2Key, "", ""},
		{"client role dials", s1Cert, s1Key, cliCert, cliKey, "server", "role"},
		{"agent role dials", s1Cert, s1Key, agentCert, agentKey, "server", "role"},
		{"agent role answers", agentCert, agentKey, s1Cert, s1Key, "client", ""},
		{"client role answers", cliCert, cliKey, s1Cert, s1Key, "client", ""},
		{"wrong CA dials", s1Cert, s1Key, strangerCert, strangerKey, "server", "unknown authority"},
		{"wrong CA answers", strangerCert, strangerKey, s1Cert, s1Key, "client", "unknown authority"},
		{"expired dials", s1Cert, s1Key, expCert, expKey, "server", "expired"},
		{"expired answers", expCert, expKey, s1Cert, s1Key, "client", "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srvCfg, _ := mutual(t, tt.srvCert, tt.srvKey)
			_, cliCfg := mutual(t, tt.cliCert, tt.cliKey)
			srvErr, cliErr := handshake(t, srvCfg, cliCfg)
			switch tt.refusedBy {
			case "":
				if srvErr != nil || cliErr != nil {
					t.Fatalf("handshake failed: server %v, client %v", srvErr, cliErr)
				}
			case "server":
				if srvErr == nil || !strings.Contains(srvErr.Error(), tt.errSubstr) {
					t.Fatalf("server error %v, want one mentioning %q", srvErr, tt.errSubstr)
				}
			case "client":
				if cliErr == nil || !strings.Contains(cliErr.Error(), tt.errSubstr) {
					t.Fatalf("client error %v, want one mentioning %q", cliErr, tt.errSubstr)
				}
			}
		})
	}
}

func TestMutualTLSConfigs_Files(t *testing.T) {
	p := newTestPKI(t)
	cert, key := p.issue(t, "s1", RoleServer)
	srv, cli, err := MutualTLSConfigs(p.caFile(), cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if srv.MinVersion < tls.VersionTLS12 || cli.MinVersion < tls.VersionTLS12 {
		t.Error("TLS minimum below 1.2")
	}
	if srvErr, cliErr := handshake(t, srv, cli); srvErr != nil || cliErr != nil {
		t.Fatalf("server %v, client %v", srvErr, cliErr)
	}
	expCert, expKey := p.issueExpired(t, "old", RoleServer)
	if _, _, err := MutualTLSConfigs(p.caFile(), expCert, expKey); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired pair: %v, want an expiry error", err)
	}
	if _, _, err := MutualTLSConfigs(t.TempDir()+"/missing.pem", cert, key); err == nil {
		t.Error("missing CA file accepted")
	}
}

func TestClientTLSConfig_HalfPair(t *testing.T) {
	p := newTestPKI(t)
	cert, _ := p.issue(t, "c1", RoleClient)
	if _, err := ClientTLSConfig(p.caFile(), cert, ""); err == nil {
		t.Error("certificate without key accepted")
	}
}

func TestServerTLSConfig_HTTPS(t *testing.T) {
	p := newTestPKI(t)
	srvCert, srvKey := p.issue(t, "s1", RoleServer)
	cliCert, cliKey := p.issue(t, "c1", RoleClient)
	srvCfg, err := ServerTLSConfig(p.caFile(), srvCert, srvKey, true)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// httptest.Server.StartTLS would add its own certificate; serve by hand.
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		role, err := RoleOf(r.TLS.PeerCertificates[0])
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		io.WriteString(w, string(role))
	}), ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(tls.NewListener(ln, srvCfg))
	defer srv.Close()
	url := "https://" + ln.Addr().String()

	cliCfg, err := ClientTLSConfig(p.caFile(), cliCert, cliKey)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cliCfg}}
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "client" {
		t.Errorf("server saw role %q, want client", body)
	}

	anon, err := ClientTLSConfig(p.caFile(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	hc = &http.Client{Transport: &http.Transport{TLSClientConfig: anon}}
	if resp, err := hc.Get(url); err == nil {
		resp.Body.Close()
		t.Error("request without a client certificate succeeded")
	}
}
