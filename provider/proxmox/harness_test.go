package proxmox

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/internal/lockedbuf"
)

const (
	testTokenID = "root@pam!moxxie"
	testSecret  = "5ec7e7-0d1e-4b5a-9c3f-7a1b2c3d4e5f"
)

// serverFingerprint returns the SHA-256 fingerprint of srv's certificate
// as Proxmox shows it.
func serverFingerprint(srv *httptest.Server) string {
	sum := sha256.Sum256(srv.Certificate().Raw)
	return formatFingerprint(sum[:])
}

// serverCAFile writes srv's certificate to a PEM file and returns its path.
func serverCAFile(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testProvider returns a Provider for srv that trusts it by fingerprint,
// logs at debug level into the returned buffer and backs off for
// milliseconds only. At the end of the test it checks that the log never
// showed the secret. mod, when not nil, changes the Config first.
func testProvider(t *testing.T, srv *httptest.Server, mod func(*Config)) (*Provider, *lockedbuf.Buffer) {
	t.Helper()
	logs := &lockedbuf.Buffer{}
	cfg := Config{
		URL:         srv.URL,
		TokenID:     testTokenID,
		TokenSecret: testSecret,
		Fingerprint: serverFingerprint(srv),
		Timeout:     10 * time.Second,
		TaskPoll:    5 * time.Millisecond,
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.tr.backoffBase = time.Millisecond
	p.tr.backoffMax = 4 * time.Millisecond
	t.Cleanup(func() {
		if strings.Contains(logs.String(), testSecret) {
			t.Errorf("the log shows the token secret:\n%s", logs)
		}
	})
	return p, logs
}

// noSecret fails the test if err's message shows the token secret.
func noSecret(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), testSecret) {
		t.Errorf("error shows the token secret: %v", err)
	}
}

// selfSigned returns a fresh self-signed certificate for 127.0.0.1.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "other"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
