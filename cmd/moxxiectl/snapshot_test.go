package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestSnapshotSave(t *testing.T) {
	f := newFakeAPI(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.snap")
	out, stderr, code := runCLI(t, f.env(), "snapshot", "save", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(out, "Saved snapshot to "+file+": index 3, term 2, ") || !strings.Contains(out, "sha256 ") {
		t.Errorf("stdout %q", out)
	}
	got, err := os.ReadFile(file)
	if err != nil || string(got) != string(f.archive) {
		t.Fatalf("saved file differs from the archive (%v)", err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(file + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}

	// A damaged download is refused and leaves no file behind.
	damaged := append([]byte(nil), f.archive...)
	damaged[len(damaged)/2] ^= 0xff
	f.mu.Lock()
	f.snapshotBody = damaged
	f.mu.Unlock()
	bad := filepath.Join(dir, "bad.snap")
	_, stderr, code = runCLI(t, f.env(), "snapshot", "save", bad)
	if code != 1 || !strings.Contains(oneErrorLine(t, stderr), "damaged, nothing was saved") {
		t.Errorf("damaged: exit %d, %q", code, stderr)
	}
	for _, p := range []string{bad, bad + ".tmp"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists after a failed save", p)
		}
	}
}

func TestSnapshotRestore(t *testing.T) {
	f := newFakeAPI(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.snap")
	if err := os.WriteFile(good, f.archive, 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCLI(t, f.env(), "snapshot", "restore", good)
	if code != 0 || out != "Restored snapshot "+good+" (taken at index 3): the cluster now holds its state, and what was written after it is gone\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if string(f.restored) != string(f.archive) {
		t.Error("server received other bytes than the file")
	}

	truncated := filepath.Join(dir, "truncated.snap")
	if err := os.WriteFile(truncated, f.archive[:len(f.archive)-10], 0o600); err != nil {
		t.Fatal(err)
	}
	before := len(f.callLog())
	_, stderr, code = runCLI(t, f.env(), "snapshot", "restore", truncated)
	msg := oneErrorLine(t, stderr)
	if code != 1 || !strings.HasPrefix(msg, truncated+" is not a valid snapshot: bad snapshot") || !strings.HasSuffix(msg, "nothing was sent") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if after := len(f.callLog()); after != before {
		t.Errorf("a bad file was sent: %v", f.callLog()[before:])
	}
}

func TestSnapshotInspect(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.snap")
	if err := os.WriteFile(file, testArchive(t), 0o600); err != nil {
		t.Fatal(err)
	}
	// Offline: no address is needed.
	out, stderr, code := runCLI(t, nil, "snapshot", "inspect", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"Index:        3\n", "Term:         2\n", "Server:       s1\n", "Created:      2025-06-01T12:00:00Z\n",
		"TABLE "} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{`(?m)^settings +2$`, `(?m)^tokens +1$`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	out, _, code = runCLI(t, nil, "snapshot", "inspect", file, "-o", "json")
	var info struct {
		Index    uint64         `json:"index"`
		ServerID string         `json:"server_id"`
		SHA256   string         `json:"sha256"`
		FileSize int64          `json:"file_size"`
		Tables   map[string]int `json:"tables"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil {
		t.Fatalf("json: exit %d, %q", code, out)
	}
	if info.Index != 3 || info.ServerID != "s1" || len(info.SHA256) != 64 || info.FileSize == 0 || info.Tables["settings"] != 2 {
		t.Errorf("json %+v", info)
	}
	if err := os.WriteFile(file, []byte("not a snapshot at all, but long enough to look like one......"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = runCLI(t, nil, "snapshot", "inspect", file)
	if code != 1 || !strings.Contains(oneErrorLine(t, stderr), "is not a valid snapshot: bad snapshot: not a Moxxie snapshot file") {
		t.Errorf("garbage: exit %d, %q", code, stderr)
	}
}
