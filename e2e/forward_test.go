package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestProcess_ForwardToFrozenLeader stops the leader with SIGSTOP while a
// follower forwards writes to it. Once the others elect a new leader, the
// follower sends a write that carries an Idempotency-Key again to the new
// leader, and answers one without a key with 503 leadership_lost (its
// outcome is unknown), instead of waiting for the old leader to wake.
func TestProcess_ForwardToFrozenLeader(t *testing.T) {
	c := startCluster(t, 3)
	hdr := map[string]string{"Content-Type": "application/json"}
	r, err := c.do(c.procs[0], "POST", "/v1/ipam/prefixes", []byte(`{"prefix":"10.30.0.0/24"}`), hdr)
	if err != nil || r.status != http.StatusCreated {
		t.Fatalf("create prefix: %v %v", r, err)
	}
	var pfx struct{ ID string }
	if err := json.Unmarshal(r.body, &pfx); err != nil {
		t.Fatal(err)
	}
	path := "/v1/ipam/prefixes/" + pfx.ID + "/allocate"
	l := c.leader()
	var f *proc
	for _, p := range c.procs {
		if p != l {
			f = p
			break
		}
	}
	// Open the follower's forward connection to the leader first.
	if r, err := c.do(f, "POST", path, []byte(`{"owner":"vm:900/net0"}`), hdr); err != nil || r.status != http.StatusCreated {
		t.Fatalf("allocate through %s: %v %v", f.id, r, err)
	}

	if err := l.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = l.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer resume()

	var wg sync.WaitGroup
	var withKey, without *response
	var errKey, errWithout error
	wg.Add(2)
	go func() {
		defer wg.Done()
		h := map[string]string{"Content-Type": "application/json", "Idempotency-Key": "frozen-1"}
		withKey, errKey = c.do(f, "POST", path, []byte(`{"owner":"vm:901/net0"}`), h)
	}()
	go func() {
		defer wg.Done()
		without, errWithout = c.do(f, "POST", path, []byte(`{"owner":"vm:902/net0"}`), hdr)
	}()
	wg.Wait() // within the client's 10 s, while the old leader is still stopped
	if errKey != nil || withKey.status != http.StatusCreated {
		t.Fatalf("with a key: %v %v", withKey, errKey)
	}
	if errWithout != nil {
		t.Fatalf("without a key: %v", errWithout)
	}
	// Sent to the stopped leader, it is lost; or, if the follower already
	// knew the new leader, it went there.
	if without.status != http.StatusCreated {
		var e struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal(without.body, &e)
		if without.status != http.StatusServiceUnavailable || e.Error.Code != "leadership_lost" || !strings.Contains(e.Error.Message, "may or may not have been applied") {
			t.Fatalf("without a key: %d %s, want 503 leadership_lost", without.status, without.body)
		}
	}
	resume()

	// The write with the key took exactly one address, on every server.
	nl := c.leader()
	for _, p := range c.procs {
		waitUntil(t, 15*time.Second, p.id+" lists the keyed write once", func() error {
			r, err := c.do(p, "GET", "/v1/ipam/addresses?owner=vm:901/net0", nil, nil)
			if err != nil || r.status != http.StatusOK {
				return fmt.Errorf("list: %v %v", r, err)
			}
			if n := strings.Count(string(r.body), `"address":`); n != 1 {
				return fmt.Errorf("%d addresses: %s", n, r.body)
			}
			return nil
		})
	}
	// Its retry answers the same address.
	h := map[string]string{"Content-Type": "application/json", "Idempotency-Key": "frozen-1"}
	again, err := c.do(nl, "POST", path, []byte(`{"owner":"vm:901/net0"}`), h)
	if err != nil || again.status != http.StatusCreated || string(again.body) != string(withKey.body) {
		t.Fatalf("retry: %v %v, want %s", again, err, withKey.body)
	}
	t.Logf("with a key %d, without %d", withKey.status, without.status)
}
