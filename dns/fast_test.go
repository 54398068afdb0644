package dns

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"slices"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// fastQueries returns the queries of serveCases in the forms a client
// sends: plain, with EDNS (with and without DO), with RD and CD flipped.
func fastQueries() []*dns.Msg {
	var qs []*dns.Msg
	for _, tc := range serveCases {
		plain := tc.Msg()
		plain.Id = 777
		edns := tc.Msg()
		edns.SetEdns0(1232, true)
		flags := tc.Msg()
		flags.RecursionDesired, flags.CheckingDisabled = false, true
		flags.SetEdns0(512, false)
		qs = append(qs, plain, edns, flags)
	}
	return qs
}

// checkSame reports how the fast path's response fast differs from the
// plugin's response slow to the same query.
func checkSame(t *testing.T, q, fast, slow *dns.Msg) {
	t.Helper()
	if fast.MsgHdr != slow.MsgHdr {
		t.Errorf("%v: fast header %+v, plugin %+v", q.Question, fast.MsgHdr, slow.MsgHdr)
	}
	str := func(rrs []dns.RR) []string {
		var s []string
		for _, rr := range rrs {
			s = append(s, rr.String())
		}
		return s
	}
	if !slices.Equal(fast.Question, slow.Question) || !slices.Equal(str(fast.Answer), str(slow.Answer)) ||
		!slices.Equal(str(fast.Ns), str(slow.Ns)) || !slices.Equal(str(fast.Extra), str(slow.Extra)) {
		t.Errorf("%v: fast response\n%v\nplugin response\n%v", q.Question, fast, slow)
	}
}

func TestFastAnswerMatchesPlugin(t *testing.T) {
	m := newTestMoxxie(t, testRecords())
	for _, q := range fastQueries() {
		p, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		resp, ok := m.fastAnswer(p, nil, nil)
		if q.Question[0].Qtype == dns.TypeANY {
			if ok {
				t.Errorf("%v: answered on the fast path", q.Question)
			}
			continue
		}
		if !ok {
			t.Errorf("%v: declined by the fast path", q.Question)
			continue
		}
		fast := new(dns.Msg)
		if err := fast.Unpack(resp); err != nil {
			t.Fatalf("%v: fast response does not unpack: %v", q.Question, err)
		}
		// The plugin's path, as CoreDNS's server completes it: the OPT
		// record is added by its ScrubWriter, here by the test.
		_, slow := serve(t, m, q, false)
		if q.IsEdns0() != nil && slow.IsEdns0() == nil {
			o := test.OPT(udpSize, q.IsEdns0().Do())
			slow.Extra = append(slow.Extra, o)
		}
		checkSame(t, q, fast, slow)
	}
}

func TestFastAnswerDeclines(t *testing.T) {
	m := newTestMoxxie(t, testRecords())
	m.Fall = fall.F{Zones: []string{"moxxie.test."}}
	pack := func(edit func(*dns.Msg)) []byte { return packQuery(t, edit) }
	base := pack(func(*dns.Msg) {})
	if _, ok := m.fastAnswer(base, nil, nil); !ok {
		t.Fatal("the base query is not answered on the fast path")
	}
	big := testRecords()
	for i := range 40 {
		big.Records = append(big.Records, Record{Name: "big.moxxie.test.", Type: TypeA, Value: "10.0.1." + string(rune('0'+i/10)) + string(rune('0'+i%10))})
	}
	mBig := newTestMoxxie(t, big)

	tests := []struct {
		name string
		m    *Moxxie
		p    []byte
	}{
		{"short", m, base[:15]},
		{"response", m, pack(func(q *dns.Msg) { q.Response = true })},
		{"notify", m, pack(func(q *dns.Msg) { q.Opcode = dns.OpcodeNotify })},
		{"two questions", m, pack(func(q *dns.Msg) { q.Question = append(q.Question, q.Question[0]) })},
		{"answer section", m, pack(func(q *dns.Msg) { q.Answer = []dns.RR{test.A("web.moxxie.test. 1 IN A 10.0.0.1")} })},
		{"EDNS version 1", m, pack(func(q *dns.Msg) { q.SetEdns0(1232, false); q.Extra[0].(*dns.OPT).SetVersion(1) })},
		{"EDNS not last", m, pack(func(q *dns.Msg) { q.Extra = []dns.RR{test.A("x. 1 IN A 10.0.0.1")} })},
		{"trailing bytes", m, append(slices.Clone(base), 0)},
		{"class CH", m, pack(func(q *dns.Msg) { q.Question[0].Qclass = dns.ClassCHAOS })},
		{"ANY", m, pack(func(q *dns.Msg) { q.Question[0].Qtype = dns.TypeANY })},
		{"escaped label", m, pack(func(q *dns.Msg) { q.Question[0].Name = `we\.b.moxxie.test.` })},
		{"outside zones", m, pack(func(q *dns.Msg) { q.Question[0].Name = "example.org." })},
		{"root", m, pack(func(q *dns.Msg) { q.Question[0].Name = "." })},
		{"falls through", m, pack(func(q *dns.Msg) { q.Question[0].Name = "nope.moxxie.test." })},
		{"too big for 512", mBig, pack(func(q *dns.Msg) { q.Question[0].Name = "big.moxxie.test." })},
		{"AXFR", m, pack(func(q *dns.Msg) { q.Question[0].Qtype = dns.TypeAXFR })},
		{"IXFR", m, pack(func(q *dns.Msg) { q.Question[0].Qtype = dns.TypeIXFR })},
		{"name over 255 octets", m, longNameQuery(1)},
		{"compressed question", m, func() []byte {
			p := slices.Clone(base[:headerLen])
			return append(p, 0xc0, 12, 0, 1, 0, 1)
		}()},
	}
	for _, tt := range tests {
		if resp, ok := tt.m.fastAnswer(tt.p, nil, nil); ok {
			t.Errorf("%s: answered on the fast path: %x", tt.name, resp)
		}
	}
	// The big answer fits a larger EDNS buffer.
	if _, ok := mBig.fastAnswer(pack(func(q *dns.Msg) { q.Question[0].Name = "big.moxxie.test."; q.SetEdns0(4096, false) }), nil, nil); !ok {
		t.Error("big answer with EDNS 4096: declined")
	}
}

func TestFastAnswerAllocations(t *testing.T) {
	m := newTestMoxxie(t, testRecords())
	p, _ := new(dns.Msg).SetQuestion("Web.Moxxie.Test.", dns.TypeA).Pack()
	out, name := make([]byte, 0, 512), make([]byte, 0, maxNameLen)
	if n := testing.AllocsPerRun(100, func() { m.fastAnswer(p, out, name) }); n != 0 {
		t.Errorf("fastAnswer allocates %v times per query, want 0", n)
	}
}

func TestSteerAttaches(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("fast-path socket steering not supported here: it needs the Linux kernel (SO_REUSEPORT BPF)")
	}
	s := startServer(t, ServerConfig{Source: NewStaticSource(testRecords()), Sockets: 2})
	if s.fast == nil || len(s.fast.conns) != 2 {
		t.Fatalf("fast path %+v, want two sockets", s.fast)
	}
	if err := steer(s.fast.conns[0], 1, 2); err != nil {
		t.Errorf("steer: %v", err)
	}
}

// TestFastHeaderBits checks the header the fast path writes bit by bit.
func TestFastHeaderBits(t *testing.T) {
	m := newTestMoxxie(t, testRecords())
	q := new(dns.Msg).SetQuestion("nope.moxxie.test.", dns.TypeA)
	q.Id = 0xbeef
	q.CheckingDisabled = true
	p, _ := q.Pack()
	resp, ok := m.fastAnswer(p, nil, nil)
	if !ok {
		t.Fatal("declined")
	}
	if id, bits := binary.BigEndian.Uint16(resp), binary.BigEndian.Uint16(resp[2:]); id != 0xbeef || bits != 0x8513 {
		t.Errorf("ID %#x bits %#x, want 0xbeef and QR|AA|RD|CD|NXDOMAIN 0x8513", id, bits)
	}
}

// longNameQuery returns a query for A of a name of 256 octets in wire
// format under moxxie.test., with id.
func longNameQuery(id uint16) []byte {
	p := []byte{byte(id >> 8), byte(id), 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	// 4 labels of 60 octets (244 octets), then "moxxie.test." (13).
	for range 4 {
		p = append(p, 60)
		p = append(p, bytes.Repeat([]byte{'a'}, 60)...)
	}
	p = append(p, 6, 'm', 'o', 'x', 'x', 'i', 'e', 4, 't', 'e', 's', 't', 0)
	return append(p, 0, 1, 0, 1)
}
