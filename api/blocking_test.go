package api

import (
	"bytes"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// blockingGet starts a GET in the background; the returned channel yields
// its answer. started is closed when the query begins to wait.
func blockingGet(ts *testServer, target string) (<-chan *httptest.ResponseRecorder, <-chan struct{}) {
	started := make(chan struct{})
	var once bool
	ts.srv.watchHook = func() {
		if !once {
			once = true
			close(started)
		}
	}
	out := make(chan *httptest.ResponseRecorder, 1)
	go func() { out <- ts.do("GET", target, "") }()
	return out, started
}

// waitingGet reads target's index, starts a blocking read of target past
// it, requires that the read waits, and returns the index and the read's
// answer to come.
func waitingGet(t *testing.T, ts *testServer, target string) (string, <-chan *httptest.ResponseRecorder) {
	t.Helper()
	idx := ts.do("GET", target, "").Header().Get("X-Moxxie-Index")
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	out, started := blockingGet(ts, target+sep+"index="+idx+"&wait=30s")
	select {
	case <-started:
	case rec := <-out:
		t.Fatalf("%s returned without blocking: %d %s", target, rec.Code, rec.Body)
	}
	return idx, out
}

func TestBlockingQuery_ReturnsOnWrite(t *testing.T) {
	for _, target := range []string{"/v1/cluster/settings", "/v1/cluster/settings/k"} {
		t.Run(target, func(t *testing.T) {
			ts := newLeader(t)
			wantStatus(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"v1"}`), 200)
			idx := ts.do("GET", target, "").Header().Get("X-Moxxie-Index")

			start := time.Now()
			out, started := blockingGet(ts, target+"?index="+idx+"&wait=30s")
			select {
			case <-started:
			case rec := <-out:
				t.Fatalf("returned without blocking: %d %s", rec.Code, rec.Body)
			}
			wantStatus(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"v2"}`), 200)
			rec := <-out
			body := wantStatus(t, rec, 200)
			if time.Since(start) > 10*time.Second {
				t.Fatal("blocking query waited for the timeout")
			}
			got, _ := strconv.ParseUint(rec.Header().Get("X-Moxxie-Index"), 10, 64)
			want, _ := strconv.ParseUint(idx, 10, 64)
			if got <= want || !bytes.Contains(body, []byte(`"v2"`)) {
				t.Fatalf("index %d after %d, body %s", got, want, body)
			}
		})
	}
}

func TestBlockingQuery_UnrelatedWriteKeepsWaiting(t *testing.T) {
	ts := newLeader(t)
	idx := ts.do("GET", "/v1/cluster/settings", "").Header().Get("X-Moxxie-Index")
	out, started := blockingGet(ts, "/v1/cluster/settings?index="+idx+"&wait=30s")
	<-started
	// A token write changes another table: the settings query keeps waiting.
	wantStatus(t, ts.do("POST", "/v1/acl/tokens", `{"role":"admin"}`), 201)
	select {
	case rec := <-out:
		t.Fatalf("returned on an unrelated write: %s", rec.Body)
	case <-time.After(20 * time.Millisecond):
	}
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"v"}`), 200)
	wantStatus(t, <-out, 200)
}

func TestBlockingQuery_TimesOut(t *testing.T) {
	ts := newLeader(t)
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"v1"}`), 200)
	idx := ts.do("GET", "/v1/cluster/settings", "").Header().Get("X-Moxxie-Index")
	start := time.Now()
	rec := ts.do("GET", "/v1/cluster/settings?index="+idx+"&wait=50ms", "")
	wantStatus(t, rec, 200)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("returned after %v, before the wait elapsed", d)
	}
	if rec.Header().Get("X-Moxxie-Index") != idx {
		t.Fatalf("index %s, want %s", rec.Header().Get("X-Moxxie-Index"), idx)
	}
	// A missing key is still a 404 once the wait is over.
	wantError(t, ts.do("GET", "/v1/cluster/settings/missing?index=999&wait=10ms", ""), 404, CodeNotFound, "key")
}

func TestBlockingQuery_RestoreWakesWaiters(t *testing.T) {
	ts := newLeader(t)
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"v1"}`), 200)
	archive := wantStatus(t, ts.do("GET", "/v1/snapshot", ""), 200)
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"v2"}`), 200)
	idx := ts.do("GET", "/v1/cluster/settings", "").Header().Get("X-Moxxie-Index")

	out, started := blockingGet(ts, "/v1/cluster/settings?index="+idx+"&wait=30s")
	<-started
	wantStatus(t, ts.do("PUT", "/v1/snapshot", string(archive)), 200)
	rec := <-out
	if body := wantStatus(t, rec, 200); !bytes.Contains(body, []byte(`"v1"`)) {
		t.Fatalf("after restore: %s", body)
	}
}

func TestBlockingQuery_Params(t *testing.T) {
	ts := newLeader(t)
	for _, c := range []struct{ query, field string }{
		{"index=x", "index"},
		{"index=-1", "index"},
		{"index=1&wait=soon", "wait"},
		{"index=1&wait=-5s", "wait"},
		{"index=1&wait=0", "wait"},
	} {
		wantError(t, ts.do("GET", "/v1/cluster/settings?"+c.query, ""), 400, CodeInvalidRequest, c.field)
	}
	for q, want := range map[string]time.Duration{
		"":         defaultWait,
		"wait=30":  30 * time.Second,
		"wait=2m":  2 * time.Minute,
		"wait=24h": maxWait,
	} {
		c := &call{r: httptest.NewRequest("GET", "/v1/cluster/settings?index=1&"+q, nil)}
		p, err := blockingParams(c)
		if err != nil || p.wait != want || p.index != 1 {
			t.Errorf("%q: %+v %v, want wait %v", q, p, err, want)
		}
	}
	// index=0 does not block, and an empty table still reports index 1.
	rec := ts.do("GET", "/v1/cluster/settings?index=0&wait=10m", "")
	if wantStatus(t, rec, 200); rec.Header().Get("X-Moxxie-Index") != "1" {
		t.Fatalf("index %q", rec.Header().Get("X-Moxxie-Index"))
	}
}
