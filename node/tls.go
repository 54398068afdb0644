package node

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/moxxie/moxxie/pki"
)

// certs holds the cluster CA and this server's key pair. Reload swaps the
// key pair in place, so new handshakes use it without a restart.
type certs struct {
	caFile, certFile, keyFile string
	// site is this server's site (site.name), which the certificate must
	// not contradict; "" outside the sites' pool.
	site string
	// certSite is the site the current certificate names (pki.SiteOf).
	certSite atomic.Pointer[string]
	pool     atomic.Pointer[x509.CertPool]
	pair     atomic.Pointer[tls.Certificate]
	// cas holds the CA certificates of caFile, for their expiry metrics.
	cas atomic.Pointer[[]*x509.Certificate]
}

// loadCerts reads the files named in c for a server of site (site.name,
// "" for none).
func loadCerts(c TLSConfig, site string) (*certs, error) {
	cs := &certs{caFile: c.CAFile, certFile: c.CertFile, keyFile: c.KeyFile, site: site}
	if err := cs.Reload(); err != nil {
		return nil, err
	}
	return cs, nil
}

// Reload reads the CA and key pair from disk again.
func (cs *certs) Reload() error {
	caPEM, err := os.ReadFile(cs.caFile)
	if err != nil {
		return fmt.Errorf("tls.ca_file: %w", err)
	}
	cas, err := parseCerts(caPEM)
	if err != nil {
		return fmt.Errorf("tls.ca_file: %s: %w", cs.caFile, err)
	}
	if len(cas) == 0 {
		return fmt.Errorf("tls.ca_file: %s holds no PEM certificate", cs.caFile)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	// pki.LoadKeyPair refuses a key file open to other users.
	pair, err := pki.LoadKeyPair(cs.certFile, cs.keyFile)
	if err != nil {
		return fmt.Errorf("tls.cert_file/key_file: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("tls.cert_file: %w", err)
	}
	if role, err := pki.RoleOf(leaf); err != nil || role != pki.RoleServer {
		return fmt.Errorf("tls.cert_file: %s is not a server certificate (role %q)", cs.certFile, role)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("tls.cert_file: not signed by tls.ca_file: %w", err)
	}
	certSite, err := pki.SiteOf(leaf)
	if err != nil {
		return fmt.Errorf("tls.cert_file: %w", err)
	}
	if certSite != "" && certSite != cs.site {
		in := "in no site (site.name is empty)"
		if cs.site != "" {
			in = "in site " + cs.site + " (site.name)"
		}
		return fmt.Errorf("tls.cert_file: %s names site %s, but this server is %s", cs.certFile, certSite, in)
	}
	cs.certSite.Store(&certSite)
	pair.Leaf = leaf
	cs.pool.Store(pool)
	cs.pair.Store(&pair)
	cs.cas.Store(&cas)
	return nil
}

// parseCerts returns every certificate of a PEM bundle, skipping blocks of
// other types.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// NotAfter returns the expiry of this server's certificate.
func (cs *certs) NotAfter() time.Time { return cs.pair.Load().Leaf.NotAfter }

// leaf returns this server's certificate.
func (cs *certs) leaf() *x509.Certificate { return cs.pair.Load().Leaf }

// caCerts returns the CA certificates this server trusts.
func (cs *certs) caCerts() []*x509.Certificate { return *cs.cas.Load() }

func (cs *certs) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return cs.pair.Load(), nil
}

func (cs *certs) getClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return cs.pair.Load(), nil
}

// verifyPeer checks a peer's chain against the cluster CA and requires the
// server role: a client or agent certificate cannot act as a server. Peers
// are identified by CA and role, not by host name.
func (cs *certs) verifyPeer(st tls.ConnectionState) error {
	if len(st.PeerCertificates) == 0 {
		return errors.New("peer presented no certificate")
	}
	leaf := st.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: cs.pool.Load(), Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("peer certificate: %w", err)
	}
	if role, err := pki.RoleOf(leaf); err != nil || role != pki.RoleServer {
		return fmt.Errorf("peer certificate %q has role %q, want server", leaf.Subject.CommonName, role)
	}
	return nil
}

// peerServerTLS accepts only peers with a server certificate of the CA.
func (cs *certs) peerServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		GetCertificate:   cs.getCertificate,
		ClientAuth:       tls.RequireAnyClientCert,
		VerifyConnection: cs.verifyPeer,
	}
}

// peerClientTLS dials peers, presenting this server's certificate.
func (cs *certs) peerClientTLS() *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS12,
		GetClientCertificate: cs.getClientCertificate,
		// The chain and role are verified in VerifyConnection against the
		// cluster CA; peers are dialled by address, not by a name in their
		// certificate.
		InsecureSkipVerify: true, // #nosec G402 -- chain and role are verified against the cluster CA in verifyPeer
		VerifyConnection:   cs.verifyPeer,
	}
}

// apiTLS serves HTTPS to clients; a client certificate is optional but
// verified against the CA when given.
func (cs *certs) apiTLS() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: cs.getCertificate,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return &tls.Config{
				MinVersion:     tls.VersionTLS12,
				GetCertificate: cs.getCertificate,
				ClientAuth:     tls.VerifyClientCertIfGiven,
				ClientCAs:      cs.pool.Load(),
			}, nil
		},
	}
}
