package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// SiteMember is one server of a site as the answering server's view of
// the sites' pool shows it.
type SiteMember struct {
	Name       string    `json:"name"`
	Site       string    `json:"site"`
	Node       string    `json:"node"`
	Role       string    `json:"role"`
	APIAddress string    `json:"api_address"`
	Addr       string    `json:"gossip_address"`
	State      string    `json:"state"` // alive, suspect, dead, left
	Since      time.Time `json:"since"`
	Leader     bool      `json:"leader"`
	Healthy    bool      `json:"healthy"`
	Down       []string  `json:"down_votes,omitempty"`
}

// Site is one site: its state (up, degraded, unreachable, down, left), its
// servers, and the other sites voting it down.
type Site struct {
	Name      string       `json:"name"`
	Role      string       `json:"role"`
	State     string       `json:"state"`
	Members   []SiteMember `json:"members"`
	Votes     []string     `json:"votes,omitempty"`
	Quorum    int          `json:"quorum"`
	DownSince time.Time    `json:"down_since,omitzero"`
}

// Sites is the answer of GET /v1/sites.
type Sites struct {
	// Local is the site of the server that answered.
	Local string `json:"local"`
	Sites []Site `json:"sites"`
}

// Sites lists every site the answering server's view of the pool knows
// (GET /v1/sites).
func (c *Client) Sites(ctx context.Context) (*Sites, error) {
	var out Sites
	if _, err := c.call(ctx, &request{method: http.MethodGet, path: "/v1/sites"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Site reads one site's state and servers (GET /v1/sites/{name}).
func (c *Client) Site(ctx context.Context, name string) (*Site, error) {
	var out Site
	if _, err := c.call(ctx, &request{method: http.MethodGet, path: "/v1/sites/" + url.PathEscape(name)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ForgetSite declares a site of which no server is alive gone for good,
// so that it no longer counts in the quorum of the other sites (POST
// /v1/sites/{name}/forget), and returns it as the answering server sees
// it then: left.
func (c *Client) ForgetSite(ctx context.Context, name string) (*Site, error) {
	var out Site
	if _, err := c.call(ctx, &request{method: http.MethodPost, path: "/v1/sites/" + url.PathEscape(name) + "/forget"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
