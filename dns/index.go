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
	// more is what turns the answer back into the RRset it was made from,
	// when that is more than its records: nil when every record was added
	// once and with the TTL it is served with.
	more *rrsetMore
}

// zone is a Zone ready to serve.
type zone struct {
	name string
	conf zoneConf
	// soa and ns answer queries for the apex.
	soa, ns *answer
	// neg is the authority section of NXDOMAIN and NODATA answers, the SOA
	// with the negative TTL, and negWire the same packed without compression.
	neg     []dns.RR
	negWire []byte
}

// zoneConf is a Zone's settings, with defaults applied and names canonical.
type zoneConf struct {
	kind        ZoneKind
	serial      uint32
	ttl, negTTL uint32
	ns          []string
	mbox        string
}

// table maps owner names to what exists there: answers by name and type,
// and every name that exists in a zone (including the apex and empty
// non-terminals) to the zone's name.
type table struct {
	answers map[key]*answer
	names   map[string]string
}

// index is everything the plugin serves, made once per version of the
// records and never modified after: queries read it without locks.
//
// Its names live in a large base table and a small overlay of what
// changed since the base was made: an entry of the overlay hides the
// base's, and a nil answer or empty zone name in it removes one. So a
// change costs a copy of the overlay, not of every name; when the overlay
// grows large it is folded into a new base.
type index struct {
	base, over table
	zones      map[string]*zone
	// aboveZones holds the names that are not zones but have a zone below
	// them (eu.moxxie.test with a zone prod.eu.moxxie.test): in the zone
	// around them they exist as empty non-terminals, so a query for one is
	// NODATA, not NXDOMAIN.
	aboveZones map[string]bool
	// records is the number of records served, skipped the number dropped
	// (since the last full build), and problem describes the first one
	// dropped.
	records, skipped int
	problem          string
}

// answer returns the RRset of k, or nil.
func (ix *index) answer(k key) *answer {
	if a, ok := ix.over.answers[k]; ok {
		return a
	}
	return ix.base.answers[k]
}

// zoneName returns the name of the zone name exists in, or "".
func (ix *index) zoneName(name string) string {
	if z, ok := ix.over.names[name]; ok {
		return z
	}
	return ix.base.names[name]
}

// lookup finds the answer for qname (lower-case) and qtype. It returns a
// positive answer, or the zone qname lies in and whether qname exists there
// (NODATA) or not (NXDOMAIN), or a nil zone for a name outside every zone.
func (ix *index) lookup(qname string, qtype uint16) (a *answer, z *zone, exists bool) {
	if a := ix.answer(key{qname, qtype}); a != nil {
		return a, nil, true
	}
	if zn := ix.zoneName(qname); zn != "" {
		z := ix.zones[zn]
		if a := z.apexAnswer(qname, qtype); a != nil {
			return a, nil, true
		}
		return nil, z, true
	}
	return nil, ix.zoneOf(qname), ix.aboveZones[qname]
}

// findAboveZones makes aboveZones from the zones.
func (ix *index) findAboveZones() {
	ix.aboveZones = map[string]bool{}
	for name := range ix.zones {
		for off, end := dns.NextLabel(name, 0); !end; off, end = dns.NextLabel(name, off) {
			if ix.zones[name[off:]] == nil {
				ix.aboveZones[name[off:]] = true
			}
		}
	}
}

// apexAnswer returns the zone's SOA or NS RRset when name is its apex.
func (z *zone) apexAnswer(name string, qtype uint16) *answer {
	switch {
	case name != z.name:
		return nil
	case qtype == dns.TypeSOA:
		return z.soa
	case qtype == dns.TypeNS:
		return z.ns
	}
	return nil
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
	if z := ix.zones[name]; z != nil {
		rrs = append(rrs, z.soa.rrs...)
		rrs = append(rrs, z.ns.rrs...)
	}
	for _, t := range hostTypes {
		if a := ix.answer(key{name, t}); a != nil {
			rrs = append(rrs, a.rrs...)
		}
	}
	return rrs
}

// hostTypes are the types of the records a Source gives.
var hostTypes = [...]uint16{dns.TypeA, dns.TypeAAAA, dns.TypePTR}

// buildIndex turns recs into an index. Invalid zones and records are
// skipped and counted; nothing in recs makes it fail.
func buildIndex(recs *Records) *index {
	return newBuilder(recs).ix
}

// newBuilder builds the index of recs, and keeps what later changes to
// it need.
func newBuilder(recs *Records) *builder {
	ix := &index{
		base:  table{answers: map[key]*answer{}, names: map[string]string{}},
		zones: map[string]*zone{},
	}
	b := &builder{ix: ix, children: map[string]int32{}}
	if recs == nil {
		return b
	}
	ix.base.answers = make(map[key]*answer, len(recs.Records))
	ix.base.names = make(map[string]string, len(recs.Records)+len(recs.Zones))
	for i := range recs.Zones {
		b.addZone(&recs.Zones[i])
	}
	ix.findAboveZones()
	c := b.change(false)
	c.sets, c.order = make([]rrset, 0, len(recs.Records)), make([]key, 0, len(recs.Records))
	c.keys = make(map[key]int, len(recs.Records))
	for i := range recs.Records {
		c.add(&recs.Records[i])
	}
	c.finish()
	// Later changes pack a few answers each: into memory of their own, so
	// that an answer replaced frees its bytes.
	b.arena = arena{exact: true}
	return b
}

// builder makes indexes: the first from a Records, then each from the
// last and a Change. It keeps what the indexes do not: how many names
// exist directly below each name, so that removing a name's last records
// can tell whether it still exists as an empty non-terminal. It is not
// safe for concurrent use; the indexes it makes are.
type builder struct {
	ix       *index
	children map[string]int32
	arena    arena
}

// skip counts a dropped zone and keeps the first reason.
func (b *builder) skip(format string, args ...any) {
	b.ix.skip(fmt.Sprintf(format, args...))
}

func (b *builder) addZone(zc *Zone) {
	name, conf, problem := zoneSettings(zc)
	switch {
	case problem != "":
		b.ix.skip(problem)
	case b.ix.zones[name] != nil:
		b.skip("zone %q: listed twice", name)
	default:
		b.ix.zones[name] = b.newZone(name, conf)
		b.ix.base.names[name] = name
	}
}

// zoneSettings returns the canonical name and the settings of a zone, or
// says why it is not served.
func zoneSettings(zc *Zone) (string, zoneConf, string) {
	name, ok := canonical(zc.Name)
	if !ok {
		return "", zoneConf{}, fmt.Sprintf("zone %q: invalid name", zc.Name)
	}
	if zc.Kind == ZoneReverse && !dns.IsSubDomain("in-addr.arpa.", name) && !dns.IsSubDomain("ip6.arpa.", name) {
		return "", zoneConf{}, fmt.Sprintf("zone %q: a reverse zone must lie under in-addr.arpa. or ip6.arpa.", name)
	}
	conf := zoneConf{kind: zc.Kind, serial: zc.Serial, ttl: cmp.Or(zc.TTL, DefaultTTL), negTTL: cmp.Or(zc.NegativeTTL, DefaultNegativeTTL)}
	for _, n := range zc.NS {
		if c, ok := canonical(n); ok {
			conf.ns = append(conf.ns, c)
		}
	}
	if len(conf.ns) == 0 {
		conf.ns = []string{below("ns1", name)}
	}
	if conf.mbox, ok = canonical(zc.Mbox); !ok {
		conf.mbox = below("hostmaster", name)
	}
	return name, conf, ""
}

// below returns label under the canonical name, or name itself where
// that would be longer than a name can be (255 octets on the wire).
func below(label, name string) string {
	if n, ok := canonical(label + "." + name); ok {
		return n
	}
	return name
}

// newZone packs the apex answers and the negative answer of a zone.
func (b *builder) newZone(name string, conf zoneConf) *zone {
	soa := &dns.SOA{
		Hdr:     dns.RR_Header{Name: name, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: conf.ttl},
		Ns:      conf.ns[0],
		Mbox:    conf.mbox,
		Serial:  conf.serial,
		Refresh: soaRefresh,
		Retry:   soaRetry,
		Expire:  soaExpire,
		Minttl:  conf.negTTL,
	}
	neg := dns.Copy(soa)
	neg.Header().Ttl = min(conf.ttl, conf.negTTL)
	z := &zone{name: name, conf: conf, neg: []dns.RR{neg}}
	z.negWire = b.arena.packRR(neg)
	soas, ns := &rrset{}, &rrset{}
	soas.add(soa)
	z.soa = b.pack(new(answer), key{name, dns.TypeSOA}, soas)
	for _, n := range conf.ns {
		ns.add(&dns.NS{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: conf.ttl}, Ns: n})
	}
	z.ns = b.pack(new(answer), key{name, dns.TypeNS}, ns)
	return z
}

// parse turns rec into the record it serves and its canonical owner name,
// or says why it is not served.
func (ix *index) parse(rec *Record) (name string, z *zone, rr dns.RR, problem string) {
	name, ok := canonical(rec.Name)
	if !ok {
		return "", nil, nil, fmt.Sprintf("record %q: invalid name", rec.Name)
	}
	if z = ix.zoneOf(name); z == nil {
		return "", nil, nil, fmt.Sprintf("record %q: outside every zone", name)
	}
	hdr := dns.RR_Header{Name: name, Rrtype: rec.Type, Class: dns.ClassINET, Ttl: cmp.Or(rec.TTL, z.conf.ttl)}
	kind := z.conf.kind
	switch {
	case rec.Type == dns.TypeA && kind == ZoneForward:
		addr, err := netip.ParseAddr(rec.Value)
		if err != nil || !addr.Unmap().Is4() {
			return "", nil, nil, fmt.Sprintf("record %q A: %q is not an IPv4 address", name, rec.Value)
		}
		rr = &dns.A{Hdr: hdr, A: addr.Unmap().AsSlice()}
	case rec.Type == dns.TypeAAAA && kind == ZoneForward:
		addr, err := netip.ParseAddr(rec.Value)
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", nil, nil, fmt.Sprintf("record %q AAAA: %q is not an IPv6 address", name, rec.Value)
		}
		rr = &dns.AAAA{Hdr: hdr, AAAA: addr.AsSlice()}
	case rec.Type == dns.TypePTR && kind == ZoneReverse:
		target, ok := canonical(rec.Value)
		if !ok {
			return "", nil, nil, fmt.Sprintf("record %q PTR: %q is not a domain name", name, rec.Value)
		}
		rr = &dns.PTR{Hdr: hdr, Ptr: target}
	default:
		return "", nil, nil, fmt.Sprintf("record %q: type %s is not served in %s zone %q", name, dns.TypeToString[rec.Type], kind, z.name)
	}
	return name, z, rr, ""
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
