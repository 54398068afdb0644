package fsm

import (
	"slices"

	"github.com/hashicorp/go-memdb"
)

// lookahead holds what the commands of a chunk would otherwise read from
// indexes that earlier commands of the chunk write: their idempotency
// records, and whether the IDs of the addresses they allocate are taken.
//
// It exists because of how go-memdb reads inside a write transaction: a
// read of an index the transaction has written goes through a clone of
// the index's radix transaction, and making the clone drops the cache of
// nodes the transaction has already copied (iradix Txn.Clone). So in a
// chunk of 64 allocations, each command's lookup of its idempotency key
// and of its address ID made its inserts copy their whole paths from the
// root again: about a third of Apply's work. Looked up before the chunk
// writes anything, they cost a read each and nothing after.
//
// A looked-up answer is used for a command only while no earlier command
// of the chunk can have changed it:
//   - an idempotency record, unless an earlier command has the same key
//     (it may write the record) or reaps records;
//   - free address IDs, only when every earlier command is an address
//     allocation (allocations insert addresses under their own IDs and
//     delete none) and none of them lists one of the IDs.
//
// Everything else is read when it is needed, as in a single command's
// transaction.
type lookahead struct {
	idem []idemLookup
}

// idemLookup is the idempotency record of one command as the chunk found
// it; ok says whether it was looked up.
type idemLookup struct {
	ok  bool
	rec *IdempotencyRecord
}

// look reads, in txn before anything is written, what cmds will need.
func look(txn *memdb.Txn, cmds []Command) lookahead {
	la := lookahead{idem: make([]idemLookup, len(cmds))}
	// Made when first needed: most batches that are not allocations
	// carry neither.
	var keys, ids map[string]bool
	reaped, allocsOnly := false, true
	for i, c := range cmds {
		if c == nil {
			continue
		}
		if m := c.Meta(); m.IdempotencyKey != "" && !reaped {
			key := idempotencyKey(m)
			if !keys[key] {
				if keys == nil {
					keys = make(map[string]bool, len(cmds))
				}
				keys[key] = true
				la.idem[i] = idemLookup{ok: true, rec: idempotencyRecord(txn, key)}
			}
		}
		if _, ok := c.(*IdempotencyReapRequest); ok {
			reaped = true
		}
		req, ok := c.(*AddressAllocateRequest)
		if !ok {
			allocsOnly = false
			continue
		}
		if allocsOnly {
			req.idsFree = idsFree(txn, req.IDs, ids)
		}
		if ids == nil {
			ids = make(map[string]bool, len(cmds))
		}
		for _, id := range req.IDs {
			ids[id] = true
		}
	}
	return la
}

// forget clears what look marked on cmds, before they are applied again
// one by one.
func (la lookahead) forget(cmds []Command) {
	for _, c := range cmds {
		if req, ok := c.(*AddressAllocateRequest); ok {
			req.idsFree = false
		}
	}
}

// record returns the idempotency record of command i and whether it was
// looked up.
func (la lookahead) record(i int) (*IdempotencyRecord, bool) {
	return la.idem[i].rec, la.idem[i].ok
}

// idsFree reports whether no address has one of ids and no earlier
// command of the chunk (listed) allocates one.
func idsFree(txn *memdb.Txn, ids []string, listed map[string]bool) bool {
	for _, id := range ids {
		if listed[id] {
			return false
		}
	}
	return addressIDsFree(txn, ids)
}

// addressIDsFree reports whether no address has one of ids. IDs in
// ascending order, as the leader makes them, take one seek: when the
// first address ID at or after the lowest is past the highest (or there
// is none), none of them is taken. Otherwise each ID is looked up.
func addressIDsFree(txn *memdb.Txn, ids []string) bool {
	if len(ids) > 1 && slices.IsSorted(ids) {
		it, err := txn.LowerBound(tableAddresses, "id", ids[0])
		must(err)
		raw := it.Next()
		if raw == nil || raw.(*Address).ID > ids[len(ids)-1] {
			return true
		}
	}
	for _, id := range ids {
		raw, err := txn.First(tableAddresses, "id", id)
		must(err)
		if raw != nil {
			return false
		}
	}
	return true
}

// idempotencyKey is the key of a command's idempotency record: the
// caller's key scoped by actor.
func idempotencyKey(m *WriteMeta) string { return m.Actor + "/" + m.IdempotencyKey }

// idempotencyRecord returns the record under key, or nil.
func idempotencyRecord(txn *memdb.Txn, key string) *IdempotencyRecord {
	raw, err := txn.First(tableIdempotency, "id", key)
	must(err)
	if raw == nil {
		return nil
	}
	return raw.(*IdempotencyRecord)
}
