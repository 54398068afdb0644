package node

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/btree"
	"github.com/moxxie/moxxie/fsm"
)

// namedSet holds the named addresses the DNS source serves, by ID, and
// ordered by name (from the root label down) and by address, so that a
// change of the zones finds the addresses whose records it touches (those
// under a zone that comes, goes or changes, or inside such a reverse zone)
// without looking at every address. It is not safe for concurrent use.
type namedSet struct {
	byID   map[string]*fsm.Address
	byName *btree.BTreeG[nameItem]
	byAddr *btree.BTreeG[addrItem]
}

// nameItem orders an address by its name's labels from the root down
// ("test.moxxie.web." for web.moxxie.test), then by ID: the names under a
// zone are a range.
type nameItem struct {
	key string
	a   *fsm.Address
}

// addrItem orders an address by its value, then by ID: the addresses
// inside a prefix are a range.
type addrItem struct {
	addr netip.Addr
	a    *fsm.Address
}

func newNamedSet(addrs []*fsm.Address) *namedSet {
	s := &namedSet{
		byID: make(map[string]*fsm.Address, len(addrs)),
		byName: btree.NewG(32, func(x, y nameItem) bool {
			return cmp.Or(strings.Compare(x.key, y.key), strings.Compare(x.a.ID, y.a.ID)) < 0
		}),
		byAddr: btree.NewG(32, func(x, y addrItem) bool {
			return cmp.Or(x.addr.Compare(y.addr), strings.Compare(x.a.ID, y.a.ID)) < 0
		}),
	}
	for _, a := range addrs {
		s.put(a)
	}
	return s
}

// len returns how many addresses the set holds.
func (s *namedSet) len() int { return len(s.byID) }

// get returns the address with id, or nil.
func (s *namedSet) get(id string) *fsm.Address { return s.byID[id] }

// put adds a, or replaces the address with its ID.
func (s *namedSet) put(a *fsm.Address) {
	if old := s.byID[a.ID]; old != nil {
		s.remove(old)
	}
	s.byID[a.ID] = a
	s.byName.ReplaceOrInsert(nameItem{rootFirst(a.DNSName), a})
	if addr, ok := addrOf(a); ok {
		s.byAddr.ReplaceOrInsert(addrItem{addr, a})
	}
}

// remove takes out a, which the set holds.
func (s *namedSet) remove(a *fsm.Address) {
	delete(s.byID, a.ID)
	s.byName.Delete(nameItem{rootFirst(a.DNSName), a})
	if addr, ok := addrOf(a); ok {
		s.byAddr.Delete(addrItem{addr, a})
	}
}

// all returns every address, in no particular order.
func (s *namedSet) all() []*fsm.Address {
	out := make([]*fsm.Address, 0, len(s.byID))
	for _, a := range s.byID {
		out = append(out, a)
	}
	return out
}

// touchedBy returns the addresses whose name lies under one of t's forward
// zones or whose address lies in one of its reverse zones, each once: a
// superset of those t.affects, in the order of the store's dns_name index.
func (s *namedSet) touchedBy(t zoneTouch) []*fsm.Address {
	seen := map[string]bool{}
	var out []*fsm.Address
	add := func(a *fsm.Address) {
		if !seen[a.ID] {
			seen[a.ID] = true
			out = append(out, a)
		}
	}
	for z := range t.forward {
		key := rootFirst(z)
		s.byName.AscendGreaterOrEqual(nameItem{key: key, a: &fsm.Address{}}, func(it nameItem) bool {
			if !strings.HasPrefix(it.key, key) {
				return false
			}
			add(it.a)
			return true
		})
	}
	for _, p := range t.reverse {
		s.byAddr.AscendGreaterOrEqual(addrItem{addr: p.Masked().Addr(), a: &fsm.Address{}}, func(it addrItem) bool {
			if !p.Contains(it.addr) {
				return false
			}
			add(it.a)
			return true
		})
	}
	slices.SortFunc(out, storeCmp)
	return out
}

// rootFirst returns a DNS name's labels in lower case from the root down,
// each followed by a dot: "test.moxxie.web." for "Web.moxxie.test.".
func rootFirst(name string) string {
	labels := strings.Split(strings.ToLower(strings.TrimSuffix(name, ".")), ".")
	slices.Reverse(labels)
	return strings.Join(labels, ".") + "."
}

// addrOf returns a's address, unmapped, as zoneTouch.affects reads it.
func addrOf(a *fsm.Address) (netip.Addr, bool) {
	addr, err := netip.ParseAddr(a.Address)
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}
