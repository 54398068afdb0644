package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// validName is what a certificate's name may look like; it is also a file
// name.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// CreateCert issues a certificate for name with the given role, signed by
// the CA in caDir, and writes <name>.pem (0644) and <name>-key.pem (0600) to
// outDir, replacing earlier files atomically (so a Reloader can pick them
// up). hosts are the subject alternative names: IP addresses and DNS names.
// The certificate is valid for validity from now, but never beyond the CA's
// own expiry.
func CreateCert(caDir, outDir, name string, role Role, hosts []string, validity time.Duration) error {
	return createCertIn(caDir, outDir, name, role, "", hosts, validity)
}

// createCertIn issues a certificate valid for validity from now with the
// CA in caDir; site, when not empty, is named in a server certificate.
func createCertIn(caDir, outDir, name string, role Role, site string, hosts []string, validity time.Duration) error {
	if validity <= 0 {
		return fmt.Errorf("pki: certificate %q: validity %s is not positive", name, validity)
	}
	caCert, caKey, err := loadCA(caDir)
	if err != nil {
		return err
	}
	now := time.Now()
	return createCert(caCert, caKey, outDir, name, role, site, hosts, now.Add(-backdate), now.Add(validity))
}

// createCert issues and writes a certificate valid from notBefore to
// notAfter (clamped to the CA's expiry), naming site when it is not
// empty.
func createCert(caCert *x509.Certificate, caKey crypto.Signer, outDir, name string, role Role, site string, hosts []string, notBefore, notAfter time.Time) error {
	if !validName.MatchString(name) || name == "ca" {
		return fmt.Errorf("pki: invalid certificate name %q (letters, digits, '.', '_', '-'; not \"ca\")", name)
	}
	if !role.Valid() {
		return fmt.Errorf("pki: certificate %q: %w %q", name, ErrUnknownRole, role)
	}
	uris := []*url.URL{role.URI()}
	if site != "" {
		if role != RoleServer {
			return fmt.Errorf("pki: certificate %q: %w: only server certificates name a site", name, ErrBadSite)
		}
		uris = append(uris, SiteURI(site))
	}
	ips, dns, err := splitHosts(hosts)
	if err != nil {
		return fmt.Errorf("pki: certificate %q: %w", name, err)
	}
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	if !notAfter.After(notBefore) {
		return fmt.Errorf("pki: certificate %q: CA %q expired at %s", name, caCert.Subject.CommonName, caCert.NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: generate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return err
	}
	ext := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if role == RoleServer {
		ext = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         name,
			Organization:       []string{"Moxxie"},
			OrganizationalUnit: []string{role.OU()},
		},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           ext,
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           ips,
		URIs:                  uris,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("pki: sign %q: %w", name, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return fmt.Errorf("pki: encode key: %w", err)
	}
	if err := os.MkdirAll(outDir, dirMode); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	// Certificate and key are two files and cannot be replaced together. A
	// Reloader reading between the two renames sees a mismatched pair,
	// refuses it and keeps serving the old one until the next Reload.
	if err := writeFileAtomic(KeyPath(outDir, name), keyPEM, keyMode); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := writeFileAtomic(CertPath(outDir, name), encodeCert(der), certMode); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

// splitHosts sorts subject alternative names into IP addresses and DNS
// names.
func splitHosts(hosts []string) ([]net.IP, []string, error) {
	var ips []net.IP
	var dns []string
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
			ips = append(ips, ip)
			continue
		}
		if h == "" || strings.ContainsAny(h, ":/ \t") {
			return nil, nil, fmt.Errorf("invalid host %q: want an IP address or a DNS name (no port)", h)
		}
		dns = append(dns, strings.ToLower(h))
	}
	return ips, dns, nil
}
