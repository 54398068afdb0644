package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type allocated struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Owner   string `json:"owner"`
}

// TestProcess_IPAMAllocateThroughLeaderKill runs 32 clients allocating
// addresses from one prefix through all three servers while the leader is
// killed with SIGKILL and restarted. Each client retries a request with
// the same Idempotency-Key until it gets an answer, as moxxiectl does.
// Every acknowledged address must be unique and present on every server
// afterwards.
func TestProcess_IPAMAllocateThroughLeaderKill(t *testing.T) {
	c := startCluster(t, 3)
	hdr := map[string]string{"Content-Type": "application/json"}
	r, err := c.do(c.procs[0], "POST", "/v1/ipam/prefixes", []byte(`{"prefix":"10.20.0.0/16","description":"e2e"}`), hdr)
	if err != nil || r.status != http.StatusCreated {
		t.Fatalf("create prefix: %v %v", r, err)
	}
	var pfx struct{ ID string }
	if err := json.Unmarshal(r.body, &pfx); err != nil {
		t.Fatal(err)
	}

	const clients = 32
	var (
		mu      sync.Mutex
		acked   = map[string]allocated{} // by address
		dups    []string
		stop    atomic.Bool
		retries atomic.Int64
		wg      sync.WaitGroup
	)
	// live returns the servers running now; killed ones are skipped.
	var procMu sync.Mutex
	live := func() []*proc {
		procMu.Lock()
		defer procMu.Unlock()
		var out []*proc
		for _, p := range c.procs {
			if p.cmd != nil {
				out = append(out, p)
			}
		}
		return out
	}
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				owner := fmt.Sprintf("vm:%d/net%d", 1000+w, i)
				body := fmt.Sprintf(`{"count":1,"owner":%q}`, owner)
				h := map[string]string{"Content-Type": "application/json", "Idempotency-Key": fmt.Sprintf("c%d-%d", w, i)}
				deadline := time.Now().Add(30 * time.Second)
				for try := 0; ; try++ {
					if time.Now().After(deadline) {
						t.Errorf("client %d: request %d unanswered for 30s", w, i)
						return
					}
					ps := live()
					if len(ps) == 0 {
						time.Sleep(20 * time.Millisecond)
						continue
					}
					p := ps[(w+try)%len(ps)]
					r, err := c.do(p, "POST", "/v1/ipam/prefixes/"+pfx.ID+"/allocate", []byte(body), h)
					if err != nil || r.status >= 500 {
						retries.Add(1)
						time.Sleep(20 * time.Millisecond)
						continue
					}
					if r.status != http.StatusCreated {
						t.Errorf("client %d: allocate answered %d %s", w, r.status, r.body)
						return
					}
					var out struct{ Addresses []allocated }
					if err := json.Unmarshal(r.body, &out); err != nil || len(out.Addresses) != 1 {
						t.Errorf("client %d: answer %s: %v", w, r.body, err)
						return
					}
					a := out.Addresses[0]
					if a.Owner != owner {
						t.Errorf("client %d: got %+v for owner %s", w, a, owner)
					}
					mu.Lock()
					if prev, ok := acked[a.Address]; ok && prev.ID != a.ID {
						dups = append(dups, fmt.Sprintf("%s to %s and %s", a.Address, prev.Owner, a.Owner))
					}
					acked[a.Address] = a
					mu.Unlock()
					break
				}
			}
		}(w)
	}

	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	// waitAcked waits until n more allocations are acknowledged.
	waitAcked := func(what string, n int) int {
		want := ackedCount() + n
		waitUntil(t, 30*time.Second, what, func() error {
			if got := ackedCount(); got < want {
				return fmt.Errorf("%d of %d acknowledged", got, want)
			}
			return nil
		})
		return ackedCount()
	}
	waitAcked("allocations flow before the kill", 300)
	victim := c.leader()
	procMu.Lock()
	c.kill(victim)
	procMu.Unlock()
	killedAt := ackedCount()
	t.Logf("killed leader %s after %d acknowledged allocations", victim.id, killedAt)
	waitAcked("allocations go on through the survivors", 300)
	procMu.Lock()
	c.start(victim)
	procMu.Unlock()
	c.waitReady(30 * time.Second)
	waitAcked("allocations go on with the killed server back", 300)
	stop.Store(true)
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(dups) > 0 {
		t.Fatalf("addresses handed out twice: %v", dups)
	}
	t.Logf("%d addresses acknowledged by 32 clients (%d retried requests)", len(acked), retries.Load())

	// Every server holds exactly the acknowledged addresses.
	want := make([]string, 0, len(acked))
	for addr, a := range acked {
		want = append(want, addr+"="+a.ID)
	}
	sort.Strings(want)
	for _, p := range c.procs {
		waitUntil(t, 20*time.Second, p.id+" holds exactly the acknowledged addresses", func() error {
			got, err := addressesOn(c, p, pfx.ID)
			if err == nil && !slices.Equal(got, want) {
				err = fmt.Errorf("%d addresses, want the %d acknowledged", len(got), len(want))
			}
			return err
		})
	}

	// Releasing an unknown address answers 404 on the path's id from every
	// server (the followers pass it on to the leader) and changes nothing.
	for _, p := range c.procs {
		r, err := c.do(p, "DELETE", "/v1/ipam/addresses/no-such-address", nil, nil)
		if err != nil {
			t.Fatalf("%s: release of an unknown address: %v", p.id, err)
		}
		var e struct {
			Error struct{ Code, Field string }
		}
		if r.status != http.StatusNotFound || json.Unmarshal(r.body, &e) != nil || e.Error.Code != "not_found" || e.Error.Field != "id" {
			t.Errorf("%s: release of an unknown address answered %d %s, want 404 not_found on id", p.id, r.status, r.body)
		}
	}
	if got, err := addressesOn(c, c.leader(), pfx.ID); err != nil || !slices.Equal(got, want) {
		t.Errorf("after the refused releases: %d addresses (%v), want the %d acknowledged", len(got), err, len(want))
	}
}

// addressesOn lists a prefix's addresses from p's local store as sorted
// "address=id" strings.
func addressesOn(c *cluster, p *proc, prefixID string) ([]string, error) {
	r, err := c.do(p, "GET", "/v1/ipam/addresses?stale&prefix_id="+prefixID, nil, nil)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, fmt.Errorf("%d %s", r.status, r.body)
	}
	var out struct{ Addresses []allocated }
	if err := json.Unmarshal(r.body, &out); err != nil {
		return nil, err
	}
	got := make([]string, len(out.Addresses))
	for i, a := range out.Addresses {
		got[i] = a.Address + "=" + a.ID
	}
	sort.Strings(got)
	return got, nil
}
