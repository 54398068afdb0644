package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// backdate is how far before now certificates become valid, to tolerate
// clock skew between the issuer and the parties checking them.
const backdate = 5 * time.Minute

// CreateCA creates a certificate authority in dir: ca.pem (0644) and
// ca-key.pem (0600), with an ECDSA P-256 key, valid for validity from now.
// It creates dir if needed and refuses to replace an existing CA (the error
// then matches fs.ErrExist), because that would orphan every certificate it
// signed.
func CreateCA(dir, commonName string, validity time.Duration) error {
	if commonName == "" {
		return errors.New("pki: CA common name is empty")
	}
	if validity <= 0 {
		return fmt.Errorf("pki: CA validity %s is not positive", validity)
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	for _, f := range []string{CACertFile, CAKeyFile} {
		p := filepath.Join(dir, f)
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("pki: create CA: %s: %w", p, fs.ErrExist)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pki: %w", err)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"Moxxie"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("pki: sign CA: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return fmt.Errorf("pki: encode CA key: %w", err)
	}
	// The key goes first: a ca.pem without its key is harmless, the reverse
	// would be a CA nobody can verify.
	if err := writeFileAtomic(filepath.Join(dir, CAKeyFile), keyPEM, keyMode); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, CACertFile), encodeCert(der), certMode); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

// loadCA reads the CA certificate and key from caDir.
func loadCA(caDir string) (*x509.Certificate, crypto.Signer, error) {
	cert, err := readCert(filepath.Join(caDir, CACertFile))
	if err != nil {
		return nil, nil, fmt.Errorf("pki: load CA: %w", err)
	}
	if !cert.IsCA {
		return nil, nil, fmt.Errorf("pki: load CA: %s is not a CA certificate", filepath.Join(caDir, CACertFile))
	}
	key, err := readKey(filepath.Join(caDir, CAKeyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("pki: load CA: %w", err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("pki: load CA: %s does not match %s", CAKeyFile, CACertFile)
	}
	return cert, key, nil
}

// newSerial returns a random 128-bit certificate serial number.
func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}
