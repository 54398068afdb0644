package api

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// hopHeaders are connection-level headers that are not copied from the
// leader's response.
var hopHeaders = map[string]bool{
	"Connection":          true,
	"Content-Length":      true,
	"Keep-Alive":          true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
}

// forward sends the request to the leader through Backend.Forward and
// copies the leader's answer back. A request that was already forwarded
// once is not forwarded again: two servers that each think the other leads
// would otherwise bounce it between them.
func (s *server) forward(c *call) error {
	if from := c.r.Header.Get(headerForwarded); from != "" {
		return unavailable(CodeNoLeader, "request forwarded by "+from+" reached "+s.b.ID()+", which is not the leader either", nil)
	}
	fr := c.r.Clone(c.r.Context())
	fr.RequestURI = ""
	if c.rt.body == bodySnapshot {
		// Streamed to the leader, not read here first: the leader reads a
		// restore's upload under its write fence (handleSnapshotRestore).
		// Without GetBody it is sent once.
		limit := s.bodyLimit(c)
		if c.r.ContentLength > limit {
			return tooLarge(limit)
		}
		fr.Body, fr.GetBody = http.MaxBytesReader(c.w.ResponseWriter, c.r.Body, limit), nil
	} else {
		body, err := s.readBody(c)
		if err != nil {
			return err
		}
		fr.ContentLength = int64(len(body))
		if len(body) == 0 {
			fr.Body, fr.GetBody = http.NoBody, nil
		} else {
			fr.Body = io.NopCloser(bytes.NewReader(body))
			fr.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
	}
	fr.Header.Set(headerForwarded, s.b.ID())
	fr.Header.Set(headerForwardedFor, c.r.RemoteAddr) // the client's, for the audit log
	fr.Header.Set(headerRequestID, c.w.reqID)
	setForwardedCertIdentity(fr, c.r) // the client's certificate, for authentication

	resp, err := s.forwardToLeader(fr)
	if err != nil {
		if errors.Is(err, ErrNoLeader) || errors.Is(err, ErrNotLeader) {
			return err
		}
		if ctxErr := c.r.Context().Err(); ctxErr != nil {
			return unavailable(CodeTimeout, "request canceled before the leader answered", ctxErr)
		}
		if errors.Is(err, ErrLeadershipLost) {
			// Sent, but not answered: the outcome is unknown.
			return unavailable(CodeLeadershipLost, err.Error(), nil)
		}
		// Forward answers api.ErrNoLeader for a request it could not
		// send; after any other failure it may have reached the leader.
		return unavailable(CodeLeadershipLost, "forwarding to the leader failed ("+err.Error()+"); the request may or may not have been applied: retry with the same Idempotency-Key", err)
	}
	defer resp.Body.Close()
	served := true
	if v := resp.Header.Get(headerDNSIndex); v != "" && c.rt.Kind != KindRead {
		if index, err := strconv.ParseUint(v, 10, 64); err == nil {
			served = s.waitDNS(c, index)
		}
	}
	h := c.w.Header()
	for k, vv := range resp.Header {
		if !hopHeaders[k] {
			h[k] = vv
		}
	}
	if !served {
		dnsNotYet(h)
	}
	if resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	c.w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(c.w, resp.Body); err != nil {
		s.log.WarnContext(c.r.Context(), "copying the leader's response failed",
			"path", c.r.URL.Path, "error", err)
	}
	return nil
}
