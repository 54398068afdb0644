package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/telemetry"
	"go.opentelemetry.io/otel/attribute"
)

// Forward sends r to the leader over the mutual-TLS server connection and
// returns the leader's response. With no leader, or none reachable, it
// retries until the hold timeout and then returns api.ErrNoLeader. The
// forward is traced as a client span whose context goes to the leader in
// the traceparent header.
func (s *Server) Forward(r *http.Request) (resp *http.Response, err error) {
	r, span := s.startForwardSpan(r)
	if span != nil {
		defer func() {
			if resp != nil {
				span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
			}
			telemetry.EndSpan(span, err)
		}()
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	hold := time.Duration(s.cfg.HoldTimeout)
	ctx, cancel := context.WithTimeout(r.Context(), hold)
	defer cancel()
	for {
		addr, id := s.raft.LeaderWithID()
		if string(id) == s.cfg.NodeID {
			// This server won an election while the request waited.
			return s.serveLocal(r, body), nil
		}
		if addr != "" {
			if span != nil {
				span.SetAttributes(attrLeader.String(string(id)))
			}
			resp, err := s.forwardOnce(r, string(addr), body)
			if err == nil {
				if !notProposed(resp) || ctx.Err() != nil {
					return resp, nil
				}
				// The server we took for the leader no longer leads and did
				// not propose the request: look for the new leader.
			} else {
				var de *dialError
				if !errors.As(err, &de) {
					// The request may have reached the leader: retrying
					// could apply it twice.
					return nil, err
				}
				s.logger.DebugContext(r.Context(), "cannot reach the leader", "leader", id, "error", err)
			}
		}
		select {
		case <-ctx.Done():
			if r.Context().Err() != nil {
				return nil, r.Context().Err()
			}
			return nil, api.ErrNoLeader
		case <-s.shutdownCh:
			return nil, api.ErrNoLeader
		case <-time.After(jitter(50 * time.Millisecond)):
		}
	}
}

// forwardOnce sends the request to addr once: small writes in a batch
// frame, everything else as forwarded HTTP.
func (s *Server) forwardOnce(r *http.Request, addr string, body []byte) (*http.Response, error) {
	if batchable(r, body) {
		resp, err := s.forwardBatched(r.Context(), addr, r, body)
		if !errors.Is(err, errFramesUnsupported) {
			return resp, err
		}
		// A leader of the previous version: nothing was sent.
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+addr+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = r.Header.Clone()
	req.ContentLength = int64(len(body))
	return s.fwd.Do(req)
}

// notProposed reports whether resp is a 503 no_leader answer, which means
// the request was refused before anything was proposed and can be retried
// safely. It consumes and closes the body in that case.
func notProposed(resp *http.Response) bool {
	if resp.StatusCode != http.StatusServiceUnavailable {
		return false
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return false
	}
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Code != "no_leader" {
		return false
	}
	return true
}

// serveLocal runs a request that was waiting for a leader through this
// server's own handler, now that it leads.
func (s *Server) serveLocal(r *http.Request, body []byte) *http.Response {
	req := r.Clone(r.Context())
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	return rec.Result()
}

// jitter returns a duration between d and 2d.
func jitter(d time.Duration) time.Duration {
	return d + rand.N(d)
}
