package node

import (
	"cmp"
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/dns"
	"github.com/moxxie/moxxie/fsm"
)

// dnsRefreshGap is the least time between the end of one read of the DNS
// data and the start of the next. A change after a quiet spell is read at
// once; the changes of a burst (an allocation storm) wait and share one
// read. The gap grows to dnsRefreshRatio times the time the last read
// took. A read of the changes since the last one costs in proportion to
// them; a whole read, of a new store or after the source fell behind the
// store's feed of changes, is linear in the named addresses (10–20 ms per
// 100,000), and a change of the zones reads every named address the
// source holds. So reading takes at most a third of a core, and a change
// waits at most about three reads.
const (
	dnsRefreshGap   = 5 * time.Millisecond
	dnsRefreshRatio = 2
)

// dnsSource is a dns.ChangeSource over the FSM: it watches the store's DNS
// data (zones, active prefixes, and the store's feed of changes of named
// addresses) and, when it changes, tells the DNS servers which records and
// zones changed, following the FSM to its new store after a snapshot
// restore. It reads every named address only from a new store, or when it
// fell so far behind that the store no longer holds the changes since its
// last read; only a new store starts a version the servers rebuild from
// whole.
type dnsSource struct {
	fsm     *fsm.FSM
	logger  *slog.Logger
	journal dns.Journal

	mu       sync.Mutex
	store    *fsm.Store    // guarded by mu; the store last read
	index    uint64        // guarded by mu; the store index last read
	cursor   uint64        // guarded by mu; the store's cursor of named changes last read
	version  uint64        // guarded by mu; the journal's version of what was read
	zones    []*fsm.Zone   // guarded by mu; as last read
	prefixes []*fsm.Prefix // guarded by mu; as last read
	view     *dnsView      // guarded by mu; made of zones and prefixes; nil before the first read
	named    *namedSet     // guarded by mu; the named addresses
	recs     *dns.Records  // guarded by mu; the records of version, made when first asked for
	builds   int           // guarded by mu; how many versions were made
	reads    int           // guarded by mu; how many times every named address was read
	current  uint64        // guarded by mu; the first version the servers may answer from, 0 before open
	// marks are the complete index (below) of each version made and not
	// yet served, oldest first; servedIndex is that of the version the
	// servers last said they answer from (Served), and servedCh is
	// closed when it moves.
	marks       []versionMark // guarded by mu
	servedIndex uint64        // guarded by mu
	servedCh    chan struct{} // guarded by mu; nil until waited on
	// complete is the index of the last log entry the FSM had applied
	// whole before the last read: what that read holds all of. A read
	// between the transactions of one entry (a batch's chunks) holds
	// only part of the newest.
	complete uint64 // guarded by mu

	// opened is closed by open: the next read makes the first current
	// version.
	opened   chan struct{}
	openOnce sync.Once
}

// newDNSSource returns a source holding the records of f's current state.
// Call run to keep them current.
func newDNSSource(f *fsm.FSM, logger *slog.Logger) *dnsSource {
	s := &dnsSource{fsm: f, logger: logger, opened: make(chan struct{})}
	if err := s.refresh(memdb.NewWatchSet()); err != nil {
		logger.Error("DNS: reading records failed", "error", err)
	}
	return s
}

// Snapshot implements dns.Source.
func (s *dnsSource) Snapshot() (*dns.Records, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, changed := s.journal.Version()
	if s.recs == nil && s.view != nil {
		// In no particular order: the plugin's answers do not depend on it
		// (it orders each RRset itself), and sorting 100,000 addresses
		// would cost more than the rest.
		s.recs = s.view.records(s.index, s.named.all())
		s.recs.Version = s.version
	}
	return s.recs, changed
}

// Current implements dns.GatedSource: the servers answer from version once
// open was called and a read after it made version or an earlier one.
func (s *dnsSource) Current(version uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current != 0 && version >= s.current
}

// open lets the servers answer from the records read next, which the
// caller knows to be at least as new as anything this server answered
// from before.
func (s *dnsSource) open() {
	s.openOnce.Do(func() { close(s.opened) })
}

// Changes implements dns.ChangeSource.
func (s *dnsSource) Changes(since uint64) ([]dns.Change, uint64, <-chan struct{}, bool) {
	return s.journal.Changes(since)
}

// run keeps the records current until stop is closed: it blocks on the
// store's watch channels (and its abandon channel, closed by a restore) and
// reads the data again when one fires, never more often than
// dnsRefreshGap allows.
func (s *dnsSource) run(stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		ws := memdb.NewWatchSet()
		start := time.Now()
		if err := s.refresh(ws); err != nil {
			// A memdb read only fails on a schema bug; retry later rather
			// than serve nothing.
			s.logger.Error("DNS: reading records failed", "error", err)
			ws = nil
		}
		last := time.Now()
		gap := max(dnsRefreshGap, dnsRefreshRatio*last.Sub(start))
		if ws == nil {
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return
			}
			continue
		}
		if !s.isCurrent() {
			ws.Add(s.opened)
		}
		var soon *time.Timer
		if s.partial() {
			// The rest of the entry may change nothing DNS serves, and
			// wake nothing: look again soon, so that a write waiting for
			// it (WaitDNS) learns that it is served.
			tick := make(chan struct{})
			soon = time.AfterFunc(dnsRefreshGap, func() { close(tick) })
			ws.Add(tick)
		}
		err := ws.WatchCtx(ctx)
		if soon != nil {
			soon.Stop()
		}
		if err != nil {
			return // stopped
		}
		if wait := time.Until(last.Add(gap)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
	}
}

// refresh reads the DNS data of the FSM's current store, adding its watch
// channels (and the store's abandon channel) to ws, and makes a new
// version of the records if they changed: a change of the zones and of the
// records that changed with the named addresses and the zones, or, for a
// new store, a version to be read whole. From the store it read last it
// reads only the changes of named addresses since, when the store still
// holds them all.
func (s *dnsSource) refresh(ws memdb.WatchSet) error {
	// Whether open came before this read of the store, and so before the
	// state it reads.
	var opening bool
	select {
	case <-s.opened:
		opening = true
	default:
	}
	st := s.fsm.State()
	complete := st.LatestIndex()
	ws.Add(st.AbandonCh())
	// Only this goroutine writes store, view and cursor.
	var d *fsm.DNSData
	if st == s.store && s.view != nil {
		dc, ok, err := st.DNSChanges(ws, s.cursor)
		if err != nil {
			return err
		}
		if ok {
			d = dc
		}
	}
	whole := d == nil
	if whole {
		var err error
		if d, err = st.DNS(ws); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if opening && s.current == 0 {
		defer s.makeCurrent()
	}
	s.complete = complete
	if whole {
		s.reads++
	}
	view := s.view
	if st != s.store || !slices.Equal(d.Zones, s.zones) || !slices.Equal(d.Prefixes, s.prefixes) {
		// Most changes of zones and prefixes (a description, a new prefix in
		// a reverse zone already served) leave the view as it was.
		view = newDNSView(d)
		s.zones, s.prefixes = d.Zones, d.Prefixes
	}
	s.cursor = d.Cursor
	if s.view == nil || st != s.store {
		s.store, s.index, s.view = st, d.Index, view
		s.named = newNamedSet(d.Addresses)
		s.recs = nil
		s.version = s.journal.Reset()
		s.mark()
		s.builds++
		return nil
	}
	if d.Index == s.index && !whole && len(d.Changes) == 0 && view == s.view {
		// Nothing changed since the last read (the first read of run, or a
		// wake-up by a change already read). The index alone does not
		// tell: one log entry may commit several transactions at its
		// index (a batch's chunks), and a read may come between them.
		// What was read holds everything up to complete, which may be
		// more than when it was read.
		s.raiseMark(complete)
		return nil
	}
	c := dns.Change{Serial: uint32(d.Index)}
	if view != s.view && !view.sameZones(s.view) {
		c.RemoveZones, c.Zones = s.view.zoneChanges(view, c.Serial)
	} else {
		view = s.view
	}
	diffNamed(&c, s.view, view, s.named, namedUpdates(d, whole, s.named))
	s.view = view
	s.index = d.Index
	s.recs = nil
	s.version = s.journal.Append(c)
	s.mark()
	s.builds++
	return nil
}

// makeCurrent makes the records just read the first the servers answer
// from, as a version of their own: an empty change, so that the servers
// take it, and ask Current again, even when the read changed nothing.
// s.mu must be held.
func (s *dnsSource) makeCurrent() {
	s.version = s.journal.Append(dns.Change{})
	s.mark()
	s.recs = nil
	s.current = s.version
}

// versionMark is the store index a version of the records was made from.
type versionMark struct{ version, index uint64 }

// mark records the complete index of the version just made. s.mu must
// be held.
func (s *dnsSource) mark() {
	s.marks = append(s.marks, versionMark{s.version, s.complete})
}

// raiseMark records that the version last made holds everything up to
// complete. s.mu must be held.
func (s *dnsSource) raiseMark(complete uint64) {
	if n := len(s.marks); n > 0 && s.marks[n-1].version == s.version {
		s.marks[n-1].index = max(s.marks[n-1].index, complete)
		return
	}
	if complete > s.servedIndex {
		// Served already: the servers answer from it.
		s.servedIndex = complete
		if s.servedCh != nil {
			close(s.servedCh)
			s.servedCh = nil
		}
	}
}

// partial reports whether the last read may hold only part of the
// newest log entry it saw: the FSM had not applied all of it.
func (s *dnsSource) partial() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.index > s.complete
}

// Served implements dns.ServedSource: the servers answer from version.
func (s *dnsSource) Served(version uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for n < len(s.marks) && s.marks[n].version <= version {
		// A restore's new store may hold an older index: the last wins.
		s.servedIndex = s.marks[n].index
		n++
	}
	if n == 0 {
		return
	}
	s.marks = slices.Delete(s.marks, 0, n)
	if s.servedCh != nil {
		close(s.servedCh)
		s.servedCh = nil
	}
}

// waitServes waits until the servers answer from a store at index or
// later, or ctx ends.
func (s *dnsSource) waitServes(ctx context.Context, index uint64) error {
	for {
		s.mu.Lock()
		if s.servedIndex >= index {
			s.mu.Unlock()
			return nil
		}
		if s.servedCh == nil {
			s.servedCh = make(chan struct{})
		}
		ch := s.servedCh
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// isCurrent reports whether the servers may answer.
func (s *dnsSource) isCurrent() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current != 0
}

// dnsRecords maps the store's DNS data to what the DNS server serves:
//
//   - every fsm.Zone is a forward zone with the zone's TTL;
//   - every address whose dns_name lies in a forward zone (the name is the
//     zone or ends in "."+zone; the longest such zone) gives an A or AAAA
//     record with that zone's TTL, and a PTR record with the same TTL in
//     the reverse zone that contains the address, if one is served;
//   - every active prefix gives its reverse zones (dns.ReverseZones),
//     listed once however many prefixes share them (overlapping VRFs).
//
// Names outside every forward zone are not served. Every zone's SOA serial
// is the store index of the last change to zones, prefixes or named
// addresses (fsm.DNSData.Index), the same on every server at the same
// state. Forward zones' name server
// is "ns1.<zone>." and their mailbox "hostmaster.<zone>." (the dns package
// defaults); reverse zones name those of a forward zone, since a name
// under in-addr.arpa. is no host: the oldest (first created) zone of the
// tenant of the prefixes the reverse zone covers, when they are one
// tenant's (no tenant counting as one) and it has a zone; otherwise the
// oldest zone of no tenant; otherwise the oldest zone. So a tenant's
// domain is not named in the reverse zones of another's prefixes while a
// zone of no tenant exists. Without a forward zone no reverse zone is
// served. Nothing serves an address
// for ns1.<zone>: allocate one with that dns_name to delegate to Moxxie.
func dnsRecords(d *fsm.DNSData) *dns.Records {
	return newDNSView(d).records(d.Index, d.Addresses)
}

// dnsView is what the zones and active prefixes of a state make of its
// named addresses: the zones served and, for each address, its records.
type dnsView struct {
	zones   []dns.Zone // by name; their Serial is left zero
	zoneTTL map[string]uint32
	reverse map[string]bool
}

// newDNSView returns the view of d's zones and prefixes.
func newDNSView(d *fsm.DNSData) *dnsView {
	v := &dnsView{zoneTTL: make(map[string]uint32, len(d.Zones)), reverse: map[string]bool{}}
	// The oldest zone of all, of no tenant ("") and of each tenant.
	var first oldestZone
	byTenant := map[string]*oldestZone{}
	for _, z := range d.Zones {
		name := strings.ToLower(strings.TrimSuffix(z.ID, "."))
		if name == "" {
			continue
		}
		if _, dup := v.zoneTTL[name]; dup {
			continue
		}
		v.zoneTTL[name] = z.TTL
		first.offer(name, z.CreateIndex)
		if byTenant[z.Tenant] == nil {
			byTenant[z.Tenant] = &oldestZone{}
		}
		byTenant[z.Tenant].offer(name, z.CreateIndex)
		v.zones = append(v.zones, dns.Zone{Name: name + ".", Kind: dns.ZoneForward, TTL: z.TTL})
	}
	if first.name == "" {
		// No reverse zone either: it would hold no PTR (every one is of a
		// name in a forward zone) and could name no server but one under
		// itself, which has no address.
		return v
	}
	// The tenant of each reverse zone's prefixes, or mixed when they are
	// of several (no tenant counting as one).
	var order []string
	tenant := map[string]string{}
	mixed := map[string]bool{}
	for _, p := range d.Prefixes {
		pfx, err := netip.ParsePrefix(p.Prefix)
		if err != nil || dns.Aggregate(pfx) {
			continue
		}
		for _, rz := range dns.ReverseZones(pfx) {
			if !v.reverse[rz] {
				v.reverse[rz] = true
				order = append(order, rz)
				tenant[rz] = p.Tenant
			} else if tenant[rz] != p.Tenant {
				mixed[rz] = true
			}
		}
	}
	for _, rz := range order {
		named := first.name
		if shared := byTenant[""]; shared != nil {
			named = shared.name
		}
		if own := byTenant[tenant[rz]]; own != nil && !mixed[rz] {
			named = own.name
		}
		v.zones = append(v.zones, dns.Zone{Name: rz, Kind: dns.ZoneReverse, NS: []string{"ns1." + named + "."}, Mbox: "hostmaster." + named + "."})
	}
	sort.Slice(v.zones, func(i, j int) bool { return v.zones[i].Name < v.zones[j].Name })
	return v
}

// oldestZone keeps the oldest of the zones offered: the first created,
// then the first by name.
type oldestZone struct {
	name  string
	index uint64
}

func (o *oldestZone) offer(name string, index uint64) {
	if o.name == "" || index < o.index || index == o.index && name < o.name {
		o.name, o.index = name, index
	}
}

// sameZones reports whether v and o serve the same zones alike, and so
// map every address to the same records.
func (v *dnsView) sameZones(o *dnsView) bool {
	return slices.EqualFunc(v.zones, o.zones, sameZone)
}

// sameZone reports whether a and b are the same zone with the same
// settings, whatever their serials.
func sameZone(a, b dns.Zone) bool {
	return a.Name == b.Name && a.Kind == b.Kind && a.TTL == b.TTL && a.Mbox == b.Mbox && slices.Equal(a.NS, b.NS)
}

// records returns the records of the named addresses addrs in the view's
// zones, with index as every zone's serial.
func (v *dnsView) records(index uint64, addrs []*fsm.Address) *dns.Records {
	recs := &dns.Records{Zones: slices.Clone(v.zones), Records: make([]dns.Record, 0, 2*len(addrs))}
	for i := range recs.Zones {
		recs.Zones[i].Serial = uint32(index)
	}
	for _, a := range addrs {
		recs.Records = v.appendRecords(recs.Records, a)
	}
	return recs
}

// appendRecords appends the records of a to out: none when its name lies
// in no zone, no PTR without a reverse zone for its address.
func (v *dnsView) appendRecords(out []dns.Record, a *fsm.Address) []dns.Record {
	name := strings.ToLower(strings.TrimSuffix(a.DNSName, "."))
	zone, ok := zoneOf(name, v.zoneTTL)
	if !ok {
		return out
	}
	addr, err := netip.ParseAddr(a.Address)
	if err != nil {
		return out
	}
	for _, r := range dns.HostRecords(name+".", addr, v.zoneTTL[zone]) {
		if r.Type == dns.TypePTR && !underAny(r.Name, v.reverse) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// namedUpdates returns what became of the named addresses that d changes,
// by ID: the address as it is now, or nil when it is gone or has lost its
// name. From a whole read (d.Addresses) that is every named address now,
// and nil for those of named that are no more; otherwise d.Changes, the
// last change of each address winning.
func namedUpdates(d *fsm.DNSData, whole bool, named *namedSet) map[string]*fsm.Address {
	if !whole {
		u := make(map[string]*fsm.Address, len(d.Changes))
		for _, c := range d.Changes {
			if c.After != nil && c.After.DNSName == "" {
				u[c.ID] = nil
			} else {
				u[c.ID] = c.After
			}
		}
		return u
	}
	u := make(map[string]*fsm.Address, len(d.Addresses)+named.len())
	for id := range named.byID {
		u[id] = nil
	}
	for _, a := range d.Addresses {
		u[a.ID] = a
	}
	return u
}

// diffNamed adds to c the records that change when the named addresses
// named, in the zones of view was, are updated as updates says (by ID:
// the address as it is now, nil for one gone), in the zones of view is;
// it updates named. An address the state did not change is the same
// object before and after, so comparing pointers finds the changed ones.
// When the zones change (c names those that go and come), an unchanged
// address whose zone comes, goes or changes has its records removed and
// added again, as dns.Change's rules ask: its records may change, and
// they leave a zone before it goes and come to a new zone after it comes.
// named finds those among the addresses under or inside those zones alone.
// The records go into c in the order of the store's dns_name index.
func diffNamed(c *dns.Change, was, is *dnsView, named *namedSet, updates map[string]*fsm.Address) {
	var removed, added []*fsm.Address
	changed := make(map[string]bool, len(updates))
	for id, now := range updates {
		old := named.get(id)
		if old == now {
			continue
		}
		if now == nil {
			named.remove(old)
		} else {
			named.put(now)
		}
		if old != nil && now != nil && was == is && old.DNSName == now.DNSName && old.Address == now.Address {
			continue // a change that leaves its records as they were
		}
		changed[id] = true
		if old != nil {
			removed = append(removed, old)
		}
		if now != nil {
			added = append(added, now)
		}
	}
	if was != is {
		touched := touchedBy(c)
		for _, a := range named.touchedBy(touched) {
			if !changed[a.ID] && touched.affects(was, is, a) {
				removed = append(removed, a)
				added = append(added, a)
			}
		}
	}
	slices.SortFunc(removed, storeCmp)
	slices.SortFunc(added, storeCmp)
	for _, a := range removed {
		c.Remove = was.appendRecords(c.Remove, a)
	}
	for _, a := range added {
		c.Add = is.appendRecords(c.Add, a)
	}
}

// zoneTouch is what a change of the zones touches: the forward zones that
// come, go or change (by name without the final dot, as dnsView.zoneTTL),
// and the addresses of such reverse zones.
type zoneTouch struct {
	forward map[string]bool
	reverse []netip.Prefix
}

func touchedBy(c *dns.Change) zoneTouch {
	t := zoneTouch{forward: map[string]bool{}}
	touch := func(name string) {
		if p, ok := dns.ReverseZonePrefix(name); ok {
			t.reverse = append(t.reverse, p)
		} else {
			t.forward[strings.TrimSuffix(name, ".")] = true
		}
	}
	for _, z := range c.RemoveZones {
		touch(z)
	}
	for _, z := range c.Zones {
		touch(z.Name)
	}
	return t
}

// affects reports whether a's records lie, in was or in is, in a zone t
// touches.
func (t zoneTouch) affects(was, is *dnsView, a *fsm.Address) bool {
	if len(t.forward) > 0 {
		name := strings.ToLower(strings.TrimSuffix(a.DNSName, "."))
		if z, ok := zoneOf(name, was.zoneTTL); ok && t.forward[z] {
			return true
		}
		if z, ok := zoneOf(name, is.zoneTTL); ok && t.forward[z] {
			return true
		}
	}
	if len(t.reverse) > 0 {
		addr, err := netip.ParseAddr(a.Address)
		if err != nil {
			return false
		}
		addr = addr.Unmap()
		for _, p := range t.reverse {
			if p.Contains(addr) {
				return true
			}
		}
	}
	return false
}

// zoneChanges returns the zones v serves and is does not, by name, and
// those is serves and v does not, with serial: a zone whose settings
// changed is in both.
func (v *dnsView) zoneChanges(is *dnsView, serial uint32) (removed []string, added []dns.Zone) {
	was := make(map[string]dns.Zone, len(v.zones))
	for _, z := range v.zones {
		was[z.Name] = z
	}
	now := make(map[string]bool, len(is.zones))
	for _, z := range is.zones {
		now[z.Name] = true
		if o, ok := was[z.Name]; !ok || !sameZone(o, z) {
			if ok {
				removed = append(removed, z.Name)
			}
			z.Serial = serial
			added = append(added, z)
		}
	}
	for _, z := range v.zones {
		if !now[z.Name] {
			removed = append(removed, z.Name)
		}
	}
	return removed, added
}

// storeCmp orders addresses as the store's dns_name index does: by
// lower-case name, then ID.
func storeCmp(a, b *fsm.Address) int {
	return cmp.Or(strings.Compare(strings.ToLower(a.DNSName), strings.ToLower(b.DNSName)), strings.Compare(a.ID, b.ID))
}

// zoneOf returns the longest zone (a key of zones, without the trailing
// dot) that name is or lies under.
func zoneOf(name string, zones map[string]uint32) (string, bool) {
	for n := name; n != ""; {
		if _, ok := zones[n]; ok {
			return n, true
		}
		i := strings.IndexByte(n, '.')
		if i < 0 {
			break
		}
		n = n[i+1:]
	}
	return "", false
}

// underAny reports whether the fully qualified name is or lies under one
// of zones (fully qualified).
func underAny(name string, zones map[string]bool) bool {
	return closestOf(name, zones) != ""
}

// closestOf returns the zone of zones (fully qualified) that the fully
// qualified name is or lies closest under, or "".
func closestOf(name string, zones map[string]bool) string {
	for n := name; n != "" && n != "."; {
		if zones[n] {
			return n
		}
		i := strings.IndexByte(n, '.')
		if i < 0 {
			break
		}
		n = n[i+1:]
	}
	return ""
}
