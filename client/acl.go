package client

import (
	"context"
	"errors"
	"net/http"
	"net/url"
)

// ErrNoSecret means a token was created but the answer carried no secret,
// as when a retried create was answered from its first result: the token
// exists and its secret cannot be shown again.
var ErrNoSecret = errors.New("the server answered without the token's secret")

// Bootstrap creates the first admin token (POST /v1/acl/bootstrap). It
// succeeds once per cluster; later calls answer 409.
func (c *Client) Bootstrap(ctx context.Context) (*TokenSecret, error) {
	var ts TokenSecret
	m, err := c.call(ctx, newWrite(http.MethodPost, "/v1/acl/bootstrap", ""), &ts)
	if err != nil {
		return nil, err
	}
	return checkSecret(&ts, m)
}

// TokenCreate creates an API token (POST /v1/acl/tokens). The answer holds
// the secret, which is shown only this once. The role is one of admin,
// operator, auditor, tenant-admin, tenant-user, tenant-viewer and agent;
// the three tenant roles need a tenant, the others refuse one (a 400
// naming the field tenant). Only an admin token may create tokens (a 403
// otherwise).
func (c *Client) TokenCreate(ctx context.Context, req TokenRequest, w *WriteOptions) (*TokenSecret, *Meta, error) {
	var ts TokenSecret
	m, err := c.call(ctx, newWrite(http.MethodPost, "/v1/acl/tokens", w.key()).jsonBody(req), &ts)
	if err != nil {
		return nil, nil, err
	}
	out, err := checkSecret(&ts, m)
	return out, m, err
}

func checkSecret(ts *TokenSecret, m *Meta) (*TokenSecret, error) {
	if ts.SecretID == "" {
		if m.Replayed {
			return ts, errors.Join(ErrNoSecret, errors.New("a retry of the request was answered from its first result"))
		}
		return ts, ErrNoSecret
	}
	return ts, nil
}

// TokenList lists the API tokens, without their secrets (GET
// /v1/acl/tokens).
func (c *Client) TokenList(ctx context.Context, q *QueryOptions) ([]Token, *Meta, error) {
	r := &request{method: http.MethodGet, path: "/v1/acl/tokens"}
	r.query, r.wait = q.values()
	out := listOf[Token]{field: "tokens"}
	m, err := c.call(ctx, r, &out)
	if err != nil {
		return nil, nil, err
	}
	return out.items, m, nil
}

// TokenRevoke deletes the token with the given accessor ID (DELETE
// /v1/acl/tokens/{accessor_id}).
func (c *Client) TokenRevoke(ctx context.Context, accessorID string, w *WriteOptions) (*Meta, error) {
	return c.call(ctx, newWrite(http.MethodDelete, "/v1/acl/tokens/"+url.PathEscape(accessorID), w.key()), nil)
}
