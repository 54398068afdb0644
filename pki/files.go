package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// File names inside a CA directory.
const (
	// CACertFile is the CA certificate, the bundle every party trusts.
	CACertFile = "ca.pem"
	// CAKeyFile is the CA's private key. Only the machine that issues
	// certificates needs it.
	CAKeyFile = "ca-key.pem"
)

// File modes of what the package writes.
const (
	certMode os.FileMode = 0o644
	keyMode  os.FileMode = 0o600
	dirMode  os.FileMode = 0o700
)

// CertPath returns the path of the certificate CreateCert writes for name in
// dir: <dir>/<name>.pem.
func CertPath(dir, name string) string { return filepath.Join(dir, name+".pem") }

// KeyPath returns the path of the private key CreateCert writes for name in
// dir: <dir>/<name>-key.pem.
func KeyPath(dir, name string) string { return filepath.Join(dir, name+"-key.pem") }

// writeFileAtomic writes data to path through a temporary file in the same
// directory, so a reader never sees a half-written file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename this finds nothing
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// readCert returns the first certificate of a PEM file.
func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("%s: %w", path, ErrNoCertificate)
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			return c, nil
		}
	}
}

// ReadKeyFile returns the contents of the private key file at path. It
// refuses, with ErrKeyFileMode naming the file and its mode, a file that
// its group or other users may read, write or execute: a key must be
// private to its owner (mode 0600 or 0400), as everything this package
// writes is. The mode is checked on the opened file, so the file checked
// is the file read. A symbolic link is followed and its target checked.
func ReadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o, open to its group or others; run chmod 600 %s", ErrKeyFileMode, path, m, path)
	}
	return io.ReadAll(f)
}

// readKey returns the first private key of a PEM file, SEC 1 or PKCS #8.
// The file must pass ReadKeyFile's mode check.
func readKey(path string) (crypto.Signer, error) {
	data, err := ReadKeyFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("%s: no private key in file", path)
		}
		switch b.Type {
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			return k, nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("%s: unsupported private key type %T", path, k)
			}
			return s, nil
		}
	}
}

// NotAfter returns the expiry time of the first certificate in certFile.
func NotAfter(certFile string) (time.Time, error) {
	c, err := readCert(certFile)
	if err != nil {
		return time.Time{}, err
	}
	return c.NotAfter, nil
}

// SiteOfFile returns the site the first certificate in certFile names
// (SiteOf), or "" when it names none.
func SiteOfFile(certFile string) (string, error) {
	c, err := readCert(certFile)
	if err != nil {
		return "", err
	}
	return SiteOf(c)
}

// LoadKeyPair reads a certificate and private key pair from two PEM files,
// as tls.LoadX509KeyPair does, after checking the key file's mode with
// ReadKeyFile. The pair's Leaf is set.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := ReadKeyFile(keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}
