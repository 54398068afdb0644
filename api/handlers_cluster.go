package api

import (
	"net"
	"net/http"
	"strconv"
)

// maxIDLen bounds server IDs and tenants.
const maxIDLen = 64

// JoinResponse is the body of a successful POST /v1/cluster/join.
type JoinResponse struct {
	Joined string `json:"joined"`
}

// RemoveResponse is the body of a successful DELETE /v1/cluster/servers/{id}.
type RemoveResponse struct {
	Removed string `json:"removed"`
}

// validID reports whether id is 1 to 64 characters of [a-zA-Z0-9_.-].
func validID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch ch := id[i]; {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9', ch == '_', ch == '.', ch == '-':
		default:
			return false
		}
	}
	return true
}

// validHostPort reports whether addr is host:port with a non-empty host and
// a port from 1 to 65535.
func validHostPort(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	p, err := strconv.ParseUint(port, 10, 16)
	return err == nil && p != 0
}

// handleJoin adds a voter to the raft configuration.
func (s *server) handleJoin(c *call) error {
	var req JoinRequest
	if err := decodeJSON(c.body, &req, true); err != nil {
		return err
	}
	if !validID(req.ID) {
		return invalid("id", "must be 1 to 64 characters of a-z, A-Z, 0-9, '_', '.' and '-'")
	}
	if !validHostPort(req.RaftAddress) {
		return invalid("raft_address", "must be host:port with a port from 1 to 65535, not %q", req.RaftAddress)
	}
	if err := s.b.Join(c.r.Context(), req); err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, JoinResponse{Joined: req.ID})
	return nil
}

// handleRemove removes a server from the raft configuration.
func (s *server) handleRemove(c *call) error {
	id := c.r.PathValue("id")
	if !validID(id) {
		return invalid("id", "must be 1 to 64 characters of a-z, A-Z, 0-9, '_', '.' and '-'")
	}
	if err := s.b.Remove(c.r.Context(), id); err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, RemoveResponse{Removed: id})
	return nil
}
