package dns

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// benchRecords returns n hosts in one forward and one reverse zone.
func benchRecords(n int) *Records {
	recs := &Records{Zones: []Zone{{Name: "bench.test."}, {Name: "10.in-addr.arpa.", Kind: ZoneReverse}}}
	for i := range n {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		recs.Records = append(recs.Records, HostRecords(fmt.Sprintf("host-%d.bench.test.", i), addr, 0)...)
	}
	return recs
}

// discardWriter is a ResponseWriter that drops what it is given.
type discardWriter struct{ test.ResponseWriter }

func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// BenchmarkServeDNS measures the plugin as CoreDNS calls it, with a
// positive answer, an NXDOMAIN and a PTR.
func BenchmarkServeDNS(b *testing.B) {
	m := newTestMoxxie(b, benchRecords(10000))
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"host-5000.bench.test.", dns.TypeA},
		{"nope.bench.test.", dns.TypeA},
		{"136.19.0.10.in-addr.arpa.", dns.TypePTR},
	} {
		b.Run(dns.TypeToString[q.qtype]+"/"+q.name, func(b *testing.B) {
			req := new(dns.Msg).SetQuestion(q.name, q.qtype)
			w := dnstest.NewRecorder(&discardWriter{})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.ServeDNS(ctx, w, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFastAnswer measures the UDP fast path from packet to packet.
func BenchmarkFastAnswer(b *testing.B) {
	m := newTestMoxxie(b, benchRecords(10000))
	p, _ := new(dns.Msg).SetQuestion("Host-5000.bench.test.", dns.TypeA).Pack()
	out, name := make([]byte, 0, 512), make([]byte, 0, maxNameLen)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := m.fastAnswer(p, out, name); !ok {
			b.Fatal("declined")
		}
	}
}

// BenchmarkBuildIndex measures a rebuild after a change, for 100k hosts
// (200k records).
func BenchmarkBuildIndex(b *testing.B) {
	recs := benchRecords(100000)
	b.ReportAllocs()
	for b.Loop() {
		buildIndex(recs)
	}
}

// BenchmarkApplyChange measures changing the answers of one host (its old
// records out, new ones in) in an index of 100k hosts, as a ChangeSource's
// change does instead of a rebuild.
func BenchmarkApplyChange(b *testing.B) {
	b.ReportAllocs()
	bd := newBuilder(benchRecords(100000))
	for i := 0; b.Loop(); i++ {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if _, ok := bd.apply([]Change{{
			Serial: uint32(i + 2),
			Remove: HostRecords(fmt.Sprintf("host-%d.bench.test.", i%100000), addr, 0),
			Add:    HostRecords(fmt.Sprintf("renamed-%d.bench.test.", i), addr, 0),
		}}); !ok {
			b.Fatal("not applied")
		}
	}
}

// roundRobin returns the records of n addresses, in a shuffled order,
// that share one name.
func roundRobin(name string, n int) []Record {
	var out []Record
	for _, i := range rand.New(rand.NewPCG(1, 2)).Perm(n) {
		out = append(out, HostRecords(name, netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)}), 0)...)
	}
	return out
}

// BenchmarkBuildRoundRobin measures a rebuild of an index where 20,000
// addresses share one name: its RRset is made from records in no
// particular order.
func BenchmarkBuildRoundRobin(b *testing.B) {
	recs := &Records{Zones: []Zone{{Name: "bench.test."}}, Records: roundRobin("rr.bench.test.", 20000)}
	b.ReportAllocs()
	for b.Loop() {
		buildIndex(recs)
	}
}

// BenchmarkChangeRoundRobin measures a change that adds 4,096 records to
// an RRset of 20,000, and one that takes them out again, as an allocation
// and a release of 4,096 addresses with the same name do.
func BenchmarkChangeRoundRobin(b *testing.B) {
	all := roundRobin("rr.bench.test.", 24096)
	var base, more []Record
	for _, r := range all {
		if r.Type != TypeA {
			continue
		}
		if len(base) < 20000 {
			base = append(base, r)
		} else {
			more = append(more, r)
		}
	}
	bd := newBuilder(&Records{Zones: []Zone{{Name: "bench.test."}}, Records: base})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ch := Change{Serial: uint32(i + 2), Add: more}
		if i%2 == 1 {
			ch = Change{Serial: uint32(i + 2), Remove: more}
		}
		if _, ok := bd.apply([]Change{ch}); !ok {
			b.Fatal("not applied")
		}
	}
}
