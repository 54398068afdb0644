package api

import (
	"errors"
	"net/http"
	"strconv"
)

// healthResponse is the body of GET /v1/health.
type healthResponse struct {
	Status string `json:"status"`
	ID     string `json:"id"`
}

// readyResponse is the body of GET /v1/ready when the server can serve.
type readyResponse struct {
	Status string `json:"status"`
}

// handleHealth answers as long as the process serves HTTP.
func (s *server) handleHealth(c *call) error {
	writeJSON(c.w, http.StatusOK, healthResponse{Status: "ok", ID: s.b.ID()})
	return nil
}

// handleReady answers 200 when the server knows a leader and has caught
// up, 503 otherwise.
func (s *server) handleReady(c *call) error {
	if err := s.b.Ready(); err != nil {
		code := CodeNotReady
		if errors.Is(err, ErrNoLeader) {
			code = CodeNoLeader
		}
		return unavailable(code, err.Error(), nil)
	}
	writeJSON(c.w, http.StatusOK, readyResponse{Status: "ready"})
	return nil
}

// handleOpenAPI serves the embedded OpenAPI document.
func (s *server) handleOpenAPI(c *call) error {
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(openAPIDocument)))
	c.w.WriteHeader(http.StatusOK)
	_, _ = c.w.Write(openAPIDocument)
	return nil
}

// handleStatus reports the raft state of the cluster.
func (s *server) handleStatus(c *call) error {
	st, err := s.b.Status(c.r.Context())
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, st)
	return nil
}
