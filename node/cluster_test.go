package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/fsm"
)

func TestSingleNode_ApplyAndRestart(t *testing.T) {
	s := TestServer(t, nil)
	WaitForLeader(t, s)
	for i := 0; i < 20; i++ {
		if _, err := s.raftApply(&fsm.SettingUpsertRequest{Key: fmt.Sprintf("k%d", i), Value: "v"}); err != nil {
			t.Fatal(err)
		}
	}
	before := dump(t, s)
	cfg := s.Config()
	if err := s.Shutdown(false); err != nil {
		t.Fatal(err)
	}
	s2 := StartTestServer(t, cfg)
	WaitForLeader(t, s2)
	WaitForResult(t, 5*time.Second, func() error {
		if !bytes.Equal(dump(t, s2), before) {
			return fmt.Errorf("state after restart differs")
		}
		return nil
	})
}

func TestMultiNode_FormsFromConfig(t *testing.T) {
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	st, err := leader.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	leaders, voters := 0, 0
	for _, s := range st.Servers {
		if s.State == "leader" {
			leaders++
		}
		if s.Voter {
			voters++
		}
		if s.APIAddress == "" {
			t.Errorf("server %s has no API address", s.ID)
		}
	}
	if leaders != 1 || voters != 3 || st.Leader != leader.ID() {
		t.Fatalf("status = %+v, want one leader and three voters", st)
	}
}

func TestMultiNode_ForwardedWriteAndStaleReads(t *testing.T) {
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	token := bootstrapToken(t, servers[0])
	var follower *Server
	for _, s := range servers {
		if s != leader {
			follower = s
		}
	}
	r := put(t, follower, token, "color", "blue")
	if r.status != http.StatusOK {
		t.Fatalf("write via follower: %d %s", r.status, r.body)
	}
	// The follower's answer carries the security headers, which the
	// leader leaves off its answer to the follower.
	if r.header.Get("Strict-Transport-Security") == "" || r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("write via follower: headers %v", r.header)
	}
	var set fsm.Setting
	if err := json.Unmarshal(r.body, &set); err != nil {
		t.Fatal(err)
	}
	WaitForApplied(t, set.ModifyIndex, servers...)
	for _, s := range servers {
		r := call(t, s, "GET", "/v1/cluster/settings/color?stale", token, nil, nil)
		if r.status != http.StatusOK || !bytes.Contains(r.body, []byte(`"blue"`)) {
			t.Fatalf("stale read on %s: %d %s", s.ID(), r.status, r.body)
		}
		if r.header.Get("X-Moxxie-Index") == "" {
			t.Errorf("stale read on %s has no X-Moxxie-Index", s.ID())
		}
	}
	// A default read on a follower is answered by the leader.
	if r := call(t, follower, "GET", "/v1/cluster/settings/color", token, nil, nil); r.status != http.StatusOK {
		t.Fatalf("default read via follower: %d %s", r.status, r.body)
	}
	if r := call(t, follower, "GET", "/v1/cluster/settings/color?consistent", token, nil, nil); r.status != http.StatusOK {
		t.Fatalf("consistent read via follower: %d %s", r.status, r.body)
	}
}

func TestMultiNode_IsolatedServerRefusesWritesAndConverges(t *testing.T) {
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	token := bootstrapToken(t, leader)
	if r := put(t, leader, token, "before", "1"); r.status != http.StatusOK {
		t.Fatalf("write: %d %s", r.status, r.body)
	}
	for _, victim := range []string{"follower", "leader"} {
		t.Run(victim, func(t *testing.T) {
			leader := WaitForLeader(t, servers...)
			cut := leader
			if victim == "follower" {
				for _, s := range servers {
					if s != leader {
						cut = s
					}
				}
			}
			var rest []*Server
			for _, s := range servers {
				if s != cut {
					rest = append(rest, s)
				}
			}
			WaitForApplied(t, leader.raft.CommitIndex(), servers...)
			cut.Isolate(true)
			defer cut.Isolate(false)
			newLeader := WaitForLeader(t, rest...)

			// The cut-off server refuses writes with 503 and Retry-After.
			WaitForResult(t, 10*time.Second, func() error {
				r := call(t, cut, "PUT", "/v1/cluster/settings/during-"+victim, token, map[string]string{"value": "x"}, nil)
				if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
					return fmt.Errorf("write on cut-off server: %d %s", r.status, r.body)
				}
				return nil
			})
			// It still serves stale reads.
			if r := call(t, cut, "GET", "/v1/cluster/settings/before?stale", token, nil, nil); r.status != http.StatusOK {
				t.Fatalf("stale read on cut-off server: %d %s", r.status, r.body)
			}
			// The majority keeps writing.
			if r := put(t, newLeader, token, "majority-"+victim, "y"); r.status != http.StatusOK {
				t.Fatalf("write on majority: %d %s", r.status, r.body)
			}
			cut.Isolate(false)
			leader = WaitForLeader(t, servers...)
			WaitForResult(t, 10*time.Second, func() error {
				want := dump(t, leader)
				for _, s := range servers {
					if !bytes.Equal(dump(t, s), want) {
						return fmt.Errorf("%s has not converged with leader %s", s.ID(), leader.ID())
					}
				}
				return nil
			})
			if r := call(t, cut, "GET", "/v1/cluster/settings/majority-"+victim+"?stale", token, nil, nil); r.status != http.StatusOK {
				t.Fatalf("healed server lacks the majority's write: %d %s", r.status, r.body)
			}
		})
	}
}

func TestMultiNode_IdempotencyAcrossLeaderChange(t *testing.T) {
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	token := bootstrapToken(t, leader)
	hdr := map[string]string{"Idempotency-Key": "create-42"}
	first := call(t, leader, "PUT", "/v1/cluster/settings/once", token, map[string]string{"value": "a"}, hdr)
	if first.status != http.StatusOK {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	WaitForResult(t, 10*time.Second, func() error {
		if !leader.IsLeader() {
			return nil // it moved on its own
		}
		return leader.raft.LeadershipTransfer().Error()
	})
	var next *Server
	WaitForResult(t, 10*time.Second, func() error {
		next = WaitForLeader(t, servers...)
		if next == leader {
			return fmt.Errorf("leadership still with %s", leader.ID())
		}
		return nil
	})
	for _, s := range servers {
		again := call(t, s, "PUT", "/v1/cluster/settings/once", token, map[string]string{"value": "a"}, hdr)
		if again.status != first.status || !bytes.Equal(again.body, first.body) {
			t.Fatalf("replay via %s: %d %s, want %d %s", s.ID(), again.status, again.body, first.status, first.body)
		}
		if again.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay via %s lacks Idempotent-Replayed", s.ID())
		}
	}
	_, set, err := next.State().Setting(nil, "once")
	if err != nil || set == nil {
		t.Fatalf("setting: %v %v", set, err)
	}
	if set.CreateIndex != set.ModifyIndex {
		t.Fatalf("setting applied more than once: create %d modify %d", set.CreateIndex, set.ModifyIndex)
	}
}

func TestMultiNode_SnapshotToAnotherCluster(t *testing.T) {
	a := TestCluster(t, 3, nil)
	la := WaitForLeader(t, a...)
	tokA := bootstrapToken(t, la)
	for i := 0; i < 50; i++ {
		r := put(t, a[i%3], tokA, fmt.Sprintf("key-%02d", i), fmt.Sprint(i))
		if r.status != http.StatusOK {
			t.Fatalf("write %d: %d %s", i, r.status, r.body)
		}
	}
	var archive bytes.Buffer
	WaitForResult(t, 10*time.Second, func() error {
		archive.Reset()
		la = WaitForLeader(t, a...)
		_, err := la.SnapshotSave(context.Background(), &archive)
		return err
	})

	b := TestCluster(t, 3, nil)
	lb := WaitForLeader(t, b...)
	tokB := bootstrapToken(t, lb)

	// A damaged archive is refused and changes nothing (but the audit log
	// of the refused logins).
	bad := append([]byte(nil), archive.Bytes()...)
	bad[len(bad)/2] ^= 0xff
	for name, body := range map[string][]byte{"corrupt": bad, "truncated": archive.Bytes()[:archive.Len()-10]} {
		r := callRaw(t, b[0], "PUT", "/v1/snapshot", tokA, body)
		if r.status != http.StatusUnauthorized {
			// Cluster B does not know A's token: the first check is auth.
			t.Fatalf("%s with foreign token: %d %s", name, r.status, r.body)
		}
	}
	// The refusals were recorded by whichever server leads now: let every
	// server catch up before taking the state.
	lb = WaitForLeader(t, b...)
	WaitForApplied(t, lb.State().LatestIndex(), b...)
	before := lb.State().StateIndex()
	for name, body := range map[string][]byte{"corrupt": bad, "truncated": archive.Bytes()[:archive.Len()-10]} {
		r := callRaw(t, b[1], "PUT", "/v1/snapshot", tokB, body)
		if r.status != http.StatusBadRequest || !bytes.Contains(r.body, []byte("bad_snapshot")) {
			t.Fatalf("%s snapshot: %d %s", name, r.status, r.body)
		}
		// Audited as refused; nothing else changed.
		if got := lb.State().StateIndex(); got != before {
			t.Fatalf("%s snapshot changed state: index %d to %d", name, before, got)
		}
	}
	// A leader change while restoring answers 503 with the outcome
	// unknown; once the restore has landed, B's own token is gone (401).
	var r httpResult
	unknown := false
	WaitForResult(t, 10*time.Second, func() error {
		r = callRaw(t, b[1], "PUT", "/v1/snapshot", tokB, archive.Bytes())
		switch {
		case r.status == http.StatusOK, r.status == http.StatusUnauthorized && unknown:
			return nil
		case r.status == http.StatusServiceUnavailable:
			unknown = true
		}
		return fmt.Errorf("restore: %d %s", r.status, r.body)
	})
	// B holds A's state, and the audit entry of the restore after A's log.
	_, wantSettings, _ := la.State().Settings(nil)
	_, wantLog, _ := la.State().AuditEntries(nil, fsm.AuditFilter{})
	WaitForResult(t, 10*time.Second, func() error {
		for _, s := range b {
			if !bytes.Equal(dump(t, s), dump(t, b[0])) {
				return fmt.Errorf("%s differs from %s after restore", s.ID(), b[0].ID())
			}
			_, settings, _ := s.State().Settings(nil)
			_, log, _ := s.State().AuditEntries(nil, fsm.AuditFilter{})
			if !reflect.DeepEqual(settings, wantSettings) {
				return fmt.Errorf("%s settings differ from cluster A after restore", s.ID())
			}
			// The entry after A's log is the restore's, or when its outcome
			// was unknown, the retry's, refused with B's token gone.
			if len(log) != len(wantLog)+1 || !reflect.DeepEqual(log[:len(wantLog)], wantLog) || log[len(wantLog)].Object != "/v1/snapshot" {
				return fmt.Errorf("%s audit log is not A's and the restore after it", s.ID())
			}
		}
		return nil
	})
	// After the restore, cluster A's token is the one that works on B.
	if r := call(t, b[2], "GET", "/v1/cluster/settings/key-07?stale", tokA, nil, nil); r.status != http.StatusOK {
		t.Fatalf("read after restore: %d %s", r.status, r.body)
	}
}

// TestMultiNode_NewLeaderWaitsForItsBarrier: a server that has just won an
// election may not have applied the entries of earlier terms yet, and
// would check tokens, idempotency keys and objects against an old store
// (a 401 or 404 for a write already applied). Until its barrier is
// through it answers nothing from its store: writes and default reads,
// its own and forwarded ones, wait for it, and after the hold timeout get
// a 503 that says why and that nothing was proposed; a forwarded one is
// held by the follower, which asks again within its own hold timeout
// (the leader does not hold it a second time). ?stale reads are served as
// ever.
func TestMultiNode_NewLeaderWaitsForItsBarrier(t *testing.T) {
	servers := TestCluster(t, 3, func(c *Config) { c.HoldTimeout = Duration(time.Second) })
	leader := WaitForLeader(t, servers...)
	token := bootstrapToken(t, leader)
	follower := servers[0]
	if follower == leader {
		follower = servers[1]
	}
	WaitForResult(t, 10*time.Second, func() error {
		if !leader.consistentReady.Load() {
			return fmt.Errorf("barrier of %s not through", leader.ID())
		}
		return nil
	})
	leader.consistentReady.Store(false) // as right after its election
	for _, tc := range []struct {
		s            *Server
		method, path string
		body         any
	}{
		{leader, "PUT", "/v1/cluster/settings/k", map[string]string{"value": "v"}},
		{follower, "PUT", "/v1/cluster/settings/k", map[string]string{"value": "v"}},
		{leader, "GET", "/v1/cluster/settings", nil},
		{follower, "GET", "/v1/cluster/settings", nil},
	} {
		r := call(t, tc.s, tc.method, tc.path, token, tc.body, nil)
		if r.status != http.StatusServiceUnavailable || !contains(r.body, `"code":"no_leader"`) || !contains(r.body, "nothing was proposed") {
			t.Fatalf("%s %s on %s while the leader catches up: %d %s", tc.method, tc.path, tc.s.ID(), r.status, r.body)
		}
		if !contains(r.body, "still applying the log of the terms before its own") {
			t.Fatalf("%s %s on %s: %s does not say why", tc.method, tc.path, tc.s.ID(), r.body)
		}
	}
	if r := call(t, leader, "GET", "/v1/cluster/settings?stale", token, nil, nil); r.status != http.StatusOK {
		t.Fatalf("stale read while the leader catches up: %d %s", r.status, r.body)
	}
	if _, set, _ := leader.State().Setting(nil, "k"); set != nil {
		t.Fatal("a refused write was applied")
	}
	// A write that waits goes through once the barrier is.
	done := make(chan httpResult, 1)
	go func() {
		done <- call(t, follower, "PUT", "/v1/cluster/settings/k", token, map[string]string{"value": "v"}, nil)
	}()
	select {
	case r := <-done:
		t.Fatalf("write answered before the leader caught up: %d %s", r.status, r.body)
	case <-time.After(300 * time.Millisecond):
	}
	leader.consistentReady.Store(true)
	if r := <-done; r.status != http.StatusOK {
		t.Fatalf("write after the barrier: %d %s", r.status, r.body)
	}
}

// TestMultiNode_WonWhileItWaited: a request that waited on a follower for
// a leader, until the follower itself won the election, is served there
// once its barrier is through, within the hold timeout: it was forwarded
// (by this server to itself), and the handler does not hold a forwarded
// request, so Forward holds it. After the hold timeout it gets the 503
// that says why.
func TestMultiNode_WonWhileItWaited(t *testing.T) {
	servers := TestCluster(t, 3, func(c *Config) { c.HoldTimeout = Duration(time.Second) })
	leader := WaitForLeader(t, servers...)
	token := bootstrapToken(t, leader)
	WaitForResult(t, 10*time.Second, func() error {
		if !leader.consistentReady.Load() {
			return fmt.Errorf("barrier of %s not through", leader.ID())
		}
		return nil
	})
	leader.consistentReady.Store(false) // as right after its election
	forward := func(value string) (*http.Response, error) {
		// As the API layer hands a request to Forward on a follower.
		req, err := http.NewRequest("PUT", leader.URL()+"/v1/cluster/settings/k", strings.NewReader(`{"value":"`+value+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.RemoteAddr = "127.0.0.1:1"
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Moxxie-Forwarded", leader.ID())
		return leader.Forward(req)
	}
	type answer struct {
		resp *http.Response
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := forward("held")
		done <- answer{resp, err}
	}()
	select {
	case a := <-done:
		t.Fatalf("answered before the barrier: %v %v", a.resp, a.err)
	case <-time.After(300 * time.Millisecond):
	}
	leader.consistentReady.Store(true)
	a := <-done
	if a.err != nil {
		t.Fatal(a.err)
	}
	body, _ := io.ReadAll(a.resp.Body)
	a.resp.Body.Close()
	if a.resp.StatusCode != http.StatusOK {
		t.Fatalf("write after the barrier: %d %s", a.resp.StatusCode, body)
	}
	if _, set, _ := leader.State().Setting(nil, "k"); set == nil || set.Value != "held" {
		t.Fatalf("setting after the held write: %+v", set)
	}
	// Never ready within the hold timeout: the reason, nothing proposed.
	leader.consistentReady.Store(false)
	defer leader.consistentReady.Store(true)
	if _, err := forward("late"); !errors.Is(err, api.ErrNoLeader) || !strings.Contains(err.Error(), "still applying the log") {
		t.Fatalf("after the hold timeout: %v", err)
	}
	if _, set, _ := leader.State().Setting(nil, "k"); set.Value != "held" {
		t.Fatalf("a refused write was applied: %+v", set)
	}
}

// TestMultiNode_LeaderMarksDNSSerials: the first leader marks a new state
// for DNS serials (fsm.DNSSerialMarkRequest), once: every server holds
// the mark, and a later leader, or a tick, finds it.
func TestMultiNode_LeaderMarksDNSSerials(t *testing.T) {
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	WaitForResult(t, 10*time.Second, func() error {
		for _, s := range servers {
			if !s.State().DNSSerialsMarked() {
				return fmt.Errorf("%s holds no DNS serial mark", s.ID())
			}
		}
		return nil
	})
	before := leader.State().LatestIndex()
	leader.markDNSSerials() // as a new leader or a tick would: the mark is there
	if after := leader.State().LatestIndex(); after != before {
		t.Fatalf("a marked state was marked again: index %d -> %d", before, after)
	}
}
