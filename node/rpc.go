package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/version"
)

// rpcTimeout bounds one server-to-server RPC.
const rpcTimeout = 3 * time.Second

// rpcRequest is the body of a connRPC connection.
type rpcRequest struct {
	Op          string `json:"op"` // "info" or "join"
	ID          string `json:"id,omitempty"`
	RaftAddress string `json:"raft_address,omitempty"`
}

// peerInfo answers the "info" RPC: who a server is and what it knows.
type peerInfo struct {
	ID            string `json:"id"`
	RaftAddress   string `json:"raft_address"`
	APIAddress    string `json:"api_address"`
	State         string `json:"state"`
	LeaderID      string `json:"leader_id"`
	LeaderAddress string `json:"leader_address"`
	HasState      bool   `json:"has_state"`
	Version       string `json:"version"`
	Error         string `json:"error,omitempty"`
	// CertNotAfter is when the server's TLS certificate expires.
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`
	// CommitIndex is the server's raft commit index: a leader's tells a
	// restarted server how far it must apply before it serves DNS.
	CommitIndex uint64 `json:"commit_index,omitempty"`
}

func (s *Server) handleRPC(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(rpcTimeout))
	var req rpcRequest
	if err := json.NewDecoder(c).Decode(&req); err != nil {
		return
	}
	info := s.info()
	switch req.Op {
	case "info":
	case "join":
		ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
		err := s.Join(ctx, api.JoinRequest{ID: req.ID, RaftAddress: req.RaftAddress})
		cancel()
		if err != nil {
			info.Error = err.Error()
		}
	default:
		info.Error = fmt.Sprintf("unknown op %q", req.Op)
	}
	_ = json.NewEncoder(c).Encode(info)
}

func (s *Server) info() peerInfo {
	addr, id := s.raft.LeaderWithID()
	has := s.raft.LastIndex() > 0
	return peerInfo{
		ID: s.cfg.NodeID, RaftAddress: s.raftAddr, APIAddress: s.apiAddr,
		State: stateName(s.raft.State()), LeaderID: string(id), LeaderAddress: string(addr),
		HasState: has, Version: version.Version, CertNotAfter: s.certs.NotAfter(),
		CommitIndex: s.raft.CommitIndex(),
	}
}

// callPeer sends one RPC to the server at raft address addr.
func (s *Server) callPeer(ctx context.Context, addr string, req rpcRequest) (*peerInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	c, err := s.mux.dial(ctx, addr, connRPC)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, err
	}
	var info peerInfo
	if err := json.NewDecoder(c).Decode(&info); err != nil {
		return nil, err
	}
	if info.Error != "" {
		return &info, errors.New(info.Error)
	}
	return &info, nil
}

func stateName(st raft.RaftState) string {
	switch st {
	case raft.Leader:
		return "leader"
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	default:
		return "shutdown"
	}
}
