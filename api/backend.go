// Package api serves Moxxie's HTTP API under /v1: routing, authentication,
// request IDs, JSON errors, strict decoding, forwarding to the leader, read
// consistency modes, blocking queries and the OpenAPI document.
//
// The package does not know how a server is built: it talks to a Backend,
// which node.Server implements.
package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/moxxie/moxxie/fsm"
)

// Errors a Backend returns. Handlers map them to HTTP statuses.
var (
	// ErrNoLeader means no leader was known within the hold timeout (503).
	ErrNoLeader = errors.New("no cluster leader")
	// ErrNotLeader means a leader-only operation reached a follower; the
	// request was not proposed and may be retried elsewhere (503).
	ErrNotLeader = errors.New("not the leader")
	// ErrLeadershipLost means leadership was lost after the command was
	// proposed: it may or may not have been applied (503; retry with the
	// same Idempotency-Key to find out safely).
	ErrLeadershipLost = errors.New("leadership lost while applying; outcome unknown")
	// ErrRestoring means a write waited the hold timeout for a snapshot
	// restore to end; it was not proposed (503).
	ErrRestoring = errors.New("a snapshot restore is in progress; writes wait for it up to the hold timeout: retry")
	// ErrRestoreRunning means a restore was asked for while another ran
	// (409).
	ErrRestoreRunning = errors.New("another snapshot restore is in progress")
	// ErrTimeout means raft did not commit the command in time (503).
	ErrTimeout = errors.New("timed out waiting for raft")
)

// Status is the body of GET /v1/status.
type Status struct {
	Leader       string         `json:"leader"`
	Term         uint64         `json:"term"`
	CommitIndex  uint64         `json:"commit_index"`
	AppliedIndex uint64         `json:"applied_index"`
	Servers      []ServerStatus `json:"servers"`
}

// ServerStatus describes one server of the raft configuration.
type ServerStatus struct {
	ID          string `json:"id"`
	RaftAddress string `json:"raft_address"`
	APIAddress  string `json:"api_address"`
	// State is leader, follower, candidate, or unreachable when the server
	// did not answer.
	State string `json:"state"`
	Voter bool   `json:"voter"`
	// CertNotAfter is when the server's TLS certificate expires; absent
	// when the server did not answer.
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`
}

// JoinRequest is the body of POST /v1/cluster/join.
type JoinRequest struct {
	ID          string `json:"id"`
	RaftAddress string `json:"raft_address"`
}

// Backend is what the API needs from the server it runs in.
type Backend interface {
	// ID returns this server's ID.
	ID() string
	// State returns the local replicated store for reads.
	State() *fsm.Store
	// IsLeader reports whether this server is the raft leader now.
	IsLeader() bool
	// WaitDNS waits until this server's DNS answers from a state that
	// holds the change of raft index index to what it serves, or ctx
	// ends; a server without DNS returns at once.
	WaitDNS(ctx context.Context, index uint64) error
	// Forward delivers r to the leader, waiting up to the hold timeout for
	// one, and returns the leader's response. It returns ErrNoLeader when no
	// leader appeared in time.
	Forward(r *http.Request) (*http.Response, error)
	// Apply proposes cmd through raft and waits for the FSM's result and the
	// index it was applied at. Only the leader may apply (ErrNotLeader).
	Apply(ctx context.Context, cmd fsm.Command) (*fsm.Result, uint64, error)
	// VerifyLeader confirms with a quorum that this server still leads and
	// waits until its FSM has applied everything committed (for ?consistent).
	VerifyLeader(ctx context.Context) error
	// AwaitLeading returns once this server, which leads, has applied every
	// entry of the terms before its own, so that the tokens, objects and
	// idempotency records it reads are those of the leader before it. A
	// server that has just won an election may still be applying them. It
	// returns ErrNotLeader when the server stops leading meanwhile, and
	// ErrNoLeader (wrapped, with the reason) after the hold timeout, or at
	// once when wait is false.
	AwaitLeading(ctx context.Context, wait bool) error
	// Status reports the raft state of the cluster.
	Status(ctx context.Context) (*Status, error)
	// Join adds a voter; leader only.
	Join(ctx context.Context, req JoinRequest) error
	// Remove removes a server; leader only. A server not in the raft
	// configuration is a *fsm.NotFoundError of What "server".
	Remove(ctx context.Context, id string) error
	// SnapshotSave writes a consistent, checksummed backup archive to w;
	// leader only.
	SnapshotSave(ctx context.Context, w io.Writer) (*fsm.ArchiveMeta, error)
	// SnapshotRestore replaces the whole state with the archive read
	// returns, once it verified completely, and replicates it to every
	// server; leader only. From the call of read until the state is
	// replaced, writes wait (up to the hold timeout, then ErrRestoring):
	// none is acknowledged during a restore and then lost to it. The first
	// entry after the restored state carries meta (the backend stamps its
	// time), so that the audit log records the restore before the writes
	// that waited for it.
	SnapshotRestore(ctx context.Context, meta fsm.WriteMeta, read func() (*fsm.Archive, error)) (*fsm.Archive, error)
	// Ready returns nil when the server can serve: a leader is known and the
	// local FSM has caught up with the commit index.
	Ready() error
	// Now returns the leader clock used to stamp commands.
	Now() time.Time
	// Platform names the virtualization platform the cluster manages
	// ("proxmox"), or "" when none is configured.
	Platform() string
	// SealSecret encrypts value for the secret called name under the
	// current data key; when there is none yet it makes one and stores it
	// first, stamped with meta. Leader only; ErrNoKEK without a
	// key-encryption key.
	SealSecret(ctx context.Context, meta fsm.WriteMeta, name, value string) (fsm.Secret, error)
	// RotateSecrets makes a new data key and re-encrypts every secret
	// under it, stamping the commands with meta. Leader only; ErrNoKEK
	// without a key-encryption key.
	RotateSecrets(ctx context.Context, meta fsm.WriteMeta) (*SecretRotation, error)
}
