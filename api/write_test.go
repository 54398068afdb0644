package api

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/fsm"
)

func TestIdempotentReplay(t *testing.T) {
	ts := newLeader(t)
	first := ts.do("PUT", "/v1/cluster/settings/k", `{"value":"v1"}`, "Idempotency-Key", "op-1")
	body := wantStatus(t, first, 200)
	if first.Header().Get("Idempotent-Replayed") != "" {
		t.Fatal("first answer marked as replayed")
	}

	// Someone else changes the setting; the retry still returns the first
	// result and changes nothing.
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"other"}`), 200)
	retry := ts.do("PUT", "/v1/cluster/settings/k", `{"value":"v1"}`, "Idempotency-Key", "op-1")
	if got := wantStatus(t, retry, 200); string(got) != string(body) {
		t.Fatalf("replay body %s, want %s", got, body)
	}
	if retry.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatal("replay not marked")
	}
	_, s, _ := ts.b.State().Setting(nil, "k")
	if s.Value != "other" {
		t.Fatalf("replay re-applied: %+v", s)
	}

	// The same request formatted otherwise is the same request: JSON
	// whitespace does not count (whitespace inside a string does).
	if got := wantStatus(t, ts.do("PUT", "/v1/cluster/settings/k", "{ \"value\" :\n\t\"v1\" }", "Idempotency-Key", "op-1"), 200); string(got) != string(body) {
		t.Fatalf("replay of the reformatted request %s, want %s", got, body)
	}
	wantError(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"v1 "}`, "Idempotency-Key", "op-1"), 422, CodeIdempotencyMismatch, "Idempotency-Key")

	// Same key, different request.
	wantError(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"v2"}`, "Idempotency-Key", "op-1"), 422, CodeIdempotencyMismatch, "Idempotency-Key")
	wantError(t, ts.do("PUT", "/v1/cluster/settings/k?cas=0", `{"value":"v1"}`, "Idempotency-Key", "op-1"), 422, CodeIdempotencyMismatch, "Idempotency-Key")
	wantError(t, ts.do("DELETE", "/v1/cluster/settings/k", "", "Idempotency-Key", "op-1"), 422, CodeIdempotencyMismatch, "Idempotency-Key")

	// Bad keys.
	wantError(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"v"}`, "Idempotency-Key", strings.Repeat("k", 256)), 400, CodeInvalidRequest, "Idempotency-Key")
	wantError(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"v"}`, "Idempotency-Key", "tab\there"), 400, CodeInvalidRequest, "Idempotency-Key")
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"v"}`, "Idempotency-Key", strings.Repeat("k", 255)), 200)
	for _, keys := range [][]string{{""}, {"op-a", "op-b"}} {
		req := httptest.NewRequest("PUT", "/v1/cluster/settings/k", strings.NewReader(`{"value":"v3"}`))
		req.Header.Set("Authorization", "Bearer "+ts.secret)
		req.Header["Idempotency-Key"] = keys
		rec := httptest.NewRecorder()
		ts.h.ServeHTTP(rec, req)
		wantError(t, rec, 400, CodeInvalidRequest, "Idempotency-Key")
	}
}

func TestIdempotentReplay_KeepsStatusAndHidesSecret(t *testing.T) {
	ts := newLeader(t)
	body := `{"role":"admin","description":"ci"}`
	rec := ts.do("POST", "/v1/acl/tokens", body, "Idempotency-Key", "tok-1")
	var first, again TokenResponse
	mustJSON(t, wantStatus(t, rec, 201), &first)
	rec = ts.do("POST", "/v1/acl/tokens", body, "Idempotency-Key", "tok-1")
	mustJSON(t, wantStatus(t, rec, 201), &again)
	if rec.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatal("replay not marked")
	}
	if again.SecretID != "" {
		t.Fatal("replay shows a secret")
	}
	first.SecretID = ""
	if first != again {
		t.Fatalf("replay %+v, want %+v", again, first)
	}
	_, toks, _ := ts.b.State().Tokens(nil)
	if len(toks) != 2 {
		t.Fatalf("%d tokens, want 2", len(toks))
	}
}

func TestErrorMapping(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{ErrNoLeader, 503, CodeNoLeader},
		{ErrNotLeader, 503, CodeNoLeader},
		{ErrLeadershipLost, 503, CodeLeadershipLost},
		{ErrTimeout, 503, CodeTimeout},
		{fsm.ErrNotFound, 404, CodeNotFound},
		{fsm.ErrConflict, 409, CodeConflict},
		{fsm.ErrAlreadyBootstrapped, 409, CodeConflict},
		{fsm.ErrIdempotencyMismatch, 422, CodeIdempotencyMismatch},
		{fsm.ErrBadSnapshot, 400, CodeBadSnapshot},
		{errorString("disk on fire at /var/lib/moxxie"), 500, CodeInternal},
	} {
		ts := newLeader(t)
		ts.b.applyErr = c.err
		rec := ts.do("PUT", "/v1/cluster/settings/k", `{"value":"v"}`)
		field := ""
		if c.code == CodeIdempotencyMismatch {
			field = "Idempotency-Key"
		}
		d := wantError(t, rec, c.status, c.code, field)
		if c.status == 503 && rec.Header().Get("Retry-After") != "1" {
			t.Errorf("%v: Retry-After %q", c.err, rec.Header().Get("Retry-After"))
		}
		if c.status == 500 && strings.Contains(d.Message, "disk") {
			t.Errorf("internal error leaked: %q", d.Message)
		}
	}
}

func TestRequestHash(t *testing.T) {
	a := RequestHash("PUT", "/v1/cluster/settings/k", []byte(`{"value":"x"}`))
	if len(a) != 64 || a != RequestHash("PUT", "/v1/cluster/settings/k", []byte(`{"value":"x"}`)) {
		t.Fatalf("hash %q", a)
	}
	for _, b := range []string{
		RequestHash("POST", "/v1/cluster/settings/k", []byte(`{"value":"x"}`)),
		RequestHash("PUT", "/v1/cluster/settings/j", []byte(`{"value":"x"}`)),
		RequestHash("PUT", "/v1/cluster/settings/k", []byte(`{"value":"y"}`)),
		RequestHash("PUT", "/v1/cluster/settings/k\n", []byte(`{"value":"x"}`)),
	} {
		if a == b {
			t.Fatal("different requests hash the same")
		}
	}
}

// TestIdempotentReplay_OperationRetriedAfterItRan: a retry of a write that
// started an operation gets the first answer even once the operation has
// changed what the handler checks (a deleted VM is gone from the
// inventory); a retry without the key is a new request, and the key on
// another request is refused.
func TestIdempotentReplay_OperationRetriedAfterItRan(t *testing.T) {
	w := newTenantWorld(t)
	key := []string{"Idempotency-Key", "delete-103"}
	first := wantStatus(t, w.do("DELETE", "/v1/vms/103", "", key...), 202)

	// The delete ran: the next sync finds the guest gone.
	gone := &fsm.InventorySyncRequest{WriteMeta: fsm.WriteMeta{Now: w.b.Now().UnixNano()}, GoneGuests: []int{103}}
	if res, _, err := w.b.Apply(t.Context(), gone); err != nil || res.Err != nil {
		t.Fatalf("inventory sync: %v %v", err, res.Err)
	}

	retry := w.do("DELETE", "/v1/vms/103", "", key...)
	if got := wantStatus(t, retry, 202); string(got) != string(first) {
		t.Errorf("replay body %s, want %s", got, first)
	}
	if retry.Header().Get("Idempotent-Replayed") != "true" {
		t.Error("replay not marked")
	}
	wantError(t, w.do("DELETE", "/v1/vms/103", ""), 404, CodeNotFound, "vmid")
	wantError(t, w.do("DELETE", "/v1/vms/101", "", key...), 422, CodeIdempotencyMismatch, "Idempotency-Key")
	wantError(t, w.do("POST", "/v1/vms/103/start", "", "Idempotency-Key", strings.Repeat("k", 256)), 400, CodeInvalidRequest, "Idempotency-Key")
}
