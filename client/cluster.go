package client

import (
	"context"
	"net/http"
	"net/url"
)

// Health checks that a server is alive (GET /v1/health).
func (c *Client) Health(ctx context.Context) error {
	_, err := c.call(ctx, &request{method: http.MethodGet, path: "/v1/health"}, nil)
	return err
}

// Ready checks that a server can serve requests: it knows a leader and has
// caught up (GET /v1/ready). A server that is not ready answers 503, which
// Ready returns without retrying.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.call(ctx, &request{method: http.MethodGet, path: "/v1/ready", noRetry: true}, nil)
	return err
}

// Status returns the raft state of the cluster (GET /v1/status).
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if _, err := c.call(ctx, &request{method: http.MethodGet, path: "/v1/status"}, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Join adds the server id, reachable for raft at raftAddress, to the
// cluster as a voter (POST /v1/cluster/join).
func (c *Client) Join(ctx context.Context, id, raftAddress string) error {
	body := struct {
		ID          string `json:"id"`
		RaftAddress string `json:"raft_address"`
	}{id, raftAddress}
	_, err := c.call(ctx, newWrite(http.MethodPost, "/v1/cluster/join", "").jsonBody(body), nil)
	return err
}

// Remove removes the server id from the cluster (DELETE
// /v1/cluster/servers/{id}).
func (c *Client) Remove(ctx context.Context, id string) error {
	_, err := c.call(ctx, newWrite(http.MethodDelete, "/v1/cluster/servers/"+url.PathEscape(id), ""), nil)
	return err
}
