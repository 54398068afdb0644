package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/moxxie/moxxie/version"
)

// The debug routes are local: the server asked answers for itself. To
// reach one server, make a Client with that server's address alone.

// GetRaw copies the answer of GET path (with query, which may be nil)
// into w as the server sent it, for tools that keep answers verbatim,
// such as moxxiectl debug bundle. An error answer is an *APIError and
// leaves w untouched; a failure after bytes reached w is not retried.
func (c *Client) GetRaw(ctx context.Context, path string, query url.Values, w io.Writer) (*Meta, error) {
	return c.getRaw(ctx, &request{method: http.MethodGet, path: path, query: query}, w)
}

func (c *Client) getRaw(ctx context.Context, r *request, w io.Writer) (*Meta, error) {
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	base := resp.Request.URL.Scheme + "://" + resp.Request.URL.Host
	m := meta(resp, base)
	if n, err := io.Copy(w, resp.Body); err != nil {
		return m, fmt.Errorf("GET %s from %s: after %d bytes: %s", r.path, base, n, describe(err))
	}
	return m, nil
}

// Metrics copies the server's metrics, in the Prometheus text format,
// into w (GET /v1/metrics).
func (c *Client) Metrics(ctx context.Context, w io.Writer) error {
	_, err := c.GetRaw(ctx, "/v1/metrics", nil, w)
	return err
}

// Profile copies the Go profile name of the server (GET
// /debug/pprof/{name}: heap, goroutine, allocs, block, mutex,
// threadcreate, profile or trace) into w. query carries its parameters:
// debug=1 for text, seconds for how long a CPU profile or trace runs (the
// attempt's timeout allows for them). Admin tokens only.
func (c *Client) Profile(ctx context.Context, name string, query url.Values, w io.Writer) error {
	r := &request{method: http.MethodGet, path: "/debug/pprof/" + url.PathEscape(name), query: query}
	if name == "profile" || name == "trace" {
		r.wait = 30 * time.Second
		if s, err := strconv.ParseFloat(query.Get("seconds"), 64); err == nil && s > 0 && s <= 3600 {
			r.wait = time.Duration(s * float64(time.Second))
		}
	}
	_, err := c.getRaw(ctx, r, w)
	return err
}

// DebugConfig is a server's effective configuration (GET
// /v1/debug/config).
type DebugConfig struct {
	// ID is the server that answered.
	ID string `json:"id"`
	// Version is its build.
	Version version.Info `json:"version"`
	// Config is its configuration under the configuration file's keys,
	// secrets named but never shown.
	Config map[string]any `json:"config"`
}

// DebugConfig reads the effective configuration of the server the client
// reaches (GET /v1/debug/config). Admin tokens only.
func (c *Client) DebugConfig(ctx context.Context) (*DebugConfig, error) {
	var out DebugConfig
	if _, err := c.call(ctx, &request{method: http.MethodGet, path: "/v1/debug/config"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DebugLogs are a server's latest log records (GET /v1/debug/logs).
type DebugLogs struct {
	// ID is the server that answered.
	ID string `json:"id"`
	// Lines are the records, oldest first, each a JSON object.
	Lines []json.RawMessage `json:"lines"`
}

// DebugLogs reads up to lines of the latest log records of the server the
// client reaches (GET /v1/debug/logs); 0 asks for the server's default.
// Admin tokens only.
func (c *Client) DebugLogs(ctx context.Context, lines int) (*DebugLogs, error) {
	var q url.Values
	if lines > 0 {
		q = url.Values{"lines": {strconv.Itoa(lines)}}
	}
	var out DebugLogs
	if _, err := c.call(ctx, &request{method: http.MethodGet, path: "/v1/debug/logs", query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
