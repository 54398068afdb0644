package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/fsm"
)

// cluster is a leader served over HTTP and a follower forwarding to it.
type cluster struct {
	leader, follower *testServer
}

// newCluster starts a bootstrapped leader and a follower. With shared, the
// follower reads the leader's FSM (as if replication were instant);
// otherwise it has an empty store of its own.
func newCluster(t *testing.T, shared bool) *cluster {
	t.Helper()
	leader := newLeader(t)
	hs := httptest.NewServer(leader.h)
	t.Cleanup(hs.Close)
	f := leader.b.fsm
	if !shared {
		f = fsm.New()
	}
	fb := newFakeBackend("s2", f, false)
	fb.leaderURL = hs.URL
	follower := newTestServer(t, fb, Options{MaxBodyBytes: 4096})
	follower.secret = leader.secret
	return &cluster{leader: leader, follower: follower}
}

func TestForward_WritesGoToTheLeaderBeforeAuth(t *testing.T) {
	c := newCluster(t, false) // the follower knows no token at all
	rec := c.follower.do("PUT", "/v1/cluster/settings/fwd", `{"value":"via follower"}`, "X-Request-ID", "req-fwd-1", "Idempotency-Key", "k1")
	var s fsm.Setting
	mustJSON(t, wantStatus(t, rec, 200), &s)
	if s.Value != "via follower" {
		t.Fatalf("setting %+v", s)
	}
	if c.follower.b.forwards.Load() != 1 || c.follower.b.applies.Load() != 0 {
		t.Fatalf("forwards %d applies %d", c.follower.b.forwards.Load(), c.follower.b.applies.Load())
	}
	if rec.Header().Get("X-Request-ID") != "req-fwd-1" || rec.Header().Get("X-Moxxie-Index") == "" {
		t.Fatalf("headers %v", rec.Header())
	}
	m := c.leader.b.lastMeta.Load()
	if m.RequestID != "req-fwd-1" || m.IdempotencyKey != "k1" || m.Actor == "" {
		t.Fatalf("leader stamped %+v", m)
	}

	// The leader validates: the follower passes errors through untouched.
	rec = c.follower.do("PUT", "/v1/cluster/settings/fwd", `{"value":1}`, "X-Request-ID", "req-fwd-2")
	if d := wantError(t, rec, 400, CodeInvalidRequest, "value"); d.RequestID != "req-fwd-2" {
		t.Fatalf("request id %q", d.RequestID)
	}
	wantError(t, c.follower.do("GET", "/v1/status", "", "Authorization", "Bearer nope"), 401, CodeUnauthorized, "")
	if c.follower.do("GET", "/v1/status", "", "Authorization", "").Header().Get("WWW-Authenticate") == "" {
		t.Fatal("forwarded 401 lost WWW-Authenticate")
	}

	// Bootstrap is a write too.
	wantError(t, c.follower.do("POST", "/v1/acl/bootstrap", ""), 409, CodeConflict, "")
}

func TestForward_DefaultReadsForwardStaleReadsStayLocal(t *testing.T) {
	c := newCluster(t, true)
	wantStatus(t, c.leader.do("PUT", "/v1/cluster/settings/k", `{"value":"v"}`), 200)
	fb := c.follower.b

	wantStatus(t, c.follower.do("GET", "/v1/cluster/settings/k", ""), 200)
	if fb.forwards.Load() != 1 {
		t.Fatalf("default read: forwards %d", fb.forwards.Load())
	}
	for _, q := range []string{"?stale", "?stale=true", "?stale=1"} {
		wantStatus(t, c.follower.do("GET", "/v1/cluster/settings/k"+q, ""), 200)
	}
	wantStatus(t, c.follower.do("GET", "/v1/acl/tokens?stale", ""), 200)
	if fb.forwards.Load() != 1 {
		t.Fatalf("stale reads forwarded: %d", fb.forwards.Load())
	}
	// ?stale=false is a default read.
	wantStatus(t, c.follower.do("GET", "/v1/cluster/settings/k?stale=false", ""), 200)
	if fb.forwards.Load() != 2 {
		t.Fatalf("stale=false: forwards %d", fb.forwards.Load())
	}
	wantError(t, c.follower.do("GET", "/v1/cluster/settings/k?stale=maybe", ""), 400, CodeInvalidRequest, "stale")
	wantError(t, c.follower.do("GET", "/v1/cluster/settings/k?stale&consistent", ""), 400, CodeInvalidRequest, "consistent")

	// ?consistent: a follower forwards, the leader verifies first.
	wantStatus(t, c.follower.do("GET", "/v1/cluster/settings/k?consistent", ""), 200)
	if fb.forwards.Load() != 3 || c.leader.b.verifies.Load() != 1 {
		t.Fatalf("consistent: forwards %d verifies %d", fb.forwards.Load(), c.leader.b.verifies.Load())
	}
	c.leader.b.verifyErr = ErrNotLeader
	wantError(t, c.leader.do("GET", "/v1/cluster/settings/k?consistent", ""), 503, CodeNoLeader, "")
	c.leader.b.verifyErr = nil

	// A leader still applying the terms before its own answers writes and
	// default reads 503 (nothing proposed), ?stale reads as ever.
	c.leader.b.awaitErr = fmt.Errorf("%w: still applying", ErrNoLeader)
	e := wantError(t, c.leader.do("PUT", "/v1/cluster/settings/k", `{"value":"w"}`), 503, CodeNoLeader, "")
	if !strings.HasSuffix(e.Message, "still applying; nothing was proposed: retry") {
		t.Errorf("catching up: %q", e.Message)
	}
	wantError(t, c.leader.do("GET", "/v1/cluster/settings/k", ""), 503, CodeNoLeader, "")
	if !c.leader.b.awaitWaited.Load() {
		t.Error("a request of the leader's own was not held")
	}
	// A forwarded one is answered at once: its follower holds it.
	wantError(t, c.leader.do("PUT", "/v1/cluster/settings/k", `{"value":"w"}`, "X-Moxxie-Forwarded", "s2"), 503, CodeNoLeader, "")
	if c.leader.b.awaitWaited.Load() {
		t.Error("a forwarded request was held by the leader too")
	}
	wantStatus(t, c.leader.do("GET", "/v1/cluster/settings/k?stale", ""), 200)
	c.leader.b.awaitErr = nil

	// Snapshots are leader-only: ?stale is not a parameter of theirs, and
	// a follower forwards them.
	wantError(t, c.follower.do("GET", "/v1/snapshot?stale", ""), 400, CodeInvalidRequest, "stale")
	wantStatus(t, c.follower.do("GET", "/v1/snapshot", ""), 200)
	if fb.forwards.Load() != 4 {
		t.Fatalf("snapshot: forwards %d", fb.forwards.Load())
	}

	// Local routes never forward.
	for _, p := range []string{"/v1/health", "/v1/ready", "/v1/openapi.json"} {
		wantStatus(t, c.follower.do("GET", p, ""), 200)
	}
	if fb.forwards.Load() != 4 {
		t.Fatalf("local routes forwarded: %d", fb.forwards.Load())
	}
}

func TestForward_NotTwice(t *testing.T) {
	c := newCluster(t, true)
	rec := c.follower.do("PUT", "/v1/cluster/settings/k", `{"value":"v"}`, "X-Moxxie-Forwarded", "s3")
	wantError(t, rec, 503, CodeNoLeader, "")
	if c.follower.b.forwards.Load() != 0 {
		t.Fatal("a forwarded request was forwarded again")
	}

	// Two followers that each believe the other leads: one hop, then 503.
	b1 := newFakeBackend("f1", fsm.New(), false)
	b2 := newFakeBackend("f2", fsm.New(), false)
	f1, f2 := newTestServer(t, b1, Options{}), newTestServer(t, b2, Options{})
	hs1, hs2 := httptest.NewServer(f1.h), httptest.NewServer(f2.h)
	defer hs1.Close()
	defer hs2.Close()
	b1.leaderURL, b2.leaderURL = hs2.URL, hs1.URL
	rec = f1.do("DELETE", "/v1/cluster/settings/k", "")
	d := wantError(t, rec, 503, CodeNoLeader, "")
	if !strings.Contains(d.Message, "f1") || b1.forwards.Load() != 1 || b2.forwards.Load() != 0 {
		t.Fatalf("loop: %q, forwards %d/%d", d.Message, b1.forwards.Load(), b2.forwards.Load())
	}
}

func TestForward_NoLeader(t *testing.T) {
	ts := newTestServer(t, newFakeBackend("s2", fsm.New(), false), Options{})
	wantError(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"v"}`), 503, CodeNoLeader, "")
	wantError(t, ts.do("GET", "/v1/status", ""), 503, CodeNoLeader, "")
}

// TestForward_OutcomeUnknown: a forward that failed after it may have
// reached the leader says so, and is not a no_leader, which promises
// that nothing was proposed.
func TestForward_OutcomeUnknown(t *testing.T) {
	b := newFakeBackend("s2", fsm.New(), false)
	ts := newTestServer(t, b, Options{})
	b.forwardErr = fmt.Errorf("the request was forwarded to the leader s1, which stopped leading before it answered: %w", ErrLeadershipLost)
	d := wantError(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"v"}`), 503, CodeLeadershipLost, "")
	if !strings.Contains(d.Message, "stopped leading") {
		t.Errorf("message %q", d.Message)
	}
	b.forwardErr = errors.New("read: connection reset by peer")
	d = wantError(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"v"}`), 503, CodeLeadershipLost, "")
	if !strings.Contains(d.Message, "connection reset") || !strings.Contains(d.Message, "may or may not have been applied") {
		t.Errorf("message %q", d.Message)
	}
}

func TestForward_BodyLimitOnFollower(t *testing.T) {
	c := newCluster(t, true)
	big := `{"value":"` + strings.Repeat("x", 5000) + `"}`
	d := wantError(t, c.follower.do("PUT", "/v1/cluster/settings/k", big), http.StatusRequestEntityTooLarge, CodeRequestTooLarge, "")
	if !strings.Contains(d.Message, "4096") {
		t.Errorf("message %q does not name the limit", d.Message)
	}
	if c.follower.b.forwards.Load() != 0 {
		t.Fatal("oversized body was forwarded")
	}
}

// TestForward_DNSChangesWaitForTheAnsweringServersDNS: a write that
// changes what DNS serves is answered once the DNS of the server that
// answers the client serves it; the leader does not wait for its own
// DNS for a follower's client. Other writes wait for nothing.
func TestForward_DNSChangesWaitForTheAnsweringServersDNS(t *testing.T) {
	c := newCluster(t, true)
	if _, _, err := c.leader.b.Apply(context.Background(), &fsm.DNSSerialMarkRequest{}); err != nil {
		t.Fatal(err)
	}
	waits := func(ts *testServer) []uint64 {
		ts.b.mu.Lock()
		defer ts.b.mu.Unlock()
		w := ts.b.dnsWaits
		ts.b.dnsWaits = nil
		return w
	}
	write := func(ts *testServer, method, target, body string, status int) (index, dnsIndex string) {
		t.Helper()
		rec := ts.do(method, target, body)
		wantStatus(t, rec, status)
		return rec.Header().Get("X-Moxxie-Index"), rec.Header().Get("X-Moxxie-DNS-Index")
	}
	var p testPrefix
	mustJSON(t, wantStatus(t, c.follower.do("POST", "/v1/ipam/prefixes", `{"prefix":"10.0.0.0/24"}`), 201), &p)
	waits(c.follower) // a new prefix gives a reverse zone
	if w := waits(c.leader); len(w) != 0 {
		t.Fatalf("the leader waited for its DNS for a follower's client: %v", w)
	}

	idx, dnsIdx := write(c.follower, "POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{}`, 201)
	if dnsIdx != "" || len(waits(c.follower)) != 0 || len(waits(c.leader)) != 0 {
		t.Fatalf("an unnamed address: DNS index %q, index %s", dnsIdx, idx)
	}
	idx, dnsIdx = write(c.follower, "POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"dns_name":"web.moxxie.test"}`, 201)
	if w := waits(c.follower); dnsIdx != idx || len(w) != 1 || fmt.Sprint(w[0]) != idx {
		t.Fatalf("a named address through the follower: DNS index %q, index %s, the follower waited for %v", dnsIdx, idx, w)
	}
	if w := waits(c.leader); len(w) != 0 {
		t.Fatalf("the leader waited for its DNS for a follower's client: %v", w)
	}
	idx, dnsIdx = write(c.leader, "POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"dns_name":"db.moxxie.test"}`, 201)
	if w := waits(c.leader); dnsIdx != idx || len(w) != 1 || fmt.Sprint(w[0]) != idx {
		t.Fatalf("a named address at the leader: DNS index %q, index %s, it waited for %v", dnsIdx, idx, w)
	}
	// An unnamed address after a named one waits for nothing either.
	if _, dnsIdx := write(c.follower, "POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{}`, 201); dnsIdx != "" || len(waits(c.follower))+len(waits(c.leader)) != 0 {
		t.Fatalf("an unnamed address after a named one: DNS index %q", dnsIdx)
	}
	// A change or release of an address waits only when it has a name.
	var unnamed, named testAddresses
	mustJSON(t, wantStatus(t, c.leader.do("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{}`), 201), &unnamed)
	mustJSON(t, wantStatus(t, c.leader.do("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"dns_name":"n.moxxie.test"}`), 201), &named)
	waits(c.leader)
	for _, w := range []struct {
		method, id, body string
		dns              bool
	}{
		{"PATCH", unnamed.Addresses[0].ID, `{"description":"d"}`, false},
		{"DELETE", unnamed.Addresses[0].ID, "", false},
		{"PATCH", named.Addresses[0].ID, `{"description":"d"}`, true},
		{"DELETE", named.Addresses[0].ID, "", true},
	} {
		if _, dnsIdx := write(c.follower, w.method, "/v1/ipam/addresses/"+w.id, w.body, 200); (dnsIdx != "") != w.dns || len(waits(c.follower)) != map[bool]int{false: 0, true: 1}[w.dns] {
			t.Fatalf("%s of an address (named %v): DNS index %q", w.method, w.dns, dnsIdx)
		}
		waits(c.leader)
	}
	// A replay, through another server, waits for DNS as it is now,
	// which holds the first write.
	key := []string{"Idempotency-Key", "named-1"}
	rec := c.leader.do("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"dns_name":"app.moxxie.test"}`, key...)
	wantStatus(t, rec, 201)
	first := rec.Header().Get("X-Moxxie-DNS-Index")
	waits(c.leader)
	write(c.leader, "POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"dns_name":"later.moxxie.test"}`, 201)
	now := fmt.Sprint(c.leader.b.State().DNSIndex())
	waits(c.leader)
	rec = c.follower.do("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"dns_name":"app.moxxie.test"}`, key...)
	wantStatus(t, rec, 201)
	if w := waits(c.follower); rec.Header().Get("Idempotent-Replayed") != "true" || rec.Header().Get("X-Moxxie-DNS-Index") != now || now == first || len(w) != 1 || fmt.Sprint(w[0]) != now {
		t.Fatalf("a replay through the follower: headers %v, it waited for %v; DNS index %s, the first answer's %s", rec.Header(), w, now, first)
	}
	// A wait that runs out answers anyway, without the index and with a
	// Warning.
	c.follower.b.mu.Lock()
	c.follower.b.dnsLate = true
	c.follower.b.mu.Unlock()
	rec = c.follower.do("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"dns_name":"slow.moxxie.test"}`)
	wantStatus(t, rec, 201)
	if rec.Header().Get("X-Moxxie-DNS-Index") != "" || !strings.Contains(strings.Join(rec.Header().Values("Warning"), " "), "DNS does not answer with the change yet") {
		t.Fatalf("a wait that ran out: %v", rec.Header())
	}
	waits(c.follower)
	waits(c.leader)

	// A failed write changes nothing and waits for nothing.
	rec = c.follower.do("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"dns_name":"-bad-"}`)
	wantStatus(t, rec, 400)
	if rec.Header().Get("X-Moxxie-DNS-Index") != "" || len(waits(c.follower))+len(waits(c.leader)) != 0 {
		t.Fatalf("a refused write: %v", rec.Header())
	}
}
