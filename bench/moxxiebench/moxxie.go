package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"
)

// clusterStatus is the part of GET /v1/status the benchmarks use.
type clusterStatus struct {
	Leader  string         `json:"leader"`
	Term    uint64         `json:"term"`
	Servers []serverStatus `json:"servers"`
}

// serverStatus is one server in GET /v1/status.
type serverStatus struct {
	ID         string `json:"id"`
	APIAddress string `json:"api_address"`
	// State is leader, follower, candidate or unreachable.
	State string `json:"state"`
	Voter bool   `json:"voter"`
}

// devServer is one entry of a dev cluster's servers.json.
type devServer struct {
	ID          string `json:"id"`
	PID         int    `json:"pid"`
	APIAddress  string `json:"api_address"`
	RaftAddress string `json:"raft_address"`
}

// moxxieAPI talks to a Moxxie cluster with one token over one client.
type moxxieAPI struct {
	client  *http.Client
	token   string
	timeout time.Duration
}

// status returns GET /v1/status as answered through base.
func (m *moxxieAPI) status(ctx context.Context, base string) (*clusterStatus, error) {
	o, body := send(ctx, m.client, http.MethodGet, base+"/v1/status", m.token, nil, m.timeout, http.StatusOK)
	if o.Class != "" {
		return nil, fmt.Errorf("GET %s/v1/status: %s %s", base, o.Class, o.Detail)
	}
	var st clusterStatus
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("GET %s/v1/status: %w", base, err)
	}
	return &st, nil
}

// ready reports whether GET base/v1/ready answers 200: the server knows a
// leader and has applied everything committed.
func (m *moxxieAPI) ready(ctx context.Context, base string) bool {
	o, _ := send(ctx, m.client, http.MethodGet, base+"/v1/ready", "", nil, m.timeout, http.StatusOK)
	return o.Class == ""
}

// leaderAddr returns the base URL of the leader as reported by st.
func leaderAddr(st *clusterStatus) (string, error) {
	if st.Leader == "" {
		return "", errors.New("no leader")
	}
	for _, s := range st.Servers {
		if s.ID == st.Leader {
			if s.APIAddress == "" {
				return "", fmt.Errorf("leader %s has no api_address in /v1/status", s.ID)
			}
			return baseURL(s.APIAddress), nil
		}
	}
	return "", fmt.Errorf("leader %s is not among the servers in /v1/status", st.Leader)
}

// waitLeader polls /v1/status through each of addrs in turn until one
// reports a leader, and returns that status.
func (m *moxxieAPI) waitLeader(ctx context.Context, addrs []string, timeout time.Duration) (*clusterStatus, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for i := 0; ; i++ {
		st, err := m.status(ctx, addrs[i%len(addrs)])
		if err == nil && st.Leader != "" {
			return st, nil
		}
		if err == nil {
			err = errors.New("no leader")
		}
		last = err
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no leader after %v: %w", timeout, last)
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
}

// readServers reads a dev cluster's servers.json.
func readServers(path string) ([]devServer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []devServer
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists no servers", path)
	}
	return out, nil
}
