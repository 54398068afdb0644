package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/auth"
)

func TestTokenCreate_TenantRole(t *testing.T) {
	f := newFakeAPI(t)
	env := f.env()
	for _, spelling := range [][]string{{"token"}, {"acl", "token"}} {
		args := append(append([]string{}, spelling...), "create", "--role", "tenant-user", "--tenant", "acme", "-o", "json")
		out, stderr, code := runCLI(t, env, args...)
		var tok map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &tok) != nil {
			t.Fatalf("%v: exit %d, %q %q", spelling, code, out, stderr)
		}
		if tok["secret_id"] != "sec-2" || tok["role"] != "tenant-user" || tok["tenant"] != "acme" {
			t.Errorf("%v: token %v", spelling, tok)
		}
		if !strings.Contains(stderr, "shown only once") {
			t.Errorf("%v: no warning: %q", spelling, stderr)
		}
	}
	out, _, code := runCLI(t, env, "acl", "token", "list")
	if code != 0 || !strings.Contains(out, "acc-2        tenant-user  acme") {
		t.Errorf("list: exit %d\n%s", code, out)
	}
	out, _, code = runCLI(t, env, "acl", "token", "revoke", "acc-2")
	if code != 0 || out != "Token acc-2 revoked\n" {
		t.Errorf("revoke: exit %d, %q", code, out)
	}
}

func TestTokenCreate_Refused(t *testing.T) {
	f := newFakeAPI(t)
	env := f.env()
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--role is required: one of admin, operator, auditor, tenant-admin, tenant-user, tenant-viewer, agent, site"},
		{[]string{"--role", "reader"}, `--role "reader" is not a role: one of admin, operator, auditor, tenant-admin, tenant-user, tenant-viewer, agent, site`},
		{[]string{"--role", "tenant-viewer"}, "--tenant is required: tenant-viewer tokens act within one tenant"},
		{[]string{"--role", "operator", "--tenant", "acme"}, "--tenant is only for tenant roles, not operator"},
		{[]string{"--role", "admin", "--ttl", "-1h"}, "--ttl must not be negative, got -1h0m0s"},
	} {
		_, stderr, code := runCLI(t, env, append([]string{"token", "create"}, c.args...)...)
		if first, _, _ := strings.Cut(stderr, "\n"); code != 2 || first != "Error: "+c.want {
			t.Errorf("%v: exit %d, %q, want %q", c.args, code, stderr, c.want)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if containsCall(f.calls, "POST /v1/acl/tokens") {
		t.Error("a refused request reached the server")
	}
}

func TestTokenCreate_HelpNamesEveryRole(t *testing.T) {
	help := roleHelp()
	for _, r := range auth.Roles {
		if roleSummary[r] == "" || !strings.Contains(help, "  "+string(r)+" ") {
			t.Errorf("role %s has no summary in the help", r)
		}
	}
}

// TestToken_TenantUserAgainstTheAPI creates a tenant token with moxxiectl
// against the real API handler, then uses it: the token sees only its
// tenant's guests and cannot manage tokens.
func TestToken_TenantUserAgainstTheAPI(t *testing.T) {
	p := newPlatformAPI(t)
	out, stderr := p.cli(t, 0, "token", "create", "--role", "tenant-user", "--tenant", "acme", "--ttl", "24h", "-o", "json")
	var tok struct {
		SecretID  string `json:"secret_id"`
		Role      string `json:"role"`
		Tenant    string `json:"tenant"`
		ExpiresAt string `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.SecretID == "" || tok.Role != "tenant-user" || tok.Tenant != "acme" || tok.ExpiresAt == "" {
		t.Fatalf("created %s (%v); stderr %s", out, err, stderr)
	}
	env := p.env()
	env[envToken] = tok.SecretID

	out, stderr, code := runCLI(t, env, "inventory", "guests")
	want := `VMID  NAME  KIND  NODE  STATUS   CORES  MEMORY  TENANT  TAGS
101   web1  qemu  pve1  running  2      2 GiB   acme    tenant.acme,web
103   db1   qemu  pve2  stopped  4      8 GiB   acme    db,tenant.acme
`
	if code != 0 || out != want {
		t.Errorf("guests: exit %d %s\n%s\nwant:\n%s", code, stderr, out, want)
	}
	_, stderr, code = runCLI(t, env, "inventory", "guest", "102")
	if code != 1 || !strings.HasPrefix(oneErrorLine(t, stderr), `404 not_found: guest "102" not found`) {
		t.Errorf("another tenant's guest: exit %d %s", code, stderr)
	}
	_, stderr, code = runCLI(t, env, "token", "list")
	if code != 1 || !strings.HasPrefix(oneErrorLine(t, stderr), "403 forbidden: role tenant-user lacks permission token:read") {
		t.Errorf("token list: exit %d %s", code, stderr)
	}
	_, stderr, code = runCLI(t, env, "token", "create", "--role", "admin")
	if code != 1 || !strings.HasPrefix(oneErrorLine(t, stderr), "403 forbidden: role tenant-user lacks permission token:write") {
		t.Errorf("token create: exit %d %s", code, stderr)
	}
}
