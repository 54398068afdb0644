package dns

import (
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// FuzzServeDNS feeds arbitrary packed messages to the fast path and to the
// plugin. Neither may panic, and whatever the fast path answers must be
// what the plugin answers to the same query. Seeds: testdata/fuzz/FuzzServeDNS.
func FuzzServeDNS(f *testing.F) {
	for _, q := range fastQueries() {
		p, err := q.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
	}
	m := newTestMoxxie(f, testRecords())
	m.Next = test.NextHandler(dns.RcodeServerFailure, nil)
	f.Fuzz(func(t *testing.T, p []byte) {
		resp, fastOK := m.fastAnswer(p, nil, nil)
		q := new(dns.Msg)
		if err := q.Unpack(p); err != nil || len(q.Question) == 0 {
			if !fastOK {
				return
			}
			// The fast path checks the framing of EDNS options, not their
			// contents, which do not change the answer: without them the
			// query must unpack.
			p = withoutOptions(p)
			if err := q.Unpack(p); err != nil {
				t.Fatalf("fast path answered a query that does not unpack: %x: %v", p, err)
			}
		}
		rcode, slow := serve(t, m, q, false)
		if !fastOK {
			return
		}
		fast := new(dns.Msg)
		if err := fast.Unpack(resp); err != nil {
			t.Fatalf("fast response does not unpack: %v", err)
		}
		if slow == nil {
			t.Fatalf("fast path answered %v, the plugin passed it on (rcode %d)", q.Question, rcode)
		}
		if q.IsEdns0() != nil && slow.IsEdns0() == nil {
			slow.Extra = append(slow.Extra, test.OPT(udpSize, q.IsEdns0().Do()))
		}
		checkSame(t, q, fast, slow)
	})
}

// withoutOptions returns p, a query the fast path answered, with the data of
// its OPT record cut off.
func withoutOptions(p []byte) []byte {
	off := headerLen
	for p[off] != 0 {
		off += int(p[off]) + 1
	}
	end := off + 1 + 4 + optLen
	if end > len(p) {
		return p
	}
	p = append([]byte(nil), p[:end]...)
	p[end-2], p[end-1] = 0, 0
	return p
}

// FuzzReverseZonePrefix checks that any name parses without a panic and
// that a prefix it gives has the name as its one reverse zone.
func FuzzReverseZonePrefix(f *testing.F) {
	for _, s := range []string{"1.10.in-addr.arpa.", "in-addr.arpa", "8.b.d.0.1.0.0.2.ip6.arpa.", "ip6.arpa.", "256.in-addr.arpa", "a.ip6.arpa", ".in-addr.arpa", "1..10.in-addr.arpa."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, zone string) {
		p, ok := ReverseZonePrefix(zone)
		if !ok {
			return
		}
		want := strings.ToLower(strings.TrimSuffix(zone, ".")) + "."
		if got := ReverseZones(p); len(got) != 1 || got[0] != want {
			t.Fatalf("%q gives %v, whose zones are %v", zone, p, got)
		}
	})
}
