package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/moxxie/moxxie/audit"
)

// AuditQuery selects audit entries (GET /v1/audit).
type AuditQuery struct {
	// SinceSeq skips entries before it; Limit bounds the entries (the
	// server's default is 100, at most 10000).
	SinceSeq uint64
	Limit    int
	// Last, instead of Limit, asks for the newest Last entries (still in
	// sequence order).
	Last int
	// TokenID and Action keep only a token's or an action's entries.
	TokenID string
	Action  string
}

// AuditList is one page of the audit log and the head of its chain.
type AuditList struct {
	Entries []audit.Entry `json:"entries"`
	Head    audit.Head    `json:"head"`
}

// AuditVerifyResult is the server's verification of the stored log.
type AuditVerifyResult struct {
	OK     bool          `json:"ok"`
	Report *audit.Report `json:"report,omitempty"`
	Error  *struct {
		Kind    audit.Kind `json:"kind"`
		Seq     uint64     `json:"seq"`
		Message string     `json:"message"`
	} `json:"error,omitempty"`
}

// AuditList lists audit entries in order (GET /v1/audit).
func (c *Client) AuditList(ctx context.Context, aq AuditQuery, q *QueryOptions) (*AuditList, *Meta, error) {
	r := &request{method: http.MethodGet, path: "/v1/audit"}
	r.query, r.wait = q.values()
	if r.query == nil {
		r.query = url.Values{}
	}
	if aq.SinceSeq > 0 {
		r.query.Set("since_seq", strconv.FormatUint(aq.SinceSeq, 10))
	}
	if aq.Limit > 0 {
		r.query.Set("limit", strconv.Itoa(aq.Limit))
	}
	if aq.Last > 0 {
		r.query.Set("last", strconv.Itoa(aq.Last))
	}
	if aq.TokenID != "" {
		r.query.Set("token", aq.TokenID)
	}
	if aq.Action != "" {
		r.query.Set("action", aq.Action)
	}
	var out AuditList
	m, err := c.call(ctx, r, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, m, nil
}

// AuditCheckpoints lists the stored checkpoints (GET /v1/audit/checkpoints).
func (c *Client) AuditCheckpoints(ctx context.Context) ([]audit.Checkpoint, error) {
	var out struct {
		Checkpoints []audit.Checkpoint `json:"checkpoints"`
	}
	if _, err := c.call(ctx, &request{method: http.MethodGet, path: "/v1/audit/checkpoints"}, &out); err != nil {
		return nil, err
	}
	return out.Checkpoints, nil
}

// AuditVerify asks the server to verify the stored log (GET
// /v1/audit/verify).
func (c *Client) AuditVerify(ctx context.Context) (*AuditVerifyResult, error) {
	var out AuditVerifyResult
	if _, err := c.call(ctx, &request{method: http.MethodGet, path: "/v1/audit/verify"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AuditExport streams the log from sinceSeq as JSON lines into w (GET
// /v1/audit/export). A failure after bytes reached w is not retried.
func (c *Client) AuditExport(ctx context.Context, sinceSeq uint64, w io.Writer) (int64, error) {
	r := &request{method: http.MethodGet, path: "/v1/audit/export"}
	if sinceSeq > 0 {
		r.query = url.Values{"since_seq": {strconv.FormatUint(sinceSeq, 10)}}
	}
	resp, err := c.do(ctx, r)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("audit export: after %d bytes: %s", n, describe(err))
	}
	return n, nil
}
