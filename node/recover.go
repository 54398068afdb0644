package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/moxxie/moxxie/fsm"
)

// RecoverPeer is one surviving server in a recovery configuration.
type RecoverPeer struct {
	ID          string `json:"id"`
	RaftAddress string `json:"raft_address"`
}

// Recover rewrites the raft configuration of a stopped server to exactly
// peers, after quorum was lost for good. Run it with the same peer list on
// every surviving server while all of them are stopped, then start them:
// they elect a leader among themselves. Committed writes the survivors hold
// are kept; writes only the lost servers had are gone.
func Recover(cfg *Config, peers []RecoverPeer) error {
	if len(peers) == 0 {
		return errors.New("recover: the peer list is empty")
	}
	self := false
	servers := make([]raft.Server, 0, len(peers))
	seen := map[string]bool{}
	for _, p := range peers {
		if p.ID == "" || checkHostPort(p.RaftAddress) != nil {
			return fmt.Errorf("recover: bad peer %+v: need id and raft_address host:port", p)
		}
		if seen[p.ID] {
			return fmt.Errorf("recover: server %s listed twice", p.ID)
		}
		seen[p.ID] = true
		self = self || p.ID == cfg.NodeID
		servers = append(servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddress), Suffrage: raft.Voter})
	}
	if !self {
		return fmt.Errorf("recover: this server (%s) is not in the peer list", cfg.NodeID)
	}
	dir := filepath.Join(cfg.DataDir, "raft")
	dbPath := filepath.Join(dir, "raft.db")
	if _, err := os.Stat(dbPath); err != nil {
		return fmt.Errorf("recover: no raft state at %s: %w", dbPath, err)
	}
	store, err := raftboltdb.New(raftboltdb.Options{Path: dbPath, BoltOptions: raftStoreOptions(time.Second)})
	if err != nil {
		return fmt.Errorf("recover: open %s (is the server still running?): %w", dbPath, err)
	}
	defer store.Close()
	snaps, err := raft.NewFileSnapshotStore(dir, 3, os.Stderr)
	if err != nil {
		return err
	}
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(cfg.NodeID)
	_, trans := raft.NewInmemTransport(raft.ServerAddress(cfg.RaftAddress))
	if err := raft.RecoverCluster(conf, fsm.New(), store, store, snaps, trans, raft.Configuration{Servers: servers}); err != nil {
		return fmt.Errorf("recover: %w", err)
	}
	return nil
}
