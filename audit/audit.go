// Package audit holds Moxxie's hash-chained audit log: the entry, its
// canonical encoding, the chain hash, signed checkpoints, verification that
// names the first bad entry, and the JSON-lines export format. It does no
// I/O beyond the readers and writers it is given.
//
// Each entry's Hash is the SHA-256 of a domain tag, the previous entry's
// Hash and the entry's canonical encoding, so changing, removing, adding or
// moving an entry breaks the chain at that entry. A Checkpoint is an
// ed25519 signature over the head of the chain (Seq, Hash, Time): the
// entries up to a checkpoint cannot be rewritten without the signing key,
// and retention may drop entries before a checkpoint while the rest stays
// verifiable from it.
package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Results of an entry besides an error code.
const (
	// ResultOK is the result of a write that applied.
	ResultOK = "ok"
)

// ZeroHash is the Prev of the first entry of a chain.
var ZeroHash = strings.Repeat("0", 64)

// hashTag separates audit entry hashes from any other SHA-256 use.
const hashTag = "moxxie-audit-entry-v1\x00"

// Entry is one audit record: who did what to which object, from where,
// and how it ended.
type Entry struct {
	// Seq numbers the entries of the chain from 1 without gaps.
	Seq uint64 `json:"seq"`
	// Index is the raft index of the command that recorded the entry.
	Index uint64 `json:"index"`
	// Time is the leader's clock when the request was proposed, in Unix
	// nanoseconds (RFC 3339 in JSON).
	Time Nanos `json:"time"`
	// TokenID is the caller's token accessor ID, empty when the caller
	// was not authenticated.
	TokenID string `json:"token_id,omitempty"`
	Role    string `json:"role,omitempty"`
	Tenant  string `json:"tenant,omitempty"`
	// Source is the client's address (host:port).
	Source    string `json:"source,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Action is the API route ("POST /v1/vms") or the event
	// ("auth.failed").
	Action string `json:"action"`
	// Object is the path of the object acted on.
	Object string `json:"object,omitempty"`
	// Result is "ok" or the error code of a refused request.
	Result string `json:"result"`
	// Prev is the Hash of the previous entry (ZeroHash for the first);
	// Hash is this entry's chain hash, both in hex.
	Prev string `json:"prev"`
	Hash string `json:"hash"`
}

// Nanos is a time in Unix nanoseconds that reads and writes JSON as an
// RFC 3339 time in UTC.
type Nanos int64

// MarshalJSON writes n as an RFC 3339 time with nanoseconds.
func (n Nanos) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Unix(0, int64(n)).UTC().Format(time.RFC3339Nano))
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (n *Nanos) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	*n = Nanos(t.UnixNano())
	return nil
}

// Canonical returns the entry's canonical encoding, which the chain hash
// covers: every field but Hash, in a fixed order, integers as 8 big-endian
// bytes and strings prefixed by their 4-byte big-endian length.
func (e *Entry) Canonical() []byte {
	b := make([]byte, 0, 128)
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	b = binary.BigEndian.AppendUint64(b, e.Index)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time))
	for _, s := range []string{e.TokenID, e.Role, e.Tenant, e.Source, e.RequestID, e.Action, e.Object, e.Result, e.Prev} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

// ComputeHash returns the chain hash of e: the hex SHA-256 of the domain
// tag and e's canonical encoding, which includes e.Prev.
func (e *Entry) ComputeHash() string {
	h := sha256.New()
	h.Write([]byte(hashTag))
	h.Write(e.Canonical())
	return hex.EncodeToString(h.Sum(nil))
}

// Chain links e after the entry whose hash is prev: it sets e.Prev and
// e.Hash and returns the new hash.
func Chain(prev string, e *Entry) string {
	e.Prev = prev
	e.Hash = e.ComputeHash()
	return e.Hash
}

// ValidHash reports whether s is a hex SHA-256.
func ValidHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// Head is the end of a chain: the last entry's Seq and Hash (0 and
// ZeroHash for an empty chain).
type Head struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// String formats the head for messages.
func (h Head) String() string { return fmt.Sprintf("%d/%.12s", h.Seq, h.Hash) }
