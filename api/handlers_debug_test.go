package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/hashicorp/raft"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/auth"
	"github.com/moxxie/moxxie/fsm"
)

// gzipMagic starts a gzipped protocol buffer profile.
var gzipMagic = []byte{0x1f, 0x8b}

func TestDebug_OnlyAdmins(t *testing.T) {
	ts := newLeader(t)
	op := ts.createToken(auth.RoleOperator, "").SecretID
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=1", "/v1/debug/config", "/v1/debug/logs"} {
		wantError(t, ts.do("GET", path, "", "Authorization", ""), 401, CodeUnauthorized, "")
		d := wantError(t, ts.do("GET", path, "", "Authorization", "Bearer "+op), 403, CodeForbidden, "")
		if d.Message != "role operator lacks permission debug:read" {
			t.Errorf("%s as operator: %q", path, d.Message)
		}
	}
	for _, role := range auth.Roles {
		tenant := ""
		if role.Tenanted() {
			tenant = "acme"
		}
		if d := auth.Authorize(role, tenant, auth.PermDebugRead, auth.ScopeCluster); d.Allowed != (role == auth.RoleAdmin) {
			t.Errorf("%s: debug:read allowed %v", role, d.Allowed)
		}
	}
}

func TestDebug_Pprof(t *testing.T) {
	ts := newLeader(t)

	body := string(wantStatus(t, ts.do("GET", "/debug/pprof/", ""), 200))
	for _, name := range []string{"allocs", "block", "goroutine", "heap", "mutex", "threadcreate", "profile", "trace", "cmdline", "symbol"} {
		if !strings.Contains(body, "\n"+name+" ") {
			t.Errorf("the index does not list %s:\n%s", name, body)
		}
	}
	wantError(t, ts.do("GET", "/debug/pprof/nope", ""), 404, CodeNotFound, "")

	for _, name := range []string{"allocs", "block", "goroutine", "heap", "mutex", "threadcreate"} {
		rec := ts.do("GET", "/debug/pprof/"+name, "")
		if b := wantStatus(t, rec, 200); !bytes.HasPrefix(b, gzipMagic) {
			t.Errorf("%s: not a gzipped profile: %q", name, b[:min(len(b), 20)])
		}
		if ct, cd := rec.Header().Get("Content-Type"), rec.Header().Get("Content-Disposition"); ct != "application/octet-stream" || cd != `attachment; filename="`+name+`"` {
			t.Errorf("%s: Content-Type %q, Content-Disposition %q", name, ct, cd)
		}
	}
	rec := ts.do("GET", "/debug/pprof/goroutine?debug=2", "")
	if b := wantStatus(t, rec, 200); !bytes.Contains(b, []byte("goroutine ")) || !bytes.Contains(b, []byte("TestDebug_Pprof")) {
		t.Errorf("goroutine?debug=2:\n%s", b)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if b := wantStatus(t, ts.do("GET", "/debug/pprof/heap?debug=1&gc=1", ""), 200); !bytes.HasPrefix(b, []byte("heap profile: ")) {
		t.Errorf("heap?debug=1: %.40q", b)
	}
	if b := wantStatus(t, ts.do("GET", "/debug/pprof/cmdline", ""), 200); !bytes.Contains(b, []byte(".test")) {
		t.Errorf("cmdline %q", b)
	}

	// Symbols: GET with the query, POST with the body.
	pc := reflect.ValueOf(TestDebug_Pprof).Pointer()
	want := fmt.Sprintf("num_symbols: 1\n%#x github.com/moxxie/moxxie/api.TestDebug_Pprof\n", pc)
	if b := wantStatus(t, ts.do("GET", fmt.Sprintf("/debug/pprof/symbol?%#x+0x0", pc), ""), 200); string(b) != want {
		t.Errorf("GET symbol:\n%s\nwant\n%s", b, want)
	}
	if b := wantStatus(t, ts.do("POST", "/debug/pprof/symbol", fmt.Sprintf("0x0+%#x", pc)), 200); string(b) != want {
		t.Errorf("POST symbol:\n%s\nwant\n%s", b, want)
	}
	if b := wantStatus(t, ts.do("GET", "/debug/pprof/symbol", ""), 200); string(b) != "num_symbols: 1\n" {
		t.Errorf("GET symbol without addresses: %q", b)
	}

	for _, c := range []struct{ target, field string }{
		{"/debug/pprof/heap?debug=3", "debug"},
		{"/debug/pprof/heap?gc=x", "gc"},
		{"/debug/pprof/heap?seconds=5", "seconds"},
		{"/debug/pprof/profile?seconds=0", "seconds"},
		{"/debug/pprof/profile?seconds=61", "seconds"},
		{"/debug/pprof/profile?seconds=NaN", "seconds"},
		{"/debug/pprof/trace?seconds=-1", "seconds"},
		{"/debug/pprof/trace?seconds=1m", "seconds"},
	} {
		wantError(t, ts.do("GET", c.target, ""), 400, CodeInvalidRequest, c.field)
	}
	wantError(t, ts.do("POST", "/debug/pprof/heap", ""), 405, CodeMethodNotAllowed, "")
}

// TestDebug_ProfileOutlastsWriteTimeout runs a CPU profile and a trace
// longer than the server's WriteTimeout: the handler moves the write
// deadline so that the profile arrives whole.
func TestDebug_ProfileOutlastsWriteTimeout(t *testing.T) {
	ts := newLeader(t)
	hs := httptest.NewUnstartedServer(ts.h)
	hs.Config.WriteTimeout = 100 * time.Millisecond
	hs.Start()
	t.Cleanup(hs.Close)
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", hs.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+ts.secret)
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: reading the answer: %v", path, err)
		}
		return resp, b
	}
	start := time.Now()
	resp, b := get("/debug/pprof/profile?seconds=0.4")
	if resp.StatusCode != 200 || !bytes.HasPrefix(b, gzipMagic) {
		t.Fatalf("profile: %d %.60q", resp.StatusCode, b)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("the profile took %v, not the 0.4 s asked", d)
	}
	resp, b = get("/debug/pprof/trace?seconds=0.3")
	if resp.StatusCode != 200 || !bytes.HasPrefix(b, []byte("go 1.")) {
		t.Fatalf("trace: %d %.60q", resp.StatusCode, b)
	}
}

// TestDebug_OneProfileAtATime: the process runs one CPU profile and one
// trace at a time; another is a 409.
func TestDebug_OneProfileAtATime(t *testing.T) {
	ts := newLeader(t)
	if err := pprof.StartCPUProfile(io.Discard); err != nil {
		t.Skipf("a CPU profile runs already: %v", err)
	}
	wantError(t, ts.do("GET", "/debug/pprof/profile?seconds=0.01", ""), 409, CodeConflict, "")
	pprof.StopCPUProfile()
	if err := trace.Start(io.Discard); err != nil {
		t.Skipf("a trace runs already: %v", err)
	}
	rec := ts.do("GET", "/debug/pprof/trace?seconds=0.01", "")
	trace.Stop()
	wantError(t, rec, 409, CodeConflict, "")
	if cd := rec.Header().Get("Content-Disposition"); cd != "" {
		t.Errorf("an error answer is an attachment: %q", cd)
	}
}

// TestDebug_LocalOnFollowers: a follower answers the debug routes itself,
// with its own configuration and logs, and never forwards them.
func TestDebug_LocalOnFollowers(t *testing.T) {
	c := newCluster(t, true)
	lines := []json.RawMessage{json.RawMessage(`{"msg":"one"}`), json.RawMessage(`{"msg":"two"}`)}
	var asked int
	c.follower.srv.opts.DebugConfig = func() (any, error) {
		return map[string]any{"node_id": "s2", "tls": map[string]any{"key_file": "/etc/moxxie/s2-key.pem"}}, nil
	}
	c.follower.srv.opts.RecentLogs = func(n int) []json.RawMessage {
		asked = n
		return lines
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine", "/debug/pprof/profile?seconds=0.01", "/v1/debug/config", "/v1/debug/logs"} {
		wantStatus(t, c.follower.do("GET", path, ""), 200)
	}
	if n := c.follower.b.forwards.Load(); n != 0 {
		t.Errorf("the follower forwarded %d debug requests", n)
	}

	var cfg DebugConfigResponse
	mustJSON(t, wantStatus(t, c.follower.do("GET", "/v1/debug/config", ""), 200), &cfg)
	if cfg.ID != "s2" || cfg.Version.GoVersion == "" || fmt.Sprint(cfg.Config) != "map[node_id:s2 tls:map[key_file:/etc/moxxie/s2-key.pem]]" {
		t.Errorf("config %+v", cfg)
	}
	// The leader of this test has no configuration to report.
	wantError(t, c.leader.do("GET", "/v1/debug/config", ""), 404, CodeNotFound, "")
	c.follower.srv.opts.DebugConfig = func() (any, error) { return nil, fmt.Errorf("broken") }
	wantError(t, c.follower.do("GET", "/v1/debug/config", ""), 500, CodeInternal, "")

	var logs DebugLogsResponse
	mustJSON(t, wantStatus(t, c.follower.do("GET", "/v1/debug/logs?lines=2", ""), 200), &logs)
	if logs.ID != "s2" || len(logs.Lines) != 2 || string(logs.Lines[1]) != `{"msg":"two"}` || asked != 2 {
		t.Errorf("logs %+v, asked for %d", logs, asked)
	}
	wantStatus(t, c.follower.do("GET", "/v1/debug/logs", ""), 200)
	if asked != defaultDebugLogLines {
		t.Errorf("asked for %d lines by default", asked)
	}
	for _, q := range []string{"0", "10001", "x"} {
		wantError(t, c.follower.do("GET", "/v1/debug/logs?lines="+q, ""), 400, CodeInvalidRequest, "lines")
	}
	// Without a log ring the list is empty, not null.
	if b := wantStatus(t, c.leader.do("GET", "/v1/debug/logs", ""), 200); !bytes.Contains(b, []byte(`"lines":[]`)) {
		t.Errorf("logs without a ring: %s", b)
	}
}

// TestDebug_FollowerRefusalIsTheLeaders: a follower that refuses a debug
// request passes it to the leader to audit, like any refusal.
func TestDebug_FollowerRefusalIsTheLeaders(t *testing.T) {
	stopAuditClock(t)
	c := newCluster(t, true)
	op := c.leader.createToken(auth.RoleOperator, "").SecretID
	wantError(t, c.follower.do("GET", "/debug/pprof/heap", "", "Authorization", "Bearer "+op), 403, CodeForbidden, "")
	if n := c.follower.b.forwards.Load(); n != 1 {
		t.Errorf("the follower forwarded %d requests, want the refusal only", n)
	}
	_, entries, err := c.leader.b.State().AuditEntries(nil, fsm.AuditFilter{Action: fsm.AuditAuthFailed + " GET /debug/pprof/heap"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Role != string(auth.RoleOperator) {
		t.Errorf("audit entries of the refusal: %+v", entries)
	}
}

// TestDebug_FollowerWaitsForANewToken: a follower that does not know a
// token yet (new on the leader, not yet applied here) waits for it on a
// route it answers itself, rather than forward the request to the leader,
// which knows the token and would answer with its own configuration. When
// the token does not come, the leader, asked to audit the refusal, says
// the token is valid but the follower must answer: retry.
func TestDebug_FollowerWaitsForANewToken(t *testing.T) {
	c := newCluster(t, false) // the follower knows no token at all
	c.follower.srv.opts.DebugConfig = func() (any, error) { return map[string]any{"node_id": "s2"}, nil }
	c.leader.srv.opts.DebugConfig = func() (any, error) { return map[string]any{"node_id": "s1"}, nil }

	start := time.Now()
	e := wantError(t, c.follower.do("GET", "/v1/debug/config", ""), 503, CodeNotReady, "")
	if !strings.Contains(e.Message, "the token is valid here, but s2") || time.Since(start) < localAuthWait {
		t.Errorf("after %s: %q", time.Since(start), e.Message)
	}

	// No token, or not a bearer one: nothing to wait for.
	for _, h := range []string{"", "Basic eDp5"} {
		start = time.Now()
		rec := c.follower.do("GET", "/v1/debug/config", "", "Authorization", h)
		if rec.Code == http.StatusOK || time.Since(start) >= localAuthWait {
			t.Errorf("Authorization %q: %d after %s", h, rec.Code, time.Since(start))
		}
	}

	tok, err := c.leader.b.State().TokenBySecretHash(HashSecret(c.leader.secret))
	if err != nil || tok == nil {
		t.Fatal(tok, err)
	}
	go func() {
		// The token arrives once the request waits for it.
		if !waitingIn("authenticateLagging", 5*time.Second) {
			t.Error("the request never waited for the token")
		}
		buf, err := fsm.Encode(&fsm.TokenCreateRequest{Token: *tok})
		if err != nil {
			t.Error(err)
			return
		}
		// As raft would on the follower.
		if res := c.follower.b.fsm.Apply(&raft.Log{Index: c.leader.b.fsm.State().LatestIndex(), Type: raft.LogCommand, Data: buf}).(*fsm.Result); res.Err != nil {
			t.Error(res.Err)
		}
	}()
	forwards := c.follower.b.forwards.Load()
	var cfg DebugConfigResponse
	mustJSON(t, wantStatus(t, c.follower.do("GET", "/v1/debug/config", ""), 200), &cfg)
	if cfg.ID != "s2" || fmt.Sprint(cfg.Config) != "map[node_id:s2]" {
		t.Errorf("config %+v", cfg)
	}
	if n := c.follower.b.forwards.Load() - forwards; n != 0 {
		t.Errorf("the follower forwarded %d requests", n)
	}
}

// waitingIn reports whether, within d, a goroutine comes to wait in a
// select (or channel operation) under a function whose name contains fn.
func waitingIn(fn string, d time.Duration) bool {
	deadline := time.After(d)
	buf := make([]byte, 1<<20)
	for {
		stacks := string(buf[:runtime.Stack(buf, true)])
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, fn) && (strings.Contains(g, "[select") || strings.Contains(g, "[chan receive")) {
				return true
			}
		}
		select {
		case <-deadline:
			return false
		case <-time.After(time.Millisecond):
		}
	}
}
