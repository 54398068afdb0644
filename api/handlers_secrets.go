package api

import (
	"errors"
	"net/http"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/fsm"
)

// The secrets API stores values and shows metadata. There is deliberately
// no endpoint that returns a value: only the servers decrypt, for their
// own use (platform credentials and the like).

// ErrNoKEK means the server has no key-encryption key, so it can neither
// seal nor open secrets (503).
var ErrNoKEK = errors.New("no key-encryption key configured")

// CodeNoKEK answers a secrets write on a server without a key-encryption
// key.
const CodeNoKEK = "no_kek"

// maxSecretValueLen bounds a secret's value.
const maxSecretValueLen = 64 << 10

// SecretPutRequest is the body of PUT /v1/secrets/{name}.
type SecretPutRequest struct {
	// Value is required; it may be the empty string.
	Value       *string `json:"value"`
	Description string  `json:"description"`
}

// SecretList is the body of GET /v1/secrets.
type SecretList struct {
	Secrets []*fsm.Secret `json:"secrets"`
}

// SecretRotation is the body of POST /v1/secrets/rotate: the new data key
// and how many secrets were re-encrypted under it. Skipped counts secrets
// changed during the rotation, still under an older key.
type SecretRotation struct {
	DEKID       string `json:"dek_id"`
	Reencrypted int    `json:"reencrypted"`
	Skipped     int    `json:"skipped"`
}

// noKEK maps ErrNoKEK to its 503, without Retry-After: retrying does not
// help until the servers are configured. An error that wraps ErrNoKEK
// says which key is missing and is shown as it is; other errors pass.
func noKEK(err error) error {
	if !errors.Is(err, ErrNoKEK) {
		return err
	}
	msg := "no key-encryption key configured: set secrets.kek_file (or MOXXIE_SECRETS_KEK) on every server"
	if err != ErrNoKEK {
		msg = err.Error()
	}
	return &apiError{status: http.StatusServiceUnavailable, code: CodeNoKEK, cause: err, message: msg}
}

// secretName returns the validated {name} path value.
func secretName(c *call) (string, error) {
	name := c.r.PathValue("name")
	if !fsm.ValidSecretName(name) {
		return "", invalid("name", "must match ^[a-z0-9][a-z0-9_.-]{0,127}$, not %q", name)
	}
	return name, nil
}

// secretMeta stamps a secrets write. Idempotency keys are not kept for
// secrets: the request fingerprint would be a hash of the value, stored in
// the state; a PUT is idempotent anyway.
func (s *server) secretMeta(c *call) fsm.WriteMeta {
	return fsm.WriteMeta{Now: s.b.Now().UnixNano(), Actor: c.actor(), RequestID: c.w.reqID}
}

// handleSecretList lists the secrets' metadata; it supports blocking
// queries.
func (s *server) handleSecretList(c *call) error {
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.Secret, error) {
		return st.Secrets(ws)
	}, func(l []*fsm.Secret) any { return SecretList{Secrets: l} })
}

// handleSecretGet returns one secret's metadata, never its value.
func (s *server) handleSecretGet(c *call) error {
	name, err := secretName(c)
	if err != nil {
		return err
	}
	var sec *fsm.Secret
	idx, err := s.blockingQuery(c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, error) {
		idx, v, err := st.Secret(ws, name)
		sec = v
		return idx, err
	})
	if err != nil {
		return err
	}
	c.setIndex(idx)
	if sec == nil {
		return notFoundError("name", "secret", name)
	}
	writeJSON(c.w, http.StatusOK, sec)
	return nil
}

// handleSecretPut seals the value on the leader and stores the ciphertext;
// it answers with the secret's metadata.
func (s *server) handleSecretPut(c *call) error {
	name, err := secretName(c)
	if err != nil {
		return err
	}
	var req SecretPutRequest
	if err := decodeJSON(c.body, &req, true); err != nil {
		return err
	}
	if req.Value == nil {
		return invalid("value", "is required")
	}
	if len(*req.Value) > maxSecretValueLen {
		return invalid("value", "must be at most %d bytes", maxSecretValueLen)
	}
	if len(req.Description) > 1024 {
		return invalid("description", "must be at most 1024 bytes")
	}
	meta := s.secretMeta(c)
	sealed, err := s.b.SealSecret(c.r.Context(), meta, name, *req.Value)
	if err != nil {
		return noKEK(err)
	}
	sealed.Description = req.Description
	return s.apply(c, &fsm.SecretPutRequest{WriteMeta: meta, Secret: sealed}, http.StatusOK, nil)
}

// handleSecretDelete deletes a secret and shows its metadata.
func (s *server) handleSecretDelete(c *call) error {
	name, err := secretName(c)
	if err != nil {
		return err
	}
	return s.apply(c, &fsm.SecretDeleteRequest{WriteMeta: s.secretMeta(c), Name: name}, http.StatusOK, nil)
}

// handleSecretRotate makes a new data key and re-encrypts every secret
// under it.
func (s *server) handleSecretRotate(c *call) error {
	out, err := s.b.RotateSecrets(c.r.Context(), s.secretMeta(c))
	if err != nil {
		return noKEK(err)
	}
	c.setIndex(s.b.State().LatestIndex())
	writeJSON(c.w, http.StatusOK, out)
	return nil
}
