package node

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"

	"github.com/hashicorp/raft"
)

// Healthy reports whether the server is alive: it is not shutting down,
// raft has not shut down, and its own HTTPS API answers GET /v1/health
// through the API listener (so the listener is open, its accept loop runs
// and the handler chain answers). The server's certificate is verified
// against the cluster CA, as peers verify it. A missing leader or a store
// still catching up is not a failure here (GET /v1/ready says those):
// restarting a server that waits for its peers would not bring them back.
//
// moxxied sends systemd READY=1 after the first success and a watchdog
// ping after each later one; ctx bounds the check.
func (s *Server) Healthy(ctx context.Context) error {
	select {
	case <-s.shutdownCh:
		return errors.New("server is shutting down")
	default:
	}
	if st := s.raft.State(); st == raft.Shutdown {
		return errors.New("raft has shut down")
	}
	return s.checkAPI(ctx)
}

// checkAPI asks this server's API listener for GET /v1/health and checks
// that the answer comes from this server.
func (s *Server) checkAPI(ctx context.Context) error {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			// verifyPeer checks the chain against the cluster CA and the
			// server role; the API address may be a wildcard the
			// certificate does not name.
			InsecureSkipVerify: true, // #nosec G402 -- chain and role are verified against the cluster CA in verifyPeer
			VerifyConnection:   s.certs.verifyPeer,
		},
		// No Proxy: the check never leaves the host.
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	url := "https://" + selfAddress(s.apiAddr) + "/v1/health"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("API health check: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusTooManyRequests:
		// Rate limited: the API is busy, not dead.
		return nil
	default:
		return fmt.Errorf("API health check: GET %s answered %s", url, resp.Status)
	}
	var body struct {
		Status string `json:"status"`
		ID     string `json:"id"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body); err != nil {
		return fmt.Errorf("API health check: %w", err)
	}
	if body.ID != s.cfg.NodeID {
		return fmt.Errorf("API health check: %s answered as server %q, want %q", url, body.ID, s.cfg.NodeID)
	}
	return nil
}

// selfAddress returns an address this host can reach a listener bound to
// addr on: the address itself, or loopback for a wildcard or empty host.
func selfAddress(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case host == "":
		host = "127.0.0.1"
	case err == nil && ip.IsUnspecified() && ip.Is6() && !ip.Is4In6():
		host = "::1"
	case err == nil && ip.IsUnspecified():
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
