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
// retries until the hold timeout and then returns api.ErrNoLeader. Once
// the request was sent, a leader that stops leading, stops answering or
// drops the connection leaves its outcome unknown: Forward then sends a
// request with an Idempotency-Key again to the next leader (which answers
// the first attempt's result if it was applied) and answers one without a
// key with a *forwardLostError. The forward is traced as a client span
// whose context goes to the leader in the traceparent header.
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
	if r.GetBody == nil && r.Body != nil && r.Body != http.NoBody {
		return s.forwardStream(r)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	hold := time.Duration(s.cfg.HoldTimeout)
	ctx, cancel := context.WithTimeout(r.Context(), hold)
	defer cancel()
	retryable := r.Header.Get("Idempotency-Key") != ""
	var lost error          // the last attempt whose outcome is unknown
	var held *http.Response // the last refusal of a leader not ready (nothing proposed)
	for {
		changed := s.leaders.changed()
		addr, id := s.raft.LeaderWithID()
		if string(id) == s.cfg.NodeID {
			// This server won an election while the request waited.
			if err := s.awaitLeadingFor(ctx, r); !errors.Is(err, api.ErrNotLeader) {
				if err != nil && lost != nil && r.Context().Err() == nil {
					return nil, lost // an earlier attempt may have been applied
				}
				if err != nil {
					return nil, err
				}
				return s.serveLocal(r, bytes.NewReader(body), int64(len(body))), nil
			}
		} else if addr != "" {
			if span != nil {
				span.SetAttributes(attrLeader.String(string(id)))
			}
			resp, err := s.forwardOnce(r, fwdTarget{addr: string(addr), id: string(id), changed: changed}, body)
			var de *dialError
			var le *forwardLostError
			switch {
			case err == nil:
				if !notProposed(resp) || ctx.Err() != nil {
					return resp, nil
				}
				// The server we took for the leader no longer leads, or
				// leads but is not ready yet, and did not propose the
				// request: ask again, the new leader if there is one.
				held = resp
			case errors.As(err, &de):
				s.logger.DebugContext(r.Context(), "cannot reach the leader", "leader", id, "error", err)
			case errors.As(err, &le) && retryable && r.Context().Err() == nil:
				lost = err
				s.logger.InfoContext(r.Context(), "forward lost; sending it again with its idempotency key", "leader", id, "error", err)
			default:
				// The request may have reached the leader: without an
				// idempotency key, retrying could apply it twice.
				return nil, err
			}
		}
		select {
		case <-ctx.Done():
			if r.Context().Err() != nil {
				return nil, r.Context().Err()
			}
			if lost != nil {
				return nil, lost
			}
			if held != nil {
				return held, nil
			}
			return nil, api.ErrNoLeader
		case <-s.shutdownCh:
			if lost != nil {
				return nil, lost
			}
			return nil, api.ErrNoLeader
		case <-time.After(jitter(50 * time.Millisecond)):
		}
	}
}

// forwardStream forwards r, whose body streams (a snapshot restore, which
// the leader reads under its write fence), to the leader it waits for
// within the hold timeout. It is sent once: its body is read as it goes.
func (s *Server) forwardStream(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(s.cfg.HoldTimeout))
	defer cancel()
	for {
		changed := s.leaders.changed()
		addr, id := s.raft.LeaderWithID()
		switch {
		case string(id) == s.cfg.NodeID:
			if err := s.awaitLeadingFor(ctx, r); !errors.Is(err, api.ErrNotLeader) {
				if err != nil {
					return nil, err
				}
				return s.serveLocal(r, r.Body, r.ContentLength), nil
			}
		case addr != "":
			return s.forwardPlain(r, fwdTarget{addr: string(addr), id: string(id), changed: changed}, r.Body, r.ContentLength)
		}
		select {
		case <-ctx.Done():
			if err := r.Context().Err(); err != nil {
				return nil, err
			}
			return nil, api.ErrNoLeader
		case <-s.shutdownCh:
			return nil, api.ErrNoLeader
		case <-changed:
		}
	}
}

// forwardAnswerTimeout bounds the wait for a leader's answer to a batched
// forward, should the leader keep its leadership but not answer: a write
// on the leader waits at most defaultApplyTimeout to be proposed and then
// for its commit, which a leader that cannot commit gives up within its
// lease.
const forwardAnswerTimeout = 2 * defaultApplyTimeout

// fwdTarget is the leader a request is forwarded to, as this server saw
// it, and the channel closed when this server's view of the leader next
// changes.
type fwdTarget struct {
	addr, id string
	changed  <-chan struct{}
}

// forwardLostError means a forwarded request was sent but its leader
// did not answer it: the write may or may not have been applied. It wraps
// api.ErrLeadershipLost.
type forwardLostError struct {
	leader string
	why    string
}

func (e *forwardLostError) Error() string {
	return "the request was forwarded to the leader " + e.leader + ", which " + e.why +
		" before it answered; the write may or may not have been applied: retry with the same Idempotency-Key, or check before retrying without one"
}

func (e *forwardLostError) Unwrap() error { return api.ErrLeadershipLost }

// stillLeads is called once t.changed has closed: it renews t.changed and
// reports whether t's server may still lead: it does in this server's view
// (a change that came and went), or this server knows no leader for now (it
// lost contact, or runs an election, as a follower does at once after a
// pause), which is no sign that t stopped: the wait goes on until a leader
// is known again.
func (s *Server) stillLeads(t *fwdTarget) bool {
	t.changed = s.leaders.changed()
	_, id := s.raft.LeaderWithID()
	return id == "" || string(id) == t.id
}

// forwardOnce sends the request to t once: small writes in a batch frame,
// everything else as forwarded HTTP.
func (s *Server) forwardOnce(r *http.Request, t fwdTarget, body []byte) (*http.Response, error) {
	if batchable(r, body) {
		resp, err := s.forwardBatched(r.Context(), t, r, body)
		if !errors.Is(err, errFramesUnsupported) {
			return resp, err
		}
		// A leader of the previous version: nothing was sent.
	}
	return s.forwardPlain(r, t, bytes.NewReader(body), int64(len(body)))
}

// forwardPlain forwards r with body (size bytes, -1 if unknown) as plain
// HTTP to leader t. It may take long (a snapshot restore, a large body): it
// is bounded by the client's context and, until the leader answers, by its
// leadership. The answer's body may stream (an audit export): the context
// lives until the caller closes it.
func (s *Server) forwardPlain(r *http.Request, t fwdTarget, body io.Reader, size int64) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(r.Context())
	answered := make(chan struct{})
	go func(t fwdTarget) {
		for {
			select {
			case <-t.changed:
				if !s.stillLeads(&t) {
					cancel(&forwardLostError{leader: t.id, why: "stopped leading"})
					return
				}
			case <-answered:
				return
			}
		}
	}(t)
	req, err := http.NewRequestWithContext(ctx, r.Method, "http://"+t.addr+r.URL.RequestURI(), body)
	if err == nil {
		req.Header = r.Header.Clone()
		req.ContentLength = size
	}
	var resp *http.Response
	if err == nil {
		resp, err = s.fwd.Do(req)
	}
	close(answered)
	if err != nil {
		cause := context.Cause(ctx)
		cancel(nil)
		if cause != nil && r.Context().Err() == nil {
			return nil, cause
		}
		return nil, err
	}
	resp.Body = &closeCancels{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// closeCancels is a forwarded answer's body that ends its request's
// context when closed.
type closeCancels struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (c *closeCancels) Close() error {
	err := c.ReadCloser.Close()
	c.cancel(nil)
	return err
}

// notProposed reports whether resp is a 503 no_leader or restoring
// answer, which means the request was refused before anything was
// proposed and can be retried safely. It consumes and closes the body in
// that case.
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
	if json.Unmarshal(body, &e) != nil || (e.Error.Code != api.CodeNoLeader && e.Error.Code != api.CodeRestoring) {
		return false
	}
	return true
}

// awaitLeadingFor holds r, which waited for a leader and now finds this
// server leading, until the server is ready to serve it (AwaitLeading),
// within the hold timeout of ctx: served here as a forwarded request, the
// handler would not hold it. It answers api.ErrNotLeader when the server
// stopped leading meanwhile, and when the hold timeout passes the reason
// the server is not ready.
func (s *Server) awaitLeadingFor(ctx context.Context, r *http.Request) error {
	err := s.AwaitLeading(ctx, true)
	if errors.Is(err, api.ErrTimeout) && r.Context().Err() == nil {
		return s.catchingUp()
	}
	return err
}

// serveLocal runs a request that was waiting for a leader through this
// server's own handler, now that it leads.
func (s *Server) serveLocal(r *http.Request, body io.Reader, size int64) *http.Response {
	req := r.Clone(r.Context())
	req.Body = io.NopCloser(body)
	req.ContentLength = size
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	return rec.Result()
}

// jitter returns a duration between d and 2d.
func jitter(d time.Duration) time.Duration {
	return d + rand.N(d)
}
