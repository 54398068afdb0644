package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDev_NoSecretInLogs runs a dev appliance with debug logging, uses
// every kind of secret it has (the admin token, a token created through
// the API, a wrong token, a value put in the secrets store, the Proxmox
// simulator's API token by creating a VM through it, the key-encryption
// and audit keys by having the servers load them), stops it, and scans
// every log the run produced for each secret. The one place a secret may
// appear is the banner in which `moxxied dev` hands the operator the
// admin token (export MOXXIE_TOKEN=...), as designed; the scan removes
// that line first.
func TestDev_NoSecretInLogs(t *testing.T) {
	t.Setenv("MOXXIE_LOG_LEVEL", "debug") // the dev servers inherit it
	dir := filepath.Join(t.TempDir(), "dev")
	d := startDev(t, dir)

	secrets := map[string]string{} // what -> secret
	admin := envValue(t, dir, "MOXXIE_TOKEN")
	secrets["admin token"] = admin
	secrets["Proxmox simulator token"] = readTrimmed(t, filepath.Join(dir, "pvesim-token"))
	secrets["secrets key-encryption key"] = readTrimmed(t, filepath.Join(dir, "secrets.kek"))
	if _, err := os.Stat(filepath.Join(dir, "audit.key")); err == nil {
		secrets["audit checkpoint key"] = readTrimmed(t, filepath.Join(dir, "audit.key"))
	}

	ctl := func(env []string, args ...string) string {
		t.Helper()
		out, err := devctlEnv(t, dir, env, args...)
		if err != nil {
			t.Fatalf("moxxiectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	// A token created through the API, and used.
	var created struct {
		SecretID string `json:"secret_id"`
	}
	out := ctl(nil, "token", "create", "--role", "operator", "--description", "log scan", "-o", "json")
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &created); err != nil || created.SecretID == "" {
		t.Fatalf("token create: %v\n%s", err, out)
	}
	secrets["created token"] = created.SecretID
	ctl([]string{"MOXXIE_TOKEN=" + created.SecretID}, "inventory", "nodes", "-o", "json")

	// A wrong token, refused (and audited) by every server in turn.
	wrong := "mxx_" + randomHex(t, 26)
	secrets["wrong token"] = wrong
	for range 3 {
		if out, err := devctlEnv(t, dir, []string{"MOXXIE_TOKEN=" + wrong}, "cluster", "status"); err == nil {
			t.Fatalf("a wrong token was accepted:\n%s", out)
		}
	}

	// A value in the secrets store, put and listed.
	stored := "s3cr3t-" + randomHex(t, 16)
	secrets["stored secret value"] = stored
	ctl([]string{"LOGSCAN_VALUE=" + stored}, "secret", "put", "logscan", "--from-env", "LOGSCAN_VALUE", "--description", "log scan")
	ctl(nil, "secret", "list", "-o", "json")

	// A VM, created through the Proxmox simulator with its token.
	ctl(nil, "ipam", "prefix", "create", "10.77.0.0/24", "--gateway", "10.77.0.1")
	waitUntil(t, 30*time.Second, "the seeded guests in the inventory", func() error {
		out, err := devctl(t, dir, "inventory", "guests", "-o", "json")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if !strings.Contains(out, "debian-12-cloud") {
			return fmt.Errorf("no template yet")
		}
		return nil
	})
	out = ctl(nil, "vm", "create", "logscan1", "--template", "debian-12-cloud", "--tenant", "acme",
		"--nic", "bridge=vmbr0,prefix=10.77.0.0/24", "--wait", "-o", "json")
	if !strings.Contains(out, `"succeeded"`) {
		t.Fatalf("vm create:\n%s", out)
	}

	// Stop the appliance so that every log line is written.
	_ = d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("moxxied dev did not exit after SIGINT")
	}

	logs := map[string][]byte{}
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	top, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, f := range append(files, top...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		logs[f] = b
	}
	if len(files) < 3 {
		t.Fatalf("found %d server logs: %v", len(files), files)
	}
	supervisor := d.out.Bytes()
	banner := []byte("export MOXXIE_TOKEN=" + admin + "\n")
	if bytes.Count(supervisor, banner) != 1 {
		t.Errorf("the dev banner shows the admin token %d times, want once", bytes.Count(supervisor, banner))
	}
	logs["moxxied dev output"] = bytes.Replace(supervisor, banner, nil, 1)

	// The scan must have something to look at: the servers logged the
	// requests of this test, at debug level.
	all := bytes.Join(func() [][]byte {
		var v [][]byte
		for _, b := range logs {
			v = append(v, b)
		}
		return v
	}(), nil)
	for _, want := range []string{"/v1/acl/tokens", "/v1/secrets", "/v1/vms", "level=DEBUG"} {
		if !bytes.Contains(all, []byte(want)) {
			t.Errorf("the logs do not mention %q: the scan would be vacuous", want)
		}
	}

	for what, secret := range secrets {
		if len(secret) < 16 {
			t.Fatalf("%s is only %d characters: too short to scan for", what, len(secret))
		}
		// A token's random part alone would be a leak too.
		needle := strings.TrimPrefix(secret, "mxx_")
		for name, b := range logs {
			if i := bytes.Index(b, []byte(needle)); i >= 0 {
				t.Errorf("%s found in %s: %q", what, name, lineAt(b, i))
			}
		}
	}
}

// devctlEnv is devctl with extra environment variables, which override
// those of <dir>/env.
func devctlEnv(t *testing.T, dir string, extra []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin("moxxiectl"), args...)
	cmd.Env = append(devEnv(t, dir), extra...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// envValue returns a variable exported by <dir>/env.
func envValue(t *testing.T, dir, name string) string {
	t.Helper()
	for _, line := range strings.Split(readTrimmed(t, filepath.Join(dir, "env")), "\n") {
		if v, ok := strings.CutPrefix(line, "export "+name+"="); ok {
			return v
		}
	}
	t.Fatalf("%s not in %s/env", name, dir)
	return ""
}

func readTrimmed(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// lineAt returns the line of b holding offset i, for a failure message.
func lineAt(b []byte, i int) string {
	start := bytes.LastIndexByte(b[:i], '\n') + 1
	end := bytes.IndexByte(b[i:], '\n')
	if end < 0 {
		end = len(b) - i
	}
	return string(b[start : i+end])
}
