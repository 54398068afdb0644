package dns

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestBuildIndexSkipsInvalid(t *testing.T) {
	recs := &Records{
		Zones: []Zone{
			{Name: "Moxxie.Test", Kind: ZoneForward},  // not fully qualified, mixed case: fine
			{Name: "moxxie.test.", Kind: ZoneForward}, // listed twice
			{Name: "bad..name.", Kind: ZoneForward},   // invalid
			{Name: "example.org.", Kind: ZoneReverse}, // reverse outside in-addr.arpa.
			{Name: "0.0.10.in-addr.arpa.", Kind: ZoneReverse},
		},
		Records: []Record{
			{Name: "a.moxxie.test.", Type: TypeA, Value: "10.0.0.1"},
			{Name: "a.moxxie.test.", Type: TypeA, Value: "10.0.0.1"},         // duplicate: served once
			{Name: "A.MOXXIE.TEST", Type: TypeA, Value: "10.0.0.2", TTL: 10}, // same RRset
			{Name: "b.moxxie.test.", Type: TypeA, Value: "2001:db8::1"},      // not IPv4
			{Name: "b.moxxie.test.", Type: TypeAAAA, Value: "10.0.0.1"},      // not IPv6
			{Name: "b.moxxie.test.", Type: TypeAAAA, Value: "fe80::1%eth0"},  // zoned
			{Name: "c.example.com.", Type: TypeA, Value: "10.0.0.3"},         // outside every zone
			{Name: "1.0.0.10.in-addr.arpa.", Type: TypeA, Value: "10.0.0.1"}, // A in a reverse zone
			{Name: "d.moxxie.test.", Type: TypePTR, Value: "x.moxxie.test."}, // PTR in a forward zone
			{Name: "1.0.0.10.in-addr.arpa.", Type: TypePTR, Value: "bad..target"},
			{Name: "2.0.0.10.in-addr.arpa.", Type: TypePTR, Value: "A.Moxxie.Test"},
			{Name: "e.moxxie.test.", Type: dns.TypeMX, Value: "10 mail.moxxie.test."},
			{Name: "", Type: TypeA, Value: "10.0.0.4"},
		},
	}
	ix := buildIndex(recs)
	if len(ix.zones) != 2 {
		t.Errorf("zones %v, want moxxie.test. and 0.0.10.in-addr.arpa.", ix.zones)
	}
	if ix.skipped != 12 {
		t.Errorf("skipped %d, want 12 (first: %s)", ix.skipped, ix.problem)
	}
	if ix.records != 3 {
		t.Errorf("records %d, want 3", ix.records)
	}
	a := ix.answer(key{"a.moxxie.test.", dns.TypeA})
	if a == nil || len(a.rrs) != 2 {
		t.Fatalf("a.moxxie.test. A: %v, want two records", a)
	}
	for _, rr := range a.rrs {
		if rr.Header().Ttl != 10 {
			t.Errorf("%v: the RRset's TTLs should all be its least, 10", rr)
		}
	}
	ptr := ix.answer(key{"2.0.0.10.in-addr.arpa.", dns.TypePTR})
	if ptr == nil || ptr.rrs[0].(*dns.PTR).Ptr != "a.moxxie.test." {
		t.Errorf("PTR target not canonical: %v", ptr)
	}
}

func TestBuildIndexNestedZones(t *testing.T) {
	recs := &Records{
		Zones: []Zone{
			{Name: "moxxie.test.", Serial: 1},
			{Name: "lab.moxxie.test.", Serial: 2, TTL: 300, NegativeTTL: 5, Mbox: "ops.moxxie.test.", NS: []string{"ns.lab.moxxie.test.", "bad..ns"}},
			{Name: "prod.eu.moxxie.test.", Serial: 3},
		},
		Records: []Record{
			{Name: "www.moxxie.test.", Type: TypeA, Value: "10.0.0.1"},
			{Name: "x.y.lab.moxxie.test.", Type: TypeA, Value: "10.0.0.2"},
		},
	}
	m := newTestMoxxie(t, recs)
	tests := []struct {
		name      string
		qtype     uint16
		rcode     int
		answers   int
		soaSerial uint32
	}{
		{"x.y.lab.moxxie.test.", dns.TypeA, dns.RcodeSuccess, 1, 0},
		{"y.lab.moxxie.test.", dns.TypeA, dns.RcodeSuccess, 0, 2}, // empty non-terminal in the child zone
		{"z.lab.moxxie.test.", dns.TypeA, dns.RcodeNameError, 0, 2},
		{"lab.moxxie.test.", dns.TypeSOA, dns.RcodeSuccess, 1, 0},
		{"lab.moxxie.test.", dns.TypeNS, dns.RcodeSuccess, 1, 0},
		{"www.moxxie.test.", dns.TypeA, dns.RcodeSuccess, 1, 0},
		{"zzz.moxxie.test.", dns.TypeA, dns.RcodeNameError, 0, 1},
		{"eu.moxxie.test.", dns.TypeA, dns.RcodeSuccess, 0, 1}, // empty non-terminal above a zone
		{"x.eu.moxxie.test.", dns.TypeA, dns.RcodeNameError, 0, 1},
		{"prod.eu.moxxie.test.", dns.TypeA, dns.RcodeSuccess, 0, 3},
	}
	for _, tt := range tests {
		rcode, resp := serve(t, m, new(dns.Msg).SetQuestion(tt.name, tt.qtype), false)
		if rcode != tt.rcode || len(resp.Answer) != tt.answers {
			t.Errorf("%s %s: rcode %d, %d answers; want %d, %d", tt.name, dns.TypeToString[tt.qtype], rcode, len(resp.Answer), tt.rcode, tt.answers)
			continue
		}
		if tt.soaSerial == 0 {
			continue
		}
		if len(resp.Ns) != 1 {
			t.Errorf("%s: authority %v, want the SOA", tt.name, resp.Ns)
			continue
		}
		soa := resp.Ns[0].(*dns.SOA)
		if soa.Serial != tt.soaSerial {
			t.Errorf("%s: SOA %v, want serial %d", tt.name, soa, tt.soaSerial)
		}
		if tt.soaSerial == 2 && (soa.Hdr.Ttl != 5 || soa.Minttl != 5 || soa.Mbox != "ops.moxxie.test." || soa.Ns != "ns.lab.moxxie.test.") {
			t.Errorf("%s: SOA %v, want TTL and minimum 5, the zone's mailbox and name server", tt.name, soa)
		}
	}
}

func TestBuildIndexNil(t *testing.T) {
	ix := buildIndex(nil)
	if a, z, exists := ix.lookup("anything.", dns.TypeA); a != nil || z != nil || exists {
		t.Errorf("empty index answers: %v %v %v", a, z, exists)
	}
}

// TestLongZoneNames: where ns1.ZONE or hostmaster.ZONE would be longer
// than a name can be, the zone's apex names its server and mailbox, so
// that its answers, negative ones included, still pack.
func TestLongZoneNames(t *testing.T) {
	labels := func(last int) string {
		return strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", last) + "."
	}
	long, mid := labels(61), labels(53) // 253 and 245 octets as text: ns1. fits under mid, hostmaster. under neither
	m := watchSource(t, NewStaticSource(&Records{Zones: []Zone{{Name: long, Kind: ZoneForward}, {Name: mid, Kind: ZoneForward}}}))
	for _, c := range []struct{ zone, ns, mbox string }{{long, long, long}, {mid, "ns1." + mid, mid}} {
		rcode, resp := serve(t, m, new(dns.Msg).SetQuestion(c.zone, dns.TypeSOA), false)
		if rcode != dns.RcodeSuccess || len(resp.Answer) != 1 || resp.Answer[0].(*dns.SOA).Ns != c.ns || resp.Answer[0].(*dns.SOA).Mbox != c.mbox {
			t.Errorf("SOA of %s: %d %v, want ns %s and mbox %s", c.zone, rcode, resp.Answer, c.ns, c.mbox)
		}
		if rcode, resp := serve(t, m, new(dns.Msg).SetQuestion(c.zone, dns.TypeNS), false); rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
			t.Errorf("NS of %s: %d %v", c.zone, rcode, resp.Answer)
		}
	}
	if rcode, resp := serve(t, m, new(dns.Msg).SetQuestion("x."+mid, dns.TypeA), false); rcode != dns.RcodeNameError || len(resp.Ns) != 1 {
		t.Errorf("a name missing under %s: %d %v", mid, rcode, resp.Ns)
	}
}
