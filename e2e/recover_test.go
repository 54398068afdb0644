package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProcess_RecoverLostQuorum loses two of three servers for good and
// brings the last one back as a one-server cluster with `moxxied recover`,
// following docs/runbooks/lost-quorum.md.
func TestProcess_RecoverLostQuorum(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.leader()
	if r, err := c.put(leader, "survives", "yes"); err != nil || r.status != http.StatusOK {
		t.Fatalf("write: %v %v", r, err)
	}
	var last *proc
	for _, p := range c.procs {
		if p != leader {
			last = p
		}
	}
	// Let the write reach the survivor, then lose the other two.
	waitUntil(t, 10*time.Second, "the write reaches the last server", func() error {
		s, err := c.settings(last)
		if err == nil && !strings.Contains(s, `"survives"`) {
			err = errors.New("not there yet")
		}
		return err
	})
	for _, p := range c.procs {
		if p != last {
			c.kill(p)
		}
	}
	r, err := c.put(last, "no-quorum", "x")
	if err == nil && r.status == http.StatusOK {
		t.Fatal("write succeeded without quorum")
	}
	c.kill(last)

	peers := filepath.Join(t.TempDir(), "peers.json")
	b, _ := json.Marshal([]map[string]string{{"id": last.id, "raft_address": last.cfg.RaftAddress}})
	if err := os.WriteFile(peers, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin("moxxied"), "recover", "--config", last.cfgPath, "--peers", peers).CombinedOutput()
	if err != nil {
		t.Fatalf("moxxied recover: %v\n%s", err, out)
	}
	c.procs = []*proc{last}
	c.start(last)
	c.waitReady(30 * time.Second)
	if r, err := c.put(last, "after-recovery", "ok"); err != nil || r.status != http.StatusOK {
		t.Fatalf("write after recovery: %v %v", r, err)
	}
	got, err := c.settings(last)
	if err != nil || !json.Valid([]byte(got)) || !strings.Contains(got, `"survives"`) {
		t.Fatalf("state after recovery: %v %s", err, got)
	}
}
