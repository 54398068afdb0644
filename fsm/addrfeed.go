package fsm

import (
	"sync"

	"github.com/hashicorp/go-memdb"
)

// NamedChange is one change of an address that has a dns_name before or
// after it: After is the address as the change left it, nil when the
// change removed it.
type NamedChange struct {
	ID    string
	After *Address
}

// namedFeedSize bounds the changes a store keeps for its DNS reader. A
// reader that falls further behind reads the named addresses whole again.
const namedFeedSize = 1 << 16

// namedFeed keeps the latest changes of named addresses of one store, so
// that the DNS server follows them without reading every named address
// (node's dnsSource). It is no part of the replicated state: Apply writes
// it after a transaction commits and a restored store starts an empty one,
// which its readers see as a new store.
type namedFeed struct {
	size    int // how many changes it keeps
	mu      sync.Mutex
	ring    []NamedChange // guarded by mu; the last len(ring) changes, at most size
	next    uint64        // guarded by mu; the cursor after the newest change
	changed chan struct{} // guarded by mu; closed at the next change
}

func newNamedFeed(size int) *namedFeed {
	return &namedFeed{size: size, changed: make(chan struct{})}
}

// read opens a read transaction of db and returns it with the changes
// after cursor, oldest first, the cursor after them and a channel closed
// at the next change; complete is false (and changes nil) when some were
// dropped. With all, it returns no changes, only the cursor. The
// transaction holds exactly the changes up to the returned cursor:
// commit writes them under the same lock.
func (f *namedFeed) read(db *memdb.MemDB, cursor uint64, all bool) (txn *memdb.Txn, changes []NamedChange, next uint64, changed <-chan struct{}, complete bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	txn = db.Txn(false)
	if all {
		return txn, nil, f.next, f.changed, true
	}
	oldest := f.next - uint64(len(f.ring))
	if cursor < oldest || cursor > f.next {
		return txn, nil, f.next, f.changed, false
	}
	if n := f.next - cursor; n > 0 {
		changes = make([]NamedChange, 0, n)
		for c := cursor; c < f.next; c++ {
			changes = append(changes, f.ring[c%uint64(f.size)])
		}
	}
	return txn, changes, f.next, f.changed, true
}

// commit commits txn, which tracks its changes, and records its changes
// of named addresses, waking the readers if there were any.
func (f *namedFeed) commit(txn *memdb.Txn) {
	cs := txn.Changes()
	f.mu.Lock()
	defer f.mu.Unlock()
	txn.Commit()
	n := 0
	for _, c := range cs {
		if c.Table != tableAddresses {
			continue
		}
		if !named(c.Before) && !named(c.After) {
			continue
		}
		after, _ := c.After.(*Address)
		nc := NamedChange{After: after}
		if after != nil {
			nc.ID = after.ID
		} else {
			nc.ID = c.Before.(*Address).ID
		}
		if len(f.ring) < f.size {
			f.ring = append(f.ring, nc)
		} else {
			f.ring[f.next%uint64(f.size)] = nc
		}
		f.next++
		n++
	}
	if n > 0 {
		close(f.changed)
		f.changed = make(chan struct{})
	}
}

// touchNamed records index as the last change of DNS names when txn, which
// tracks its changes, changed an address that has a dns_name before or
// after it, in a state marked by DNSSerialMarkRequest. DNS serves the index as its zones' serial, so it must move
// with the names and only with them, alike on every server however its
// store came about (applied, or read from a snapshot).
func touchNamed(txn *memdb.Txn, index uint64) error {
	if raw, err := txn.First(tableIndex, "id", indexDNSSerialMark); err != nil || raw == nil {
		return err // not marked yet (DNSSerialMarkRequest)
	}
	for _, c := range txn.Changes() {
		if c.Table == tableAddresses && (named(c.Before) || named(c.After)) {
			return touchTable(txn, indexDNSNames, index)
		}
	}
	return nil
}

func named(raw any) bool {
	a, _ := raw.(*Address)
	return a != nil && a.DNSName != ""
}

// tracksNamed reports whether the transaction applying cmds must track its
// changes for the named-address feed: unless every command is an
// allocation without a dns_name, which writes no named address (the
// allocations under load, which pay nothing for it).
func tracksNamed(cmds ...Command) bool {
	for _, c := range cmds {
		if c == nil {
			continue
		}
		if a, ok := c.(*AddressAllocateRequest); !ok || a.DNSName != "" {
			return true
		}
	}
	return false
}
