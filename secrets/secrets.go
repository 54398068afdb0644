// Package secrets holds the cryptography of Moxxie's secrets store: the
// key-encryption key (KEK) an operator gives each server, the data keys
// (DEKs) that encrypt secret values, and the AES-256-GCM envelopes around
// both. It does no I/O besides reading a key file and keeps no state; the
// FSM stores only what this package produces (wrapped keys and
// ciphertexts), never a plaintext.
//
// A value is sealed under a DEK with the secret's name as additional data,
// so a ciphertext moved to another name fails to open. A DEK is wrapped
// under the KEK with the DEK's ID as additional data. Rotating the KEK
// re-wraps the DEKs; rotating the DEK re-encrypts the values.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the size of every key in bytes: AES-256.
const KeySize = 32

// NonceSize is the size of an AES-GCM nonce in bytes.
const NonceSize = 12

// EnvKEK names the environment variable that may hold the KEK as base64
// of KeySize bytes, instead of a key file.
const EnvKEK = "MOXXIE_SECRETS_KEK"

// wrapVersion is the first byte of a wrapped DEK, so the format can change.
const wrapVersion = 1

// MaxValueSize bounds a secret value.
const MaxValueSize = 64 << 10

// Errors of this package.
var (
	// ErrBadKey means a key is not base64 of KeySize bytes.
	ErrBadKey = errors.New("secrets: a key must be the base64 encoding of 32 bytes")
	// ErrKeyFileMode means a key file is readable or writable by group or
	// others.
	ErrKeyFileMode = errors.New("secrets: key file is accessible by group or others")
	// ErrDecrypt means a ciphertext or wrapped key failed authentication:
	// wrong key, wrong name or ID, or damaged bytes.
	ErrDecrypt = errors.New("secrets: decryption failed (wrong key or damaged ciphertext)")
	// ErrBadWrapped means a wrapped key is malformed.
	ErrBadWrapped = errors.New("secrets: malformed wrapped key")
)

// Key is a 256-bit AES key: a KEK or a DEK. Its ID is the hex of the first
// 8 bytes of its SHA-256, which names the key without revealing it.
type Key struct {
	b  [KeySize]byte
	id string
}

// NewKey returns a random key.
func NewKey() (*Key, error) {
	var b [KeySize]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("secrets: random key: %w", err)
	}
	return keyOf(b), nil
}

func keyOf(b [KeySize]byte) *Key {
	sum := sha256.Sum256(b[:])
	return &Key{b: b, id: hex.EncodeToString(sum[:8])}
}

// KeyFromBytes returns the key made of b, which must be KeySize bytes.
func KeyFromBytes(b []byte) (*Key, error) {
	if len(b) != KeySize {
		return nil, ErrBadKey
	}
	return keyOf([KeySize]byte(b)), nil
}

// ParseKey decodes a key from standard base64 (surrounding white space is
// ignored).
func ParseKey(s string) (*Key, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != KeySize {
		return nil, ErrBadKey
	}
	return keyOf([KeySize]byte(b)), nil
}

// ID returns the key's ID: 16 hex digits of its SHA-256.
func (k *Key) ID() string { return k.id }

// Bytes returns a copy of the key material.
func (k *Key) Bytes() []byte { return append([]byte(nil), k.b[:]...) }

// Encode returns the key as standard base64, the form of key files.
func (k *Key) Encode() string { return base64.StdEncoding.EncodeToString(k.b[:]) }

// String names the key by its ID only, so a key in a log line reveals
// nothing.
func (k *Key) String() string { return "key " + k.id }

// LoadKeyFile reads a KEK from path: base64 of 32 bytes. The file must not
// be accessible by group or others (mode 0600 or stricter).
func LoadKeyFile(path string) (*Key, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secrets: key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secrets: key file %s is not a regular file", path)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; it must be 0600 or stricter (chmod 600 %s)", ErrKeyFileMode, path, m, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secrets: key file: %w", err)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("secrets: key file %s: %w", path, err)
	}
	return k, nil
}

// WriteKeyFile writes k to path with mode 0600, refusing to replace an
// existing file.
func WriteKeyFile(path string, k *Key) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("secrets: key file: %w", err)
	}
	if _, err := f.WriteString(k.Encode() + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("secrets: key file: %w", err)
	}
	return f.Close()
}

// KeyFromEnv reads the KEK from the MOXXIE_SECRETS_KEK variable through
// lookup; it returns nil and no error when the variable is not set.
func KeyFromEnv(lookup func(string) (string, bool)) (*Key, error) {
	v, ok := lookup(EnvKEK)
	if !ok || v == "" {
		return nil, nil
	}
	k, err := ParseKey(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvKEK, err)
	}
	return k, nil
}

func (k *Key) aead() cipher.AEAD {
	block, err := aes.NewCipher(k.b[:])
	if err != nil {
		panic(err) // the key size is fixed: cannot happen
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return g
}

func nonce() ([]byte, error) {
	n := make([]byte, NonceSize)
	if _, err := rand.Read(n); err != nil {
		return nil, fmt.Errorf("secrets: random nonce: %w", err)
	}
	return n, nil
}

func wrapAD(dekID string) []byte { return []byte("moxxie-dek\x00" + dekID) }

func valueAD(name string) []byte { return []byte("moxxie-secret\x00" + name) }

// NewDataKey returns a new random DEK and an ID for it (16 random hex
// digits, independent of the key).
func NewDataKey() (dek *Key, id string, err error) {
	if dek, err = NewKey(); err != nil {
		return nil, "", err
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, "", fmt.Errorf("secrets: random key ID: %w", err)
	}
	return dek, hex.EncodeToString(b[:]), nil
}

// Wrap encrypts dek under kek, bound to dekID. The result is a version
// byte, the nonce and the AES-GCM ciphertext.
func Wrap(kek, dek *Key, dekID string) ([]byte, error) {
	n, err := nonce()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 1+NonceSize+KeySize+16)
	out = append(out, wrapVersion)
	out = append(out, n...)
	return kek.aead().Seal(out, n, dek.b[:], wrapAD(dekID)), nil
}

// Unwrap decrypts a DEK that Wrap encrypted under kek for dekID.
func Unwrap(kek *Key, wrapped []byte, dekID string) (*Key, error) {
	if len(wrapped) != 1+NonceSize+KeySize+16 || wrapped[0] != wrapVersion {
		return nil, ErrBadWrapped
	}
	n, ct := wrapped[1:1+NonceSize], wrapped[1+NonceSize:]
	b, err := kek.aead().Open(nil, n, ct, wrapAD(dekID))
	if err != nil {
		return nil, ErrDecrypt
	}
	return KeyFromBytes(b)
}

// Seal encrypts value under dek for the secret called name and returns
// the ciphertext and its nonce.
func Seal(dek *Key, name string, value []byte) (ciphertext, nonceOut []byte, err error) {
	if len(value) > MaxValueSize {
		return nil, nil, fmt.Errorf("secrets: value of %d bytes exceeds %d", len(value), MaxValueSize)
	}
	n, err := nonce()
	if err != nil {
		return nil, nil, err
	}
	return dek.aead().Seal(nil, n, value, valueAD(name)), n, nil
}

// Open decrypts a value Seal encrypted under dek for name.
func Open(dek *Key, name string, ciphertext, nonce []byte) ([]byte, error) {
	if len(nonce) != NonceSize || len(ciphertext) < 16 {
		return nil, ErrDecrypt
	}
	b, err := dek.aead().Open(nil, nonce, ciphertext, valueAD(name))
	if err != nil {
		return nil, ErrDecrypt
	}
	return b, nil
}
