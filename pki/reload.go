package pki

import (
	"crypto/tls"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Reloader holds a certificate and key pair read from two files and serves
// it to TLS handshakes. Reload re-reads the files; connections already
// established keep the pair they started with, new handshakes get the new
// one. It is safe for concurrent use.
type Reloader struct {
	certFile, keyFile string

	mu  sync.Mutex // serialises Reload
	cur atomic.Pointer[tls.Certificate]
}

// NewReloader reads the pair from certFile and keyFile. It fails if the
// files do not hold a matching, currently valid pair, or if the key file is
// open to other users than its owner (ErrKeyFileMode).
func NewReloader(certFile, keyFile string) (*Reloader, error) {
	r := &Reloader{certFile: certFile, keyFile: keyFile}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files again and, if they hold a matching pair that is
// valid now, serves it from the next handshake on. On error the previous
// pair stays in use.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := LoadKeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("pki: load %s and %s: %w", r.certFile, r.keyFile, err)
	}
	now := time.Now()
	if now.After(c.Leaf.NotAfter) {
		return fmt.Errorf("pki: %s expired at %s", r.certFile, c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(c.Leaf.NotBefore) {
		return fmt.Errorf("pki: %s is not valid before %s", r.certFile, c.Leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	r.cur.Store(&c)
	return nil
}

// Certificate returns the pair in use.
func (r *Reloader) Certificate() *tls.Certificate { return r.cur.Load() }

// NotAfter returns the expiry of the certificate in use.
func (r *Reloader) NotAfter() time.Time { return r.cur.Load().Leaf.NotAfter }

// GetCertificate returns the pair in use; it fits tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// GetClientCertificate returns the pair in use; it fits
// tls.Config.GetClientCertificate.
func (r *Reloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}
