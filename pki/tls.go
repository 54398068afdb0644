package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// LoadCertPool reads a PEM bundle of CA certificates.
func LoadCertPool(caFile string) (*x509.CertPool, error) {
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("pki: CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("pki: CA bundle %s: %w", caFile, ErrNoCertificate)
	}
	return pool, nil
}

// ServerTLSConfig returns the configuration of an HTTPS server presenting
// the pair in certFile and keyFile. With requireClientCert every client must
// present a certificate signed by the CA in caFile; otherwise a certificate
// is verified if the client offers one. Use NewReloader and
// Reloader.ServerTLSConfig to be able to reload the pair.
func ServerTLSConfig(caFile, certFile, keyFile string, requireClientCert bool) (*tls.Config, error) {
	r, err := NewReloader(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return r.ServerTLSConfig(caFile, requireClientCert)
}

// ClientTLSConfig returns the configuration of a client trusting the CA in
// caFile (the system roots when caFile is empty) and presenting the pair in
// certFile and keyFile if they are given.
func ClientTLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return clientTLSConfig(caFile, nil)
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("pki: a client certificate needs both the certificate and the key file")
	}
	r, err := NewReloader(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return r.ClientTLSConfig(caFile)
}

// MutualTLSConfigs returns the two ends of the raft transport, where both
// sides present a server-role certificate signed by the CA in caFile and
// refuse a peer presenting any other (see Reloader.MutualTLSConfigs).
func MutualTLSConfigs(caFile, certFile, keyFile string) (server, client *tls.Config, err error) {
	r, err := NewReloader(certFile, keyFile)
	if err != nil {
		return nil, nil, err
	}
	return r.MutualTLSConfigs(caFile)
}

// ServerTLSConfig is the package's ServerTLSConfig serving r's pair.
func (r *Reloader) ServerTLSConfig(caFile string, requireClientCert bool) (*tls.Config, error) {
	pool, err := LoadCertPool(caFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
		ClientCAs:      pool,
		ClientAuth:     tls.VerifyClientCertIfGiven,
	}
	if requireClientCert {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientTLSConfig is the package's ClientTLSConfig presenting r's pair.
func (r *Reloader) ClientTLSConfig(caFile string) (*tls.Config, error) {
	return clientTLSConfig(caFile, r)
}

func clientTLSConfig(caFile string, r *Reloader) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := LoadCertPool(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if r != nil {
		cfg.GetClientCertificate = r.GetClientCertificate
	}
	return cfg, nil
}

// MutualTLSConfigs returns the server and client configurations of the raft
// transport presenting r's pair. Both ends require the peer's certificate to
// chain to the CA in caFile and to carry RoleServer, so a client or agent
// certificate from the same CA is refused. The client end does not check
// the server's host name (raft addresses need not appear in certificates):
// it checks the chain and the role itself, and works with tls.Client on a
// connection without a ServerName.
func (r *Reloader) MutualTLSConfigs(caFile string) (server, client *tls.Config, err error) {
	pool, err := LoadCertPool(caFile)
	if err != nil {
		return nil, nil, err
	}
	server = &tls.Config{
		MinVersion:       tls.VersionTLS12,
		GetCertificate:   r.GetCertificate,
		ClientCAs:        pool,
		ClientAuth:       tls.RequireAndVerifyClientCert,
		VerifyConnection: VerifyConnectionRole(RoleServer),
	}
	client = &tls.Config{
		MinVersion:           tls.VersionTLS12,
		GetClientCertificate: r.GetClientCertificate,
		// Host name verification is replaced by VerifyConnection, which
		// verifies the chain against pool and the role.
		InsecureSkipVerify: true, // #nosec G402 -- verifyChainAndRole verifies the chain against pool and the role
		VerifyConnection:   verifyChainAndRole(pool, RoleServer),
	}
	return server, client, nil
}
