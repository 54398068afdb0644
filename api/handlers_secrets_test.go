package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/secrets"
)

// sealBackend is a fakeBackend that seals secrets as a leader with a KEK
// does: one data key, stored on first use.
type sealBackend struct {
	*fakeBackend
	kek *secrets.Key
	dek *secrets.Key
}

func (b *sealBackend) SealSecret(ctx context.Context, meta fsm.WriteMeta, name, value string) (fsm.Secret, error) {
	if b.dek == nil {
		dek, id, err := secrets.NewDataKey()
		if err != nil {
			return fsm.Secret{}, err
		}
		w, err := secrets.Wrap(b.kek, dek, id)
		if err != nil {
			return fsm.Secret{}, err
		}
		res, _, err := b.Apply(ctx, &fsm.SecretKeyWrapRequest{WriteMeta: meta, Key: fsm.SecretKey{ID: id, KEKID: b.kek.ID(), Wrapped: w}})
		if err != nil || res.Err != nil {
			return fsm.Secret{}, errors.Join(err, res.Err)
		}
		b.dek = dek
	}
	cur, err := b.State().CurrentSecretKey()
	if err != nil {
		return fsm.Secret{}, err
	}
	ct, n, err := secrets.Seal(b.dek, name, []byte(value))
	return fsm.Secret{Name: name, Ciphertext: ct, Nonce: n, DEKID: cur.ID}, err
}

func newSecretsLeader(t *testing.T) (*testServer, *sealBackend) {
	t.Helper()
	kek, err := secrets.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	b := &sealBackend{fakeBackend: newFakeBackend("s1", fsm.New(), true), kek: kek}
	h := New(b, Options{})
	ts := &testServer{t: t, b: b.fakeBackend, h: h, srv: h.(*server)}
	ts.bootstrap()
	return ts, b
}

// TestSecrets_NoKEK: without a key-encryption key writes are 503 no_kek,
// without Retry-After (retrying does not help until the servers are
// configured), and metadata can still be listed.
func TestSecrets_NoKEK(t *testing.T) {
	ts := newLeader(t)
	for _, rec := range []*httptest.ResponseRecorder{
		ts.do("PUT", "/v1/secrets/pve-token", `{"value":"v"}`, "Content-Type", "application/json"),
		ts.do("POST", "/v1/secrets/rotate", ""),
	} {
		var er ErrorResponse
		mustJSON(t, wantStatus(t, rec, http.StatusServiceUnavailable), &er)
		if er.Error.Code != CodeNoKEK || !strings.Contains(er.Error.Message, "no key-encryption key configured") {
			t.Errorf("error %+v", er.Error)
		}
		if rec.Header().Get("Retry-After") != "" {
			t.Error("no_kek carries Retry-After: clients would retry in vain")
		}
	}
	var list SecretList
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/secrets", ""), http.StatusOK), &list)
	if list.Secrets == nil || len(list.Secrets) != 0 {
		t.Errorf("list %+v", list)
	}
}

func TestSecrets_PutGetListDelete(t *testing.T) {
	ts, _ := newSecretsLeader(t)
	const value = "the-VALUE-of-pve-token"
	hdr := []string{"Content-Type", "application/json", "Idempotency-Key", "k1"}
	body := wantStatus(t, ts.do("PUT", "/v1/secrets/pve-token", `{"value":"`+value+`","description":"Proxmox"}`, hdr...), http.StatusOK)
	if strings.Contains(string(body), value) || strings.Contains(string(body), "iphertext") {
		t.Fatalf("PUT answered %s", body)
	}
	var s fsm.Secret
	mustJSON(t, body, &s)
	if s.Name != "pve-token" || s.Version != 1 || s.Description != "Proxmox" || s.DEKID == "" {
		t.Fatalf("PUT answered %+v", s)
	}
	if m := ts.b.lastMeta.Load(); m.IdempotencyKey != "" || m.RequestHash != "" {
		t.Errorf("a secret write kept an idempotency key: %+v", m)
	}
	body = wantStatus(t, ts.do("PUT", "/v1/secrets/pve-token", `{"value":"`+value+`2"}`, hdr...), http.StatusOK)
	mustJSON(t, body, &s)
	if s.Version != 2 {
		t.Errorf("second PUT: version %d", s.Version)
	}
	for _, path := range []string{"/v1/secrets", "/v1/secrets/pve-token"} {
		body := wantStatus(t, ts.do("GET", path, ""), http.StatusOK)
		if strings.Contains(string(body), value) || strings.Contains(string(body), `"value"`) {
			t.Errorf("GET %s answered %s", path, body)
		}
	}
	wantError(t, ts.do("GET", "/v1/secrets/missing", ""), http.StatusNotFound, CodeNotFound, "name")
	wantStatus(t, ts.do("DELETE", "/v1/secrets/pve-token", ""), http.StatusOK)
	wantError(t, ts.do("DELETE", "/v1/secrets/pve-token", ""), http.StatusNotFound, CodeNotFound, "name")
}

func TestSecrets_BadInput(t *testing.T) {
	ts, _ := newSecretsLeader(t)
	ct := []string{"Content-Type", "application/json"}
	cases := []struct {
		path, body, field string
	}{
		{"/v1/secrets/Bad_Name", `{"value":"v"}`, "name"},
		{"/v1/secrets/ok", `{}`, "value"},
		{"/v1/secrets/ok", `{"value":"` + strings.Repeat("x", maxSecretValueLen+1) + `"}`, "value"},
		{"/v1/secrets/ok", `{"value":"v","description":"` + strings.Repeat("d", 1025) + `"}`, "description"},
		{"/v1/secrets/ok", `{"value":"v","extra":1}`, "extra"},
	}
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			wantError(t, ts.do("PUT", c.path, c.body, ct...), http.StatusBadRequest, CodeInvalidRequest, c.field)
		})
	}
}
