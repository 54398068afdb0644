package node

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/pvesim"
	"github.com/moxxie/moxxie/secrets"
)

// testKEK writes a new key-encryption key to a 0600 file outside any data
// directory and returns the file and the key.
func testKEK(t *testing.T) (string, *secrets.Key) {
	t.Helper()
	k, err := secrets.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "secrets.kek")
	if err := secrets.WriteKeyFile(p, k); err != nil {
		t.Fatal(err)
	}
	return p, k
}

// secretValue returns a value that appears nowhere by chance.
func secretValue(t *testing.T, what string) string {
	t.Helper()
	var b [12]byte
	_, _ = rand.Read(b[:])
	return what + "-PLAINTEXT-" + hex.EncodeToString(b[:])
}

// putSecretOK stores a secret through s's API and checks the answer shows
// metadata and not the value.
func putSecretOK(t *testing.T, s *Server, token, name, value string) {
	t.Helper()
	r := call(t, s, http.MethodPut, "/v1/secrets/"+name, token, map[string]string{"value": value, "description": "test " + name}, nil)
	if r.status != http.StatusOK {
		t.Fatalf("PUT secret %s on %s: %d %s", name, s.ID(), r.status, r.body)
	}
	if contains(r.body, value) {
		t.Fatalf("PUT secret %s answered with its value: %s", name, r.body)
	}
	var got fsm.Secret
	if err := jsonUnmarshal(r.body, &got); err != nil || got.Name != name || got.Version == 0 {
		t.Fatalf("PUT secret %s answered %s (%v)", name, r.body, err)
	}
}

// waitSecret waits until every server decrypts name to value.
func waitSecret(t *testing.T, name, value string, servers ...*Server) {
	t.Helper()
	WaitForResult(t, 10*time.Second, func() error {
		for _, s := range servers {
			v, err := s.Secret(name)
			if err != nil {
				return fmt.Errorf("%s: %w", s.ID(), err)
			}
			if v != value {
				return fmt.Errorf("%s decrypts %s to another value", s.ID(), name)
			}
		}
		return nil
	})
}

// assertNoPlaintext fails if any of values occurs in b.
func assertNoPlaintext(t *testing.T, what string, b []byte, values map[string]string) {
	t.Helper()
	if len(b) == 0 {
		t.Fatalf("%s is empty", what)
	}
	for name, v := range values {
		if bytes.Contains(b, []byte(v)) {
			t.Errorf("%s holds the value of secret %s in plain text", what, name)
		}
	}
}

// TestMultiNode_SecretsSnapshotHoldsNoPlaintext stores secrets through the
// API of a three-server cluster and checks that no snapshot, neither the
// backup archive of GET /v1/snapshot nor raft's snapshot files, nor the
// raft log, nor any API answer, holds a value in plain text, while every
// server can decrypt them.
func TestMultiNode_SecretsSnapshotHoldsNoPlaintext(t *testing.T) {
	kek, _ := testKEK(t)
	servers := TestCluster(t, 3, func(c *Config) { c.Secrets.KEKFile = kek })
	token := bootstrapToken(t, servers[0])
	values := map[string]string{
		"pve-token":      secretValue(t, "pve"),
		"gossip-key":     secretValue(t, "gossip"),
		"webhook.secret": secretValue(t, "webhook"),
	}
	i := 0
	for name, v := range values {
		putSecretOK(t, servers[i%3], token, name, v) // through followers too
		i++
	}
	for name, v := range values {
		waitSecret(t, name, v, servers...)
	}
	l := WaitForLeader(t, servers...)

	for _, path := range []string{"/v1/secrets", "/v1/secrets/pve-token"} {
		r := call(t, servers[1], http.MethodGet, path, token, nil, nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		assertNoPlaintext(t, "GET "+path, r.body, values)
	}
	var list api.SecretList
	r := call(t, l, http.MethodGet, "/v1/secrets", token, nil, nil)
	if err := jsonUnmarshal(r.body, &list); err != nil || len(list.Secrets) != len(values) {
		t.Fatalf("GET /v1/secrets: %s (%v)", r.body, err)
	}

	archive := call(t, l, http.MethodGet, "/v1/snapshot", token, nil, nil)
	if archive.status != http.StatusOK {
		t.Fatalf("GET /v1/snapshot: %d %s", archive.status, archive.body)
	}
	assertNoPlaintext(t, "the backup archive", archive.body, values)
	if !contains(archive.body, "pve-token") {
		t.Error("the backup archive does not name the secret: is it in there at all?")
	}

	for _, s := range servers {
		if err := s.raft.Snapshot().Error(); err != nil {
			t.Fatalf("raft snapshot on %s: %v", s.ID(), err)
		}
		assertNoPlaintext(t, "the state of "+s.ID(), dump(t, s), values)
		n := 0
		err := filepath.WalkDir(s.cfg.DataDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n++
			assertNoPlaintext(t, p, b, values)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n < 3 { // raft.db, a snapshot's meta.json and state.bin
			t.Fatalf("%s: only %d files in the data directory", s.ID(), n)
		}
	}
}

// TestMultiNode_SecretsKEKRotation rotates the key-encryption key of a
// running cluster: each server gets the new key with the old one as
// previous (followers first), the leader re-wraps the data keys, writes go
// on throughout, and once the old key is dropped everywhere every value
// still decrypts.
func TestMultiNode_SecretsKEKRotation(t *testing.T) {
	oldKEK, oldKey := testKEK(t)
	newKEK, newKey := testKEK(t)
	servers := TestCluster(t, 3, func(c *Config) { c.Secrets.KEKFile = oldKEK })
	token := bootstrapToken(t, servers[0])
	values := map[string]string{}
	put := func(name string) {
		t.Helper()
		values[name] = secretValue(t, name)
		putSecretOK(t, servers[len(values)%3], token, name, values[name])
	}
	put("before")
	l := WaitForLeader(t, servers...)
	_, keys, _ := l.State().SecretKeys(nil)
	if len(keys) != 1 || keys[0].KEKID != oldKey.ID() {
		t.Fatalf("data keys %+v, want one wrapped by %s", keys, oldKey.ID())
	}

	order := []*Server{}
	for _, s := range servers {
		if s != l {
			order = append(order, s)
		}
	}
	order = append(order, l)
	for i, s := range order {
		if err := s.ReloadSecretKeys(SecretsConfig{KEKFile: newKEK, PreviousKEKFiles: []string{oldKEK}}); err != nil {
			t.Fatalf("reload %s: %v", s.ID(), err)
		}
		put(fmt.Sprintf("during-%d", i)) // no downtime
	}
	WaitForResult(t, 10*time.Second, func() error {
		for _, s := range servers {
			_, keys, err := s.State().SecretKeys(nil)
			if err != nil {
				return err
			}
			for _, k := range keys {
				if k.KEKID != newKey.ID() {
					return fmt.Errorf("%s: data key %s still wrapped by %s", s.ID(), k.ID, k.KEKID)
				}
			}
		}
		return nil
	})
	for _, s := range servers {
		if err := s.ReloadSecretKeys(SecretsConfig{KEKFile: newKEK}); err != nil {
			t.Fatalf("reload %s without the old key: %v", s.ID(), err)
		}
	}
	put("after")
	for name, v := range values {
		waitSecret(t, name, v, servers...)
	}

	// A data-key rotation re-encrypts everything; the old data key goes.
	r := call(t, servers[0], http.MethodPost, "/v1/secrets/rotate", token, nil, nil)
	var rot api.SecretRotation
	if r.status != http.StatusOK || jsonUnmarshal(r.body, &rot) != nil || rot.Reencrypted != len(values) {
		t.Fatalf("POST /v1/secrets/rotate: %d %s", r.status, r.body)
	}
	l = WaitForLeader(t, servers...)
	WaitForApplied(t, l.raft.AppliedIndex(), servers...)
	for _, s := range servers {
		_, keys, _ := s.State().SecretKeys(nil)
		if len(keys) != 1 || keys[0].ID != rot.DEKID {
			t.Fatalf("%s: data keys %+v after rotation, want only %s", s.ID(), keys, rot.DEKID)
		}
	}
	for name, v := range values {
		waitSecret(t, name, v, servers...)
	}
}

// TestSingleNode_SecretsWithoutKEK checks that a server without a KEK
// refuses secret writes with a clear 503 and still lists metadata.
func TestSingleNode_SecretsWithoutKEK(t *testing.T) {
	t.Setenv(secrets.EnvKEK, "")
	s := TestServer(t, nil)
	WaitForLeader(t, s)
	token := bootstrapToken(t, s)
	r := call(t, s, http.MethodPut, "/v1/secrets/pve-token", token, map[string]string{"value": "x"}, nil)
	if r.status != http.StatusServiceUnavailable || !contains(r.body, api.CodeNoKEK) || !contains(r.body, "no key-encryption key configured") {
		t.Fatalf("PUT without a KEK: %d %s", r.status, r.body)
	}
	if r := call(t, s, http.MethodPost, "/v1/secrets/rotate", token, nil, nil); r.status != http.StatusServiceUnavailable {
		t.Fatalf("rotate without a KEK: %d %s", r.status, r.body)
	}
	if r := call(t, s, http.MethodGet, "/v1/secrets", token, nil, nil); r.status != http.StatusOK {
		t.Fatalf("GET /v1/secrets without a KEK: %d %s", r.status, r.body)
	}
	if _, err := s.Secret("pve-token"); err == nil || !strings.Contains(err.Error(), "no key-encryption key") {
		t.Fatalf("Secret without a KEK: %v", err)
	}
}

// TestSingleNode_SecretsKEKFromEnv loads the KEK from MOXXIE_SECRETS_KEK.
func TestSingleNode_SecretsKEKFromEnv(t *testing.T) {
	k, err := secrets.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(secrets.EnvKEK, k.Encode())
	s := TestServer(t, nil)
	WaitForLeader(t, s)
	token := bootstrapToken(t, s)
	v := secretValue(t, "env")
	putSecretOK(t, s, token, "from-env", v)
	waitSecret(t, "from-env", v, s)
	_, keys, _ := s.State().SecretKeys(nil)
	if len(keys) != 1 || keys[0].KEKID != k.ID() {
		t.Fatalf("data keys %+v, want one wrapped by %s", keys, k.ID())
	}
}

// TestSecrets_KEKFileChecks refuses a key file others can read and one
// inside the data directory, naming the file.
func TestSecrets_KEKFileChecks(t *testing.T) {
	kek, _ := testKEK(t)
	if err := os.Chmod(kek, 0o644); err != nil {
		t.Fatal(err)
	}
	c := TestConfig(t, "kek")
	c.Secrets.KEKFile = kek
	if _, err := New(c, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err == nil || !strings.Contains(err.Error(), kek) || !strings.Contains(err.Error(), "0644") {
		t.Fatalf("a 0644 key file: %v", err)
	}
	c.Secrets.KEKFile = filepath.Join(c.DataDir, "secrets.kek")
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "secrets.kek_file") || !strings.Contains(err.Error(), "inside data_dir") {
		t.Fatalf("a key file in data_dir: %v", err)
	}
	c.Secrets = SecretsConfig{PreviousKEKFiles: []string{kek}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "previous_kek_files") {
		t.Fatalf("previous keys without a current one: %v", err)
	}
}

// TestConfig_PlainCredentialRefused refuses a Proxmox token secret written
// into the configuration, and accepts a reference to the secrets store.
func TestConfig_PlainCredentialRefused(t *testing.T) {
	c := TestConfig(t, "cfg")
	c.Proxmox = ProxmoxConfig{URL: "https://pve.example.com:8006", TokenID: "moxxie@pve!sync", TokenSecret: "5ecr3t-in-the-config"}
	err := c.Validate()
	want := "proxmox.token_secret: put the credential in the secrets store (moxxiectl secret put NAME) and write secret:NAME here; plain credentials are refused"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("plain token_secret: %v", err)
	}
	if strings.Contains(err.Error(), "5ecr3t") {
		t.Fatalf("the error repeats the credential: %v", err)
	}
	c.Proxmox.TokenSecret = "secret:Bad Name"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "does not name a secret") {
		t.Fatalf("bad reference: %v", err)
	}
	c.Proxmox.TokenSecret = "secret:pve-token"
	if err := c.Validate(); err != nil {
		t.Fatalf("secret reference: %v", err)
	}
	c.Proxmox.TokenSecretFile = "/etc/moxxie/pve-token"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("both token_secret and token_secret_file: %v", err)
	}
}

// TestSecrets_ProviderFromSecretsStore runs a server whose Proxmox token
// is a secret:NAME reference: the platform is unavailable, with a message
// naming the secret, until the secret is stored; then the inventory syncs.
func TestSecrets_ProviderFromSecretsStore(t *testing.T) {
	kek, _ := testKEK(t)
	_, pcfg := startTestSim(t, pvesim.Config{})
	pcfg.TokenSecretFile, pcfg.TokenSecret = "", "secret:pve-token"
	pcfg.SyncInterval = Duration(time.Second)
	s := TestServer(t, func(c *Config) {
		c.Secrets.KEKFile = kek
		c.Proxmox = pcfg
	})
	WaitForLeader(t, s)
	token := bootstrapToken(t, s)
	_, err := s.provider.Nodes(t.Context())
	if err == nil || !strings.Contains(err.Error(), `secret "pve-token" cannot be read yet`) {
		t.Fatalf("provider before the secret exists: %v", err)
	}
	putSecretOK(t, s, token, "pve-token", testSimSecret)
	WaitForResult(t, 20*time.Second, func() error {
		_, nodes, err := s.State().InventoryNodes(nil, false)
		if err != nil {
			return err
		}
		if len(nodes) == 0 {
			return fmt.Errorf("no nodes synced yet")
		}
		return nil
	})
}

// TestMultiNode_SecretsKEKRotationByRestart rotates the key-encryption
// key as an operator would: restart each server with the new key file and
// the old one as previous (followers first, the leader last, handing over
// leadership), then again with the new key alone. Writes succeed after
// every restart and every value decrypts on every server at the end.
func TestMultiNode_SecretsKEKRotationByRestart(t *testing.T) {
	oldKEK, _ := testKEK(t)
	newKEK, newKey := testKEK(t)
	servers := TestCluster(t, 3, func(c *Config) { c.Secrets.KEKFile = oldKEK })
	token := bootstrapToken(t, servers[0])
	values := map[string]string{}
	put := func(name string) {
		t.Helper()
		v := secretValue(t, name)
		WaitForResult(t, 20*time.Second, func() error {
			r := call(t, servers[len(values)%3], http.MethodPut, "/v1/secrets/"+name, token, map[string]string{"value": v}, nil)
			if r.status != http.StatusOK {
				return fmt.Errorf("PUT %s: %d %s", name, r.status, r.body)
			}
			return nil
		})
		values[name] = v
	}
	restart := func(i int, sc SecretsConfig) {
		t.Helper()
		cfg := servers[i].Config()
		if err := servers[i].Shutdown(true); err != nil {
			t.Logf("shutdown %s: %v", cfg.NodeID, err)
		}
		cfg.Secrets = sc
		servers[i] = StartTestServer(t, cfg)
	}
	put("before")
	l := WaitForLeader(t, servers...)
	var order []int
	for i, s := range servers {
		if s != l {
			order = append(order, i)
		}
	}
	for i, s := range servers {
		if s == l {
			order = append(order, i)
		}
	}
	for _, i := range order {
		restart(i, SecretsConfig{KEKFile: newKEK, PreviousKEKFiles: []string{oldKEK}})
		put(fmt.Sprintf("restart-%d", i))
	}
	WaitForResult(t, 20*time.Second, func() error {
		for _, s := range servers {
			_, keys, err := s.State().SecretKeys(nil)
			if err != nil {
				return err
			}
			for _, k := range keys {
				if k.KEKID != newKey.ID() {
					return fmt.Errorf("%s: data key %s still wrapped by %s", s.ID(), k.ID, k.KEKID)
				}
			}
		}
		return nil
	})
	for _, i := range order {
		restart(i, SecretsConfig{KEKFile: newKEK})
		put(fmt.Sprintf("new-only-%d", i))
	}
	for name, v := range values {
		waitSecret(t, name, v, servers...)
	}
}

// TestSingleNode_SecretsKEKRotationInPlace rotates the KEK with a
// configuration that never changes (kek_file K, previous_kek_files
// [K.old]): move K to K.old, write a new K, reload (SIGHUP); the leader
// re-wraps; delete K.old, reload; the values still decrypt.
func TestSingleNode_SecretsKEKRotationInPlace(t *testing.T) {
	kek, oldKey := testKEK(t)
	sc := SecretsConfig{KEKFile: kek, PreviousKEKFiles: []string{kek + ".old"}}
	s := TestServer(t, func(c *Config) { c.Secrets = sc })
	WaitForLeader(t, s)
	token := bootstrapToken(t, s)
	v := secretValue(t, "inplace")
	putSecretOK(t, s, token, "inplace", v)

	if err := os.Rename(kek, kek+".old"); err != nil {
		t.Fatal(err)
	}
	newKey, err := secrets.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := secrets.WriteKeyFile(kek, newKey); err != nil {
		t.Fatal(err)
	}
	if err := s.ReloadSecretKeys(sc); err != nil {
		t.Fatal(err)
	}
	WaitForResult(t, 10*time.Second, func() error {
		_, keys, err := s.State().SecretKeys(nil)
		if err != nil || len(keys) != 1 || keys[0].KEKID != newKey.ID() {
			return fmt.Errorf("keys %+v (%v), want one wrapped by %s, not %s", keys, err, newKey.ID(), oldKey.ID())
		}
		return nil
	})
	if err := os.Remove(kek + ".old"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReloadSecretKeys(sc); err != nil {
		t.Fatal(err)
	}
	waitSecret(t, "inplace", v, s)
}

// TestSingleNode_SecretsMissingOldKEK: a leader given a new KEK without
// the old one cannot use the data key; writes answer 503 no_kek naming the
// missing key, until the old key is added back as previous.
func TestSingleNode_SecretsMissingOldKEK(t *testing.T) {
	kekA, keyA := testKEK(t)
	kekB, _ := testKEK(t)
	s := TestServer(t, func(c *Config) { c.Secrets.KEKFile = kekA })
	WaitForLeader(t, s)
	token := bootstrapToken(t, s)
	v := secretValue(t, "one")
	putSecretOK(t, s, token, "one", v)
	if err := s.ReloadSecretKeys(SecretsConfig{KEKFile: kekB}); err != nil {
		t.Fatal(err)
	}
	r := call(t, s, http.MethodPut, "/v1/secrets/two", token, map[string]string{"value": "x"}, nil)
	if r.status != http.StatusServiceUnavailable || !contains(r.body, api.CodeNoKEK) || !contains(r.body, keyA.ID()) {
		t.Fatalf("PUT with the data key's KEK missing: %d %s", r.status, r.body)
	}
	if err := s.ReloadSecretKeys(SecretsConfig{KEKFile: kekB, PreviousKEKFiles: []string{kekA}}); err != nil {
		t.Fatal(err)
	}
	putSecretOK(t, s, token, "two", secretValue(t, "two"))
	waitSecret(t, "one", v, s)
}
