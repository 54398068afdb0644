package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
)

// SnapshotSave streams a backup archive of the whole state from the leader
// (GET /v1/snapshot) into w. The archive is not verified here: see
// fsm.ReadArchive. A failure after bytes reached w is not retried.
func (c *Client) SnapshotSave(ctx context.Context, w io.Writer) (*SnapshotMeta, error) {
	resp, err := c.do(ctx, &request{method: http.MethodGet, path: "/v1/snapshot"})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	base := resp.Request.URL.Scheme + "://" + resp.Request.URL.Host
	m := meta(resp, base)
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), resp.Body)
	if err != nil {
		return nil, fmt.Errorf("snapshot from %s: after %d bytes: %s", base, n, describe(err))
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return nil, fmt.Errorf("snapshot from %s: got %d of %d bytes", base, n, resp.ContentLength)
	}
	return &SnapshotMeta{
		Index:        m.Index,
		ServerSHA256: resp.Header.Get(headerSnapshotSHA256),
		SHA256:       hex.EncodeToString(h.Sum(nil)),
		Size:         n,
		RequestID:    m.RequestID,
		Address:      base,
	}, nil
}

// SnapshotRestore replaces the whole cluster state with the archive read
// from r (PUT /v1/snapshot) and returns the index at which it was restored.
// The archive is read into memory first, so the request can be sent again,
// but only after an answer that says nothing was restored (503 no_leader,
// not_ready or restoring): a restore is no idempotent write, and one sent
// again after an unknown outcome (503 leadership_lost, a connection lost
// once it was sent) could drop what the cluster acknowledged since the
// first one took effect.
func (c *Client) SnapshotRestore(ctx context.Context, r io.Reader) (uint64, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return 0, fmt.Errorf("read snapshot: %w", err)
	}
	req := &request{method: http.MethodPut, path: "/v1/snapshot", retryCodes: []string{"no_leader", "not_ready", "restoring"}}
	req.body, req.contentType = data, "application/octet-stream"
	var out struct {
		RestoredIndex uint64 `json:"restored_index"`
	}
	if _, err := c.call(ctx, req, &out); err != nil {
		return 0, err
	}
	return out.RestoredIndex, nil
}
