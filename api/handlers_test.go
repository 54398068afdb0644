package api

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/fsm"
)

func TestHealthReadyOpenAPI(t *testing.T) {
	ts := newTestServer(t, newFakeBackend("s1", fsm.New(), true), Options{})

	rec := ts.do("GET", "/v1/health", "")
	var h map[string]string
	mustJSON(t, wantStatus(t, rec, 200), &h)
	if h["status"] != "ok" || h["id"] != "s1" {
		t.Fatalf("health %v", h)
	}

	rec = ts.do("GET", "/v1/ready", "")
	mustJSON(t, wantStatus(t, rec, 200), &h)
	if h["status"] != "ready" {
		t.Fatalf("ready %v", h)
	}
	ts.b.readyErr = ErrNoLeader
	wantError(t, ts.do("GET", "/v1/ready", ""), 503, CodeNoLeader, "")
	ts.b.readyErr = errorString("catching up: applied 3 of 9")
	d := wantError(t, ts.do("GET", "/v1/ready", ""), 503, CodeNotReady, "")
	if !strings.Contains(d.Message, "catching up") {
		t.Errorf("message %q", d.Message)
	}

	rec = ts.do("GET", "/v1/openapi.json", "")
	if !json.Valid(wantStatus(t, rec, 200)) || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("openapi: %q", rec.Header().Get("Content-Type"))
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestACLBootstrap(t *testing.T) {
	ts := newTestServer(t, newFakeBackend("s1", fsm.New(), true), Options{})
	tok := ts.bootstrap()
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(tok.AccessorID) {
		t.Errorf("accessor_id %q", tok.AccessorID)
	}
	if !strings.HasPrefix(tok.SecretID, "mxx_") || len(tok.SecretID) < 4+50 {
		t.Errorf("secret_id %q", tok.SecretID)
	}
	if tok.Role != "admin" || tok.Description != "bootstrap admin token" || tok.CreatedAt != "2026-01-02T03:04:05Z" {
		t.Errorf("token %+v", tok)
	}
	stored, err := ts.b.State().TokenBySecretHash(HashSecret(tok.SecretID))
	if err != nil || stored == nil || stored.AccessorID != tok.AccessorID {
		t.Fatalf("stored token %+v, %v", stored, err)
	}
	if m := ts.b.lastMeta.Load(); m.RequestID == "" || m.Now != ts.b.Now().UnixNano() {
		t.Errorf("meta %+v", m)
	}

	wantError(t, ts.do("POST", "/v1/acl/bootstrap", "", "Authorization", ""), 409, CodeConflict, "")
	wantError(t, ts.do("POST", "/v1/acl/bootstrap", `{"x":1}`, "Authorization", ""), 400, CodeInvalidRequest, "x")
}

func TestStatus(t *testing.T) {
	ts := newLeader(t)
	rec := ts.do("GET", "/v1/status", "")
	var st map[string]any
	mustJSON(t, wantStatus(t, rec, 200), &st)
	for _, k := range []string{"leader", "term", "commit_index", "applied_index", "servers"} {
		if _, ok := st[k]; !ok {
			t.Errorf("status lacks %q: %s", k, rec.Body)
		}
	}
	srv := st["servers"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "raft_address", "api_address", "state", "voter"} {
		if _, ok := srv[k]; !ok {
			t.Errorf("server lacks %q", k)
		}
	}
}

func TestClusterJoinRemove(t *testing.T) {
	ts := newLeader(t)
	rec := ts.do("POST", "/v1/cluster/join", `{"id":"s2","raft_address":"10.0.0.2:7001"}`)
	if body := wantStatus(t, rec, 200); string(body) != `{"joined":"s2"}`+"\n" {
		t.Fatalf("join body %s", body)
	}
	if j := ts.b.lastJoin.Load(); j == nil || j.ID != "s2" || j.RaftAddress != "10.0.0.2:7001" {
		t.Fatalf("joined %+v", j)
	}
	for _, c := range []struct{ body, field string }{
		{`{"id":"","raft_address":"10.0.0.2:7001"}`, "id"},
		{`{"id":"bad id","raft_address":"10.0.0.2:7001"}`, "id"},
		{`{"id":"` + strings.Repeat("x", 65) + `","raft_address":"10.0.0.2:7001"}`, "id"},
		{`{"id":"s2","raft_address":"10.0.0.2"}`, "raft_address"},
		{`{"id":"s2","raft_address":":7001"}`, "raft_address"},
		{`{"id":"s2","raft_address":"h:0"}`, "raft_address"},
		{`{"id":"s2","raft_address":"h:99999"}`, "raft_address"},
	} {
		wantError(t, ts.do("POST", "/v1/cluster/join", c.body), 400, CodeInvalidRequest, c.field)
	}

	rec = ts.do("DELETE", "/v1/cluster/servers/s2", "")
	if body := wantStatus(t, rec, 200); string(body) != `{"removed":"s2"}`+"\n" {
		t.Fatalf("remove body %s", body)
	}
	wantError(t, ts.do("DELETE", "/v1/cluster/servers/ghost", ""), 404, CodeNotFound, "id")
	wantError(t, ts.do("DELETE", "/v1/cluster/servers/a%20b", ""), 400, CodeInvalidRequest, "id")
}

func TestSettings(t *testing.T) {
	ts := newLeader(t)

	rec := ts.do("PUT", "/v1/cluster/settings/dns.zone", `{"value":"moxxie.test"}`, "Content-Type", "application/json; charset=utf-8")
	var s fsm.Setting
	mustJSON(t, wantStatus(t, rec, 200), &s)
	if s.Key != "dns.zone" || s.Value != "moxxie.test" || s.CreateIndex == 0 || s.ModifyIndex != s.CreateIndex {
		t.Fatalf("setting %+v", s)
	}
	if got := rec.Header().Get("X-Moxxie-Index"); got != strconv.FormatUint(s.ModifyIndex, 10) {
		t.Errorf("write index header %q, want %d", got, s.ModifyIndex)
	}
	if m := ts.b.lastMeta.Load(); m.RequestID != rec.Header().Get("X-Request-ID") || m.Actor == "" {
		t.Errorf("meta %+v", m)
	}

	rec = ts.do("GET", "/v1/cluster/settings/dns.zone", "")
	var got fsm.Setting
	mustJSON(t, wantStatus(t, rec, 200), &got)
	if got != s {
		t.Fatalf("got %+v, want %+v", got, s)
	}
	if h := rec.Header().Get("X-Moxxie-Index"); h != strconv.FormatUint(s.ModifyIndex, 10) {
		t.Errorf("read index header %q", h)
	}

	// CAS: 0 means must not exist; a stale index conflicts; the right one wins.
	wantError(t, ts.do("PUT", "/v1/cluster/settings/dns.zone?cas=0", `{"value":"x"}`), 409, CodeConflict, "")
	wantError(t, ts.do("PUT", "/v1/cluster/settings/dns.zone?cas=999", `{"value":"x"}`), 409, CodeConflict, "")
	rec = ts.do("PUT", "/v1/cluster/settings/dns.zone?cas="+strconv.FormatUint(s.ModifyIndex, 10), `{"value":"v2"}`)
	mustJSON(t, wantStatus(t, rec, 200), &got)
	if got.Value != "v2" || got.CreateIndex != s.CreateIndex || got.ModifyIndex <= s.ModifyIndex {
		t.Fatalf("cas write %+v", got)
	}
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/new-key?cas=0", `{"value":""}`), 200)

	rec = ts.do("GET", "/v1/cluster/settings", "")
	var list SettingList
	mustJSON(t, wantStatus(t, rec, 200), &list)
	if len(list.Settings) != 2 || list.Settings[0].Key != "dns.zone" || list.Settings[1].Key != "new-key" {
		t.Fatalf("list %s", rec.Body)
	}

	rec = ts.do("DELETE", "/v1/cluster/settings/dns.zone", "")
	mustJSON(t, wantStatus(t, rec, 200), &got)
	if got.Key != "dns.zone" {
		t.Fatalf("deleted %+v", got)
	}
	wantError(t, ts.do("GET", "/v1/cluster/settings/dns.zone", ""), 404, CodeNotFound, "key")
	wantError(t, ts.do("DELETE", "/v1/cluster/settings/dns.zone", ""), 404, CodeNotFound, "key")

	// An empty list is [] rather than null.
	wantStatus(t, ts.do("DELETE", "/v1/cluster/settings/new-key", ""), 200)
	if body := wantStatus(t, ts.do("GET", "/v1/cluster/settings", ""), 200); string(body) != `{"settings":[]}`+"\n" {
		t.Fatalf("empty list %s", body)
	}
}

func TestSettingValidation(t *testing.T) {
	ts := newLeader(t)
	for _, c := range []struct {
		target, body, field string
	}{
		{"/v1/cluster/settings/Upper", `{"value":"x"}`, "key"},
		{"/v1/cluster/settings/-lead", `{"value":"x"}`, "key"},
		{"/v1/cluster/settings/" + strings.Repeat("k", 129), `{"value":"x"}`, "key"},
		{"/v1/cluster/settings/ok", `{}`, "value"},
		{"/v1/cluster/settings/ok", `{"value":null}`, "value"},
		{"/v1/cluster/settings/ok", `{"value":"` + strings.Repeat("v", 64<<10+1) + `"}`, "value"},
		{"/v1/cluster/settings/ok?cas=x", `{"value":"x"}`, "cas"},
		{"/v1/cluster/settings/ok?cas=-1", `{"value":"x"}`, "cas"},
	} {
		wantError(t, ts.do("PUT", c.target, c.body), 400, CodeInvalidRequest, c.field)
	}
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/"+strings.Repeat("k", 128), `{"value":"`+strings.Repeat("v", 64<<10)+`"}`), 200)
	wantError(t, ts.do("GET", "/v1/cluster/settings/UP", ""), 400, CodeInvalidRequest, "key")
}

func TestIndexHeaderOnEveryResponse(t *testing.T) {
	ts := newLeader(t)
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/a", `{"value":"1"}`), 200)
	latest := strconv.FormatUint(ts.b.State().LatestIndex(), 10)
	for _, target := range []string{"/v1/health", "/v1/ready", "/v1/openapi.json", "/v1/status", "/v1/nowhere"} {
		rec := ts.do("GET", target, "")
		if got := rec.Header().Get("X-Moxxie-Index"); got != latest {
			t.Errorf("%s: X-Moxxie-Index %q, want %s", target, got, latest)
		}
		if rec.Header().Get("X-Request-ID") == "" {
			t.Errorf("%s: no X-Request-ID", target)
		}
	}
	// Reads report the table's index, not the store's latest.
	tokIdx := ts.b.State()
	idx, _, _ := tokIdx.Tokens(nil)
	if got := ts.do("GET", "/v1/acl/tokens", "").Header().Get("X-Moxxie-Index"); got != strconv.FormatUint(idx, 10) {
		t.Errorf("tokens index %q, want %d", got, idx)
	}
}

func TestTokenExpiryUsesLeaderClock(t *testing.T) {
	ts := newLeader(t)
	rec := ts.do("POST", "/v1/acl/tokens", `{"role":"admin","ttl":"1h"}`)
	var tok TokenResponse
	mustJSON(t, wantStatus(t, rec, 201), &tok)
	auth := "Bearer " + tok.SecretID
	wantStatus(t, ts.do("GET", "/v1/status", "", "Authorization", auth), 200)
	ts.b.advance(time.Hour)
	rec = ts.do("GET", "/v1/status", "", "Authorization", auth)
	if d := wantError(t, rec, 401, CodeUnauthorized, ""); d.Message != "token expired" {
		t.Errorf("message %q", d.Message)
	}
}

func TestSettingPut_QuarantineMustBeDuration(t *testing.T) {
	ts := newLeader(t)
	// Unset, it says what applies instead.
	d := wantError(t, ts.do("GET", "/v1/cluster/settings/ipam.quarantine", ""), http.StatusNotFound, CodeNotFound, "key")
	if d.Message != `setting "ipam.quarantine" not found; while it is unset its default applies: 10m0s` {
		t.Errorf("unset: %q", d.Message)
	}
	d = wantError(t, ts.do("GET", "/v1/cluster/settings/audit.retention", ""), http.StatusNotFound, CodeNotFound, "key")
	if !strings.HasSuffix(d.Message, "default applies: 90d") {
		t.Errorf("unset: %q", d.Message)
	}
	rec := ts.do("PUT", "/v1/cluster/settings/ipam.quarantine", `{"value":"ten minutes"}`)
	body := wantStatus(t, rec, http.StatusBadRequest)
	if !strings.Contains(string(body), `"field":"value"`) || !strings.Contains(string(body), "duration") {
		t.Fatalf("body %s", body)
	}
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/ipam.quarantine", `{"value":"30m"}`), http.StatusOK)
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/ipam.quarantine", `{"value":"720h"}`), http.StatusOK)
	e := wantError(t, ts.do("PUT", "/v1/cluster/settings/ipam.quarantine", `{"value":"1000000h"}`), http.StatusBadRequest, CodeInvalidRequest, "value")
	if !strings.Contains(e.Message, "at most 720h0m0s (30 days)") {
		t.Errorf("too long: %q", e.Message)
	}
}
