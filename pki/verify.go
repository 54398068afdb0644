package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// errUnverified means a role check ran on a certificate whose chain was not
// verified, which would let any self-signed certificate claim a role.
var errUnverified = errors.New("pki: peer certificate was not verified against the CA")

// VerifyPeerRole returns a tls.Config.VerifyPeerCertificate callback that
// refuses a peer whose verified certificate does not carry role. It checks
// only the role: the chain must have been verified by crypto/tls (so it
// refuses to work with InsecureSkipVerify, where nothing is verified).
func VerifyPeerRole(role Role) func(rawCerts [][]byte, verifiedChains [][]*x509.Certificate) error {
	return func(rawCerts [][]byte, verifiedChains [][]*x509.Certificate) error {
		if len(verifiedChains) == 0 || len(verifiedChains[0]) == 0 {
			if len(rawCerts) == 0 {
				return ErrNoPeerCertificate
			}
			return errUnverified
		}
		return checkRole(verifiedChains[0][0], role)
	}
}

// VerifyConnectionRole is VerifyPeerRole for tls.Config.VerifyConnection,
// which also runs on resumed sessions.
func VerifyConnectionRole(role Role) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
			if len(cs.PeerCertificates) == 0 {
				return ErrNoPeerCertificate
			}
			return errUnverified
		}
		return checkRole(cs.VerifiedChains[0][0], role)
	}
}

// verifyChainAndRole returns a VerifyConnection callback for a client that
// skips crypto/tls's own verification: it verifies the server's chain
// against pool (without a host name) and then its role.
func verifyChainAndRole(pool *x509.CertPool, role Role) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return ErrNoPeerCertificate
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		leaf := cs.PeerCertificates[0]
		if _, err := leaf.Verify(x509.VerifyOptions{
			Roots:         pool,
			Intermediates: inter,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			return fmt.Errorf("pki: peer certificate %q: %w", leaf.Subject.CommonName, err)
		}
		return checkRole(leaf, role)
	}
}

func checkRole(cert *x509.Certificate, want Role) error {
	got, err := RoleOf(cert)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if got != want {
		return fmt.Errorf("pki: %w: %q has role %s, need %s", ErrRoleMismatch, cert.Subject.CommonName, got, want)
	}
	return nil
}
