package node

import (
	"errors"

	"github.com/hashicorp/raft"
	"github.com/moxxie/moxxie/api"
)

// mapRaftError turns raft's errors into the API's sentinel errors at the
// package boundary.
func mapRaftError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return api.ErrNotLeader
	case errors.Is(err, raft.ErrLeadershipLost):
		return api.ErrLeadershipLost
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return api.ErrTimeout
	}
	return err
}
