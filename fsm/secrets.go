package fsm

import (
	"bytes"
	"fmt"

	"github.com/hashicorp/go-memdb"
)

// Secrets are stored encrypted: the leader seals a value under a data key
// (DEK) before it proposes the command, and the DEK itself is stored
// wrapped under the key-encryption key (KEK) that only the servers hold.
// Apply never sees a plaintext and does no cryptography; the state, the log
// and every snapshot hold only ciphertexts and wrapped keys.

// Table names of the secrets store.
const (
	tableSecrets    = "secrets"
	tableSecretKeys = "secret_keys"
)

// Limits of the secrets store. A ciphertext is the value plus a 16-byte
// authentication tag.
const (
	maxSecretNameLen        = 128
	maxSecretCiphertextSize = 64<<10 + 16
	secretNonceSize         = 12
	maxSecretDescriptionLen = 1024
	maxWrappedKeySize       = 256
)

// Secret is one stored secret: its name, its value's ciphertext and the
// metadata the API shows. The ciphertext and nonce never appear in JSON.
type Secret struct {
	Name       string `json:"name"`
	Ciphertext []byte `json:"-" codec:"Ciphertext"`
	Nonce      []byte `json:"-" codec:"Nonce"`
	// DEKID names the data key in secret_keys that sealed the value.
	DEKID string `json:"dek_id"`
	// Version counts the values the secret has had, from 1.
	Version     uint64    `json:"version"`
	Description string    `json:"description,omitempty"`
	CreatedAt   Timestamp `json:"created_at"`
	UpdatedAt   Timestamp `json:"updated_at"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
}

// SecretKey is a data key wrapped under a key-encryption key.
type SecretKey struct {
	ID string `json:"id"`
	// KEKID names the key-encryption key that wrapped it (a fingerprint,
	// not the key).
	KEKID   string `json:"kek_id"`
	Wrapped []byte `json:"-" codec:"Wrapped"`
	// Seq orders the keys by creation; the highest is the current key,
	// which seals new values.
	Seq         uint64    `json:"seq"`
	CreatedAt   Timestamp `json:"created_at"`
	UpdatedAt   Timestamp `json:"updated_at"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
}

// SecretPutRequest stores a sealed secret, created or replaced.
type SecretPutRequest struct {
	WriteMeta
	// Secret carries Name, Ciphertext, Nonce, DEKID and Description; the
	// other fields are set by Apply.
	Secret Secret
	// IfVersion, when not zero, applies the put only while the stored
	// secret has this version.
	IfVersion uint64
	// Reencrypt marks a data-key rotation: the value is unchanged, so the
	// version, description and update time are kept. It needs IfVersion.
	Reencrypt bool
}

// Type returns SecretPutType.
func (*SecretPutRequest) Type() MessageType { return SecretPutType }

// SecretDeleteRequest deletes a secret.
type SecretDeleteRequest struct {
	WriteMeta
	Name string
}

// Type returns SecretDeleteType.
func (*SecretDeleteRequest) Type() MessageType { return SecretDeleteType }

// SecretKeyWrapRequest stores a wrapped data key. With PrevKEKID empty it
// adds a new key, which becomes the current one; otherwise it re-wraps an
// existing key that is wrapped by PrevKEKID now (KEK rotation).
type SecretKeyWrapRequest struct {
	WriteMeta
	Key       SecretKey
	PrevKEKID string
}

// Type returns SecretKeyWrapType.
func (*SecretKeyWrapRequest) Type() MessageType { return SecretKeyWrapType }

// ValidSecretName reports whether name matches ^[a-z0-9][a-z0-9_.-]{0,127}$.
func ValidSecretName(name string) bool {
	if name == "" || len(name) > maxSecretNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch ch := name[i]; {
		case 'a' <= ch && ch <= 'z', '0' <= ch && ch <= '9':
		case i > 0 && (ch == '_' || ch == '.' || ch == '-'):
		default:
			return false
		}
	}
	return true
}

// Validate checks the sealed secret's shape.
func (r *SecretPutRequest) Validate() error {
	s := &r.Secret
	switch {
	case !ValidSecretName(s.Name):
		return fieldErrf("name", ErrInvalid, "secret name must match ^[a-z0-9][a-z0-9_.-]{0,127}$, not %q", s.Name)
	case len(s.Ciphertext) < 16 || len(s.Ciphertext) > maxSecretCiphertextSize:
		return fieldErrf("value", ErrInvalid, "ciphertext of %d bytes is out of range", len(s.Ciphertext))
	case len(s.Nonce) != secretNonceSize:
		return fieldErrf("value", ErrInvalid, "nonce must be %d bytes", secretNonceSize)
	case s.DEKID == "":
		return fieldErrf("dek_id", ErrInvalid, "data key ID is required")
	case len(s.Description) > maxSecretDescriptionLen:
		return fieldErrf("description", ErrInvalid, "must be at most %d bytes", maxSecretDescriptionLen)
	case r.Reencrypt && r.IfVersion == 0:
		return fieldErrf("if_version", ErrInvalid, "a re-encryption needs the version it replaces")
	}
	return nil
}

// Validate checks the wrapped key's shape.
func (r *SecretKeyWrapRequest) Validate() error {
	k := &r.Key
	switch {
	case k.ID == "":
		return fieldErrf("id", ErrInvalid, "data key ID is required")
	case k.KEKID == "":
		return fieldErrf("kek_id", ErrInvalid, "key-encryption key ID is required")
	case len(k.Wrapped) == 0 || len(k.Wrapped) > maxWrappedKeySize:
		return fieldErrf("wrapped", ErrInvalid, "wrapped key of %d bytes is out of range", len(k.Wrapped))
	case r.PrevKEKID == k.KEKID:
		return fieldErrf("kek_id", ErrInvalid, "re-wrapping under the same key-encryption key changes nothing")
	}
	return nil
}

func applySecretPut(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*SecretPutRequest)
	in := req.Secret
	raw, err := txn.First(tableSecretKeys, "id", in.DEKID)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fieldErrf("dek_id", ErrNotFound, "data key %s not found", in.DEKID)
	}
	if raw, err = txn.First(tableSecrets, "id", in.Name); err != nil {
		return nil, err
	}
	now := Timestamp(req.Now)
	s := &Secret{
		Name: in.Name, Ciphertext: bytes.Clone(in.Ciphertext), Nonce: bytes.Clone(in.Nonce), DEKID: in.DEKID,
		Version: 1, Description: in.Description, CreatedAt: now, UpdatedAt: now, CreateIndex: index, ModifyIndex: index,
	}
	var oldDEK string
	if raw != nil {
		old := raw.(*Secret)
		if req.IfVersion != 0 && old.Version != req.IfVersion {
			return nil, fieldErrf("name", ErrConflict, "secret %s has version %d, not %d", in.Name, old.Version, req.IfVersion)
		}
		s.CreatedAt, s.CreateIndex, s.Version = old.CreatedAt, old.CreateIndex, old.Version+1
		if req.Reencrypt {
			s.Version, s.Description, s.UpdatedAt = old.Version, old.Description, old.UpdatedAt
		}
		oldDEK = old.DEKID
	} else if req.IfVersion != 0 {
		return nil, fieldErrf("name", ErrConflict, "secret %s does not exist", in.Name)
	}
	if err := insert(txn, tableSecrets, index, s); err != nil {
		return nil, err
	}
	if oldDEK != "" && oldDEK != s.DEKID {
		if err := dropUnusedKey(txn, index, oldDEK); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func applySecretDelete(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*SecretDeleteRequest)
	raw, err := txn.First(tableSecrets, "id", req.Name)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, notFound("secret", req.Name)
	}
	if err := remove(txn, tableSecrets, index, raw); err != nil {
		return nil, err
	}
	if err := dropUnusedKey(txn, index, raw.(*Secret).DEKID); err != nil {
		return nil, err
	}
	return raw, nil
}

func applySecretKeyWrap(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*SecretKeyWrapRequest)
	in := req.Key
	raw, err := txn.First(tableSecretKeys, "id", in.ID)
	if err != nil {
		return nil, err
	}
	now := Timestamp(req.Now)
	k := &SecretKey{ID: in.ID, KEKID: in.KEKID, Wrapped: bytes.Clone(in.Wrapped), CreatedAt: now, UpdatedAt: now, CreateIndex: index, ModifyIndex: index}
	if req.PrevKEKID == "" {
		if raw != nil {
			return nil, fieldErrf("id", ErrConflict, "data key %s already exists", in.ID)
		}
		cur, err := currentKey(txn)
		if err != nil {
			return nil, err
		}
		k.Seq = 1
		if cur != nil {
			k.Seq = cur.Seq + 1
		}
	} else {
		if raw == nil {
			return nil, fieldErrf("id", ErrNotFound, "data key %s not found", in.ID)
		}
		old := raw.(*SecretKey)
		if old.KEKID != req.PrevKEKID {
			return nil, fieldErrf("kek_id", ErrConflict, "data key %s is wrapped by key-encryption key %s, not %s", in.ID, old.KEKID, req.PrevKEKID)
		}
		k.Seq, k.CreatedAt, k.CreateIndex = old.Seq, old.CreatedAt, old.CreateIndex
	}
	if err := insert(txn, tableSecretKeys, index, k); err != nil {
		return nil, err
	}
	return k, nil
}

// currentKey returns the data key with the highest Seq, or nil.
func currentKey(txn *memdb.Txn) (*SecretKey, error) {
	raw, err := txn.Last(tableSecretKeys, "seq")
	if err != nil || raw == nil {
		return nil, err
	}
	return raw.(*SecretKey), nil
}

// dropUnusedKey deletes data key id when it is not the current key and no
// secret is sealed under it any more: after a data-key rotation the old
// key goes with its last ciphertext.
func dropUnusedKey(txn *memdb.Txn, index uint64, id string) error {
	raw, err := txn.First(tableSecretKeys, "id", id)
	if err != nil || raw == nil {
		return err
	}
	cur, err := currentKey(txn)
	if err != nil {
		return err
	}
	if cur != nil && cur.ID == id {
		return nil
	}
	if used, err := txn.First(tableSecrets, "dek", id); err != nil || used != nil {
		return err
	}
	return remove(txn, tableSecretKeys, index, raw)
}

// secretTables returns the secrets part of the memdb schema.
func secretTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableSecrets: {Name: tableSecrets, Indexes: map[string]*memdb.IndexSchema{
			"id":  {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
			"dek": {Name: "dek", Indexer: &memdb.StringFieldIndex{Field: "DEKID"}},
		}},
		tableSecretKeys: {Name: tableSecretKeys, Indexes: map[string]*memdb.IndexSchema{
			"id":  {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
			"seq": {Name: "seq", Unique: true, Indexer: &memdb.UintFieldIndex{Field: "Seq"}},
		}},
	}
}

// Secrets lists the secrets by name; ws learns when they change.
func (s *Store) Secrets(ws memdb.WatchSet) (uint64, []*Secret, error) {
	return list[*Secret](s, ws, tableSecrets, "id")
}

// Secret returns one secret, or nil.
func (s *Store) Secret(ws memdb.WatchSet, name string) (uint64, *Secret, error) {
	return getByID[*Secret](s, ws, tableSecrets, name)
}

// SecretKeys lists the wrapped data keys by ID.
func (s *Store) SecretKeys(ws memdb.WatchSet) (uint64, []*SecretKey, error) {
	return list[*SecretKey](s, ws, tableSecretKeys, "id")
}

// SecretKey returns one wrapped data key, or nil.
func (s *Store) SecretKey(ws memdb.WatchSet, id string) (uint64, *SecretKey, error) {
	return getByID[*SecretKey](s, ws, tableSecretKeys, id)
}

// CurrentSecretKey returns the data key that seals new values, or nil
// before the first secret.
func (s *Store) CurrentSecretKey() (*SecretKey, error) {
	k, err := currentKey(s.db.Txn(false))
	if err != nil {
		return nil, fmt.Errorf("fsm: current data key: %w", err)
	}
	return k, nil
}
