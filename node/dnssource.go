package node

import (
	"context"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/dns"
	"github.com/moxxie/moxxie/fsm"
)

// dnsRebuildGap is the least time between the end of one rebuild of the
// DNS records and the start of the next. A change after a quiet spell is
// rebuilt at once; the changes of a burst (an allocation storm) wait and
// share one rebuild. The gap grows to the time the last rebuild took, so
// rebuilding never takes more than half of a core.
const dnsRebuildGap = 25 * time.Millisecond

// dnsSource is a dns.Source over the FSM: it watches the store's DNS data
// (zones, active prefixes, named addresses) and rebuilds the records when
// it changes, following the FSM to its new store after a snapshot restore.
type dnsSource struct {
	fsm    *fsm.FSM
	logger *slog.Logger

	mu      sync.Mutex
	recs    *dns.Records  // guarded by mu
	changed chan struct{} // guarded by mu; closed when recs is replaced
	store   *fsm.Store    // guarded by mu; the store recs was read from
	index   uint64        // guarded by mu; store index recs was built at
	builds  int           // guarded by mu; how many times recs was built
}

// newDNSSource returns a source holding the records of f's current state.
// Call run to keep them current.
func newDNSSource(f *fsm.FSM, logger *slog.Logger) *dnsSource {
	s := &dnsSource{fsm: f, logger: logger, changed: make(chan struct{})}
	if _, err := s.rebuild(memdb.NewWatchSet(), true); err != nil {
		logger.Error("DNS: reading records failed", "error", err)
	}
	return s
}

// Snapshot implements dns.Source.
func (s *dnsSource) Snapshot() (*dns.Records, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recs, s.changed
}

// run keeps the records current until stop is closed: it blocks on the
// store's watch channels (and its abandon channel, closed by a restore) and
// rebuilds when one fires, never more often than dnsRebuildGap allows.
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
	gap := dnsRebuildGap
	var last time.Time
	for force := false; ; force = true {
		ws := memdb.NewWatchSet()
		start := time.Now()
		if _, err := s.rebuild(ws, force); err != nil {
			// A memdb read only fails on a schema bug; retry later rather
			// than serve nothing.
			s.logger.Error("DNS: reading records failed", "error", err)
			ws = nil
		}
		last = time.Now()
		gap = max(dnsRebuildGap, last.Sub(start))
		if ws == nil {
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return
			}
			continue
		}
		if err := ws.WatchCtx(ctx); err != nil {
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

// rebuild reads the DNS data of the FSM's current store, adding its watch
// channels (and the store's abandon channel) to ws, and publishes the
// records built from it. It returns the store index read.
// Unless force is set, records already built from the same store at the
// same index are kept.
func (s *dnsSource) rebuild(ws memdb.WatchSet, force bool) (uint64, error) {
	st := s.fsm.State()
	ws.Add(st.AbandonCh())
	data, err := st.DNS(ws)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	same := !force && s.recs != nil && s.store == st && s.index == data.Index
	s.mu.Unlock()
	if same {
		// The first read of run: nothing changed since newDNSSource.
		return data.Index, nil
	}
	recs := dnsRecords(data)
	s.mu.Lock()
	s.recs, s.store, s.index = recs, st, data.Index
	s.builds++
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return data.Index, nil
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
// is the store index of the last change to zones, prefixes or addresses,
// the same on every server at the same state. Forward zones' name server
// is "ns1.<zone>." and their mailbox "hostmaster.<zone>." (the dns package
// defaults); reverse zones name those of the first forward zone by name,
// since a name under in-addr.arpa. is no host. Nothing serves an address
// for ns1.<zone>: allocate one with that dns_name to delegate to Moxxie.
func dnsRecords(d *fsm.DNSData) *dns.Records {
	serial := uint32(d.Index)
	recs := &dns.Records{}
	zoneTTL := make(map[string]uint32, len(d.Zones))
	var first string
	for _, z := range d.Zones {
		name := strings.ToLower(strings.TrimSuffix(z.ID, "."))
		if name == "" {
			continue
		}
		if _, dup := zoneTTL[name]; dup {
			continue
		}
		zoneTTL[name] = z.TTL
		if first == "" || name < first {
			first = name
		}
		recs.Zones = append(recs.Zones, dns.Zone{Name: name + ".", Kind: dns.ZoneForward, Serial: serial, TTL: z.TTL})
	}
	var revNS []string
	var revMbox string
	if first != "" {
		revNS, revMbox = []string{"ns1." + first + "."}, "hostmaster."+first+"."
	}
	reverse := map[string]bool{}
	for _, p := range d.Prefixes {
		pfx, err := netip.ParsePrefix(p.Prefix)
		if err != nil {
			continue
		}
		for _, rz := range dns.ReverseZones(pfx) {
			if reverse[rz] {
				continue
			}
			reverse[rz] = true
			recs.Zones = append(recs.Zones, dns.Zone{Name: rz, Kind: dns.ZoneReverse, Serial: serial, NS: revNS, Mbox: revMbox})
		}
	}
	sort.Slice(recs.Zones, func(i, j int) bool { return recs.Zones[i].Name < recs.Zones[j].Name })

	recs.Records = make([]dns.Record, 0, 2*len(d.Addresses))
	for _, a := range d.Addresses {
		name := strings.ToLower(strings.TrimSuffix(a.DNSName, "."))
		zone, ok := zoneOf(name, zoneTTL)
		if !ok {
			continue
		}
		addr, err := netip.ParseAddr(a.Address)
		if err != nil {
			continue
		}
		for _, r := range dns.HostRecords(name+".", addr, zoneTTL[zone]) {
			if r.Type == dns.TypePTR && !underAny(r.Name, reverse) {
				continue
			}
			recs.Records = append(recs.Records, r)
		}
	}
	return recs
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
	for n := name; n != "" && n != "."; {
		if zones[n] {
			return true
		}
		i := strings.IndexByte(n, '.')
		if i < 0 {
			break
		}
		n = n[i+1:]
	}
	return false
}
