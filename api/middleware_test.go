package api

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/fsm"
)

func TestRequestID(t *testing.T) {
	ts := newLeader(t)
	rec := ts.do("GET", "/v1/cluster/settings/missing", "", "X-Request-ID", "abc-123")
	if d := wantError(t, rec, 404, CodeNotFound, "key"); d.RequestID != "abc-123" {
		t.Fatalf("request_id %q", d.RequestID)
	}
	if rec.Header().Get("X-Request-ID") != "abc-123" {
		t.Fatalf("header %q", rec.Header().Get("X-Request-ID"))
	}

	seen := map[string]bool{}
	for _, bad := range []string{"", "has space", strings.Repeat("x", 129), "tab\tid", "\u00e9t\u00e9"} {
		rec := ts.do("GET", "/v1/health", "", "X-Request-ID", bad)
		id := rec.Header().Get("X-Request-ID")
		if id == "" || id == bad || seen[id] {
			t.Errorf("request ID %q for %q", id, bad)
		}
		seen[id] = true
	}
	if id := strings.Repeat("x", 128); ts.do("GET", "/v1/health", "", "X-Request-ID", id).Header().Get("X-Request-ID") != id {
		t.Error("valid 128-character request ID replaced")
	}
}

func TestUnroutedRequests(t *testing.T) {
	ts := newLeader(t)
	wantError(t, ts.do("GET", "/v1/nope", ""), 404, CodeNotFound, "")
	wantError(t, ts.do("GET", "/", ""), 404, CodeNotFound, "")
	wantError(t, ts.do("GET", "/v1/status/", ""), 404, CodeNotFound, "")

	rec := ts.do("POST", "/v1/status", "")
	wantError(t, rec, 405, CodeMethodNotAllowed, "")
	if rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("Allow %q", rec.Header().Get("Allow"))
	}
	rec = ts.do("POST", "/v1/cluster/settings/k", `{"value":"x"}`)
	wantError(t, rec, 405, CodeMethodNotAllowed, "")
	if rec.Header().Get("Allow") != "DELETE, GET, HEAD, PUT" {
		t.Errorf("Allow %q", rec.Header().Get("Allow"))
	}
	if ts.b.State().LatestIndex() != 1 {
		t.Fatal("an unrouted request changed the state")
	}
}

func TestPanicRecovery(t *testing.T) {
	var logs bytes.Buffer
	b := newFakeBackend("s1", fsm.New(), true)
	ts := newTestServer(t, b, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ts.bootstrap()
	b.statusPanic = true
	rec := ts.do("GET", "/v1/status", "", "X-Request-ID", "boom-1")
	d := wantError(t, rec, http.StatusInternalServerError, CodeInternal, "")
	if strings.Contains(d.Message, "exploded") {
		t.Errorf("panic value leaked: %q", d.Message)
	}
	if !strings.Contains(logs.String(), "status exploded") || !strings.Contains(logs.String(), "request_id=boom-1") || !strings.Contains(logs.String(), "goroutine") {
		t.Errorf("panic not logged with request ID and stack:\n%s", logs.String())
	}
	// The server keeps serving.
	b.statusPanic = false
	wantStatus(t, ts.do("GET", "/v1/status", ""), 200)
}

func TestInternalErrorsAreLogged(t *testing.T) {
	var logs bytes.Buffer
	b := newFakeBackend("s1", fsm.New(), true)
	ts := newTestServer(t, b, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ts.bootstrap()
	b.joinErr = errorString("raft config exploded")
	wantError(t, ts.do("POST", "/v1/cluster/join", `{"id":"s2","raft_address":"h:1"}`, "X-Request-ID", "j-1"), 500, CodeInternal, "")
	if !strings.Contains(logs.String(), "raft config exploded") || !strings.Contains(logs.String(), "request_id=j-1") {
		t.Errorf("internal error not logged:\n%s", logs.String())
	}
}
