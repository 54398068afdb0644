package pki

import (
	"crypto/tls"
	"os"
	"sync"
	"testing"
	"time"
)

func TestReloader(t *testing.T) {
	p := newTestPKI(t)
	certFile, keyFile := p.issue(t, "s1", RoleServer)
	r, err := NewReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	first := r.Certificate().Leaf.SerialNumber
	if d := time.Until(r.NotAfter()); d <= 0 || d > time.Hour {
		t.Errorf("NotAfter in %s", d)
	}

	// Renew in place: the next handshake presents the new certificate.
	p.issue(t, "s1", RoleServer)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	second := r.Certificate().Leaf.SerialNumber
	if second.Cmp(first) == 0 {
		t.Fatal("Reload kept the old certificate")
	}
	srvCfg, err := r.ServerTLSConfig(p.caFile(), false)
	if err != nil {
		t.Fatal(err)
	}
	cliCfg, err := ClientTLSConfig(p.caFile(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	cliCfg.ServerName = "localhost"
	var seen *tls.ConnectionState
	cliCfg.VerifyConnection = func(cs tls.ConnectionState) error { seen = &cs; return nil }
	if srvErr, cliErr := handshake(t, srvCfg, cliCfg); srvErr != nil || cliErr != nil {
		t.Fatalf("server %v, client %v", srvErr, cliErr)
	}
	if got := seen.PeerCertificates[0].SerialNumber; got.Cmp(second) != 0 {
		t.Errorf("handshake presented serial %s, want %s", got, second)
	}

	// Broken files are refused and the current pair stays in use.
	otherCert, _ := p.issue(t, "s2", RoleServer)
	broken := []struct {
		name string
		prep func(t *testing.T)
	}{
		{"garbage key", func(t *testing.T) { write(t, keyFile, "not a key") }},
		{"mismatched pair", func(t *testing.T) { copyFile(t, otherCert, certFile) }},
		{"missing files", func(t *testing.T) { os.Remove(certFile) }},
	}
	for _, b := range broken {
		t.Run(b.name, func(t *testing.T) {
			b.prep(t)
			if err := r.Reload(); err == nil {
				t.Fatal("Reload accepted broken files")
			}
			if got := r.Certificate().Leaf.SerialNumber; got.Cmp(second) != 0 {
				t.Errorf("serving serial %s after a failed reload, want %s", got, second)
			}
		})
	}
}

func TestReloader_Expired(t *testing.T) {
	p := newTestPKI(t)
	certFile, keyFile := p.issue(t, "s1", RoleServer)
	r, err := NewReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	expCert, expKey := p.issueExpired(t, "old", RoleServer)
	copyFile(t, expCert, certFile)
	copyFile(t, expKey, keyFile)
	if err := r.Reload(); err == nil {
		t.Error("Reload accepted an expired certificate")
	}
	if _, err := NewReloader(expCert, expKey); err == nil {
		t.Error("NewReloader accepted an expired certificate")
	}
}

func TestReloader_Concurrent(t *testing.T) {
	p := newTestPKI(t)
	certFile, keyFile := p.issue(t, "s1", RoleServer)
	r, err := NewReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				if c, _ := r.GetCertificate(nil); c == nil {
					t.Error("GetCertificate returned nil")
					return
				}
				if c, _ := r.GetClientCertificate(nil); c == nil {
					t.Error("GetClientCertificate returned nil")
					return
				}
			}
		})
	}
	for range 5 {
		if err := r.Reload(); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	write(t, to, string(data))
}
