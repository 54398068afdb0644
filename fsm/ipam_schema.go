package fsm

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/ipam"
)

// ipamTables returns the IPAM part of the memdb schema.
func ipamTables() map[string]*memdb.TableSchema {
	str := func(field string) memdb.Indexer { return &memdb.StringFieldIndex{Field: field} }
	opt := func(name, field string) *memdb.IndexSchema {
		return &memdb.IndexSchema{Name: name, AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: field, Lowercase: true}}
	}
	// The tables every allocation writes index without reflection.
	addrOpt := func(name string, field func(*Address) string) *memdb.IndexSchema {
		return &memdb.IndexSchema{Name: name, AllowMissing: true, Indexer: lowerIndex(field)}
	}
	id := func(field string) map[string]*memdb.IndexSchema {
		return map[string]*memdb.IndexSchema{"id": {Name: "id", Unique: true, Indexer: str(field)}}
	}
	t := map[string]*memdb.TableSchema{
		tableVRFs: {Name: tableVRFs, Indexes: id("ID")},
		tableSpaces: {Name: tableSpaces, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: fieldIndex(func(u *spaceUsage) string { return u.ID })},
		}},
		tableIPAMClock: {Name: tableIPAMClock, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: fieldIndex(func(c *ipamClock) string { return c.ID })},
		}},
		tableZones: {Name: tableZones, Indexes: id("ID")},
		tablePrefixes: {Name: tablePrefixes, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: fieldIndex(func(p *Prefix) string { return p.ID })},
			// cidr orders prefixes by VRF, address and length; it finds a
			// prefix by (vrf, netip.Prefix).
			"cidr":   {Name: "cidr", Unique: true, Indexer: prefixIndexer{}},
			"tenant": opt("tenant", "Tenant"),
		}},
		tableIPRanges: {Name: tableIPRanges, Indexes: map[string]*memdb.IndexSchema{
			"id":     {Name: "id", Unique: true, Indexer: str("ID")},
			"prefix": {Name: "prefix", Indexer: str("PrefixID")},
		}},
		tableAddresses: {Name: tableAddresses, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: fieldIndex(func(a *Address) string { return a.ID })},
			// addr orders addresses by VRF and numeric address.
			// A prefix's addresses are a range of addr: active prefixes
			// never overlap in a VRF, so no index by prefix is needed.
			"addr":     {Name: "addr", Unique: true, Indexer: addressIndexer{}},
			"tenant":   addrOpt("tenant", func(a *Address) string { return a.Tenant }),
			"owner":    addrOpt("owner", func(a *Address) string { return a.Owner }),
			"dns_name": addrOpt("dns_name", func(a *Address) string { return a.DNSName }),
		}},
		tablePools: {Name: tablePools, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: str("ID")},
			"name": {Name: "name", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				str("Kind"), str("Name"),
			}}},
		}},
		tableIDAllocs: {Name: tableIDAllocs, Indexes: map[string]*memdb.IndexSchema{
			"id":     {Name: "id", Unique: true, Indexer: str("ID")},
			"number": {Name: "number", Unique: true, Indexer: numberIndexer{}},
			// name finds a pool's allocation by name; unnamed ones are
			// indexed by their pool alone.
			"name": {Name: "name", AllowMissing: true, Indexer: &memdb.CompoundIndex{
				Indexes: []memdb.Indexer{str("PoolID"), str("Name")}, AllowMissing: true,
			}},
			"tenant": opt("tenant", "Tenant"),
			"owner":  opt("owner", "Owner"),
		}},
		tableRuns: {Name: tableRuns, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: spaceKeyIndexer{start: true}},
		}},
		tableHolds: {Name: tableHolds, Indexes: map[string]*memdb.IndexSchema{
			"id":    {Name: "id", Unique: true, Indexer: spaceKeyIndexer{}},
			"until": {Name: "until", Unique: true, Indexer: holdUntilIndexer{}},
		}},
	}
	return t
}

// spaceKey builds Space + NUL + 16-byte big-endian key: byte order is
// numeric order within a space.
func spaceKey(space string, k ipam.Key) []byte {
	b := make([]byte, 0, len(space)+17)
	b = append(b, space...)
	b = append(b, 0)
	kb := k.Bytes()
	return append(b, kb[:]...)
}

// spaceKeyIndexer indexes runs (by Start) and holds (by Key) under
// (space, key). FromArgs takes (space string, key ipam.Key).
type spaceKeyIndexer struct{ start bool }

func (x spaceKeyIndexer) FromObject(obj any) (bool, []byte, error) {
	switch o := obj.(type) {
	case *storedRun:
		return true, spaceKey(o.Space, o.Start), nil
	case *storedHold:
		return true, spaceKey(o.Space, o.Key), nil
	}
	return false, nil, fmt.Errorf("fsm: spaceKeyIndexer: unexpected %T", obj)
}

func (x spaceKeyIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("fsm: spaceKeyIndexer: want (space, key), got %d args", len(args))
	}
	space, ok1 := args[0].(string)
	k, ok2 := args[1].(ipam.Key)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("fsm: spaceKeyIndexer: want (string, ipam.Key), got (%T, %T)", args[0], args[1])
	}
	return spaceKey(space, k), nil
}

// PrefixFromArgs lets the index be searched by space alone (all of its
// runs or holds).
func (x spaceKeyIndexer) PrefixFromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("fsm: spaceKeyIndexer: want (space), got %d args", len(args))
	}
	space, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("fsm: spaceKeyIndexer: want string, got %T", args[0])
	}
	return append([]byte(space), 0), nil
}

// holdUntilIndexer orders holds by (Until, Space, Key): Until as a
// big-endian uint64 with the sign bit flipped, so negative times sort
// first. FromArgs takes (until int64) and finds the first hold at or after.
type holdUntilIndexer struct{}

func untilBytes(until int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(until)^1<<63)
	return b[:]
}

func (holdUntilIndexer) FromObject(obj any) (bool, []byte, error) {
	h, ok := obj.(*storedHold)
	if !ok {
		return false, nil, fmt.Errorf("fsm: holdUntilIndexer: unexpected %T", obj)
	}
	return true, append(untilBytes(h.Until), spaceKey(h.Space, h.Key)...), nil
}

func (holdUntilIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("fsm: holdUntilIndexer: want (until), got %d args", len(args))
	}
	u, ok := args[0].(int64)
	if !ok {
		return nil, fmt.Errorf("fsm: holdUntilIndexer: want int64, got %T", args[0])
	}
	return untilBytes(u), nil
}

// vrfAddrKey builds VRF + NUL + family byte + 16-byte address.
func vrfAddrKey(vrf string, a netip.Addr) []byte {
	ak := ipam.AddrKey(a)
	b := make([]byte, 0, len(vrf)+1+len(ak)+1)
	b = append(b, vrf...)
	b = append(b, 0)
	return append(b, ak[:]...)
}

// prefixIndexer indexes prefixes by (VRF, address, length). FromArgs
// takes (vrf string, p netip.Prefix); PrefixFromArgs (vrf string).
type prefixIndexer struct{}

func (prefixIndexer) FromObject(obj any) (bool, []byte, error) {
	p, ok := obj.(*Prefix)
	if !ok {
		return false, nil, fmt.Errorf("fsm: prefixIndexer: unexpected %T", obj)
	}
	pfx, err := netip.ParsePrefix(p.Prefix)
	if err != nil {
		return false, nil, fmt.Errorf("fsm: prefix %s: %w", p.ID, err)
	}
	return true, append(vrfAddrKey(p.VRF, pfx.Addr()), byte(pfx.Bits())), nil
}

func (prefixIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("fsm: prefixIndexer: want (vrf, prefix), got %d args", len(args))
	}
	vrf, ok1 := args[0].(string)
	p, ok2 := args[1].(netip.Prefix)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("fsm: prefixIndexer: want (string, netip.Prefix), got (%T, %T)", args[0], args[1])
	}
	return append(vrfAddrKey(vrf, p.Addr()), byte(p.Bits())), nil
}

func (prefixIndexer) PrefixFromArgs(args ...any) ([]byte, error) {
	return vrfPrefixFromArgs(args)
}

func vrfPrefixFromArgs(args []any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("fsm: want (vrf), got %d args", len(args))
	}
	vrf, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("fsm: want string, got %T", args[0])
	}
	return append([]byte(vrf), 0), nil
}

// addressIndexer indexes addresses by (VRF, address). FromArgs takes (vrf
// string, a netip.Addr); PrefixFromArgs (vrf string).
type addressIndexer struct{}

func (addressIndexer) FromObject(obj any) (bool, []byte, error) {
	a, ok := obj.(*Address)
	if !ok {
		return false, nil, fmt.Errorf("fsm: addressIndexer: unexpected %T", obj)
	}
	ip, err := netip.ParseAddr(a.Address)
	if err != nil {
		return false, nil, fmt.Errorf("fsm: address %s: %w", a.ID, err)
	}
	return true, vrfAddrKey(a.VRF, ip), nil
}

func (addressIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("fsm: addressIndexer: want (vrf, addr), got %d args", len(args))
	}
	vrf, ok1 := args[0].(string)
	a, ok2 := args[1].(netip.Addr)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("fsm: addressIndexer: want (string, netip.Addr), got (%T, %T)", args[0], args[1])
	}
	return vrfAddrKey(vrf, a), nil
}

func (addressIndexer) PrefixFromArgs(args ...any) ([]byte, error) {
	return vrfPrefixFromArgs(args)
}

// numberIndexer indexes ID allocations by (PoolID, Number). FromArgs takes
// (poolID string, number int); PrefixFromArgs (poolID string).
type numberIndexer struct{}

func poolNumberKey(pool string, n int) []byte {
	b := append([]byte(pool), 0)
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

func (numberIndexer) FromObject(obj any) (bool, []byte, error) {
	a, ok := obj.(*IDAllocation)
	if !ok {
		return false, nil, fmt.Errorf("fsm: numberIndexer: unexpected %T", obj)
	}
	return true, poolNumberKey(a.PoolID, a.Number), nil
}

func (numberIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("fsm: numberIndexer: want (pool, number), got %d args", len(args))
	}
	pool, ok1 := args[0].(string)
	n, ok2 := args[1].(int)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("fsm: numberIndexer: want (string, int), got (%T, %T)", args[0], args[1])
	}
	return poolNumberKey(pool, n), nil
}

func (numberIndexer) PrefixFromArgs(args ...any) ([]byte, error) {
	return vrfPrefixFromArgs(args)
}

// txnRuns is the ipam.RunStore of one space over a write transaction.
// memdb errors here mean the schema and the code disagree: they panic, as
// Apply does for a corrupt log entry, rather than leave a partial write.
type txnRuns struct {
	txn   *memdb.Txn
	space string
}

func (s txnRuns) check(raw any) (ipam.Run, bool) {
	if raw == nil {
		return ipam.Run{}, false
	}
	r := raw.(*storedRun)
	if r.Space != s.space {
		return ipam.Run{}, false
	}
	return ipam.Run{Start: r.Start, End: r.End}, true
}

func (s txnRuns) Floor(a ipam.Key) (ipam.Run, bool) {
	it, err := s.txn.ReverseLowerBound(tableRuns, "id", s.space, a)
	must(err)
	return s.check(it.Next())
}

func (s txnRuns) Ceil(a ipam.Key) (ipam.Run, bool) {
	it, err := s.txn.LowerBound(tableRuns, "id", s.space, a)
	must(err)
	return s.check(it.Next())
}

func (s txnRuns) Put(r ipam.Run) {
	raw, err := s.txn.First(tableRuns, "id", s.space, r.Start)
	must(err)
	if raw != nil {
		if old := raw.(*storedRun); old.txn == s.txn {
			old.End = r.End
			return
		}
	}
	must(s.txn.Insert(tableRuns, &storedRun{Space: s.space, Start: r.Start, End: r.End, txn: s.txn}))
}

func (s txnRuns) Delete(start ipam.Key) {
	raw, err := s.txn.First(tableRuns, "id", s.space, start)
	must(err)
	if raw != nil {
		must(s.txn.Delete(tableRuns, raw))
	}
}

// txnHolds is the ipam.HoldStore over a write transaction.
type txnHolds struct{ txn *memdb.Txn }

func (q txnHolds) Get(space string, k ipam.Key) (ipam.Hold, bool) {
	raw, err := q.txn.First(tableHolds, "id", space, k)
	must(err)
	if raw == nil {
		return ipam.Hold{}, false
	}
	h := raw.(*storedHold)
	return ipam.Hold{Space: h.Space, Key: h.Key, Until: h.Until}, true
}

func (q txnHolds) First() (ipam.Hold, bool) {
	raw, err := q.txn.First(tableHolds, "until")
	must(err)
	if raw == nil {
		return ipam.Hold{}, false
	}
	h := raw.(*storedHold)
	return ipam.Hold{Space: h.Space, Key: h.Key, Until: h.Until}, true
}

func (q txnHolds) Put(h ipam.Hold) {
	must(q.txn.Insert(tableHolds, &storedHold{Space: h.Space, Key: h.Key, Until: h.Until}))
}

func (q txnHolds) Delete(space string, k ipam.Key) {
	raw, err := q.txn.First(tableHolds, "id", space, k)
	must(err)
	if raw != nil {
		must(q.txn.Delete(tableHolds, raw))
	}
}

func must(err error) {
	if err != nil {
		panic(fmt.Sprintf("fsm: ipam store: %v", err))
	}
}
