package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/secrets"
)

// The secrets part of the test platform's api.Backend: one data key,
// made on first use, under a fixed key-encryption key.

var testKEK, _ = secrets.KeyFromBytes([]byte("0123456789abcdef0123456789abcdef"))

func (p *platformAPI) SealSecret(ctx context.Context, meta fsm.WriteMeta, name, value string) (fsm.Secret, error) {
	cur, err := p.fsm.State().CurrentSecretKey()
	if err != nil {
		return fsm.Secret{}, err
	}
	var dek *secrets.Key
	var id string
	if cur == nil {
		if dek, id, err = secrets.NewDataKey(); err != nil {
			return fsm.Secret{}, err
		}
		w, err := secrets.Wrap(testKEK, dek, id)
		if err != nil {
			return fsm.Secret{}, err
		}
		wrap := &fsm.SecretKeyWrapRequest{WriteMeta: meta, Key: fsm.SecretKey{ID: id, KEKID: testKEK.ID(), Wrapped: w}}
		if res, _, err := p.Apply(ctx, wrap); err != nil || res.Err != nil {
			return fsm.Secret{}, errors.Join(err, res.Err)
		}
	} else if dek, err = secrets.Unwrap(testKEK, cur.Wrapped, cur.ID); err != nil {
		return fsm.Secret{}, err
	} else {
		id = cur.ID
	}
	ct, n, err := secrets.Seal(dek, name, []byte(value))
	return fsm.Secret{Name: name, Ciphertext: ct, Nonce: n, DEKID: id}, err
}

func (p *platformAPI) RotateSecrets(context.Context, fsm.WriteMeta) (*api.SecretRotation, error) {
	_, list, err := p.fsm.State().Secrets(nil)
	if err != nil {
		return nil, err
	}
	return &api.SecretRotation{DEKID: "dek-2", Reencrypted: len(list)}, nil
}

// TestSecret_PutListDeleteNeverPrintsValues stores secrets from a file and
// from the environment and checks that no output shows a value.
func TestSecret_PutListDeleteNeverPrintsValues(t *testing.T) {
	p := newPlatformAPI(t)
	const fileValue, envValue = "pve-token-VALUE-from-file", "webhook-VALUE-from-env"
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte(fileValue+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var outputs []string
	out, errOut := p.cli(t, 0, "secret", "put", "pve-token", "--from-file", f, "--description", "Proxmox API token")
	if out != "Secret pve-token stored (version 1)\n" {
		t.Errorf("put: %q", out)
	}
	outputs = append(outputs, out, errOut)
	_, body, _ := p.lastCall()
	checkJSON(t, "put body", body, `{"value": "`+fileValue+`", "description": "Proxmox API token"}`)

	env := p.env()
	env["HOOK"] = envValue
	stdout, stderr, code := runCLI(t, env, "secret", "put", "webhook", "--from-env", "HOOK", "-o", "json")
	if code != 0 || !strings.Contains(stdout, `"name": "webhook"`) {
		t.Fatalf("put --from-env: %d %s %s", code, stdout, stderr)
	}
	outputs = append(outputs, stdout, stderr)

	out, errOut = p.cli(t, 0, "secret", "list")
	if !strings.Contains(out, "pve-token") || !strings.Contains(out, "Proxmox API token") || !strings.Contains(out, "webhook") {
		t.Errorf("list:\n%s", out)
	}
	outputs = append(outputs, out, errOut)
	out, errOut = p.cli(t, 0, "secret", "list", "-o", "json")
	outputs = append(outputs, out, errOut)
	out, _ = p.cli(t, 0, "secret", "rotate")
	if !strings.Contains(out, "2 secret(s) re-encrypted") {
		t.Errorf("rotate: %q", out)
	}
	out, _ = p.cli(t, 0, "secret", "delete", "webhook")
	if out != "Secret webhook deleted\n" {
		t.Errorf("delete: %q", out)
	}
	for _, o := range outputs {
		if strings.Contains(o, fileValue) || strings.Contains(o, envValue) {
			t.Fatalf("output shows a secret value: %s", o)
		}
	}

	_, errOut = p.cli(t, 2, "secret", "put", "x", "--from-file", f, "--from-env", "HOOK")
	if !strings.Contains(errOut, "not both") {
		t.Errorf("two sources: %q", errOut)
	}
	_, errOut = p.cli(t, 2, "secret", "put", "x", "--from-env", "UNSET")
	if !strings.Contains(errOut, "UNSET is not set") {
		t.Errorf("unset variable: %q", errOut)
	}
	p.cli(t, 2, "secret", "put", "x", "the-value-as-an-argument")
}
