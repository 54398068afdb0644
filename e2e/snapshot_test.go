package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProcess_SnapshotSaveInspectRestore(t *testing.T) {
	a := startCluster(t, 3)
	for i := 0; i < 30; i++ {
		if r, err := a.put(a.procs[i%3], fmt.Sprintf("k%02d", i), fmt.Sprint(i)); err != nil || r.status != http.StatusOK {
			t.Fatalf("write: %v %v", r, err)
		}
	}
	file := filepath.Join(t.TempDir(), "a.snap")
	if out, errOut, err := a.ctl("snapshot", "save", file); err != nil {
		t.Fatalf("snapshot save: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err := a.ctl("snapshot", "inspect", file)
	if err != nil || !strings.Contains(out, "settings") {
		t.Fatalf("snapshot inspect: %v\n%s%s", err, out, errOut)
	}
	want, err := a.settings(a.leader())
	if err != nil {
		t.Fatal(err)
	}

	b := startCluster(t, 3)
	before, err := b.settings(b.procs[0])
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	damaged := map[string][]byte{
		"truncated": raw[:len(raw)-7],
		"corrupted": append(append([]byte(nil), raw[:len(raw)/2]...), append([]byte{raw[len(raw)/2] ^ 0x55}, raw[len(raw)/2+1:]...)...),
	}
	for name, data := range damaged {
		f := filepath.Join(dir, name+".snap")
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, errOut, err := b.ctl("snapshot", "restore", f)
		if err == nil {
			t.Fatalf("%s snapshot restored without error", name)
		}
		t.Logf("%s snapshot refused: %s", name, strings.TrimSpace(errOut))
		if after, _ := b.settings(b.procs[0]); after != before {
			t.Fatalf("%s snapshot changed state", name)
		}
	}
	if out, errOut, err := b.ctl("snapshot", "restore", file); err != nil {
		t.Fatalf("snapshot restore: %v\n%s%s", err, out, errOut)
	}
	// Cluster B now holds A's state, tokens included.
	b.token = a.token
	b.waitToken()
	for _, p := range b.procs {
		waitUntil(t, 15*time.Second, p.id+" holds cluster A's settings after restore", func() error {
			got, err := b.settings(p)
			if err == nil && got != want {
				err = fmt.Errorf("settings %s", got)
			}
			return err
		})
	}
}
