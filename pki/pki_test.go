package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// testPKI is a CA directory with certificates issued in t.TempDir.
type testPKI struct {
	caDir, dir string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{caDir: filepath.Join(t.TempDir(), "ca"), dir: t.TempDir()}
	if err := CreateCA(p.caDir, "Moxxie Test CA", 24*time.Hour); err != nil {
		t.Fatalf("CreateCA: %v", err)
	}
	return p
}

func (p *testPKI) caFile() string { return filepath.Join(p.caDir, CACertFile) }

// issue creates a certificate and returns its certificate and key paths.
func (p *testPKI) issue(t *testing.T, name string, role Role) (string, string) {
	t.Helper()
	if err := CreateCert(p.caDir, p.dir, name, role, []string{"127.0.0.1", "::1", "localhost"}, time.Hour); err != nil {
		t.Fatalf("CreateCert %s: %v", name, err)
	}
	return CertPath(p.dir, name), KeyPath(p.dir, name)
}

// issueExpired creates a certificate that expired an hour ago.
func (p *testPKI) issueExpired(t *testing.T, name string, role Role) (string, string) {
	t.Helper()
	ca, key, err := loadCA(p.caDir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := createCert(ca, key, p.dir, name, role, "", []string{"127.0.0.1", "localhost"}, now.Add(-2*time.Hour), now.Add(-time.Hour)); err != nil {
		t.Fatalf("createCert %s: %v", name, err)
	}
	return CertPath(p.dir, name), KeyPath(p.dir, name)
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestCreateCA(t *testing.T) {
	p := newTestPKI(t)
	if got := mode(t, p.caFile()); got != 0o644 {
		t.Errorf("ca.pem mode %v, want 0644", got)
	}
	if got := mode(t, filepath.Join(p.caDir, CAKeyFile)); got != 0o600 {
		t.Errorf("ca-key.pem mode %v, want 0600", got)
	}
	ca, key, err := loadCA(p.caDir)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA || ca.Subject.CommonName != "Moxxie Test CA" {
		t.Errorf("CA cert: IsCA %v, CN %q", ca.IsCA, ca.Subject.CommonName)
	}
	if k, ok := key.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", key)
	}
	if d := time.Until(ca.NotAfter); d < 23*time.Hour || d > 24*time.Hour {
		t.Errorf("CA expires in %s, want about 24h", d)
	}
	err = CreateCA(p.caDir, "again", time.Hour)
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreateCA over an existing CA: %v, want fs.ErrExist", err)
	}
}

func TestCreateCA_Invalid(t *testing.T) {
	dir := t.TempDir()
	if err := CreateCA(dir, "", time.Hour); err == nil {
		t.Error("empty common name accepted")
	}
	if err := CreateCA(dir, "x", 0); err == nil {
		t.Error("zero validity accepted")
	}
}

func TestCreateCert_Roles(t *testing.T) {
	p := newTestPKI(t)
	tests := []struct {
		role Role
		eku  []x509.ExtKeyUsage
	}{
		{RoleServer, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}},
		{RoleClient, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{RoleAgent, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
	}
	for _, tt := range tests {
		t.Run(string(tt.role), func(t *testing.T) {
			name := "n-" + string(tt.role)
			certFile, keyFile := p.issue(t, name, tt.role)
			if got := mode(t, certFile); got != 0o644 {
				t.Errorf("cert mode %v", got)
			}
			if got := mode(t, keyFile); got != 0o600 {
				t.Errorf("key mode %v", got)
			}
			c, err := readCert(certFile)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.ExtKeyUsage, tt.eku) {
				t.Errorf("ExtKeyUsage %v, want %v", c.ExtKeyUsage, tt.eku)
			}
			if got, err := RoleOf(c); err != nil || got != tt.role {
				t.Errorf("RoleOf = %q, %v; want %q", got, err, tt.role)
			}
			if !slices.Equal(c.Subject.OrganizationalUnit, []string{"moxxie-" + string(tt.role)}) {
				t.Errorf("OU %v", c.Subject.OrganizationalUnit)
			}
			if len(c.URIs) != 1 || c.URIs[0].String() != "moxxie://role/"+string(tt.role) {
				t.Errorf("URIs %v", c.URIs)
			}
			if !slices.Equal(c.DNSNames, []string{"localhost"}) || len(c.IPAddresses) != 2 {
				t.Errorf("SANs: DNS %v, IP %v", c.DNSNames, c.IPAddresses)
			}
			if c.IsCA {
				t.Error("leaf certificate is a CA")
			}
			pool, err := LoadCertPool(p.caFile())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: tt.eku}); err != nil {
				t.Errorf("does not verify against the CA: %v", err)
			}
		})
	}
}

func TestCreateCert_Invalid(t *testing.T) {
	p := newTestPKI(t)
	tests := []struct {
		name, cn string
		role     Role
		hosts    []string
		validity time.Duration
	}{
		{"empty name", "", RoleServer, nil, time.Hour},
		{"path in name", "../x", RoleServer, nil, time.Hour},
		{"name ca", "ca", RoleServer, nil, time.Hour},
		{"unknown role", "x", Role("admin"), nil, time.Hour},
		{"host with port", "x", RoleServer, []string{"example.com:8443"}, time.Hour},
		{"empty host", "x", RoleServer, []string{""}, time.Hour},
		{"zero validity", "x", RoleServer, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CreateCert(p.caDir, p.dir, tt.cn, tt.role, tt.hosts, tt.validity); err == nil {
				t.Error("accepted")
			}
		})
	}
	if err := CreateCert(t.TempDir(), p.dir, "x", RoleServer, nil, time.Hour); err == nil {
		t.Error("accepted a directory without a CA")
	}
}

func TestCreateCert_ClampedToCA(t *testing.T) {
	p := newTestPKI(t)
	if err := CreateCert(p.caDir, p.dir, "long", RoleClient, nil, 10*365*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	leaf, err := NotAfter(CertPath(p.dir, "long"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := NotAfter(p.caFile())
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Equal(ca) {
		t.Errorf("leaf expires %s, CA %s: want equal", leaf, ca)
	}
}

func TestNotAfter(t *testing.T) {
	p := newTestPKI(t)
	certFile, keyFile := p.issue(t, "s1", RoleServer)
	got, err := NotAfter(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(got); d < 59*time.Minute || d > time.Hour {
		t.Errorf("NotAfter in %s, want about 1h", d)
	}
	if _, err := NotAfter(keyFile); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("NotAfter(key file) = %v, want ErrNoCertificate", err)
	}
	if _, err := NotAfter(filepath.Join(t.TempDir(), "missing.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("NotAfter(missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestParseRole(t *testing.T) {
	for _, s := range []string{"server", "client", "agent"} {
		if r, err := ParseRole(s); err != nil || string(r) != s {
			t.Errorf("ParseRole(%q) = %q, %v", s, r, err)
		}
	}
	if _, err := ParseRole("root"); !errors.Is(err, ErrUnknownRole) {
		t.Errorf("ParseRole(root) = %v, want ErrUnknownRole", err)
	}
}

func TestSplitHosts(t *testing.T) {
	ips, dns, err := splitHosts([]string{"10.0.0.1", "[fd00::1]", "Node1.Example.com", " s1 "})
	if err != nil {
		t.Fatal(err)
	}
	want := []net.IP{net.ParseIP("10.0.0.1"), net.ParseIP("fd00::1")}
	if len(ips) != 2 || !ips[0].Equal(want[0]) || !ips[1].Equal(want[1]) {
		t.Errorf("ips %v", ips)
	}
	if !slices.Equal(dns, []string{"node1.example.com", "s1"}) {
		t.Errorf("dns %v", dns)
	}
}
