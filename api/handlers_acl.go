package api

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/auth"
	"github.com/moxxie/moxxie/fsm"
)

// Token field limits.
const (
	maxDescriptionLen = 256
	maxAccessorIDLen  = 128
)

// TokenResponse is how the API shows a token. SecretID is present only in
// the answer to the request that created the token.
type TokenResponse struct {
	AccessorID  string `json:"accessor_id"`
	SecretID    string `json:"secret_id,omitempty"`
	Role        string `json:"role"`
	Description string `json:"description"`
	Tenant      string `json:"tenant,omitempty"`
	CreatedAt   string `json:"created_at"`
	ExpiresAt   string `json:"expires_at,omitempty"`
	CreateIndex uint64 `json:"create_index"`
}

// TokenList is the body of GET /v1/acl/tokens.
type TokenList struct {
	Tokens []TokenResponse `json:"tokens"`
}

// TokenCreateRequest is the body of POST /v1/acl/tokens.
type TokenCreateRequest struct {
	Description string `json:"description"`
	Role        string `json:"role"`
	Tenant      string `json:"tenant"`
	// TTL is a Go duration; empty means the token does not expire.
	TTL string `json:"ttl"`
}

func tokenResponse(t *fsm.Token, secret string) TokenResponse {
	out := TokenResponse{
		AccessorID:  t.AccessorID,
		SecretID:    secret,
		Role:        t.Role,
		Description: t.Description,
		Tenant:      t.Tenant,
		CreatedAt:   formatTime(t.CreatedAt),
		CreateIndex: t.CreateIndex,
	}
	if t.ExpiresAt != 0 {
		out.ExpiresAt = formatTime(t.ExpiresAt)
	}
	return out
}

// formatTime renders leader time (Unix nanoseconds) as RFC 3339 in UTC.
func formatTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format(time.RFC3339)
}

// renderToken returns a render function for apply that shows the token
// with secret. A replayed result is the stored JSON of the token, which
// never includes a secret, so a replay shows the token without it.
func renderToken(secret string) func(any) (any, error) {
	return func(v any) (any, error) {
		_, replayed := v.(json.RawMessage)
		t, err := resultOf[fsm.Token](v)
		if err != nil {
			return nil, err
		}
		if replayed {
			return tokenResponse(t, ""), nil // the secret was shown once
		}
		return tokenResponse(t, secret), nil
	}
}

// handleACLBootstrap creates the first admin token. It needs no token and
// succeeds once per cluster. Idempotency-Key is ignored: the request has
// no caller to scope the key to, and a replay could not show the secret.
func (s *server) handleACLBootstrap(c *call) error {
	var empty struct{}
	if err := decodeJSON(c.body, &empty, false); err != nil {
		return err
	}
	meta := fsm.WriteMeta{Now: s.b.Now().UnixNano(), RequestID: c.w.reqID}
	secret := newSecret()
	cmd := &fsm.ACLBootstrapRequest{WriteMeta: meta, Token: fsm.Token{
		AccessorID:  newAccessorID(),
		SecretHash:  HashSecret(secret),
		Description: "bootstrap admin token",
		Role:        RoleAdmin,
		CreatedAt:   meta.Now,
	}}
	return s.apply(c, cmd, http.StatusCreated, renderToken(secret))
}

// handleTokenList lists the tokens (never their secrets).
func (s *server) handleTokenList(c *call) error {
	var toks []*fsm.Token
	idx, err := s.blockingQuery(c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, error) {
		idx, t, err := st.Tokens(ws)
		toks = t
		return idx, err
	})
	if err != nil {
		return err
	}
	out := TokenList{Tokens: make([]TokenResponse, len(toks))}
	for i, t := range toks {
		out.Tokens[i] = tokenResponse(t, "")
	}
	c.setIndex(idx)
	writeJSON(c.w, http.StatusOK, out)
	return nil
}

// handleTokenCreate creates a token and shows its secret, once.
func (s *server) handleTokenCreate(c *call) error {
	var req TokenCreateRequest
	if err := decodeJSON(c.body, &req, true); err != nil {
		return err
	}
	if len(req.Description) > maxDescriptionLen {
		return invalid("description", "must be at most %d bytes", maxDescriptionLen)
	}
	if err := checkTokenRole(auth.Role(req.Role), req.Tenant); err != nil {
		return err
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			return invalid("ttl", "must be a positive Go duration such as \"720h\", not %q", req.TTL)
		}
		ttl = d
	}
	meta, err := s.writeMeta(c)
	if err != nil {
		return err
	}
	secret := newSecret()
	tok := fsm.Token{
		AccessorID:  newAccessorID(),
		SecretHash:  HashSecret(secret),
		Description: req.Description,
		Role:        req.Role,
		Tenant:      req.Tenant,
		CreatedAt:   meta.Now,
	}
	if ttl > 0 {
		if int64(ttl) > math.MaxInt64-meta.Now {
			return invalid("ttl", "%s is too long", req.TTL)
		}
		tok.ExpiresAt = meta.Now + int64(ttl)
	}
	return s.apply(c, &fsm.TokenCreateRequest{WriteMeta: meta, Token: tok}, http.StatusCreated, renderToken(secret))
}

// checkTokenRole checks the role and tenant of a new token: the role must
// be known, a tenant role needs a tenant (a valid name) and any other role
// refuses one.
func checkTokenRole(role auth.Role, tenant string) error {
	switch {
	case role == "":
		return invalid("role", "is required: one of %s", roleNames())
	case !role.Valid():
		return invalid("role", "unknown role %q: must be one of %s", role, roleNames())
	case role.Tenanted() && tenant == "":
		return invalid("tenant", "is required: %s tokens act within one tenant", role)
	case !role.Tenanted() && tenant != "":
		return invalid("tenant", "must be empty: %s tokens are not confined to a tenant", role)
	case tenant != "" && !fsm.ValidName(tenant):
		return invalid("tenant", "%q must be 1-63 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit", tenant)
	}
	return nil
}

// roleNames lists the roles for messages, separated by commas.
func roleNames() string {
	names := make([]string, len(auth.Roles))
	for i, r := range auth.Roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

// handleTokenRevoke deletes a token and shows what was deleted.
func (s *server) handleTokenRevoke(c *call) error {
	id := c.r.PathValue("accessor_id")
	if id == "" || len(id) > maxAccessorIDLen {
		return invalid("accessor_id", "must be 1 to %d characters", maxAccessorIDLen)
	}
	meta, err := s.writeMeta(c)
	if err != nil {
		return err
	}
	return s.apply(c, &fsm.TokenRevokeRequest{WriteMeta: meta, AccessorID: id}, http.StatusOK, renderToken(""))
}
