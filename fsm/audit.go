package fsm

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/audit"
	"github.com/moxxie/moxxie/ipam"
	"github.com/moxxie/moxxie/quota"
)

// The audit log is part of the replicated state. Every command that
// carries WriteMeta.Audit (the API stamps it on each client write)
// appends one hash-chained entry, in the same transaction as the write
// when it applies, or in a transaction of its own with the error code
// when it is refused, so that failed attempts are recorded too and
// nothing else changes. Commands the servers propose themselves (the
// leader's inventory sync, quarantine drain, idempotency reaping,
// operation progress, secret re-wrapping and the audit commands below)
// carry no AuditInfo and are not audited: they would flood the log.
//
// AuditRecord appends an entry for an event without a state change, such
// as a failed authentication. AuditCheckpoint stores a checkpoint the
// leader signed (Apply checks, never signs), AuditTruncate drops the
// entries before a checkpoint (retention), which keeps the rest
// verifiable from it.

// Table names of the audit log.
const (
	tableAudit            = "audit"
	tableAuditCheckpoints = "audit_checkpoints"
)

// Actions of audit records that are not API routes.
const (
	// AuditAuthFailed is the action of a refused authentication or
	// authorization.
	AuditAuthFailed = "auth.failed"
)

// AuditInfo is what the API stamps into a client write for its audit
// entry; the token ID is WriteMeta.Actor, the time WriteMeta.Now and the
// request ID WriteMeta.RequestID.
type AuditInfo struct {
	Role   string
	Tenant string
	// Source is the client's address, host:port.
	Source string
	// Action is the route pattern, "POST /v1/vms".
	Action string
	// Object is the request path.
	Object string
}

// AuditRecordRequest appends an audit entry for an event that changes
// nothing else: Meta().Audit says what and Result how it ended.
type AuditRecordRequest struct {
	WriteMeta
	Result string
}

// Type returns AuditRecordType.
func (*AuditRecordRequest) Type() MessageType { return AuditRecordType }

// AuditCheckpointRequest stores a checkpoint the leader signed.
type AuditCheckpointRequest struct {
	WriteMeta
	Checkpoint audit.Checkpoint
}

// Type returns AuditCheckpointType.
func (*AuditCheckpointRequest) Type() MessageType { return AuditCheckpointType }

// AuditTruncateRequest deletes the audit entries with Seq below Before,
// and the checkpoints before the one they end at. A checkpoint of entry
// Before-1 must be stored, so the rest stays verifiable from it.
type AuditTruncateRequest struct {
	WriteMeta
	Before uint64
}

// Type returns AuditTruncateType.
func (*AuditTruncateRequest) Type() MessageType { return AuditTruncateType }

// Validate checks the record.
func (r *AuditRecordRequest) Validate() error {
	if r.Audit == nil || r.Audit.Action == "" {
		return fieldErrf("action", ErrInvalid, "an audit record needs an action")
	}
	if r.Result == "" {
		return fieldErrf("result", ErrInvalid, "an audit record needs a result")
	}
	return nil
}

// Validate checks the checkpoint's shape and signature.
func (r *AuditCheckpointRequest) Validate() error {
	c := &r.Checkpoint
	if c.Seq == 0 || !audit.ValidHash(c.Hash) {
		return fieldErrf("checkpoint", ErrInvalid, "a checkpoint needs a sequence number and a SHA-256 hash")
	}
	if err := c.CheckSignature(nil); err != nil {
		return fieldErr("checkpoint", fmt.Errorf("%w: %v", ErrInvalid, err))
	}
	return nil
}

// AuditResult returns the result an audit entry records for a command's
// error: "ok", or the API's error code for it.
func AuditResult(err error) string {
	switch {
	case err == nil:
		return audit.ResultOK
	case errors.Is(err, quota.ErrExceeded):
		return "quota_exceeded"
	case errors.Is(err, ipam.ErrExhausted):
		return "exhausted"
	case errors.Is(err, ErrNotFound), errors.Is(err, ipam.ErrNotAllocated):
		return "not_found"
	case errors.Is(err, ErrConflict), errors.Is(err, ErrAlreadyBootstrapped), errors.Is(err, ipam.ErrInUse), errors.Is(err, ipam.ErrQuarantined):
		return "conflict"
	case errors.Is(err, ErrIdempotencyMismatch):
		return "idempotency_mismatch"
	case errors.Is(err, ErrInvalid), errors.As(err, new(*FieldError)):
		return "invalid_request"
	}
	return "failed"
}

// auditBlock holds consecutive audit entries appended by one write
// transaction. Storing them together costs one radix-tree insert per
// transaction instead of one per entry: the entries' sequential keys made
// each insert copy a wide tree node. First is the Seq of Entries[0] and the
// entries' Seqs follow it without gaps. A block is immutable once its
// transaction commits.
type auditBlock struct {
	First   uint64
	Entries []audit.Entry
}

func (b *auditBlock) last() *audit.Entry { return &b.Entries[len(b.Entries)-1] }

// auditAppender appends the audit entries of one write transaction to one
// block, which it inserts with the first of them and extends in place
// until the transaction ends (readers cannot see it before). reset must
// be called when the transaction commits or aborts.
type auditAppender struct {
	txn   *memdb.Txn
	block *auditBlock
	// hint is how many entries the transaction may append: the new
	// block is made that large, so that it neither grows by copying
	// (a batch of 64 allocations copied its entries four times) nor
	// keeps unused room.
	hint int
}

func (a *auditAppender) reset() { *a = auditAppender{} }

// head returns the end of the chain as txn sees it.
func (a *auditAppender) head(txn *memdb.Txn) (audit.Head, error) {
	if a.txn == txn && a.block != nil {
		e := a.block.last()
		return audit.Head{Seq: e.Seq, Hash: e.Hash}, nil
	}
	return auditHead(txn)
}

// add appends e, the next entry of the chain, in txn.
func (a *auditAppender) add(txn *memdb.Txn, index uint64, e audit.Entry) error {
	if a.txn == txn && a.block != nil {
		a.block.Entries = append(a.block.Entries, e)
		return nil
	}
	b := &auditBlock{First: e.Seq, Entries: append(make([]audit.Entry, 0, max(a.hint, 1)), e)}
	if err := insert(txn, tableAudit, index, b); err != nil {
		return err
	}
	a.txn, a.block = txn, b
	return nil
}

// auditHead returns the end of the chain: the last entry, or the last
// checkpoint when retention removed every entry, or the genesis.
func auditHead(txn *memdb.Txn) (audit.Head, error) {
	raw, err := txn.Last(tableAudit, "id")
	if err != nil {
		return audit.Head{}, err
	}
	if raw != nil {
		e := raw.(*auditBlock).last()
		return audit.Head{Seq: e.Seq, Hash: e.Hash}, nil
	}
	if raw, err = txn.Last(tableAuditCheckpoints, "id"); err != nil {
		return audit.Head{}, err
	}
	if raw != nil {
		c := raw.(*audit.Checkpoint)
		return audit.Head{Seq: c.Seq, Hash: c.Hash}, nil
	}
	return audit.Head{Hash: audit.ZeroHash}, nil
}

// auditEntry returns the entry with sequence number seq, or nil.
func auditEntry(txn *memdb.Txn, seq uint64) (*audit.Entry, error) {
	it, err := txn.ReverseLowerBound(tableAudit, "id", seq)
	if err != nil {
		return nil, err
	}
	raw := it.Next()
	if raw == nil {
		return nil, nil
	}
	b := raw.(*auditBlock)
	if i := seq - b.First; i < uint64(len(b.Entries)) {
		return &b.Entries[i], nil
	}
	return nil, nil
}

// auditEntriesFrom calls fn with each entry from sequence number seq on,
// in order, until fn returns false.
func auditEntriesFrom(txn *memdb.Txn, seq uint64, fn func(*audit.Entry) bool) error {
	start := seq
	if b, err := txn.ReverseLowerBound(tableAudit, "id", seq); err != nil {
		return err
	} else if raw := b.Next(); raw != nil {
		start = raw.(*auditBlock).First
	}
	it, err := txn.LowerBound(tableAudit, "id", start)
	if err != nil {
		return err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		b := raw.(*auditBlock)
		for i := range b.Entries {
			if e := &b.Entries[i]; e.Seq >= seq && !fn(e) {
				return nil
			}
		}
	}
	return nil
}

// auditEntriesBack calls fn with each entry from the newest back to seq,
// until fn returns false.
func auditEntriesBack(txn *memdb.Txn, seq uint64, fn func(*audit.Entry) bool) error {
	it, err := txn.ReverseLowerBound(tableAudit, "id", uint64(math.MaxUint64))
	if err != nil {
		return err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		b := raw.(*auditBlock)
		for i := len(b.Entries) - 1; i >= 0; i-- {
			if e := &b.Entries[i]; e.Seq < seq || !fn(e) {
				return nil
			}
		}
	}
	return nil
}

// appendAudit appends the entry of cmd, which ended with result, when cmd
// carries AuditInfo.
func (f *FSM) appendAudit(txn *memdb.Txn, index uint64, cmd Command, result string) error {
	m := cmd.Meta()
	if m.Audit == nil {
		return nil
	}
	if rec, ok := cmd.(*AuditRecordRequest); ok && result == audit.ResultOK {
		result = rec.Result
	}
	head, err := f.audit.head(txn)
	if err != nil {
		return err
	}
	a := m.Audit
	e := audit.Entry{
		Seq: head.Seq + 1, Index: index, Time: audit.Nanos(m.Now), TokenID: m.Actor, Role: a.Role, Tenant: a.Tenant,
		Source: a.Source, RequestID: m.RequestID, Action: a.Action, Object: a.Object, Result: result,
	}
	audit.Chain(head.Hash, &e)
	return f.audit.add(txn, index, e)
}

func applyAuditRecord(*memdb.Txn, uint64, Command) (any, error) {
	// The entry itself is appended by applyTxn, like every audited
	// command's.
	return nil, nil
}

func applyAuditCheckpoint(txn *memdb.Txn, index uint64, c Command) (any, error) {
	cp := c.(*AuditCheckpointRequest).Checkpoint
	if raw, err := txn.First(tableAuditCheckpoints, "id", cp.Seq); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fieldErrf("checkpoint", ErrConflict, "entry %d already has a checkpoint", cp.Seq)
	}
	e, err := auditEntry(txn, cp.Seq)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, fieldErrf("checkpoint", ErrNotFound, "no audit entry %d", cp.Seq)
	}
	if h := e.Hash; h != cp.Hash {
		return nil, fieldErrf("checkpoint", ErrConflict, "audit entry %d has hash %.12s, not %.12s", cp.Seq, h, cp.Hash)
	}
	if err := insert(txn, tableAuditCheckpoints, index, &cp); err != nil {
		return nil, err
	}
	return &cp, nil
}

func applyAuditTruncate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*AuditTruncateRequest)
	if req.Before < 2 {
		return map[string]int{"deleted": 0}, nil
	}
	raw, err := txn.First(tableAuditCheckpoints, "id", req.Before-1)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fieldErrf("before", ErrConflict, "no checkpoint of audit entry %d to keep the rest verifiable from", req.Before-1)
	}
	// Whole blocks before Before go; a block across it is replaced by
	// one of its later entries.
	n := 0
	var blocks []*auditBlock
	it, err := txn.Get(tableAudit, "id")
	if err != nil {
		return nil, err
	}
	for raw := it.Next(); raw != nil && raw.(*auditBlock).First < req.Before; raw = it.Next() {
		blocks = append(blocks, raw.(*auditBlock))
	}
	for _, b := range blocks {
		if err := remove(txn, tableAudit, index, b); err != nil {
			return nil, err
		}
		keep := b.Entries[min(req.Before-b.First, uint64(len(b.Entries))):]
		n += len(b.Entries) - len(keep)
		if len(keep) > 0 {
			rest := &auditBlock{First: keep[0].Seq, Entries: slices.Clone(keep)}
			if err := insert(txn, tableAudit, index, rest); err != nil {
				return nil, err
			}
		}
	}
	var cps []any
	cit, err := txn.Get(tableAuditCheckpoints, "id")
	if err != nil {
		return nil, err
	}
	for raw := cit.Next(); raw != nil && raw.(*audit.Checkpoint).Seq < req.Before-1; raw = cit.Next() {
		cps = append(cps, raw)
	}
	for _, raw := range cps {
		if err := remove(txn, tableAuditCheckpoints, index, raw); err != nil {
			return nil, err
		}
	}
	return map[string]int{"deleted": n}, nil
}

// auditTables returns the audit part of the memdb schema.
func auditTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableAudit: {Name: tableAudit, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.UintFieldIndex{Field: "First"}},
		}},
		tableAuditCheckpoints: {Name: tableAuditCheckpoints, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.UintFieldIndex{Field: "Seq"}},
		}},
	}
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	// SinceSeq skips entries before it.
	SinceSeq uint64
	// Limit, when above zero, bounds the entries returned.
	Limit int
	// Last, when above zero, returns the newest Last entries that match
	// instead, still in Seq order; Limit is then ignored.
	Last int
	// TokenID and Action, when set, must match exactly.
	TokenID string
	Action  string
}

// AuditEntries lists audit entries in Seq order, with the audit table's
// index; ws learns when entries are added.
func (s *Store) AuditEntries(ws memdb.WatchSet, f AuditFilter) (uint64, []*audit.Entry, error) {
	txn := s.db.Txn(false)
	out := []*audit.Entry{}
	walk, limit := auditEntriesFrom, f.Limit
	if f.Last > 0 {
		walk, limit = auditEntriesBack, f.Last
	}
	err := walk(txn, f.SinceSeq, func(e *audit.Entry) bool {
		if (f.TokenID == "" || e.TokenID == f.TokenID) && (f.Action == "" || e.Action == f.Action) {
			out = append(out, e)
		}
		return limit <= 0 || len(out) < limit
	})
	if f.Last > 0 {
		slices.Reverse(out)
	}
	if err != nil {
		return 0, nil, err
	}
	watchTable(txn, ws, tableAudit)
	return s.tableIndex(txn, tableAudit), out, nil
}

// AuditCheckpoints lists the stored checkpoints in Seq order.
func (s *Store) AuditCheckpoints(ws memdb.WatchSet) (uint64, []*audit.Checkpoint, error) {
	return list[*audit.Checkpoint](s, ws, tableAuditCheckpoints, "id")
}

// AuditHead returns the end of the audit chain.
func (s *Store) AuditHead() (audit.Head, error) {
	return auditHead(s.db.Txn(false))
}

// AuditLog reads the head, every stored checkpoint and the entries from
// sinceSeq in one transaction, in Seq order: it passes the head and the
// checkpoints to cps first, so an export can place them, then each entry
// to fn.
func (s *Store) AuditLog(sinceSeq uint64, cps func(audit.Head, []audit.Checkpoint) error, fn func(*audit.Entry) error) error {
	txn := s.db.Txn(false)
	head, err := auditHead(txn)
	if err != nil {
		return err
	}
	it, err := txn.Get(tableAuditCheckpoints, "id")
	if err != nil {
		return err
	}
	var all []audit.Checkpoint
	for raw := it.Next(); raw != nil; raw = it.Next() {
		all = append(all, *raw.(*audit.Checkpoint))
	}
	if err := cps(head, all); err != nil {
		return err
	}
	var ferr error
	if err := auditEntriesFrom(txn, sinceSeq, func(e *audit.Entry) bool {
		ferr = fn(e)
		return ferr == nil
	}); err != nil {
		return err
	}
	return ferr
}

// AuditRetentionKey is the setting that says how long audit entries are
// kept: a number of days ("90d") or a Go duration of at least an hour;
// "0" keeps them forever.
const AuditRetentionKey = "audit.retention"

// DefaultAuditRetention is the retention without the setting.
const DefaultAuditRetention = 90 * 24 * time.Hour

// ParseAuditRetention reads the value of audit.retention.
func ParseAuditRetention(value string) (time.Duration, error) {
	if value == "0" {
		return 0, nil
	}
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(value, "d"); ok {
		var n int
		if n, err = strconv.Atoi(days); err == nil {
			if n < 1 || n > 100*365 {
				err = errors.New("out of range")
			}
			d = time.Duration(n) * 24 * time.Hour
		}
	} else {
		d, err = time.ParseDuration(value)
	}
	if err != nil || d < time.Hour {
		return 0, fmt.Errorf("%s must be a number of days such as 90d, a duration of at least 1h, or 0 to keep entries forever, not %q", AuditRetentionKey, value)
	}
	return d, nil
}
