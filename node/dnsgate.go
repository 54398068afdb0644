package node

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

// dnsGatePoll is how often openDNS looks again while it waits for a leader
// or for the store to catch up.
const dnsGatePoll = 20 * time.Millisecond

// dnsGateFresh is how old, at most, the leader's commit index that a
// starting server's store caught up with may be when its DNS opens: a
// server that took longer to catch up asks again, since the leader
// committed more meanwhile.
const dnsGateFresh = 250 * time.Millisecond

// dnsGateRounds bounds the rounds of catching up: a server still behind
// by more than dnsGateFresh after them (its leader's answers slow, or its
// store unable to keep up) opens DNS anyway, as behind as it is, rather
// than answer SERVFAIL for as long as that lasts.
const dnsGateRounds = 5

// openDNS lets the DNS server answer once this server's store holds every
// write the cluster had committed at most dnsGateFresh before. Until then
// its DNS server answers SERVFAIL: a server that starts again restores its
// last snapshot and applies the log after it only as the leader tells it
// what is committed, so it would answer from a state older than the one it
// answered from before it stopped, without names that exist and with SOA
// serials that went back. Once open, it stays open, also without a leader,
// as reads of the API do.
func (s *Server) openDNS() {
	start := time.Now()
	target, rounds, ok := catchUp(s.shutdownCh, s.leaderCommit, s.awaitApplied, time.Now, dnsGatePoll, dnsGateFresh, dnsGateRounds)
	if !ok {
		return
	}
	s.dnsSrc.open()
	log := s.logger.Info
	if rounds == dnsGateRounds {
		log = s.logger.Warn
	}
	log("DNS: answering, the store holds what the leader had committed", "index", target, "rounds", rounds,
		"waited", time.Since(start).Round(time.Millisecond))
}

// catchUp asks for the leader's commit index (commit) and waits until the
// store has applied it (await), again until one such round took at most
// fresh, or for at most maxRounds rounds: under writes, a store that took
// seconds to catch up is seconds behind when it gets there. It polls
// every poll while commit knows no leader, and returns the last index
// waited for and the rounds it took, or false when stop closes or await
// gives up.
func catchUp(stop <-chan struct{}, commit func() (uint64, bool), await func(uint64) bool, now func() time.Time,
	poll, fresh time.Duration, maxRounds int) (target uint64, rounds int, ok bool) {
	for {
		asked := now()
		if idx, ok := commit(); ok {
			rounds++
			if !await(idx) {
				return 0, rounds, false
			}
			if now().Sub(asked) <= fresh || rounds == maxRounds {
				return idx, rounds, true
			}
			continue
		}
		select {
		case <-stop:
			return 0, rounds, false
		case <-time.After(poll):
		}
	}
}

// leaderCommit returns the leader's commit index, asking it when it is
// another server. A leader answers once it applied the entries of the
// terms before its own (its barrier).
func (s *Server) leaderCommit() (uint64, bool) {
	addr, id := s.raft.LeaderWithID()
	switch {
	case addr == "":
		return 0, false
	case id == raft.ServerID(s.cfg.NodeID):
		if !s.consistentReady.Load() {
			return 0, false
		}
		return s.raft.CommitIndex(), true
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	info, err := s.callPeer(ctx, string(addr), rpcRequest{Op: "info"})
	if err != nil || info.State != stateName(raft.Leader) {
		return 0, false
	}
	return info.CommitIndex, true
}

// awaitApplied waits until the store has applied the log up to target and
// reports whether it has; false when the server shuts down. raft counts an
// entry as applied when it hands it to the FSM, so it waits for the store
// to have applied the last command up to target too: entries without a
// command (a new leader's first, configuration changes) never show there.
func (s *Server) awaitApplied(target uint64) bool {
	for s.raft.AppliedIndex() < target {
		select {
		case <-s.shutdownCh:
			return false
		case <-time.After(dnsGatePoll):
		}
	}
	last := s.lastCommandAtOrBelow(target)
	for s.fsm.State().LatestIndex() < last {
		select {
		case <-s.shutdownCh:
			return false
		case <-time.After(time.Millisecond):
		}
	}
	return true
}

// lastCommandAtOrBelow returns the index of the last command entry at or
// below index in s's log, the last one its FSM sees (raft keeps noop and
// configuration entries from it), or 0 when there is none or the entries
// were compacted into a snapshot, which the state holds.
func (s *Server) lastCommandAtOrBelow(index uint64) uint64 {
	for i := index; i > 0; i-- {
		var l raft.Log
		if err := s.store.GetLog(i, &l); err != nil {
			return 0
		}
		if l.Type == raft.LogCommand {
			return i
		}
	}
	return 0
}
