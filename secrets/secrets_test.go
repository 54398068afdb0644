package secrets

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustKey(t testing.TB) *Key {
	t.Helper()
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKey(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, KeySize))
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"valid", good, true},
		{"trailing newline", good + "\n", true},
		{"short", base64.StdEncoding.EncodeToString(make([]byte, 16)), false},
		{"long", base64.StdEncoding.EncodeToString(make([]byte, 33)), false},
		{"not base64", strings.Repeat("!", 44), false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKey(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("ParseKey: err %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadKey) {
				t.Errorf("error %v is not ErrBadKey", err)
			}
			if tt.ok && (len(k.ID()) != 16 || k.Encode() != strings.TrimSpace(tt.in)) {
				t.Errorf("key %s encodes as %q", k.ID(), k.Encode())
			}
		})
	}
}

func TestKeyIDIsStableAndHidesTheKey(t *testing.T) {
	k := mustKey(t)
	k2, err := ParseKey(k.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if k.ID() != k2.ID() {
		t.Errorf("IDs differ: %s, %s", k.ID(), k2.ID())
	}
	if s := k.String(); strings.Contains(s, k.Encode()) || !strings.Contains(s, k.ID()) {
		t.Errorf("String() = %q", s)
	}
}

func TestLoadKeyFile(t *testing.T) {
	dir := t.TempDir()
	k := mustKey(t)
	tests := []struct {
		name    string
		mode    os.FileMode
		content string
		want    string // substring of the error; "" for success
	}{
		{"0600", 0o600, k.Encode() + "\n", ""},
		{"0400", 0o400, k.Encode(), ""},
		{"group readable", 0o640, k.Encode(), "mode 0640"},
		{"world readable", 0o644, k.Encode(), "chmod 600"},
		{"garbage", 0o600, "not a key", "base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			if err := os.WriteFile(p, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tt.mode); err != nil { // umask
				t.Fatal(err)
			}
			got, err := LoadKeyFile(p)
			if tt.want == "" {
				if err != nil || got.ID() != k.ID() {
					t.Fatalf("LoadKeyFile = %v, %v", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadKeyFile error %v, want one containing %q", err, tt.want)
			}
			if tt.mode&0o077 != 0 && (!errors.Is(err, ErrKeyFileMode) || !strings.Contains(err.Error(), p)) {
				t.Errorf("mode error %v does not name the file or wrap ErrKeyFileMode", err)
			}
		})
	}
	if _, err := LoadKeyFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file loaded")
	}
}

func TestWriteKeyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "kek")
	k := mustKey(t)
	if err := WriteKeyFile(p, k); err != nil {
		t.Fatal(err)
	}
	got, err := LoadKeyFile(p)
	if err != nil || got.ID() != k.ID() {
		t.Fatalf("LoadKeyFile = %v, %v", got, err)
	}
	if err := WriteKeyFile(p, mustKey(t)); err == nil {
		t.Error("WriteKeyFile replaced an existing file")
	}
}

func TestKeyFromEnv(t *testing.T) {
	k := mustKey(t)
	env := map[string]string{}
	lookup := func(n string) (string, bool) { v, ok := env[n]; return v, ok }
	if got, err := KeyFromEnv(lookup); got != nil || err != nil {
		t.Fatalf("unset: %v, %v", got, err)
	}
	env[EnvKEK] = k.Encode()
	if got, err := KeyFromEnv(lookup); err != nil || got.ID() != k.ID() {
		t.Fatalf("set: %v, %v", got, err)
	}
	env[EnvKEK] = "short"
	if _, err := KeyFromEnv(lookup); err == nil || !strings.Contains(err.Error(), EnvKEK) {
		t.Fatalf("bad value: %v", err)
	}
}

func TestWrapUnwrap(t *testing.T) {
	kek, other := mustKey(t), mustKey(t)
	dek, id, err := NewDataKey()
	if err != nil {
		t.Fatal(err)
	}
	w, err := Wrap(kek, dek, id)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(w, dek.Bytes()) {
		t.Fatal("the wrapped key contains the key")
	}
	flipped := bytes.Clone(w)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name    string
		kek     *Key
		wrapped []byte
		id      string
		err     error
	}{
		{"right key", kek, w, id, nil},
		{"other KEK", other, w, id, ErrDecrypt},
		{"other ID", kek, w, id + "x", ErrDecrypt},
		{"damaged", kek, flipped, id, ErrDecrypt},
		{"truncated", kek, w[:len(w)-1], id, ErrBadWrapped},
		{"bad version", kek, append([]byte{9}, w[1:]...), id, ErrBadWrapped},
		{"empty", kek, nil, id, ErrBadWrapped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Unwrap(tt.kek, tt.wrapped, tt.id)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Unwrap error %v, want %v", err, tt.err)
			}
			if err == nil && got.ID() != dek.ID() {
				t.Errorf("unwrapped key %s, want %s", got.ID(), dek.ID())
			}
		})
	}
}

func TestSealOpen(t *testing.T) {
	dek, other := mustKey(t), mustKey(t)
	value := []byte("PVEAPIToken-secret-6f1c")
	ct, n, err := Seal(dek, "pve-token", value)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, value) {
		t.Fatal("the ciphertext contains the value")
	}
	ct2, n2, err := Seal(dek, "pve-token", value)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(ct, ct2) || bytes.Equal(n, n2) {
		t.Error("two seals of one value are equal: nonces repeat")
	}
	tests := []struct {
		name  string
		dek   *Key
		sname string
		ct, n []byte
		ok    bool
	}{
		{"right", dek, "pve-token", ct, n, true},
		{"other name", dek, "webhook", ct, n, false},
		{"other key", other, "pve-token", ct, n, false},
		{"other nonce", dek, "pve-token", ct, n2, false},
		{"short nonce", dek, "pve-token", ct, n[:4], false},
		{"short ciphertext", dek, "pve-token", ct[:3], n, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Open(tt.dek, tt.sname, tt.ct, tt.n)
			if tt.ok {
				if err != nil || !bytes.Equal(got, value) {
					t.Fatalf("Open = %q, %v", got, err)
				}
				return
			}
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Open error %v, want ErrDecrypt", err)
			}
		})
	}
	if _, _, err := Seal(dek, "big", make([]byte, MaxValueSize+1)); err == nil {
		t.Error("Seal took a value over MaxValueSize")
	}
	if _, _, err := Seal(dek, "empty", nil); err != nil {
		t.Errorf("Seal of an empty value: %v", err)
	}
}

// FuzzDecoders feeds arbitrary bytes to every decoder: none may panic, and
// nothing but the real key, ID and name opens a ciphertext.
func FuzzDecoders(f *testing.F) {
	kek := keyOf([KeySize]byte{1})
	dek := keyOf([KeySize]byte{2})
	w, _ := Wrap(kek, dek, "id")
	ct, n, _ := Seal(dek, "name", []byte("value"))
	f.Add(w, "id", []byte(nil))
	f.Add(ct, "name", n)
	f.Add([]byte(kek.Encode()), "", []byte{})
	f.Fuzz(func(t *testing.T, b []byte, s string, n []byte) {
		if k, err := ParseKey(string(b)); err == nil && len(k.Bytes()) != KeySize {
			t.Fatalf("ParseKey returned %d bytes", len(k.Bytes()))
		}
		if _, err := KeyFromBytes(b); (err == nil) != (len(b) == KeySize) {
			t.Fatalf("KeyFromBytes(%d bytes): %v", len(b), err)
		}
		// The seeds hold the real wrapped key and ciphertext only in the
		// process that made them (nonces are random): success is checked
		// against the binding, not the bytes.
		if got, err := Unwrap(kek, b, s); err == nil && (s != "id" || got.ID() != dek.ID()) {
			t.Fatalf("Unwrap accepted forged input %x for %q", b, s)
		}
		if _, err := Open(dek, s, b, n); err == nil && s != "name" {
			t.Fatalf("Open accepted a ciphertext for another name %q", s)
		}
	})
}
