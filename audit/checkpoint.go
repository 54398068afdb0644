package audit

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// checkpointTag separates checkpoint signatures from any other use of the
// key.
const checkpointTag = "moxxie-audit-checkpoint-v1\x00"

// Checkpoint is a signed statement that the chain's entry Seq has Hash.
// KeyID is the hex public key that signed it; Sig is the ed25519
// signature of the checkpoint's canonical form.
type Checkpoint struct {
	Seq   uint64 `json:"seq"`
	Hash  string `json:"hash"`
	Time  Nanos  `json:"time"`
	KeyID string `json:"key_id"`
	Sig   string `json:"sig"`
}

// Canonical returns the bytes a checkpoint signature covers: the domain
// tag, Seq, Time and Hash.
func (c *Checkpoint) Canonical() []byte {
	b := []byte(checkpointTag)
	b = binary.BigEndian.AppendUint64(b, c.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Time))
	return append(b, c.Hash...)
}

// Sign returns a checkpoint of head at time now signed by key.
func Sign(key ed25519.PrivateKey, head Head, now int64) Checkpoint {
	c := Checkpoint{Seq: head.Seq, Hash: head.Hash, Time: Nanos(now), KeyID: KeyID(key.Public().(ed25519.PublicKey))}
	c.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.Canonical()))
	return c
}

// KeyID returns the ID of a public key: its hex encoding.
func KeyID(pub ed25519.PublicKey) string { return hex.EncodeToString(pub) }

// Errors of checkpoint and key checks.
var (
	// ErrBadSignature means a checkpoint's signature does not verify.
	ErrBadSignature = errors.New("bad checkpoint signature")
	// ErrUntrustedKey means a checkpoint was signed by a key not in the
	// trusted set.
	ErrUntrustedKey = errors.New("checkpoint signed by an untrusted key")
	// ErrBadKey means a key file does not hold an ed25519 key.
	ErrBadKey = errors.New("not an ed25519 key")
)

// CheckSignature verifies the checkpoint's signature by the key KeyID
// names. With trusted not nil that key must be in it.
func (c *Checkpoint) CheckSignature(trusted Keys) error {
	raw, err := hex.DecodeString(c.KeyID)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: checkpoint %d: key ID is not an ed25519 public key", ErrBadSignature, c.Seq)
	}
	if trusted != nil && !trusted[c.KeyID] {
		return fmt.Errorf("%w: checkpoint %d: key %.16s", ErrUntrustedKey, c.Seq, c.KeyID)
	}
	sig, err := base64.StdEncoding.DecodeString(c.Sig)
	if err != nil || !ed25519.Verify(ed25519.PublicKey(raw), c.Canonical(), sig) {
		return fmt.Errorf("%w: checkpoint %d", ErrBadSignature, c.Seq)
	}
	return nil
}

// Keys is a set of trusted public keys by KeyID.
type Keys map[string]bool

// pemPrivate and pemPublic are the PEM block types of key files.
const (
	pemPrivate = "MOXXIE AUDIT PRIVATE KEY"
	pemPublic  = "MOXXIE AUDIT PUBLIC KEY"
)

// MarshalPrivateKey encodes key as a PEM block holding its 32-byte seed.
func MarshalPrivateKey(key ed25519.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivate, Bytes: key.Seed()})
}

// MarshalPublicKey encodes pub as a PEM block.
func MarshalPublicKey(pub ed25519.PublicKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemPublic, Bytes: pub})
}

// ParsePrivateKey reads a key written by MarshalPrivateKey.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != pemPrivate || len(b.Bytes) != ed25519.SeedSize {
		return nil, ErrBadKey
	}
	return ed25519.NewKeyFromSeed(b.Bytes), nil
}

// ParsePublicKeys reads trusted public keys: PEM blocks written by
// MarshalPublicKey or MarshalPrivateKey (whose public half is taken), or
// lines of hex key IDs. Blank lines and lines starting with # are skipped.
func ParsePublicKeys(data []byte) (Keys, error) {
	keys := Keys{}
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch {
		case b.Type == pemPublic && len(b.Bytes) == ed25519.PublicKeySize:
			keys[KeyID(b.Bytes)] = true
		case b.Type == pemPrivate && len(b.Bytes) == ed25519.SeedSize:
			keys[KeyID(ed25519.NewKeyFromSeed(b.Bytes).Public().(ed25519.PublicKey))] = true
		default:
			return nil, fmt.Errorf("%w: PEM block %q", ErrBadKey, b.Type)
		}
	}
	if len(keys) == 0 {
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			raw, err := hex.DecodeString(line)
			if err != nil || len(raw) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("%w: %.20q", ErrBadKey, line)
			}
			keys[strings.ToLower(line)] = true
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key found", ErrBadKey)
	}
	return keys, nil
}
