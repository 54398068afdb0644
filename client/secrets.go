package client

import (
	"context"
	"net/http"
	"net/url"
)

const secretsPath = "/v1/secrets"

// Secret is a secret's metadata. No API returns a secret's value.
type Secret struct {
	Name        string `json:"name"`
	DEKID       string `json:"dek_id"`
	Version     uint64 `json:"version"`
	Description string `json:"description,omitempty"`
	CreatedAt   Time   `json:"created_at,omitzero"`
	UpdatedAt   Time   `json:"updated_at,omitzero"`
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

// SecretRotation is the outcome of a data-key rotation: the new data key
// and how many secrets were re-encrypted under it (Skipped: changed
// meanwhile, left for the next rotation).
type SecretRotation struct {
	DEKID       string `json:"dek_id"`
	Reencrypted int    `json:"reencrypted"`
	Skipped     int    `json:"skipped"`
}

// SecretPut stores a secret (PUT /v1/secrets/{name}) and returns its
// metadata. The value is sent over TLS and never comes back. A PUT is
// idempotent, so it is retried like a keyed write (the server keeps no
// idempotency record for secrets).
func (c *Client) SecretPut(ctx context.Context, name, value, description string) (*Secret, *Meta, error) {
	r := newWrite(http.MethodPut, secretsPath+"/"+url.PathEscape(name), "")
	r.jsonBody(struct {
		Value       string `json:"value"`
		Description string `json:"description,omitempty"`
	}{value, description})
	var s Secret
	m, err := c.call(ctx, r, &s)
	if err != nil {
		return nil, nil, err
	}
	return &s, m, nil
}

// SecretGet reads one secret's metadata (GET /v1/secrets/{name}).
func (c *Client) SecretGet(ctx context.Context, name string, q *QueryOptions) (*Secret, *Meta, error) {
	r := &request{method: http.MethodGet, path: secretsPath + "/" + url.PathEscape(name)}
	r.query, r.wait = q.values()
	var s Secret
	m, err := c.call(ctx, r, &s)
	if err != nil {
		return nil, nil, err
	}
	return &s, m, nil
}

// SecretList lists the secrets' metadata by name (GET /v1/secrets).
func (c *Client) SecretList(ctx context.Context, q *QueryOptions) ([]Secret, *Meta, error) {
	r := &request{method: http.MethodGet, path: secretsPath}
	r.query, r.wait = q.values()
	out := listOf[Secret]{field: "secrets"}
	m, err := c.call(ctx, r, &out)
	if err != nil {
		return nil, nil, err
	}
	return out.items, m, nil
}

// SecretDelete deletes a secret (DELETE /v1/secrets/{name}).
func (c *Client) SecretDelete(ctx context.Context, name string) (*Meta, error) {
	return c.call(ctx, &request{method: http.MethodDelete, path: secretsPath + "/" + url.PathEscape(name)}, nil)
}

// SecretRotate makes a new data key and re-encrypts every secret under it
// (POST /v1/secrets/rotate).
func (c *Client) SecretRotate(ctx context.Context) (*SecretRotation, *Meta, error) {
	var out SecretRotation
	m, err := c.call(ctx, &request{method: http.MethodPost, path: secretsPath + "/rotate"}, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, m, nil
}
