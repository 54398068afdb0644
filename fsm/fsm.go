package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
	"github.com/moxxie/moxxie/audit"
	"github.com/moxxie/moxxie/binenc"
)

// Result is what Apply returns for one command: the command's value, or the
// error that rejected it. Replayed is true when the value is the stored
// first result of an idempotent command.
type Result struct {
	Value    any
	Err      error
	Replayed bool
	// JSON is Value's JSON encoding when Apply made it (for the
	// idempotency record of a command with a key), so that the API need
	// not encode it again.
	JSON []byte
}

// ValueJSON returns Value's JSON encoding: JSON when Apply made it, an
// address list's written by hand, and otherwise nil (the caller encodes
// Value).
func (r *Result) ValueJSON() []byte {
	if r.JSON != nil {
		return r.JSON
	}
	if l, ok := r.Value.(*AddressList); ok && l != nil {
		return l.json()
	}
	return nil
}

// FSM is Moxxie's raft finite state machine. It satisfies raft.FSM.
//
// The raft contract: Apply must be deterministic and Restore must discard
// all previous state. Apply runs on one goroutine; reads go through State,
// which returns the current Store.
type FSM struct {
	mu    sync.RWMutex
	state *Store // guarded by mu; replaced wholesale by Restore

	// audit appends the audit entries of the write transaction being
	// applied; only Apply's goroutine uses it.
	audit auditAppender

	// idem collects the idempotency records of the write transaction being
	// applied for tableIdemEntries; only Apply's goroutine uses it.
	idem idemPending

	// strs shares the strings that decoded commands repeat (actors, audit
	// actions and sources, prefix IDs) among the commands and the state
	// that keeps them; only Apply's goroutine uses it (see DecodeEntry).
	strs *binenc.Interner

	// OnApply, when set, is called after each applied command with its type
	// and result; metrics hook in here. It must not block.
	OnApply func(t MessageType, r *Result)

	// Halt, when set, is called instead of a panic when the state must not
	// take an entry: it would apply it, and those after it, otherwise than
	// the other servers (ErrLineage). It must not return (tests end the
	// goroutine that applies); a panic halts the server.
	Halt func(reason string)
}

// halt stops the server at an entry its state must not take.
func (f *FSM) halt(reason string) {
	if f.Halt != nil {
		f.Halt(reason)
	}
	panic(reason)
}

// haltError is what an apply function returns for an entry on which the
// server must halt (FSM.Halt).
type haltError struct{ reason string }

func (e *haltError) Error() string { return e.reason }

// New returns an FSM with an empty store.
func New() *FSM {
	return &FSM{state: newStore(newMemDB()), strs: binenc.NewInterner(maxSharedStrings)}
}

// maxSharedStrings bounds the strings an FSM shares among decoded
// commands: enough for the actors, sources and objects of many clients.
const maxSharedStrings = 4096

// State returns the current store. The returned store stays valid for reads
// even after a Restore replaces it; its AbandonCh is closed then.
func (f *FSM) State() *Store {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state
}

// Apply applies one raft log entry. A command that cannot be decoded means
// a corrupt log or a newer server's command, and halts the server (panic),
// unless its type carries IgnoreUnknownTypeFlag.
func (f *FSM) Apply(l *raft.Log) any {
	return f.ApplyEntry(f.DecodeEntry(l))
}

// Entry is a raft log entry decoded into its commands, so that a caller
// can look at their WriteMeta (the node starts trace spans from
// TraceParent) before applying it with ApplyEntry.
type Entry struct {
	index   uint64
	command bool      // a LogCommand entry: its index counts as applied
	cmd     Command   // the entry's command; nil when skipped
	batch   []Command // a batch's commands, nil for skipped ones
}

// DecodeEntry decodes l. A command that cannot be decoded panics, as
// Apply does. Like Apply, it must be called from the goroutine that
// applies entries.
func (f *FSM) DecodeEntry(l *raft.Log) Entry {
	e := Entry{index: l.Index}
	if l.Type != raft.LogCommand {
		return e
	}
	e.command = true
	buf := l.Data
	if ignorable(buf) {
		return e
	}
	cmd, err := decode(buf, f.strs)
	if err != nil {
		panic(fmt.Sprintf("fsm: index %d: %v", l.Index, err))
	}
	e.cmd = cmd
	if b, ok := cmd.(*BatchRequest); ok {
		e.batch = make([]Command, len(b.Entries))
		for i, sub := range b.Entries {
			if ignorable(sub) {
				continue
			}
			if e.batch[i], err = decode(sub, f.strs); err != nil {
				panic(fmt.Sprintf("fsm: index %d entry %d: %v", l.Index, i, err))
			}
		}
	}
	return e
}

// Index returns the entry's raft index.
func (e *Entry) Index() uint64 { return e.index }

// Commands returns the commands the entry applies: its command, or a
// batch's commands (nil for those skipped), or none.
func (e *Entry) Commands() []Command {
	switch {
	case e.batch != nil:
		return e.batch
	case e.cmd != nil:
		return []Command{e.cmd}
	}
	return nil
}

// ApplyEntry applies a decoded entry and returns what Apply returns: nil,
// a *Result, or a batch's []*Result.
func (f *FSM) ApplyEntry(e Entry) any {
	if !e.command {
		return nil
	}
	// LatestIndex counts every applied command, rejected or skipped ones too.
	defer f.State().setLatest(e.index)
	switch {
	case e.batch != nil:
		return f.applyBatch(e.index, e.batch)
	case e.cmd != nil:
		return f.applyOne(e.index, e.cmd)
	}
	return nil
}

// ignorable reports whether buf holds a command of a type this server does
// not know but may skip, because the type carries IgnoreUnknownTypeFlag.
func ignorable(buf []byte) bool {
	if len(buf) == 0 || MessageType(buf[0])&IgnoreUnknownTypeFlag == 0 {
		return false
	}
	_, known := commands[MessageType(buf[0])]
	return !known
}

func (f *FSM) applyOne(index uint64, cmd Command) *Result {
	st := f.State()
	txn := st.db.Txn(true)
	defer txn.Abort()
	defer f.audit.reset()
	defer f.idem.reset()
	track := tracksNamed(cmd)
	if track {
		txn.TrackChanges()
	}
	r := f.applyTxn(txn, index, cmd, nil, false)
	if r.Err == nil {
		f.idem.flush(txn)
		if err := commit(st, txn, track, index); err != nil {
			r = &Result{Err: err}
		}
	}
	if r.Err != nil && cmd.Meta().Audit != nil {
		// A refused client write changes nothing but the audit log.
		txn.Abort()
		f.audit.reset()
		f.idem.reset()
		atxn := f.State().db.Txn(true)
		if err := f.appendAudit(atxn, index, cmd, AuditResult(r.Err)); err != nil {
			atxn.Abort()
		} else {
			atxn.Commit()
		}
	}
	return f.done(cmd, r)
}

// maxTxnWeight bounds the work of one batch transaction. go-memdb's radix
// trees track the nodes a transaction changes for watch notification only
// up to 8192; beyond that Commit walks whole trees, so a batch of many
// large allocations would cost in proportion to the state's size. The
// weight of a command is about the objects it writes (see weigher).
const maxTxnWeight = 256

// weigher is implemented by commands that write many objects.
type weigher interface{ weight() int }

func weightOf(c Command) int {
	if w, ok := c.(weigher); ok {
		return min(max(1, w.weight()), maxTxnWeight)
	}
	return 1
}

// applyBatch applies the commands of one batch entry (nil for skipped
// ones). It applies them in chunks of at most maxTxnWeight, each in one
// transaction, which is much cheaper than one each; if a command of a
// chunk is rejected the chunk starts over with a transaction per command,
// so a rejected command still changes nothing and the others apply. The
// chunks depend only on the commands, so every server cuts them alike, and
// every path gives the same results and the same state.
func (f *FSM) applyBatch(index uint64, cmds []Command) []*Result {
	out := make([]*Result, len(cmds))
	for start := 0; start < len(cmds); {
		end, weight := start, 0
		for end < len(cmds) && (end == start || weight+weightOf(cmds[end]) <= maxTxnWeight) {
			if cmds[end] != nil {
				weight += weightOf(cmds[end])
			}
			end++
		}
		f.applyChunk(index, cmds[start:end], out[start:end])
		start = end
	}
	return out
}

// applyChunk applies cmds in one transaction, or one transaction each if
// any is rejected, and stores their results in out.
func (f *FSM) applyChunk(index uint64, cmds []Command, out []*Result) {
	st := f.State()
	txn := st.db.Txn(true)
	track := tracksNamed(cmds...)
	if track {
		txn.TrackChanges()
	}
	la := look(txn, cmds)
	for _, c := range cmds {
		if c != nil && c.Meta().Audit != nil {
			f.audit.hint++
		}
	}
	for i, c := range cmds {
		if c == nil {
			out[i] = &Result{}
			continue
		}
		rec, looked := la.record(i)
		if out[i] = f.applyTxn(txn, index, c, rec, looked); out[i].Err != nil {
			txn.Abort()
			f.audit.reset()
			f.idem.reset()
			la.forget(cmds)
			for j, c := range cmds {
				if c == nil {
					out[j] = &Result{}
				} else {
					out[j] = f.applyOne(index, c)
				}
			}
			return
		}
	}
	f.idem.flush(txn)
	if err := commit(st, txn, track, index); err != nil {
		txn.Abort()
		f.audit.reset()
		f.idem.reset()
		la.forget(cmds)
		for i := range out {
			out[i] = &Result{Err: err}
		}
		return
	}
	f.audit.reset()
	for i, c := range cmds {
		if c != nil {
			f.done(c, out[i])
		}
	}
}

// applyTxn applies one command inside txn. When looked is true, rec is
// the command's idempotency record as a lookahead found it (nil: none);
// otherwise applyTxn looks it up. When the result carries an error, txn
// may hold part of the command's writes and must be aborted.
func (f *FSM) applyTxn(txn *memdb.Txn, index uint64, cmd Command, rec *IdempotencyRecord, looked bool) *Result {
	info := commands[cmd.Type()]
	if info.apply == nil { // a batch nested in a batch
		return &Result{Err: fmt.Errorf("fsm: %s cannot be nested", cmd.Type())}
	}
	m := cmd.Meta()
	var idemKey string
	if m.IdempotencyKey != "" {
		idemKey = idempotencyKey(m)
		if !looked {
			rec = idempotencyRecord(txn, idemKey)
		}
		if rec != nil {
			if rec.RequestHash != m.RequestHash {
				return &Result{Err: ErrIdempotencyMismatch}
			}
			if err := f.appendAudit(txn, index, cmd, audit.ResultOK); err != nil {
				return &Result{Err: err}
			}
			return &Result{Value: json.RawMessage(rec.result()), Replayed: true}
		}
	}
	if _, ok := cmd.(*IdempotencyReapRequest); ok {
		// A reap finds records through their entries' rows, which must
		// list the records this transaction has created so far.
		f.idem.flush(txn)
	}
	v, err := info.apply(txn, index, cmd)
	if err != nil {
		var h *haltError
		if errors.As(err, &h) {
			f.halt(h.reason)
		}
		return &Result{Err: err}
	}
	var body []byte
	if idemKey != "" {
		rec := &IdempotencyRecord{Key: idemKey, RequestHash: m.RequestHash, Index: index, CreatedAt: m.Now}
		if l, ok := v.(*AddressList); ok && l != nil {
			rec.list = l
		} else if body, err = json.Marshal(v); err != nil {
			return &Result{Err: fmt.Errorf("fsm: encode result: %w", err)}
		}
		rec.Result = body
		if err := insert(txn, tableIdempotency, index, rec); err != nil {
			return &Result{Err: err}
		}
		f.idem.add(rec)
	}
	if err := f.appendAudit(txn, index, cmd, audit.ResultOK); err != nil {
		return &Result{Err: err}
	}
	return &Result{Value: v, JSON: body}
}

// commit commits txn, applied at index, through st's named-address feed
// when track says the transaction tracks its changes for it, recording
// first the index of a change of DNS names (touchNamed).
func commit(st *Store, txn *memdb.Txn, track bool, index uint64) error {
	if !track {
		txn.Commit()
		return nil
	}
	if err := touchNamed(txn, index); err != nil {
		return err
	}
	st.named.commit(txn)
	return nil
}

func (f *FSM) done(cmd Command, r *Result) *Result {
	if f.OnApply != nil {
		f.OnApply(cmd.Type(), r)
	}
	return r
}

// Snapshot captures the current store for raft. It only takes a memdb
// snapshot (a pointer copy); Persist does the I/O.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	st := f.State()
	return &fsmSnapshot{txn: st.db.Snapshot().Txn(false)}, nil
}

// Restore replaces the whole state with the snapshot read from rc. The
// stream is parsed completely into a new store first: a corrupt or truncated
// snapshot returns an error and leaves the current state unchanged.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	db, latest, err := readSnapshot(rc)
	if err != nil {
		return err
	}
	next := newStore(db)
	next.setLatest(latest)
	f.mu.Lock()
	old := f.state
	f.state = next
	f.mu.Unlock()
	old.abandon()
	return nil
}

// insert writes obj into table and records index as the table's latest.
func insert(txn *memdb.Txn, table string, index uint64, obj any) error {
	if err := txn.Insert(table, obj); err != nil {
		return fmt.Errorf("fsm: insert %s: %w", table, err)
	}
	return touchTable(txn, table, index)
}

// lookup returns the object of table whose id index is id, or an error
// wrapping ErrNotFound that calls it what.
func lookup[T any](txn *memdb.Txn, table, what, id string) (*T, error) {
	raw, err := txn.First(table, "id", id)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, notFound(what, id)
	}
	return raw.(*T), nil
}

// removeByID deletes the object of table whose id index is id and returns
// it, or an error wrapping ErrNotFound that calls it what.
func removeByID[T any](txn *memdb.Txn, index uint64, table, what, id string) (*T, error) {
	obj, err := lookup[T](txn, table, what, id)
	if err != nil {
		return nil, err
	}
	if err := remove(txn, table, index, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// eachObject calls fn for every object of table, in id order.
func eachObject(txn *memdb.Txn, table string, fn func(any)) error {
	it, err := txn.Get(table, "id")
	if err != nil {
		return err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		fn(raw)
	}
	return nil
}

// remove deletes obj from table and records index as the table's latest.
func remove(txn *memdb.Txn, table string, index uint64, obj any) error {
	if err := txn.Delete(table, obj); err != nil {
		return fmt.Errorf("fsm: delete %s: %w", table, err)
	}
	return touchTable(txn, table, index)
}

// touchTable records index as table's latest change. Commands of one batch
// share their index, so after the first the entry is usually current
// already; a read is much cheaper than rewriting it.
func touchTable(txn *memdb.Txn, table string, index uint64) error {
	raw, err := txn.First(tableIndex, "id", table)
	if err != nil {
		return err
	}
	if raw != nil && raw.(*IndexEntry).Index == index {
		return nil
	}
	return txn.Insert(tableIndex, &IndexEntry{Table: table, Index: index})
}
