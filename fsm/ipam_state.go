package fsm

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/ipam"
)

// QuarantineDue reports whether a quarantined address may be released at
// leader time now, so the leader knows to send a QuarantineDrainRequest.
func (s *Store) QuarantineDue(now int64) bool {
	raw, err := s.db.Txn(false).First(tableHolds, "until")
	return err == nil && raw != nil && raw.(*storedHold).Until <= now
}

// QuarantineEnd returns the leader time at which the first quarantine of
// an address ends, and false when no address is in quarantine. ws, when
// not nil, is told when that changes.
func (s *Store) QuarantineEnd(ws memdb.WatchSet) (int64, bool) {
	ch, raw, err := s.db.Txn(false).FirstWatch(tableHolds, "until")
	if ws != nil {
		ws.Add(ch)
	}
	if err != nil || raw == nil {
		return 0, false
	}
	return raw.(*storedHold).Until, true
}

// watchSpaces adds to ws the channels that fire when the usage of the
// given spaces changes, so blocking reads of utilization wake up.
func watchSpaces(txn *memdb.Txn, ws memdb.WatchSet, ids ...string) {
	if ws == nil {
		return
	}
	for _, id := range ids {
		if ch, _, err := txn.FirstWatch(tableSpaces, "id", id); err == nil {
			ws.Add(ch)
		}
	}
}

// prefixView returns a copy of p with its utilization: addresses of an
// active prefix, child blocks of a container.
func prefixView(txn *memdb.Txn, p *Prefix) *PrefixView {
	v := PrefixView{Prefix: p}
	var sp ipam.Space
	var id string
	if p.Status == PrefixContainer {
		sp, id = blockSpace(txn, p), blockSpaceID(p.ID)
	} else {
		sp, id = addrSpace(txn, p), addrSpaceID(p.ID)
	}
	v.Utilization = utilization(sp.UsedExact(txnRuns{txn, id}), sp.ExactSize())
	return &v
}

// poolView returns a copy of p with its utilization.
func poolView(txn *memdb.Txn, p *Pool) *PoolView {
	v := PoolView{Pool: p}
	if base, err := poolSpace(p); err == nil {
		sp := loadSpace(txn, poolSpaceID(p.ID), base)
		v.Utilization = utilization(sp.UsedExact(txnRuns{txn, poolSpaceID(p.ID)}), sp.ExactSize())
	}
	return &v
}

// implicitVRF is the always-present default VRF as lists show it.
var implicitVRF = &VRF{ID: DefaultVRF, Description: "default VRF"}

// VRFs lists the VRFs, the default one first.
func (s *Store) VRFs(ws memdb.WatchSet) (uint64, []*VRF, error) {
	txn := s.db.Txn(false)
	it, err := txn.Get(tableVRFs, "id")
	if err != nil {
		return 0, nil, err
	}
	ws.Add(it.WatchCh())
	out := []*VRF{implicitVRF}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*VRF))
	}
	return s.tableIndex(txn, tableVRFs), out, nil
}

// VRF returns one VRF, or nil.
func (s *Store) VRF(ws memdb.WatchSet, id string) (uint64, *VRF, error) {
	txn := s.db.Txn(false)
	idx := s.tableIndex(txn, tableVRFs)
	if id == DefaultVRF {
		return idx, implicitVRF, nil
	}
	ch, raw, err := txn.FirstWatch(tableVRFs, "id", id)
	if err != nil || raw == nil {
		ws.Add(ch)
		return idx, nil, err
	}
	ws.Add(ch)
	return idx, raw.(*VRF), nil
}

// PrefixFilter selects prefixes; empty fields match everything.
type PrefixFilter struct {
	VRF      string
	Tenant   string
	ParentID string
	Status   string
	// Family is 4 or 6, or 0 for both.
	Family int
	// Contains keeps the prefixes that contain this address or prefix.
	Contains netip.Prefix
}

func (f *PrefixFilter) match(p *Prefix) bool {
	if f.Tenant != "" && p.Tenant != f.Tenant ||
		f.ParentID != "" && p.ParentID != f.ParentID ||
		f.Status != "" && p.Status != f.Status {
		return false
	}
	if f.Family != 0 || f.Contains.IsValid() {
		n := prefixNet(p)
		if f.Family == 4 && !n.Addr().Is4() || f.Family == 6 && n.Addr().Is4() {
			return false
		}
		if f.Contains.IsValid() && !ipam.Contains(n, f.Contains) {
			return false
		}
	}
	return true
}

// Prefixes lists prefixes in (VRF, address, length) order, each with its
// utilization.
func (s *Store) Prefixes(ws memdb.WatchSet, f PrefixFilter) (uint64, []*PrefixView, error) {
	txn := s.db.Txn(false)
	var it memdb.ResultIterator
	var err error
	if f.VRF != "" {
		it, err = txn.Get(tablePrefixes, "cidr_prefix", f.VRF)
	} else {
		it, err = txn.Get(tablePrefixes, "cidr")
	}
	if err != nil {
		return 0, nil, err
	}
	ws.Add(it.WatchCh())
	if ws != nil {
		sit, err := txn.Get(tableSpaces, "id")
		if err != nil {
			return 0, nil, err
		}
		ws.Add(sit.WatchCh())
	}
	out := []*PrefixView{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if p := raw.(*Prefix); f.match(p) {
			out = append(out, prefixView(txn, p))
		}
	}
	return s.tableIndex(txn, tablePrefixes, tableSpaces), out, nil
}

// TenantHasPrefixIn reports whether a prefix of tenant lies in VRF vrf:
// the VRF is then the tenant's to filter by, whoever it belongs to.
func (s *Store) TenantHasPrefixIn(tenant, vrf string) (bool, error) {
	it, err := s.db.Txn(false).Get(tablePrefixes, "tenant", tenant)
	if err != nil {
		return false, err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if raw.(*Prefix).VRF == vrf {
			return true, nil
		}
	}
	return false, nil
}

// Prefix returns one prefix with its utilization, or nil.
func (s *Store) Prefix(ws memdb.WatchSet, id string) (uint64, *PrefixView, error) {
	txn := s.db.Txn(false)
	ch, raw, err := txn.FirstWatch(tablePrefixes, "id", id)
	if err != nil {
		return 0, nil, err
	}
	ws.Add(ch)
	idx := s.tableIndex(txn, tablePrefixes, tableSpaces)
	if raw == nil {
		return idx, nil, nil
	}
	p := raw.(*Prefix)
	watchSpaces(txn, ws, addrSpaceID(p.ID), blockSpaceID(p.ID))
	return idx, prefixView(txn, p), nil
}

// Available lists up to limit free addresses of an active prefix, or free
// child prefixes (the largest aligned blocks) of a container, lowest
// first. Addresses in quarantine are not free.
func (s *Store) Available(id string, limit int) ([]string, error) {
	txn := s.db.Txn(false)
	raw, err := txn.First(tablePrefixes, "id", id)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, notFound("prefix", id)
	}
	p := raw.(*Prefix)
	out := []string{}
	if p.Status == PrefixContainer {
		sp := blockSpace(txn, p)
		for _, r := range sp.FreeRuns(txnRuns{txn, blockSpaceID(p.ID)}, limit) {
			for _, b := range blocks(sp.Addr(r.Start), sp.Addr(r.End)) {
				if len(out) == limit {
					return out, nil
				}
				out = append(out, b.String())
			}
		}
		return out, nil
	}
	sp := addrSpace(txn, p)
	for _, r := range sp.FreeRuns(txnRuns{txn, addrSpaceID(p.ID)}, limit) {
		for k := r.Start; len(out) < limit; k = k.Add64(1) {
			out = append(out, sp.Addr(k).String())
			if k == r.End {
				break
			}
		}
	}
	return out, nil
}

// blocks splits [first, last] into the fewest aligned prefixes.
func blocks(first, last netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for {
		bits := first.BitLen()
		// Shorten while the block stays aligned and within last.
		for bits > 0 {
			p := netip.PrefixFrom(first, bits-1).Masked()
			if p.Addr() != first || last.Less(ipam.LastAddr(p)) {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(first, bits)
		out = append(out, p)
		end := ipam.LastAddr(p)
		if end == last {
			return out
		}
		first = end.Next()
	}
}

// IPRanges lists the IP ranges of a prefix, or of all prefixes when
// prefixID is empty.
func (s *Store) IPRanges(ws memdb.WatchSet, prefixID string) (uint64, []*IPRange, error) {
	if prefixID != "" {
		return list[*IPRange](s, ws, tableIPRanges, "prefix", prefixID)
	}
	return list[*IPRange](s, ws, tableIPRanges, "id")
}

// IPRange returns one IP range, or nil.
func (s *Store) IPRange(ws memdb.WatchSet, id string) (uint64, *IPRange, error) {
	return getByID[*IPRange](s, ws, tableIPRanges, id)
}

// AddressFilter selects addresses; empty fields match everything.
type AddressFilter struct {
	// PrefixID selects the addresses of an active prefix, or of the
	// prefixes inside a container (as NetBox lists a parent's IPs).
	PrefixID string
	VRF      string
	// Address, when valid, selects the addresses at this IP: in VRF, or
	// in every VRF.
	Address netip.Addr
	Tenant  string
	Owner   string
	DNSName string
	Status  string
	// Limit, when positive, bounds the number returned.
	Limit int
	// After, when set, resumes a listing after the address a previous
	// page ended with.
	After *AddressCursor

	// container is the CIDR of PrefixID when that is a container, in
	// containerVRF; Addresses sets them.
	container    netip.Prefix
	containerVRF string
}

// inPrefix reports whether a is an address of f.PrefixID.
func (f *AddressFilter) inPrefix(a *Address) bool {
	if f.PrefixID == "" || a.PrefixID == f.PrefixID {
		return true
	}
	if !f.container.IsValid() || a.VRF != f.containerVRF {
		return false
	}
	ip, err := netip.ParseAddr(a.Address)
	return err == nil && f.container.Contains(ip)
}

// skip reports whether a lies at or before f.After in the listing's
// order: ID order when byID, else (VRF, address) order.
func (f *AddressFilter) skip(a *Address, byID bool) bool {
	switch {
	case f.After == nil:
		return false
	case byID:
		return a.ID <= f.After.ID
	}
	return !f.After.afterInAddrOrder(a)
}

func (f *AddressFilter) match(a *Address) bool {
	return f.inPrefix(a) &&
		(!f.Address.IsValid() || a.Address == f.Address.String()) &&
		(f.VRF == "" || a.VRF == f.VRF) &&
		(f.Tenant == "" || a.Tenant == f.Tenant) &&
		(f.Owner == "" || a.Owner == f.Owner) &&
		(f.DNSName == "" || a.DNSName == strings.ToLower(strings.TrimSuffix(f.DNSName, "."))) &&
		(f.Status == "" || a.Status == f.Status)
}

// Addresses lists addresses, using the most selective index the filter
// allows: by DNS name, owner or tenant they come in ID order, otherwise
// in (VRF, address) order. f.After resumes a listing where a page ended.
func (s *Store) Addresses(ws memdb.WatchSet, f AddressFilter) (uint64, []*Address, error) {
	txn := s.db.Txn(false)
	if f.PrefixID != "" {
		raw, err := txn.First(tablePrefixes, "id", f.PrefixID)
		if err != nil {
			return 0, nil, err
		}
		if p, ok := raw.(*Prefix); ok && p.Status == PrefixContainer {
			f.container, f.containerVRF = prefixNet(p), p.VRF
		}
	}
	var it memdb.ResultIterator
	var err error
	// within, for the listings in ID order, reports whether an address
	// still has the value asked for: resumed at a cursor, the iterator
	// runs on into the next values.
	var within func(*Address) bool
	byID := func(index, value string, field func(*Address) string) {
		within = func(a *Address) bool { return strings.EqualFold(field(a), value) }
		if f.After == nil {
			it, err = txn.Get(tableAddresses, index, value)
		} else {
			it, err = txn.LowerBound(tableAddresses, index, value, f.After.ID)
		}
	}
	switch {
	case f.Address.IsValid():
		return s.addressesAt(txn, ws, f)
	case f.DNSName != "":
		byID("dns_name", strings.TrimSuffix(f.DNSName, "."), func(a *Address) string { return a.DNSName })
	case f.Owner != "":
		byID("owner", f.Owner, func(a *Address) string { return a.Owner })
	case f.PrefixID != "":
		return s.prefixAddressList(txn, ws, f)
	case f.Tenant != "":
		byID("tenant", f.Tenant, func(a *Address) string { return a.Tenant })
	case f.After != nil && (f.VRF == "" || f.VRF == f.After.VRF):
		// Resume at the cursor rather than skip up to it.
		it, err = txn.LowerBound(tableAddresses, "addr", f.After.VRF, f.After.Addr)
	case f.VRF != "":
		it, err = txn.Get(tableAddresses, "addr_prefix", f.VRF)
	default:
		it, err = txn.Get(tableAddresses, "addr")
	}
	if err != nil {
		return 0, nil, err
	}
	if ch := it.WatchCh(); ch != nil {
		ws.Add(ch)
	} else {
		watchTable(txn, ws, tableAddresses)
	}
	out := []*Address{}
	// The index is in the listing's order: past the cursor once, past
	// it for good.
	skipping := f.After != nil
	for raw := it.Next(); raw != nil; raw = it.Next() {
		a := raw.(*Address)
		if within != nil && !within(a) || within == nil && f.VRF != "" && a.VRF != f.VRF {
			break
		}
		if skipping = skipping && f.skip(a, within != nil); skipping || !f.match(a) {
			continue
		}
		out = append(out, a)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return s.tableIndex(txn, tableAddresses), out, nil
}

// addressesAt lists the addresses at f.Address, one lookup in the addr
// index per VRF (f.VRF, or every VRF in the index's order).
func (s *Store) addressesAt(txn *memdb.Txn, ws memdb.WatchSet, f AddressFilter) (uint64, []*Address, error) {
	vrfs := []string{f.VRF}
	if f.VRF == "" {
		it, err := txn.Get(tableVRFs, "id")
		if err != nil {
			return 0, nil, err
		}
		vrfs[0] = DefaultVRF
		for raw := it.Next(); raw != nil; raw = it.Next() {
			vrfs = append(vrfs, raw.(*VRF).ID)
		}
		slices.Sort(vrfs)
		vrfs = slices.Compact(vrfs)
	}
	watchTable(txn, ws, tableAddresses)
	out := []*Address{}
	for _, vrf := range vrfs {
		raw, err := txn.First(tableAddresses, "addr", vrf, f.Address)
		if err != nil {
			return 0, nil, err
		}
		if a, ok := raw.(*Address); ok && !f.skip(a, false) && f.match(a) {
			out = append(out, a)
			if f.Limit > 0 && len(out) == f.Limit {
				break
			}
		}
	}
	return s.tableIndex(txn, tableAddresses, tableVRFs), out, nil
}

// prefixAddressList lists the addresses of f.PrefixID from the range of
// the addr index that the prefix covers, from f.After on when it lies in
// that range; a container's range holds the addresses of its children.
func (s *Store) prefixAddressList(txn *memdb.Txn, ws memdb.WatchSet, f AddressFilter) (uint64, []*Address, error) {
	idx := s.tableIndex(txn, tableAddresses)
	out := []*Address{}
	ch, raw, err := txn.FirstWatch(tablePrefixes, "id", f.PrefixID)
	if err != nil {
		return 0, nil, err
	}
	ws.Add(ch)
	if raw == nil {
		return idx, out, nil
	}
	p := raw.(*Prefix)
	pfx := prefixNet(p)
	from := pfx.Addr()
	if c := f.After; c != nil && c.VRF == p.VRF && pfx.Contains(c.Addr) {
		from = c.Addr
	}
	it, err := txn.LowerBound(tableAddresses, "addr", p.VRF, from)
	if err != nil {
		return 0, nil, err
	}
	watchTable(txn, ws, tableAddresses)
	skipping := f.After != nil
	for raw := it.Next(); raw != nil; raw = it.Next() {
		a := raw.(*Address)
		if a.VRF != p.VRF || !f.inPrefix(a) {
			break
		}
		if skipping = skipping && f.skip(a, false); skipping || !f.match(a) {
			continue
		}
		out = append(out, a)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return idx, out, nil
}

// Address returns one address, or nil.
func (s *Store) Address(ws memdb.WatchSet, id string) (uint64, *Address, error) {
	return getByID[*Address](s, ws, tableAddresses, id)
}

// Pools lists the pools of one kind (vlan or vni) by name, each with its
// utilization.
func (s *Store) Pools(ws memdb.WatchSet, kind string) (uint64, []*PoolView, error) {
	txn := s.db.Txn(false)
	it, err := txn.Get(tablePools, "name_prefix", kind)
	if err != nil {
		return 0, nil, err
	}
	ws.Add(it.WatchCh())
	if ws != nil {
		sit, err := txn.Get(tableSpaces, "id")
		if err != nil {
			return 0, nil, err
		}
		ws.Add(sit.WatchCh())
	}
	out := []*PoolView{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, poolView(txn, raw.(*Pool)))
	}
	return s.tableIndex(txn, tablePools, tableSpaces), out, nil
}

// Pool returns the pool of kind whose ID or name is ref, or nil.
func (s *Store) Pool(ws memdb.WatchSet, kind, ref string) (uint64, *PoolView, error) {
	txn := s.db.Txn(false)
	idx := s.tableIndex(txn, tablePools, tableSpaces)
	ch, raw, err := txn.FirstWatch(tablePools, "id", ref)
	if err != nil {
		return 0, nil, err
	}
	ws.Add(ch)
	if raw == nil || raw.(*Pool).Kind != kind {
		ch, raw, err = txn.FirstWatch(tablePools, "name", kind, ref)
		if err != nil {
			return 0, nil, err
		}
		ws.Add(ch)
	}
	if raw == nil {
		return idx, nil, nil
	}
	watchSpaces(txn, ws, poolSpaceID(raw.(*Pool).ID))
	return idx, poolView(txn, raw.(*Pool)), nil
}

// IDFilter narrows a listing of VLAN or VNI allocations.
type IDFilter struct {
	// Kind is PoolVLAN or PoolVNI.
	Kind string
	// PoolID, Tenant: only the allocations of that pool, of that tenant
	// (empty: any).
	PoolID, Tenant string
	// After resumes a listing after that allocation (nil: from the start).
	After *IDCursor
	// Limit stops the listing after that many allocations (0: none).
	Limit int
}

// IDAllocations lists the VLAN ID or VNI allocations that f selects, by
// pool and number.
func (s *Store) IDAllocations(ws memdb.WatchSet, f IDFilter) (uint64, []*IDAllocation, error) {
	txn := s.db.Txn(false)
	var it memdb.ResultIterator
	var err error
	switch {
	case f.After != nil && (f.PoolID == "" || f.PoolID == f.After.PoolID):
		it, err = txn.LowerBound(tableIDAllocs, "number", f.After.PoolID, f.After.Number+1)
	case f.After != nil && f.PoolID < f.After.PoolID:
		return s.tableIndex(txn, tableIDAllocs), []*IDAllocation{}, nil // past the pool
	case f.PoolID != "":
		it, err = txn.Get(tableIDAllocs, "number_prefix", f.PoolID)
	default:
		it, err = txn.Get(tableIDAllocs, "number")
	}
	if err != nil {
		return 0, nil, err
	}
	ws.Add(it.WatchCh())
	out := []*IDAllocation{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		a := raw.(*IDAllocation)
		if f.PoolID != "" && a.PoolID != f.PoolID {
			break
		}
		if a.Kind == f.Kind && (f.Tenant == "" || a.Tenant == f.Tenant) {
			if out = append(out, a); f.Limit > 0 && len(out) == f.Limit {
				break
			}
		}
	}
	return s.tableIndex(txn, tableIDAllocs), out, nil
}

// IDAllocation returns one VLAN ID or VNI allocation of kind, or nil.
func (s *Store) IDAllocation(ws memdb.WatchSet, kind, id string) (uint64, *IDAllocation, error) {
	idx, a, err := getByID[*IDAllocation](s, ws, tableIDAllocs, id)
	if a != nil && a.Kind != kind {
		a = nil
	}
	return idx, a, err
}

// Zones lists the forward DNS zones by name.
func (s *Store) Zones(ws memdb.WatchSet) (uint64, []*Zone, error) {
	return list[*Zone](s, ws, tableZones, "id")
}

// Zone returns one zone, or nil.
func (s *Store) Zone(ws memdb.WatchSet, id string) (uint64, *Zone, error) {
	return getByID[*Zone](s, ws, tableZones, strings.ToLower(strings.TrimSuffix(id, ".")))
}

// ZoneOf returns the forward zone that serves name (the most specific
// zone that holds it), or nil.
func (s *Store) ZoneOf(name string) *Zone {
	return zoneOf(s.db.Txn(false), strings.ToLower(strings.TrimSuffix(name, ".")))
}

// ZoneNames returns how many addresses have a DNS name that forward zone
// id serves (a name in it and in no more specific zone) and that deleting
// it would take out of DNS, or hand to the zone above it against the
// naming rules (ipam_names.go), and the first of them by name, or nil;
// and the zone above, which serves them then, or nil. It reads every
// named address: it is for deleting a zone, not for a hot path.
func (s *Store) ZoneNames(id string) (int, *Address, *Zone) {
	id = strings.ToLower(strings.TrimSuffix(id, "."))
	txn := s.db.Txn(false)
	var up *Zone
	if i := strings.IndexByte(id, '.'); i >= 0 {
		up = zoneOf(txn, id[i+1:])
	}
	n := 0
	var first *Address
	for a, name := range namedUnder(txn, id) {
		if z := zoneOf(txn, name); z == nil || z.ID != id {
			continue
		}
		if up != nil && (a.Tenant == "" || !zoneBars(up, name, a.Tenant)) {
			continue
		}
		if n++; first == nil {
			first = a
		}
	}
	return n, first, up
}

// DNSData is what DNS serves, read in one transaction: the forward zones,
// the active prefixes (whose reverse zones are served) and the addresses
// that have a DNS name, or the changes of those since an earlier read
// (DNSChanges).
type DNSData struct {
	// Index is the raft index of the last change to zones, prefixes or
	// addresses with a DNS name (before or after the change): the zones'
	// serial, equal on every server at the same state however its store
	// came about.
	Index    uint64
	Zones    []*Zone
	Prefixes []*Prefix
	// Addresses are the named addresses in the dns_name index's order (by
	// lower-case name, then ID); DNSChanges leaves them nil.
	Addresses []*Address
	// Changes are the changes of named addresses after the cursor
	// DNSChanges was given, oldest first; DNS leaves them nil.
	Changes []NamedChange
	// Cursor follows the changes of named addresses: DNSChanges(ws,
	// Cursor) returns those after this read.
	Cursor uint64
}

// DNS returns the DNS data and adds to ws the channels that fire when it
// may change.
func (s *Store) DNS(ws memdb.WatchSet) (*DNSData, error) {
	txn, _, cursor, changed, _ := s.named.read(s.db, 0, true)
	ws.Add(changed)
	d, err := s.dnsZones(ws, txn)
	if err != nil {
		return nil, err
	}
	d.Cursor = cursor
	ai, err := txn.Get(tableAddresses, "dns_name")
	if err != nil {
		return nil, err
	}
	for raw := ai.Next(); raw != nil; raw = ai.Next() {
		d.Addresses = append(d.Addresses, raw.(*Address))
	}
	return d, nil
}

// DNSSerialsMarked reports whether the state has the mark from which SOA
// serials move with the changes DNS shows only (DNSSerialMarkRequest).
func (s *Store) DNSSerialsMarked() bool {
	return s.tableIndex(s.db.Txn(false), indexDNSSerialMark) != 0
}

// DNSChanges returns the zones and prefixes as DNS does, but instead of
// every named address only the changes of named addresses after cursor
// (a DNSData's Cursor from this store), and adds to ws the channels that
// fire when the data may change. It returns false when the store no
// longer holds every change since cursor: read with DNS instead.
func (s *Store) DNSChanges(ws memdb.WatchSet, cursor uint64) (*DNSData, bool, error) {
	txn, changes, next, changed, ok := s.named.read(s.db, cursor, false)
	if !ok {
		return nil, false, nil
	}
	ws.Add(changed)
	d, err := s.dnsZones(ws, txn)
	if err != nil {
		return nil, false, err
	}
	d.Changes, d.Cursor = changes, next
	return d, true, nil
}

// DNSIndex returns DNSData's Index of the current state: the raft index
// of the last change to what DNS serves.
func (s *Store) DNSIndex() uint64 {
	txn := s.db.Txn(false)
	if s.tableIndex(txn, indexDNSSerialMark) == 0 {
		return s.tableIndex(txn, tableZones, tablePrefixes, tableAddresses)
	}
	return s.tableIndex(txn, tableZones, tablePrefixes, indexDNSNames)
}

// dnsZones reads the index, zones and active prefixes of DNSData in txn.
func (s *Store) dnsZones(ws memdb.WatchSet, txn *memdb.Txn) (*DNSData, error) {
	d := &DNSData{Index: s.tableIndex(txn, tableZones, tablePrefixes, indexDNSNames)}
	// The mark's row: its coming moves the serials.
	mark, raw, err := txn.FirstWatch(tableIndex, "id", indexDNSSerialMark)
	if err != nil {
		return nil, err
	}
	ws.Add(mark)
	if raw == nil {
		// Not marked yet (DNSSerialMarkRequest): as earlier versions, the
		// index of any change of addresses too, which then wakes DNS.
		d.Index = s.tableIndex(txn, tableZones, tablePrefixes, tableAddresses)
		watchTable(txn, ws, tableAddresses)
	}
	// The zones' index row moves also without a zone changing: after a
	// restore (RestoreMarkRequest), to move the serials on.
	ch, _, err := txn.FirstWatch(tableIndex, "id", tableZones)
	if err != nil {
		return nil, err
	}
	ws.Add(ch)
	zi, err := txn.Get(tableZones, "id")
	if err != nil {
		return nil, err
	}
	ws.Add(zi.WatchCh())
	for raw := zi.Next(); raw != nil; raw = zi.Next() {
		d.Zones = append(d.Zones, raw.(*Zone))
	}
	pi, err := txn.Get(tablePrefixes, "cidr")
	if err != nil {
		return nil, err
	}
	ws.Add(pi.WatchCh())
	for raw := pi.Next(); raw != nil; raw = pi.Next() {
		if p := raw.(*Prefix); p.Status == PrefixActive {
			d.Prefixes = append(d.Prefixes, p)
		}
	}
	return d, nil
}
