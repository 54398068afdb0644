package api

import (
	"testing"
	"time"

	"github.com/moxxie/moxxie/fsm"
)

func TestAuth(t *testing.T) {
	ts := newLeader(t)
	for _, c := range []struct {
		name, auth, message string
	}{
		{"missing", "", "missing bearer token (Authorization: Bearer <secret>)"},
		{"wrong scheme", "Basic " + ts.secret, `Authorization header must be "Bearer <secret>"`},
		{"no secret", "Bearer ", `Authorization header must be "Bearer <secret>"`},
		{"unknown", "Bearer mxx_notatoken", "invalid token"},
		{"hash instead of secret", "Bearer " + HashSecret(ts.secret), "invalid token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := ts.do("GET", "/v1/status", "", "Authorization", c.auth)
			d := wantError(t, rec, 401, CodeUnauthorized, "")
			if d.Message != c.message {
				t.Errorf("message %q, want %q", d.Message, c.message)
			}
			if rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate")
			}
		})
	}
	wantStatus(t, ts.do("GET", "/v1/status", "", "Authorization", "bearer "+ts.secret), 200)

	// Unauthenticated writes are refused before anything is applied.
	before := ts.b.applies.Load()
	wantError(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"v"}`, "Authorization", ""), 401, CodeUnauthorized, "")
	if ts.b.applies.Load() != before {
		t.Fatal("unauthenticated write reached Apply")
	}
}

func TestAuth_ExpiredAndForbidden(t *testing.T) {
	ts := newLeader(t)
	now := ts.b.Now().UnixNano()
	put := func(secret, role string, expires int64) {
		t.Helper()
		cmd := &fsm.TokenCreateRequest{Token: fsm.Token{
			AccessorID: "acc-" + secret, SecretHash: HashSecret(secret), Role: role, CreatedAt: now, ExpiresAt: expires,
		}}
		if res, _, err := ts.b.Apply(t.Context(), cmd); err != nil || res.Err != nil {
			t.Fatalf("apply: %v %v", err, res.Err)
		}
	}
	put("expired", RoleAdmin, now-1)
	put("expiring-now", RoleAdmin, now)
	put("valid", RoleAdmin, now+int64(time.Minute))
	put("reader", "reader", 0)

	wantError(t, ts.do("GET", "/v1/status", "", "Authorization", "Bearer expired"), 401, CodeUnauthorized, "")
	wantError(t, ts.do("GET", "/v1/status", "", "Authorization", "Bearer expiring-now"), 401, CodeUnauthorized, "")
	wantStatus(t, ts.do("GET", "/v1/status", "", "Authorization", "Bearer valid"), 200)
	wantError(t, ts.do("GET", "/v1/status", "", "Authorization", "Bearer reader"), 403, CodeForbidden, "")
}

func TestAuth_PublicRoutes(t *testing.T) {
	ts := newLeader(t)
	for _, p := range []string{"/v1/health", "/v1/ready", "/v1/openapi.json"} {
		wantStatus(t, ts.do("GET", p, "", "Authorization", ""), 200)
	}
	for _, r := range Routes() {
		public := r.Path == "/v1/health" || r.Path == "/v1/ready" || r.Path == "/v1/openapi.json" || r.Path == "/v1/acl/bootstrap"
		if r.Auth() == public {
			t.Errorf("%s: auth %v", r.Pattern(), r.Auth())
		}
	}
}

// TestLookupBearer_OncePerRequest checks the memo that lets the rate limit
// and authentication share one hash and lookup of a request's token: it
// answers only for the secret it looked up, and only within its request.
func TestLookupBearer_OncePerRequest(t *testing.T) {
	ts := newLeader(t)
	rec := ts.do("POST", "/v1/acl/tokens", `{"description":"memo","role":"admin"}`)
	var created TokenResponse
	mustJSON(t, wantStatus(t, rec, 201), &created)

	rw := &responseWriter{}
	if _, tok, err := ts.srv.lookupBearer(rw, created.SecretID); err != nil || tok == nil || tok.AccessorID != created.AccessorID {
		t.Fatalf("first lookup = %+v, %v; want token %s", tok, err, created.AccessorID)
	}
	wantStatus(t, ts.do("DELETE", "/v1/acl/tokens/"+created.AccessorID, ""), 200)
	// The request that looked the token up keeps what it found ...
	if hash, tok, _ := ts.srv.lookupBearer(rw, created.SecretID); tok == nil || hash != HashSecret(created.SecretID) {
		t.Fatalf("repeated lookup in the request = %q, %+v; want the token found first", hash, tok)
	}
	// ... a new request does not ...
	if _, tok, _ := ts.srv.lookupBearer(&responseWriter{}, created.SecretID); tok != nil {
		t.Fatalf("lookup in a new request found revoked token %+v", tok)
	}
	// ... and another secret in the same request is looked up afresh.
	if hash, tok, _ := ts.srv.lookupBearer(rw, ts.secret); tok == nil || tok.AccessorID == created.AccessorID || hash != HashSecret(ts.secret) {
		t.Fatalf("lookup of another secret = %q, %+v; want the bootstrap token", hash, tok)
	}
	if _, tok, _ := ts.srv.lookupBearer(rw, "mxx_unknown"); tok != nil {
		t.Fatalf("unknown secret found %+v", tok)
	}
}
