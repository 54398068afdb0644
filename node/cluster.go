package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/fsm"
)

// Join adds a server as a voter. It is idempotent: joining a server that is
// already a voter at the same address succeeds without a change.
func (s *Server) Join(ctx context.Context, req api.JoinRequest) error {
	if !s.IsLeader() {
		return api.ErrNotLeader
	}
	cf := s.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return mapRaftError(err)
	}
	for _, srv := range cf.Configuration().Servers {
		if srv.ID == raft.ServerID(req.ID) && srv.Address == raft.ServerAddress(req.RaftAddress) && srv.Suffrage == raft.Voter {
			return nil
		}
		if srv.ID != raft.ServerID(req.ID) && srv.Address == raft.ServerAddress(req.RaftAddress) {
			return fmt.Errorf("%w: raft address %s is already used by server %s", errConflict, req.RaftAddress, srv.ID)
		}
	}
	f := s.raft.AddVoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddress), cf.Index(), timeoutFrom(ctx))
	if err := f.Error(); err != nil {
		return mapRaftError(err)
	}
	s.logger.Info("server joined", "id", req.ID, "raft_address", req.RaftAddress)
	return nil
}

// errConflict is reported for a join that would reuse another server's address.
var errConflict = errors.New("conflict")

// Remove removes a server from the raft configuration.
func (s *Server) Remove(ctx context.Context, id string) error {
	if !s.IsLeader() {
		return api.ErrNotLeader
	}
	cf := s.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return mapRaftError(err)
	}
	found := false
	for _, srv := range cf.Configuration().Servers {
		found = found || srv.ID == raft.ServerID(id)
	}
	if !found {
		return &fsm.NotFoundError{What: "server", ID: id}
	}
	if err := s.raft.RemoveServer(raft.ServerID(id), cf.Index(), timeoutFrom(ctx)).Error(); err != nil {
		return mapRaftError(err)
	}
	s.logger.Info("server removed", "id", id)
	return nil
}

func timeoutFrom(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return 10 * time.Second
}

// Status reports the raft configuration, asking each peer for its own
// state and API address.
func (s *Server) Status(ctx context.Context) (*api.Status, error) {
	cf := s.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return nil, mapRaftError(err)
	}
	_, leader := s.raft.LeaderWithID()
	st := &api.Status{
		Leader:       string(leader),
		Term:         s.raft.CurrentTerm(),
		CommitIndex:  s.raft.CommitIndex(),
		AppliedIndex: s.raft.AppliedIndex(),
	}
	servers := cf.Configuration().Servers
	st.Servers = make([]api.ServerStatus, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		st.Servers[i] = api.ServerStatus{ID: string(srv.ID), RaftAddress: string(srv.Address), Voter: srv.Suffrage == raft.Voter}
		if srv.ID == raft.ServerID(s.cfg.NodeID) {
			st.Servers[i].State = stateName(s.raft.State())
			st.Servers[i].APIAddress = s.apiAddr
			st.Servers[i].CertNotAfter = s.certs.NotAfter()
			continue
		}
		wg.Add(1)
		go func(ss *api.ServerStatus) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			info, err := s.callPeer(ctx, ss.RaftAddress, rpcRequest{Op: "info"})
			if err != nil {
				ss.State = "unreachable"
				return
			}
			ss.State, ss.APIAddress, ss.CertNotAfter = info.State, info.APIAddress, info.CertNotAfter
		}(&st.Servers[i])
	}
	wg.Wait()
	sort.Slice(st.Servers, func(i, j int) bool { return st.Servers[i].ID < st.Servers[j].ID })
	return st, nil
}

// Ready reports whether this server can serve: it knows a leader and its
// store has applied everything it knows to be committed.
func (s *Server) Ready() error {
	if addr, _ := s.raft.LeaderWithID(); addr == "" {
		return api.ErrNoLeader
	}
	if s.raft.AppliedIndex() < s.raft.CommitIndex() {
		return fmt.Errorf("catching up: applied %d of %d", s.raft.AppliedIndex(), s.raft.CommitIndex())
	}
	return nil
}

// AwaitLeading returns once this server leads with its term's barrier
// applied (see api.Backend): at once in the usual case, after the rest of
// earlier terms' entries right after an election, or, with wait false,
// at once either way. It returns api.ErrNotLeader when the server stops
// leading, and api.ErrNoLeader, with how far it has got, after the hold
// timeout or at once without wait.
func (s *Server) AwaitLeading(ctx context.Context, wait bool) error {
	if s.consistentReady.Load() {
		return nil
	}
	hold := time.NewTimer(time.Duration(s.cfg.HoldTimeout))
	defer hold.Stop()
	for !s.consistentReady.Load() {
		if !s.IsLeader() {
			return api.ErrNotLeader
		}
		if !wait {
			return s.catchingUp()
		}
		select {
		case <-ctx.Done():
			return api.ErrTimeout
		case <-s.shutdownCh:
			return api.ErrNotLeader
		case <-hold.C:
			return s.catchingUp()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// catchingUp is the api.ErrNoLeader of a leader whose barrier is not
// through yet: it has applied AppliedIndex of the LastIndex entries in its
// log. (raft's CommitIndex would say it is done: on a new leader it does
// not count earlier terms' entries until the barrier commits.)
func (s *Server) catchingUp() error {
	return fmt.Errorf("%w: this server leads but is still applying the log of the terms before its own (applied %d of %d entries)", api.ErrNoLeader, s.raft.AppliedIndex(), s.raft.LastIndex())
}

// VerifyLeader confirms leadership with a quorum and that the store holds
// every write acknowledged before the call, for ?consistent reads: the
// leader's barrier at the start of its term applied every earlier entry,
// and it acknowledges a write of its own term only after applying it.
// (raft's AppliedIndex counts an entry when raft hands it to the FSM, so
// a write committed but not yet acknowledged may still be missing; a read
// that misses it is ordered before it.)
func (s *Server) VerifyLeader(ctx context.Context) error {
	if err := mapRaftError(s.raft.VerifyLeader().Error()); err != nil {
		return err
	}
	commit := s.raft.CommitIndex()
	for !s.consistentReady.Load() || s.raft.AppliedIndex() < commit {
		select {
		case <-ctx.Done():
			return api.ErrTimeout
		case <-s.shutdownCh:
			return api.ErrNotLeader
		case <-time.After(5 * time.Millisecond):
		}
		if !s.IsLeader() {
			return api.ErrNotLeader
		}
	}
	return nil
}

// bootstrapOrJoin brings a new server into a cluster: with bootstrap_expect
// it waits until that many servers are known (itself and retry_join peers)
// and bootstraps them together; otherwise, or when a peer already belongs
// to a cluster, it asks the cluster to add it. A server with raft state does
// nothing: it rejoins through its stored configuration.
func (s *Server) bootstrapOrJoin() {
	if s.raft.LastIndex() > 0 {
		return
	}
	if s.cfg.BootstrapExpect == 1 {
		s.bootstrap([]raft.Server{{ID: raft.ServerID(s.cfg.NodeID), Address: raft.ServerAddress(s.raftAddr)}})
		return
	}
	if len(s.cfg.RetryJoin) == 0 {
		return
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-s.shutdownCh:
				return
			case <-time.After(jitter(250 * time.Millisecond)):
			}
		}
		if s.raft.LastIndex() > 0 {
			return // a leader has replicated its configuration to us
		}
		servers := map[string]raft.Server{s.cfg.NodeID: {ID: raft.ServerID(s.cfg.NodeID), Address: raft.ServerAddress(s.raftAddr), Suffrage: raft.Voter}}
		var clustered []*peerInfo
		for _, addr := range s.cfg.RetryJoin {
			info, err := s.callPeer(context.Background(), addr, rpcRequest{Op: "info"})
			if err != nil {
				continue
			}
			if info.HasState {
				clustered = append(clustered, info)
				continue
			}
			servers[info.ID] = raft.Server{ID: raft.ServerID(info.ID), Address: raft.ServerAddress(info.RaftAddress), Suffrage: raft.Voter}
		}
		if len(clustered) > 0 || s.cfg.BootstrapExpect == 0 {
			if s.joinVia(clustered) {
				return
			}
			continue
		}
		if len(servers) >= s.cfg.BootstrapExpect {
			list := make([]raft.Server, 0, len(servers))
			for _, srv := range servers {
				list = append(list, srv)
			}
			sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
			s.bootstrap(list)
			return
		}
	}
}

func (s *Server) bootstrap(servers []raft.Server) {
	err := s.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		s.logger.Error("bootstrap failed", "error", err)
		return
	}
	ids := make([]string, len(servers))
	for i, srv := range servers {
		ids[i] = string(srv.ID)
	}
	s.logger.Info("bootstrapped cluster", "servers", ids)
}

// joinVia asks a clustered peer's leader to add this server.
func (s *Server) joinVia(peers []*peerInfo) bool {
	req := rpcRequest{Op: "join", ID: s.cfg.NodeID, RaftAddress: s.raftAddr}
	for _, p := range peers {
		target := p.LeaderAddress
		if target == "" {
			continue
		}
		if _, err := s.callPeer(context.Background(), target, req); err != nil {
			s.logger.Warn("join failed", "via", target, "error", err)
			continue
		}
		s.logger.Info("joined cluster", "leader", p.LeaderID)
		return true
	}
	return false
}
