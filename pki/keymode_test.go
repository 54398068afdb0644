package pki

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func chmod(t *testing.T, path string, m os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, m); err != nil {
		t.Fatal(err)
	}
}

func TestReadKeyFile_Modes(t *testing.T) {
	p := newTestPKI(t)
	_, keyFile := p.issue(t, "s1", RoleServer)
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o700, true},
		{0o640, false},
		{0o644, false},
		{0o604, false},
		{0o620, false},
		{0o602, false},
		{0o660, false},
		{0o666, false},
	} {
		t.Run(fmt.Sprintf("%04o", tc.mode), func(t *testing.T) {
			chmod(t, keyFile, tc.mode)
			data, err := ReadKeyFile(keyFile)
			if tc.ok {
				if err != nil || !strings.Contains(string(data), "PRIVATE KEY") {
					t.Fatalf("ReadKeyFile: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrKeyFileMode) {
				t.Fatalf("ReadKeyFile of a key with mode %04o: %v, want ErrKeyFileMode", tc.mode, err)
			}
			if msg := err.Error(); !strings.Contains(msg, keyFile) || !strings.Contains(msg, fmt.Sprintf("%04o", tc.mode)) {
				t.Errorf("error %q does not name the file and its mode", msg)
			}
		})
	}
}

// TestKeyFileMode_EveryLoader checks that each way the package reads a key
// refuses one readable by others: the reloader behind every TLS
// configuration, the client configuration, and the CA key when issuing.
func TestKeyFileMode_EveryLoader(t *testing.T) {
	p := newTestPKI(t)
	certFile, keyFile := p.issue(t, "s1", RoleServer)
	r, err := NewReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	serial := r.Certificate().Leaf.SerialNumber

	chmod(t, keyFile, 0o644)
	if _, err := NewReloader(certFile, keyFile); !errors.Is(err, ErrKeyFileMode) {
		t.Errorf("NewReloader: %v, want ErrKeyFileMode", err)
	}
	if err := r.Reload(); !errors.Is(err, ErrKeyFileMode) {
		t.Errorf("Reload: %v, want ErrKeyFileMode", err)
	}
	if got := r.Certificate().Leaf.SerialNumber; got.Cmp(serial) != 0 {
		t.Error("a refused reload replaced the pair in use")
	}
	if _, err := LoadKeyPair(certFile, keyFile); !errors.Is(err, ErrKeyFileMode) {
		t.Errorf("LoadKeyPair: %v, want ErrKeyFileMode", err)
	}
	if _, err := ClientTLSConfig(p.caFile(), certFile, keyFile); !errors.Is(err, ErrKeyFileMode) {
		t.Errorf("ClientTLSConfig: %v, want ErrKeyFileMode", err)
	}
	if _, _, err := MutualTLSConfigs(p.caFile(), certFile, keyFile); !errors.Is(err, ErrKeyFileMode) {
		t.Errorf("MutualTLSConfigs: %v, want ErrKeyFileMode", err)
	}
	chmod(t, keyFile, 0o600)
	if err := r.Reload(); err != nil {
		t.Errorf("Reload after chmod 600: %v", err)
	}

	caKey := p.caDir + "/" + CAKeyFile
	chmod(t, caKey, 0o640)
	if err := CreateCert(p.caDir, p.dir, "s2", RoleServer, []string{"localhost"}, time.Hour); !errors.Is(err, ErrKeyFileMode) {
		t.Errorf("CreateCert with a group-readable CA key: %v, want ErrKeyFileMode", err)
	}
}

// TestKeyFileMode_Written checks that what the package writes passes its
// own check.
func TestKeyFileMode_Written(t *testing.T) {
	p := newTestPKI(t)
	_, keyFile := p.issue(t, "s1", RoleServer)
	for _, f := range []string{keyFile, p.caDir + "/" + CAKeyFile} {
		if _, err := ReadKeyFile(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
