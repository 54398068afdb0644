package api

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/audit"
	"github.com/moxxie/moxxie/fsm"
)

// stopAuditClock stops the clock of the auth-failure rate limiter and
// empties it.
func stopAuditClock(t *testing.T) {
	now := time.Now()
	auditClock = func() time.Time { return now }
	authAudits.mu.Lock()
	clear(authAudits.buckets)
	authAudits.mu.Unlock()
	t.Cleanup(func() { auditClock = time.Now })
}

func TestAudit_WritesAndAuthFailures(t *testing.T) {
	ts := newLeader(t)
	stopAuditClock(t)
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/a", `{"value":"1"}`), 200)
	wantError(t, ts.do("DELETE", "/v1/cluster/settings/nope", ""), 404, CodeNotFound, "key")
	// Refused before anything is proposed: recorded with its code.
	wantError(t, ts.do("PUT", "/v1/cluster/settings/b", `{"value":1}`), 400, CodeInvalidRequest, "value")
	// A refused authentication is recorded.
	wantError(t, ts.do("PUT", "/v1/cluster/settings/c", `{"value":"1"}`, "Authorization", "Bearer mxx_wrong"), 401, CodeUnauthorized, "")
	// A client address forwarded by a client is not believed.
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/d", `{"value":"1"}`, headerForwardedFor, "203.0.113.9"), 200)

	var l AuditList
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/audit", ""), 200), &l)
	want := []struct{ action, object, result string }{
		{"POST /v1/acl/bootstrap", "/v1/acl/bootstrap", "ok"},
		{"PUT /v1/cluster/settings/{key}", "/v1/cluster/settings/a", "ok"},
		{"DELETE /v1/cluster/settings/{key}", "/v1/cluster/settings/nope", "not_found"},
		{"PUT /v1/cluster/settings/{key}", "/v1/cluster/settings/b", "invalid_request"},
		{"auth.failed PUT /v1/cluster/settings/{key}", "/v1/cluster/settings/c", "unauthorized"},
		{"PUT /v1/cluster/settings/{key}", "/v1/cluster/settings/d", "ok"},
	}
	if len(l.Entries) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(l.Entries), len(want), l.Entries)
	}
	for i, w := range want {
		e := l.Entries[i]
		if e.Action != w.action || e.Object != w.object || e.Result != w.result || e.Source != "192.0.2.1:1234" {
			t.Errorf("entry %d: %+v, want %+v", i+1, e, w)
		}
	}
	if l.Entries[1].TokenID == "" || l.Entries[1].Role != "admin" || l.Entries[3].TokenID == "" || l.Entries[4].TokenID != "" {
		t.Errorf("callers: %+v / %+v / %+v", l.Entries[1], l.Entries[3], l.Entries[4])
	}
	if l.Head.Seq != 6 || l.Head.Hash != l.Entries[5].Hash {
		t.Errorf("head %+v", l.Head)
	}
	// Filters.
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/audit?since_seq=2&limit=2&action=PUT+/v1/cluster/settings/{key}", ""), 200), &l)
	if len(l.Entries) != 2 || l.Entries[0].Seq != 2 || l.Entries[1].Seq != 4 {
		t.Errorf("filtered: %+v", l.Entries)
	}
	wantError(t, ts.do("GET", "/v1/audit?limit=0", ""), 400, CodeInvalidRequest, "limit")
	// The newest entries, oldest first.
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/audit?last=2", ""), 200), &l)
	if len(l.Entries) != 2 || l.Entries[0].Seq != 5 || l.Entries[1].Seq != 6 {
		t.Errorf("last 2: %+v", l.Entries)
	}
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/audit?last=2&action=PUT+/v1/cluster/settings/{key}", ""), 200), &l)
	if len(l.Entries) != 2 || l.Entries[0].Seq != 4 || l.Entries[1].Seq != 6 {
		t.Errorf("last 2 filtered: %+v", l.Entries)
	}
	wantError(t, ts.do("GET", "/v1/audit?last=0", ""), 400, CodeInvalidRequest, "last")
	wantError(t, ts.do("GET", "/v1/audit?last=2&limit=2", ""), 400, CodeInvalidRequest, "last")
	wantError(t, ts.do("GET", "/v1/audit/export?last=2", ""), 400, CodeInvalidRequest, "last")
	wantError(t, ts.do("GET", "/v1/audit/export?action=x", ""), 400, CodeInvalidRequest, "action")

	// The export verifies, and its tampered copy does not.
	body := wantStatus(t, ts.do("GET", "/v1/audit/export", ""), 200)
	es, cps, err := audit.ReadExport(bytes.NewReader(body))
	if err != nil || len(es) != 6 || len(cps) != 0 {
		t.Fatalf("export: %d entries, %v", len(es), err)
	}
	if _, err := audit.Verify(es, cps, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	es[2].Result = "ok"
	if _, err := audit.Verify(es, cps, audit.Options{}); err == nil || !strings.Contains(err.Error(), "entry 3 modified") {
		t.Fatalf("tampered export: %v", err)
	}
	var v AuditVerifyResult
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/audit/verify", ""), 200), &v)
	if !v.OK || v.Report.Entries != 6 {
		t.Fatalf("verify %+v", v)
	}
	var cl AuditCheckpointList
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/audit/checkpoints", ""), 200), &cl)
	if len(cl.Checkpoints) != 0 {
		t.Fatalf("checkpoints %+v", cl)
	}
}

func TestAudit_ForwardedSource(t *testing.T) {
	ts := newLeader(t)
	req, _ := http.NewRequest("PUT", "/v1/cluster/settings/a", nil)
	req.Header.Set(headerForwarded, "s2")
	req.Header.Set(headerForwardedFor, "198.51.100.7:4444")
	if got := auditSource(req); got != "198.51.100.7:4444" {
		t.Errorf("forwarded by a peer: %q", got)
	}
	req.Header.Del(headerForwarded)
	req.RemoteAddr = "192.0.2.5:1"
	if got := auditSource(req); got != "192.0.2.5:1" {
		t.Errorf("not forwarded: %q", got)
	}
	_ = ts
}

func TestAudit_AuthFailureRateLimit(t *testing.T) {
	ts := newLeader(t)
	stopAuditClock(t)
	n := authAuditBurst + 10
	for range n {
		wantError(t, ts.do("GET", "/v1/status", "", "Authorization", "Bearer nope", "X-Forwarded-For", ""), 401, CodeUnauthorized, "")
	}
	_, es, err := ts.b.State().AuditEntries(nil, fsm.AuditFilter{Action: "auth.failed GET /v1/status"})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != authAuditBurst {
		t.Fatalf("%d of %d refused logins recorded, want the burst of %d and not all", len(es), n, authAuditBurst)
	}
}

// TestAudit_BlockingList checks that a blocking read of the audit log
// answers when a write adds an entry, not when its wait runs out.
func TestAudit_BlockingList(t *testing.T) {
	ts := newLeader(t)
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/a", `{"value":"1"}`), 200)
	for _, target := range []string{"/v1/audit", "/v1/audit?since_seq=2", "/v1/audit?since_seq=3"} {
		idx, out := waitingGet(t, ts, target)
		wantStatus(t, ts.do("PUT", "/v1/cluster/settings/a", `{"value":"2"}`), 200)
		rec := <-out
		wantBlockedIndex(t, target, idx, rec)
		var l AuditList
		mustJSON(t, wantStatus(t, rec, 200), &l)
		if n := len(l.Entries); n == 0 || l.Entries[n-1].Seq != l.Head.Seq {
			t.Errorf("%s: entries %+v, head %+v", target, l.Entries, l.Head)
		}
	}
}
