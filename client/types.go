package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Meta describes the answer to a request.
type Meta struct {
	// Index is the store index the answer reflects (X-Moxxie-Index); pass
	// it as QueryOptions.Index to wait for the next change.
	Index uint64
	// RequestID identifies the request in the servers' logs.
	RequestID string
	// Replayed is true when a write was not applied again because its
	// Idempotency-Key had been seen: the answer is the first result.
	Replayed bool
	// Address is the server that answered.
	Address string
	// Warnings are what the server said about a write it applied that may
	// not do what was meant (Warning headers), such as a DNS name no zone
	// serves.
	Warnings []string
}

// QueryOptions tune a read. The zero value reads from the leader.
type QueryOptions struct {
	// Stale lets any server answer from its local copy, which may lag.
	Stale bool
	// Consistent makes the leader confirm its leadership first.
	Consistent bool
	// Index, when non-zero, makes the read a blocking query: the answer
	// comes when the store index passes Index, or after Wait.
	Index uint64
	// Wait bounds a blocking query; zero with Index set means DefaultWait.
	Wait time.Duration
}

// values returns the query parameters and the wait the attempt timeout
// must allow for.
func (q *QueryOptions) values() (url.Values, time.Duration) {
	if q == nil {
		return nil, 0
	}
	v := url.Values{}
	if q.Stale {
		v.Set("stale", "true")
	}
	if q.Consistent {
		v.Set("consistent", "true")
	}
	wait := q.Wait
	if q.Index > 0 {
		v.Set("index", strconv.FormatUint(q.Index, 10))
		if wait <= 0 {
			wait = DefaultWait
		}
	}
	if wait > 0 {
		v.Set("wait", wait.String())
	}
	return v, wait
}

// WriteOptions tune a write. The zero value is a plain write with a random
// Idempotency-Key.
type WriteOptions struct {
	// CAS, when set, makes a setting write succeed only if the setting's
	// modify index equals *CAS (0: only if it does not exist yet).
	CAS *uint64
	// IdempotencyKey replaces the random key the client sends, so a write
	// repeated later (by another process, after a crash) applies once.
	IdempotencyKey string
}

func (w *WriteOptions) key() string {
	if w == nil {
		return ""
	}
	return w.IdempotencyKey
}

// Time is a timestamp in an API answer. It decodes Unix nanoseconds (what
// the store keeps) as well as RFC 3339 strings, and encodes as RFC 3339.
type Time struct {
	time.Time
}

// UnmarshalJSON accepts a number of Unix nanoseconds, an RFC 3339 string or
// null.
func (t *Time) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		t.Time = time.Time{}
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			t.Time = time.Time{}
			return nil
		}
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("client: time %q: %w", s, err)
		}
		t.Time = v
	default:
		n, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return fmt.Errorf("client: time %s: want Unix nanoseconds or RFC 3339", b)
		}
		if n == 0 {
			t.Time = time.Time{}
		} else {
			t.Time = time.Unix(0, n).UTC()
		}
	}
	return nil
}

// MarshalJSON encodes t as an RFC 3339 string, or null when t is zero.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(time.RFC3339Nano))
}

// Status is the raft state of the cluster (GET /v1/status).
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
	// State is leader, follower, candidate, or unreachable.
	State string `json:"state"`
	Voter bool   `json:"voter"`
	// CertNotAfter is when the server's TLS certificate expires; zero
	// when the server did not answer.
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`
}

// Setting is one cluster-wide key/value setting.
type Setting struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
	UpdatedAt   Time   `json:"updated_at,omitzero"`
}

// Token is an API token as listed; its secret is never shown again after
// creation.
type Token struct {
	AccessorID  string `json:"accessor_id"`
	Description string `json:"description"`
	Role        string `json:"role"`
	Tenant      string `json:"tenant,omitempty"`
	CreatedAt   Time   `json:"created_at,omitzero"`
	// ExpiresAt is zero for a token that does not expire.
	ExpiresAt   Time   `json:"expires_at,omitzero"`
	CreateIndex uint64 `json:"create_index,omitempty"`
}

// TokenSecret is a newly created token with its secret, which the API shows
// only once.
type TokenSecret struct {
	Token
	SecretID string `json:"secret_id"`
}

// TokenRequest describes a token to create.
type TokenRequest struct {
	Description string
	Role        string
	Tenant      string
	// TTL is the token's lifetime; zero means it does not expire.
	TTL time.Duration
}

// MarshalJSON encodes the request body, with TTL as a duration string such
// as "24h0m0s".
func (r TokenRequest) MarshalJSON() ([]byte, error) {
	body := struct {
		Description string `json:"description,omitempty"`
		Role        string `json:"role,omitempty"`
		Tenant      string `json:"tenant,omitempty"`
		TTL         string `json:"ttl,omitempty"`
	}{r.Description, r.Role, r.Tenant, ""}
	if r.TTL > 0 {
		body.TTL = r.TTL.String()
	}
	return json.Marshal(body)
}

// SnapshotMeta describes a saved snapshot.
type SnapshotMeta struct {
	// Index is the store index the snapshot holds (X-Moxxie-Index).
	Index uint64
	// ServerSHA256 is the checksum the server announced in
	// X-Moxxie-Snapshot-SHA256, if any.
	ServerSHA256 string
	// SHA256 is the SHA-256 of the bytes received, hex-encoded.
	SHA256 string
	// Size is the number of bytes received.
	Size int64
	// RequestID and Address identify the answer.
	RequestID string
	Address   string
}
