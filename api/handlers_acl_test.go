package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/auth"
)

// createToken creates a token through the API as the admin and returns it
// with its secret.
func (ts *testServer) createToken(role auth.Role, tenant string) TokenResponse {
	ts.t.Helper()
	body := `{"role":"` + string(role) + `"`
	if tenant != "" {
		body += `,"tenant":"` + tenant + `"`
	}
	rec := ts.do("POST", "/v1/acl/tokens", body+"}")
	var tok TokenResponse
	mustJSON(ts.t, wantStatus(ts.t, rec, http.StatusCreated), &tok)
	if tok.SecretID == "" || tok.Role != string(role) || tok.Tenant != tenant {
		ts.t.Fatalf("created %+v", tok)
	}
	return tok
}

func TestTokens(t *testing.T) {
	ts := newLeader(t)

	rec := ts.do("POST", "/v1/acl/tokens", `{"description":"ci","role":"admin","ttl":"1h"}`)
	var created TokenResponse
	mustJSON(t, wantStatus(t, rec, 201), &created)
	if created.SecretID == "" || created.Tenant != "" || created.ExpiresAt != "2026-01-02T04:04:05Z" {
		t.Fatalf("created %+v", created)
	}
	if m := ts.b.lastMeta.Load(); m.Actor == "" || m.Actor == created.AccessorID {
		t.Errorf("actor %q should be the bootstrap token", m.Actor)
	}

	// The new token works.
	rec = ts.do("GET", "/v1/acl/tokens", "", "Authorization", "Bearer "+created.SecretID)
	var list TokenList
	mustJSON(t, wantStatus(t, rec, 200), &list)
	if len(list.Tokens) != 2 {
		t.Fatalf("tokens %+v", list)
	}
	for _, tk := range list.Tokens {
		if tk.SecretID != "" {
			t.Fatal("list shows a secret")
		}
	}
	if strings.Contains(rec.Body.String(), created.SecretID) || strings.Contains(rec.Body.String(), HashSecret(created.SecretID)) {
		t.Fatal("list leaks a secret or its hash")
	}

	rec = ts.do("DELETE", "/v1/acl/tokens/"+created.AccessorID, "")
	var revoked TokenResponse
	mustJSON(t, wantStatus(t, rec, 200), &revoked)
	if revoked.AccessorID != created.AccessorID || revoked.SecretID != "" {
		t.Fatalf("revoked %+v", revoked)
	}
	wantError(t, ts.do("GET", "/v1/acl/tokens", "", "Authorization", "Bearer "+created.SecretID), 401, CodeUnauthorized, "")
	wantError(t, ts.do("DELETE", "/v1/acl/tokens/"+created.AccessorID, ""), 404, CodeNotFound, "accessor_id")
}

func TestTokens_Roles(t *testing.T) {
	ts := newLeader(t)
	for _, role := range auth.Roles {
		tenant := ""
		if role.Tenanted() {
			tenant = "acme"
		}
		tok := ts.createToken(role, tenant)
		stored, err := ts.b.State().TokenBySecretHash(HashSecret(tok.SecretID))
		if err != nil || stored == nil || stored.Role != string(role) || stored.Tenant != tenant {
			t.Errorf("%s: stored %+v, %v", role, stored, err)
		}
		if stored != nil && strings.Contains(stored.SecretHash, tok.SecretID) {
			t.Errorf("%s: the store holds the secret", role)
		}
	}

	for _, c := range []struct {
		body, field, message string
	}{
		{`{}`, "role", "is required: one of admin, operator, auditor, tenant-admin, tenant-user, tenant-viewer, agent, site"},
		{`{"role":"reader"}`, "role", `unknown role "reader": must be one of admin, operator, auditor, tenant-admin, tenant-user, tenant-viewer, agent, site`},
		{`{"role":"tenant-user"}`, "tenant", "is required: tenant-user tokens act within one tenant"},
		{`{"role":"tenant-viewer","tenant":"Acme"}`, "tenant", `"Acme" must be 1-63 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit`},
		{`{"role":"tenant-admin","tenant":"a b"}`, "tenant", `"a b" must be 1-63 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit`},
		{`{"role":"admin","tenant":"acme"}`, "tenant", "must be empty: admin tokens are not confined to a tenant"},
		{`{"role":"agent","tenant":"acme"}`, "tenant", "must be empty: agent tokens are not confined to a tenant"},
		{`{"role":"admin","ttl":"soon"}`, "ttl", `must be a positive Go duration such as "720h", not "soon"`},
		{`{"role":"admin","ttl":"-1h"}`, "ttl", `must be a positive Go duration such as "720h", not "-1h"`},
		{`{"role":"admin","description":"` + strings.Repeat("d", 257) + `"}`, "description", "must be at most 256 bytes"},
	} {
		d := wantError(t, ts.do("POST", "/v1/acl/tokens", c.body), 400, CodeInvalidRequest, c.field)
		if d.Message != c.message {
			t.Errorf("%s: message %q, want %q", c.body, d.Message, c.message)
		}
	}
}

func TestTokens_TenantTokenExpires(t *testing.T) {
	ts := newLeader(t)
	rec := ts.do("POST", "/v1/acl/tokens", `{"role":"tenant-viewer","tenant":"acme","ttl":"1h"}`)
	var tok TokenResponse
	mustJSON(t, wantStatus(t, rec, 201), &tok)
	if tok.ExpiresAt != "2026-01-02T04:04:05Z" {
		t.Fatalf("expires_at %q", tok.ExpiresAt)
	}
	as := []string{"Authorization", "Bearer " + tok.SecretID}
	wantStatus(t, ts.do("GET", "/v1/ipam/prefixes", "", as...), 200)
	ts.b.advance(3600e9)
	wantError(t, ts.do("GET", "/v1/ipam/prefixes", "", as...), 401, CodeUnauthorized, "")
}

func TestTokens_OnlyAdminManagesTokens(t *testing.T) {
	ts := newLeader(t)
	for _, role := range auth.Roles {
		if role == auth.RoleAdmin {
			continue
		}
		tenant := ""
		if role.Tenanted() {
			tenant = "acme"
		}
		as := []string{"Authorization", "Bearer " + ts.createToken(role, tenant).SecretID}
		wantError(t, ts.do("POST", "/v1/acl/tokens", `{"role":"admin"}`, as...), 403, CodeForbidden, "")
		wantError(t, ts.do("DELETE", "/v1/acl/tokens/x", "", as...), 403, CodeForbidden, "")
	}
}
