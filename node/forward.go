package node

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/moxxie/moxxie/api"
)

// Forward sends r to the leader over the mutual-TLS server connection and
// returns the leader's response. With no leader, or none reachable, it
// retries until the hold timeout and then returns api.ErrNoLeader.
func (s *Server) Forward(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	hold := time.Duration(s.cfg.HoldTimeout)
	ctx, cancel := context.WithTimeout(r.Context(), hold)
	defer cancel()
	for {
		addr, id := s.raft.LeaderWithID()
		if addr != "" && string(id) != s.cfg.NodeID {
			req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+string(addr)+r.URL.RequestURI(), bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.Header = r.Header.Clone()
			req.ContentLength = int64(len(body))
			resp, err := s.fwd.Do(req)
			if err == nil {
				return resp, nil
			}
			s.logger.Debug("forward to leader failed", "leader", id, "error", err)
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

// jitter returns a duration between d and 2d.
func jitter(d time.Duration) time.Duration {
	return d + rand.N(d)
}
