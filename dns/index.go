package dns

import (
	"cmp"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// SOA timers. They matter only to secondaries, which Moxxie does not feed.
const (
	soaRefresh = 3600
	soaRetry   = 600
	soaExpire  = 86400
)

// key addresses one RRset: a lower-case owner name and a type.
type key struct {
	name  string
	qtype uint16
}

// answer is a positive answer kept ready: one RRset, as records and packed.
type answer struct {
	rrs []dns.RR
	// wire is the answer section packed to follow the header and a question
	// for the same name; compression pointers assume the question name at
	// offset 12, so the packed question must be qlen bytes long.
	wire  []byte
	qlen  int
	count uint16
}

// zone is a Zone ready to serve.
type zone struct {
	name string
	// neg is the authority section of NXDOMAIN and NODATA answers, the SOA
	// with the negative TTL, and negWire the same packed without compression.
	neg     []dns.RR
	negWire []byte
}

// index is everything the plugin serves, built once per Records and never
// modified after: queries read it without locks.
type index struct {
	answers map[key]*answer
	// names holds every name that exists in a zone, including the apex and
	// empty non-terminals, with its zone.
	names map[string]*zone
	zones map[string]*zone
	// records is the number of records served, skipped the number dropped,
	// and problem describes the first one dropped.
	records, skipped int
	problem          string
}

// lookup finds the answer for qname (lower-case) and qtype. It returns a
// positive answer, or the zone qname lies in and whether qname exists there
// (NODATA) or not (NXDOMAIN), or a nil zone for a name outside every zone.
func (ix *index) lookup(qname string, qtype uint16) (a *answer, z *zone, exists bool) {
	if a := ix.answers[key{qname, qtype}]; a != nil {
		return a, nil, true
	}
	if z := ix.names[qname]; z != nil {
		return nil, z, true
	}
	return nil, ix.zoneOf(qname), false
}

// zoneOf returns the closest zone that contains name, or nil.
func (ix *index) zoneOf(name string) *zone {
	if len(ix.zones) == 0 {
		return nil
	}
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		if z := ix.zones[name[off:]]; z != nil {
			return z
		}
	}
	return ix.zones["."]
}

// rrsets returns the RRsets that exist at name, for ANY queries.
func (ix *index) rrsets(name string) []dns.RR {
	var rrs []dns.RR
	for _, t := range []uint16{dns.TypeSOA, dns.TypeNS, dns.TypeA, dns.TypeAAAA, dns.TypePTR} {
		if a := ix.answers[key{name, t}]; a != nil {
			rrs = append(rrs, a.rrs...)
		}
	}
	return rrs
}

// buildIndex turns recs into an index. Invalid zones and records are
// skipped and counted; nothing in recs makes it fail.
func buildIndex(recs *Records) *index {
	ix := &index{
		answers: make(map[key]*answer),
		names:   make(map[string]*zone),
		zones:   make(map[string]*zone),
	}
	if recs == nil {
		return ix
	}
	ix.answers = make(map[key]*answer, len(recs.Records)+2*len(recs.Zones))
	ix.names = make(map[string]*zone, len(recs.Records)+len(recs.Zones))
	b := builder{
		ix:    ix,
		sets:  make(map[key][]dns.RR, len(recs.Records)+2*len(recs.Zones)),
		kinds: make(map[*zone]ZoneKind),
		ttls:  make(map[*zone]uint32),
	}
	for i := range recs.Zones {
		b.addZone(&recs.Zones[i])
	}
	for i := range recs.Records {
		b.addRecord(&recs.Records[i])
	}
	b.finish()
	return ix
}

// builder holds the state of one buildIndex.
type builder struct {
	ix    *index
	sets  map[key][]dns.RR
	kinds map[*zone]ZoneKind
	ttls  map[*zone]uint32
	arena arena
}

// skip counts a dropped zone or record and keeps the first reason.
func (b *builder) skip(format string, args ...any) {
	if b.ix.skipped == 0 {
		b.ix.problem = fmt.Sprintf(format, args...)
	}
	b.ix.skipped++
}

func (b *builder) addZone(zc *Zone) {
	name, ok := canonical(zc.Name)
	if !ok {
		b.skip("zone %q: invalid name", zc.Name)
		return
	}
	if b.ix.zones[name] != nil {
		b.skip("zone %q: listed twice", name)
		return
	}
	if zc.Kind == ZoneReverse && !dns.IsSubDomain("in-addr.arpa.", name) && !dns.IsSubDomain("ip6.arpa.", name) {
		b.skip("zone %q: a reverse zone must lie under in-addr.arpa. or ip6.arpa.", name)
		return
	}
	ttl := cmp.Or(zc.TTL, DefaultTTL)
	negTTL := cmp.Or(zc.NegativeTTL, DefaultNegativeTTL)
	var ns []string
	for _, n := range zc.NS {
		if c, ok := canonical(n); ok {
			ns = append(ns, c)
		}
	}
	if len(ns) == 0 {
		ns = []string{"ns1." + name}
	}
	mbox, ok := canonical(zc.Mbox)
	if !ok {
		mbox = "hostmaster." + name
	}
	soa := &dns.SOA{
		Hdr:     dns.RR_Header{Name: name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:      ns[0],
		Mbox:    mbox,
		Serial:  zc.Serial,
		Refresh: soaRefresh,
		Retry:   soaRetry,
		Expire:  soaExpire,
		Minttl:  negTTL,
	}
	neg := dns.Copy(soa)
	neg.Header().Ttl = min(ttl, negTTL)
	z := &zone{name: name, neg: []dns.RR{neg}}
	z.negWire = b.arena.packRR(neg)
	b.ix.zones[name] = z
	b.ix.names[name] = z
	b.kinds[z] = zc.Kind
	b.ttls[z] = ttl
	b.sets[key{name, dns.TypeSOA}] = []dns.RR{soa}
	for _, n := range ns {
		b.sets[key{name, dns.TypeNS}] = append(b.sets[key{name, dns.TypeNS}], &dns.NS{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: ttl},
			Ns:  n,
		})
	}
}

func (b *builder) addRecord(rec *Record) {
	name, ok := canonical(rec.Name)
	if !ok {
		b.skip("record %q: invalid name", rec.Name)
		return
	}
	z := b.ix.zoneOf(name)
	if z == nil {
		b.skip("record %q: outside every zone", name)
		return
	}
	kind := b.kinds[z]
	hdr := dns.RR_Header{Name: name, Rrtype: rec.Type, Class: dns.ClassINET, Ttl: cmp.Or(rec.TTL, b.ttls[z])}
	var rr dns.RR
	switch {
	case rec.Type == dns.TypeA && kind == ZoneForward:
		addr, err := netip.ParseAddr(rec.Value)
		if err != nil || !addr.Unmap().Is4() {
			b.skip("record %q A: %q is not an IPv4 address", name, rec.Value)
			return
		}
		rr = &dns.A{Hdr: hdr, A: addr.Unmap().AsSlice()}
	case rec.Type == dns.TypeAAAA && kind == ZoneForward:
		addr, err := netip.ParseAddr(rec.Value)
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			b.skip("record %q AAAA: %q is not an IPv6 address", name, rec.Value)
			return
		}
		rr = &dns.AAAA{Hdr: hdr, AAAA: addr.AsSlice()}
	case rec.Type == dns.TypePTR && kind == ZoneReverse:
		target, ok := canonical(rec.Value)
		if !ok {
			b.skip("record %q PTR: %q is not a domain name", name, rec.Value)
			return
		}
		rr = &dns.PTR{Hdr: hdr, Ptr: target}
	default:
		b.skip("record %q: type %s is not served in %s zone %q", name, dns.TypeToString[rec.Type], kind, z.name)
		return
	}
	k := key{name, rec.Type}
	set := b.sets[k]
	for _, have := range set {
		if dns.IsDuplicate(have, rr) {
			return
		}
	}
	b.sets[k] = append(set, rr)
	b.addName(name, z)
}

// addName records that name exists in z, and so do its ancestors up to the
// apex (empty non-terminals answer NODATA, not NXDOMAIN).
func (b *builder) addName(name string, z *zone) {
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		n := name[off:]
		if _, ok := b.ix.names[n]; ok {
			return
		}
		b.ix.names[n] = z
	}
}

// finish packs every RRset into its answer.
func (b *builder) finish() {
	answers := make([]answer, 0, len(b.sets))
	for k, rrs := range b.sets {
		// RFC 2181 5.2: the records of an RRset share one TTL.
		ttl := rrs[0].Header().Ttl
		for _, rr := range rrs[1:] {
			ttl = min(ttl, rr.Header().Ttl)
		}
		for _, rr := range rrs {
			rr.Header().Ttl = ttl
		}
		answers = append(answers, answer{rrs: rrs, count: uint16(min(len(rrs), 0xffff))})
		a := &answers[len(answers)-1]
		a.wire, a.qlen = b.arena.packAnswer(k, rrs)
		b.ix.answers[k] = a
		if k.qtype != dns.TypeSOA && k.qtype != dns.TypeNS {
			b.ix.records += len(rrs)
		}
	}
}

// canonical returns name as a lower-case fully qualified domain name, and
// false if it is not a valid one.
func canonical(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	name = strings.ToLower(dns.Fqdn(name))
	if _, ok := dns.IsDomainName(name); !ok {
		return "", false
	}
	return name, true
}
