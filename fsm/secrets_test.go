package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func wrapKey(id, kek, prev string) *SecretKeyWrapRequest {
	return &SecretKeyWrapRequest{Key: SecretKey{ID: id, KEKID: kek, Wrapped: bytes.Repeat([]byte{9}, 61)}, PrevKEKID: prev}
}

func putSecret(name, dek string, ct byte) *SecretPutRequest {
	return &SecretPutRequest{Secret: Secret{Name: name, Ciphertext: bytes.Repeat([]byte{ct}, 32), Nonce: make([]byte, 12), DEKID: dek}}
}

func TestFSM_SecretPut(t *testing.T) {
	f := New()
	if r := applyCmd(t, f, 1, putSecret("pve-token", "dek-1", 1)); !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("put under a missing key: %v, want ErrNotFound", r.Err)
	}
	applyOK(t, f, 2, wrapKey("dek-1", "kek-1", ""))
	put := putSecret("pve-token", "dek-1", 1)
	put.Now, put.Secret.Description = 100, "Proxmox API token"
	s := applyOK(t, f, 3, put).Value.(*Secret)
	if s.Version != 1 || s.CreateIndex != 3 || s.CreatedAt != 100 || s.Description != "Proxmox API token" {
		t.Fatalf("created %+v", s)
	}
	put2 := putSecret("pve-token", "dek-1", 2)
	put2.Now = 200
	s = applyOK(t, f, 4, put2).Value.(*Secret)
	if s.Version != 2 || s.CreateIndex != 3 || s.ModifyIndex != 4 || s.CreatedAt != 100 || s.UpdatedAt != 200 || s.Ciphertext[0] != 2 {
		t.Fatalf("replaced %+v", s)
	}
	stale := putSecret("pve-token", "dek-1", 3)
	stale.IfVersion = 1
	if r := applyCmd(t, f, 5, stale); !errors.Is(r.Err, ErrConflict) {
		t.Fatalf("put if version 1 of version 2: %v, want ErrConflict", r.Err)
	}
	missing := putSecret("other", "dek-1", 3)
	missing.IfVersion = 1
	if r := applyCmd(t, f, 6, missing); !errors.Is(r.Err, ErrConflict) {
		t.Fatalf("put if version 1 of a missing secret: %v, want ErrConflict", r.Err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Ciphertext", "ciphertext", "Nonce", "nonce"} {
		if _, ok := m[k]; ok {
			t.Errorf("the JSON of a secret has %q: %s", k, b)
		}
	}
}

func TestFSM_SecretPutValidate(t *testing.T) {
	f := New()
	applyOK(t, f, 1, wrapKey("dek-1", "kek-1", ""))
	cases := map[string]func(*SecretPutRequest){
		"bad name":       func(r *SecretPutRequest) { r.Secret.Name = "Bad Name" },
		"empty name":     func(r *SecretPutRequest) { r.Secret.Name = "" },
		"short ct":       func(r *SecretPutRequest) { r.Secret.Ciphertext = []byte{1} },
		"big ct":         func(r *SecretPutRequest) { r.Secret.Ciphertext = make([]byte, maxSecretCiphertextSize+1) },
		"bad nonce":      func(r *SecretPutRequest) { r.Secret.Nonce = []byte{1} },
		"no key":         func(r *SecretPutRequest) { r.Secret.DEKID = "" },
		"long desc":      func(r *SecretPutRequest) { r.Secret.Description = string(make([]byte, 2000)) },
		"reencrypt only": func(r *SecretPutRequest) { r.Reencrypt = true },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			r := putSecret("ok", "dek-1", 1)
			mod(r)
			if res := applyCmd(t, f, 2, r); !errors.Is(res.Err, ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalid", res.Err)
			}
		})
	}
}

func TestFSM_SecretKeyRotation(t *testing.T) {
	f := New()
	applyOK(t, f, 1, wrapKey("dek-1", "kek-1", ""))
	if r := applyCmd(t, f, 2, wrapKey("dek-1", "kek-1", "")); !errors.Is(r.Err, ErrConflict) {
		t.Fatalf("adding dek-1 twice: %v", r.Err)
	}
	applyOK(t, f, 3, putSecret("a", "dek-1", 1))
	applyOK(t, f, 4, putSecret("b", "dek-1", 2))

	// KEK rotation: re-wrap, compare-and-set on the old KEK.
	if r := applyCmd(t, f, 5, wrapKey("dek-1", "kek-2", "kek-0")); !errors.Is(r.Err, ErrConflict) {
		t.Fatalf("re-wrap from the wrong KEK: %v", r.Err)
	}
	if r := applyCmd(t, f, 5, wrapKey("dek-9", "kek-2", "kek-1")); !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("re-wrap of a missing key: %v", r.Err)
	}
	if r := applyCmd(t, f, 5, wrapKey("dek-1", "kek-1", "kek-1")); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("re-wrap under the same KEK: %v", r.Err)
	}
	k := applyOK(t, f, 6, wrapKey("dek-1", "kek-2", "kek-1")).Value.(*SecretKey)
	if k.KEKID != "kek-2" || k.Seq != 1 || k.CreateIndex != 1 || k.ModifyIndex != 6 {
		t.Fatalf("re-wrapped %+v", k)
	}

	// Data-key rotation: a new key becomes current; re-encrypting every
	// secret under it drops the old key with its last ciphertext.
	applyOK(t, f, 7, wrapKey("dek-2", "kek-2", ""))
	cur, err := f.State().CurrentSecretKey()
	if err != nil || cur.ID != "dek-2" || cur.Seq != 2 {
		t.Fatalf("current key %+v, %v", cur, err)
	}
	re := putSecret("a", "dek-2", 3)
	re.IfVersion, re.Reencrypt, re.Now = 1, true, 999
	s := applyOK(t, f, 8, re).Value.(*Secret)
	if s.Version != 1 || s.UpdatedAt != 0 || s.DEKID != "dek-2" {
		t.Fatalf("re-encrypted %+v", s)
	}
	if _, k, _ := f.State().SecretKey(nil, "dek-1"); k == nil {
		t.Fatal("dek-1 dropped while b still uses it")
	}
	applyOK(t, f, 9, &SecretDeleteRequest{Name: "b"})
	if _, k, _ := f.State().SecretKey(nil, "dek-1"); k != nil {
		t.Fatal("dek-1 kept after its last secret went")
	}
	applyOK(t, f, 10, &SecretDeleteRequest{Name: "a"})
	if _, keys, _ := f.State().SecretKeys(nil); len(keys) != 1 || keys[0].ID != "dek-2" {
		t.Fatalf("keys %+v: the current key must stay", keys)
	}
	if r := applyCmd(t, f, 11, &SecretDeleteRequest{Name: "a"}); !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("deleting a missing secret: %v", r.Err)
	}
}

func TestFSM_SecretSnapshotRoundTrip(t *testing.T) {
	f := New()
	applyOK(t, f, 1, wrapKey("dek-1", "kek-1", ""))
	applyOK(t, f, 2, putSecret("a", "dek-1", 1))
	data := persist(t, f)
	g := New()
	if err := g.Restore(&readCloser{Reader: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	_, s, err := g.State().Secret(nil, "a")
	if err != nil || s == nil || !bytes.Equal(s.Ciphertext, bytes.Repeat([]byte{1}, 32)) || len(s.Nonce) != 12 {
		t.Fatalf("restored secret %+v, %v", s, err)
	}
	_, k, err := g.State().SecretKey(nil, "dek-1")
	if err != nil || k == nil || len(k.Wrapped) != 61 || k.KEKID != "kek-1" {
		t.Fatalf("restored key %+v, %v", k, err)
	}
	if !bytes.Equal(dump(t, f), dump(t, g)) {
		t.Fatal("restored state differs")
	}
}
