package dns

import (
	"context"
	"strconv"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// The SOA records every negative answer carries in its authority section:
// TTL 30 is the negative TTL, below the zone TTL of 60.
const (
	soaForward = "moxxie.test. 30 IN SOA ns1.moxxie.test. hostmaster.moxxie.test. 7 3600 600 86400 30"
	soaRev4    = "0.0.10.in-addr.arpa. 30 IN SOA ns1.moxxie.test. hostmaster.0.0.10.in-addr.arpa. 7 3600 600 86400 30"
	soaRev6    = "8.b.d.0.1.0.0.2.ip6.arpa. 30 IN SOA ns1.moxxie.test. hostmaster.8.b.d.0.1.0.0.2.ip6.arpa. 7 3600 600 86400 30"
)

var serveCases = []test.Case{
	{Qname: "web.moxxie.test.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("web.moxxie.test. 60 IN A 10.0.0.5")}},
	{Qname: "web.moxxie.test.", Qtype: dns.TypeAAAA, Answer: []dns.RR{test.AAAA("web.moxxie.test. 60 IN AAAA 2001:db8::5")}},
	{Qname: "5.0.0.10.in-addr.arpa.", Qtype: dns.TypePTR, Answer: []dns.RR{test.PTR("5.0.0.10.in-addr.arpa. 60 IN PTR web.moxxie.test.")}},
	{Qname: "6.0.0.10.in-addr.arpa.", Qtype: dns.TypePTR, Answer: []dns.RR{test.PTR("6.0.0.10.in-addr.arpa. 60 IN PTR db.prod.moxxie.test.")}},
	{
		Qname: "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", Qtype: dns.TypePTR,
		Answer: []dns.RR{test.PTR("5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. 60 IN PTR web.moxxie.test.")},
	},
	// The apex: SOA and NS.
	{Qname: "moxxie.test.", Qtype: dns.TypeSOA, Answer: []dns.RR{test.SOA("moxxie.test. 60 IN SOA ns1.moxxie.test. hostmaster.moxxie.test. 7 3600 600 86400 30")}},
	{Qname: "moxxie.test.", Qtype: dns.TypeNS, Answer: []dns.RR{test.NS("moxxie.test. 60 IN NS ns1.moxxie.test.")}},
	{Qname: "0.0.10.in-addr.arpa.", Qtype: dns.TypeNS, Answer: []dns.RR{test.NS("0.0.10.in-addr.arpa. 60 IN NS ns1.moxxie.test.")}},
	{Qname: "8.b.d.0.1.0.0.2.ip6.arpa.", Qtype: dns.TypeSOA, Answer: []dns.RR{test.SOA("8.b.d.0.1.0.0.2.ip6.arpa. 60 IN SOA ns1.moxxie.test. hostmaster.8.b.d.0.1.0.0.2.ip6.arpa. 7 3600 600 86400 30")}},
	// NXDOMAIN with the zone's SOA.
	{Qname: "nope.moxxie.test.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soaForward)}},
	{Qname: "a.web.moxxie.test.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soaForward)}},
	{Qname: "99.0.0.10.in-addr.arpa.", Qtype: dns.TypePTR, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soaRev4)}},
	{
		Qname: "6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", Qtype: dns.TypePTR,
		Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soaRev6)},
	},
	// NODATA: the name exists with other types, or as an empty non-terminal.
	{Qname: "web.moxxie.test.", Qtype: dns.TypeMX, Ns: []dns.RR{test.SOA(soaForward)}},
	{Qname: "db.prod.moxxie.test.", Qtype: dns.TypeAAAA, Ns: []dns.RR{test.SOA(soaForward)}},
	{Qname: "prod.moxxie.test.", Qtype: dns.TypeA, Ns: []dns.RR{test.SOA(soaForward)}},
	{Qname: "moxxie.test.", Qtype: dns.TypeA, Ns: []dns.RR{test.SOA(soaForward)}},
	{Qname: "5.0.0.10.in-addr.arpa.", Qtype: dns.TypeA, Ns: []dns.RR{test.SOA(soaRev4)}},
	{Qname: "0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", Qtype: dns.TypePTR, Ns: []dns.RR{test.SOA(soaRev6)}},
	// Names are case-insensitive; the answer's owner points at the question,
	// so it comes back in the question's case.
	{Qname: "WeB.MoXxIe.TeSt.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("WeB.MoXxIe.TeSt. 60 IN A 10.0.0.5")}},
	{Qname: "NOPE.MOXXIE.TEST.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soaForward)}},
	// ANY returns every RRset at the name.
	{Qname: "web.moxxie.test.", Qtype: dns.TypeANY, Answer: []dns.RR{
		test.A("web.moxxie.test. 60 IN A 10.0.0.5"),
		test.AAAA("web.moxxie.test. 60 IN AAAA 2001:db8::5"),
	}},
	// Also answers written from records, not prebuilt, echo its case.
	{Qname: "Web.MOXXIE.test.", Qtype: dns.TypeANY, Answer: []dns.RR{
		test.A("Web.MOXXIE.test. 60 IN A 10.0.0.5"),
		test.AAAA("Web.MOXXIE.test. 60 IN AAAA 2001:db8::5"),
	}},
}

func TestServeDNS(t *testing.T) {
	m := newTestMoxxie(t, testRecords())
	for _, tc := range serveCases {
		for _, tcp := range []bool{false, true} {
			rcode, resp := serve(t, m, tc.Msg(), tcp)
			if resp == nil {
				t.Errorf("%s %s: no response (rcode %d)", tc.Qname, dns.TypeToString[tc.Qtype], rcode)
				continue
			}
			if rcode != tc.Rcode {
				t.Errorf("%s %s: ServeDNS returned rcode %d, want %d", tc.Qname, dns.TypeToString[tc.Qtype], rcode, tc.Rcode)
			}
			if !resp.Authoritative || !resp.Response {
				t.Errorf("%s %s: AA %v QR %v, want both set", tc.Qname, dns.TypeToString[tc.Qtype], resp.Authoritative, resp.Response)
			}
			if q := resp.Question; len(q) != 1 || q[0].Name != tc.Qname || q[0].Qtype != tc.Qtype {
				t.Errorf("%s %s: question %v not echoed", tc.Qname, dns.TypeToString[tc.Qtype], q)
			}
			if err := test.SortAndCheck(resp, tc); err != nil {
				t.Errorf("%s %s: %v", tc.Qname, dns.TypeToString[tc.Qtype], err)
			}
		}
	}
}

func TestServeDNSPassesOtherNames(t *testing.T) {
	m := newTestMoxxie(t, testRecords())
	for _, name := range []string{"example.org.", "test.", ".", "in-addr.arpa.", "1.0.0.10.in-addr.arpa.in-addr.arpa.", "7.0.10.in-addr.arpa."} {
		req := new(dns.Msg).SetQuestion(name, dns.TypeA)
		// At the end of the chain a name outside every zone is refused.
		m.Next = nil
		if rcode, resp := serve(t, m, req, false); rcode != dns.RcodeRefused || resp != nil {
			t.Errorf("%s without next plugin: rcode %d, response %v; want REFUSED for the server to write", name, rcode, resp)
		}
		// Otherwise the next plugin (forward) gets it. The answer to its
		// failure is written here, with RA, as every answer of a server
		// that forwards.
		m.Next = test.NextHandler(dns.RcodeServerFailure, nil)
		if _, resp := serve(t, m, req, false); resp == nil || resp.Rcode != dns.RcodeServerFailure || !resp.RecursionAvailable {
			t.Errorf("%s: response %v; want the next plugin's SERVFAIL, with RA", name, resp)
		}
	}
}

func TestServeDNSFallthrough(t *testing.T) {
	m := newTestMoxxie(t, testRecords())
	m.Next = test.NextHandler(dns.RcodeServerFailure, nil)
	m.Fall = fall.F{Zones: []string{"moxxie.test."}}

	tests := []struct {
		name  string
		qtype uint16
		rcode int
	}{
		{"nope.moxxie.test.", dns.TypeA, dns.RcodeServerFailure},     // falls through
		{"web.moxxie.test.", dns.TypeA, dns.RcodeSuccess},            // answered
		{"web.moxxie.test.", dns.TypeMX, dns.RcodeSuccess},           // NODATA does not fall through
		{"99.0.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError}, // another zone: NXDOMAIN
	}
	// The rcode of the answer written, or returned for the server to write.
	answer := func(q *dns.Msg) int {
		rcode, resp := serve(t, m, q, false)
		if resp != nil {
			return resp.Rcode
		}
		return rcode
	}
	for _, tt := range tests {
		if rcode := answer(new(dns.Msg).SetQuestion(tt.name, tt.qtype)); rcode != tt.rcode {
			t.Errorf("%s %s: rcode %d, want %d", tt.name, dns.TypeToString[tt.qtype], rcode, tt.rcode)
		}
	}

	m.Fall.SetZonesFromArgs(nil) // "fallthrough" alone: every zone
	if rcode := answer(new(dns.Msg).SetQuestion("99.0.0.10.in-addr.arpa.", dns.TypePTR)); rcode != dns.RcodeServerFailure {
		t.Errorf("fallthrough for all zones: rcode %d, want the next plugin's", rcode)
	}
}

func TestServeDNSHeaderAndEDNS(t *testing.T) {
	m := newTestMoxxie(t, testRecords())
	for _, name := range []string{"web.moxxie.test.", "nope.moxxie.test."} {
		req := new(dns.Msg).SetQuestion(name, dns.TypeA)
		req.Id = 4242
		req.CheckingDisabled = true
		req.SetEdns0(4096, true)
		_, resp := serve(t, m, req, false)
		if resp.Id != 4242 || !resp.RecursionDesired || !resp.CheckingDisabled || resp.RecursionAvailable {
			t.Errorf("%s: header %+v: want the query's ID, RD and CD, no RA", name, resp.MsgHdr)
		}
		opt := resp.IsEdns0()
		if opt == nil || !opt.Do() || opt.UDPSize() != udpSize || opt.Version() != 0 {
			t.Errorf("%s: OPT %v, want one with DO and size %d", name, opt, udpSize)
		}

		req = new(dns.Msg).SetQuestion(name, dns.TypeA)
		req.RecursionDesired = false
		if _, resp := serve(t, m, req, false); resp.RecursionDesired || resp.IsEdns0() != nil {
			t.Errorf("%s: RD %v OPT %v, want neither", name, resp.RecursionDesired, resp.IsEdns0())
		}
	}
}

func TestServeDNSNotQuery(t *testing.T) {
	m := newTestMoxxie(t, testRecords())
	req := new(dns.Msg).SetQuestion("web.moxxie.test.", dns.TypeA)
	req.Opcode = dns.OpcodeNotify
	if _, resp := serve(t, m, req, false); resp == nil || resp.Rcode != dns.RcodeNotImplemented || resp.Opcode != dns.OpcodeNotify {
		t.Errorf("NOTIFY: response %v; want NOTIMP", resp)
	}
}

// TestServeDNSLargeAnswer checks that an answer too large for a plain UDP
// response is truncated over UDP and whole over TCP.
func TestServeDNSLargeAnswer(t *testing.T) {
	recs := testRecords()
	for i := range 60 {
		recs.Records = append(recs.Records, Record{Name: "big.moxxie.test.", Type: TypeA, Value: "10.0.1." + strconv.Itoa(i)})
	}
	m := newTestMoxxie(t, recs)
	m.Next = test.NextHandler(dns.RcodeServerFailure, nil)
	req := new(dns.Msg).SetQuestion("big.moxxie.test.", dns.TypeA)
	if _, resp := serve(t, m, req, true); len(resp.Answer) != 60 || resp.Truncated {
		t.Errorf("TCP: %d answers, truncated %v; want all 60", len(resp.Answer), resp.Truncated)
	}
	// Written from the records rather than prebuilt, the answer still
	// echoes the question's case, and is compressed.
	mixed := new(dns.Msg).SetQuestion("BIG.moxxie.Test.", dns.TypeANY)
	ww := &wireWriter{ResponseWriter: test.ResponseWriter{TCP: true}}
	if _, err := m.ServeDNS(context.Background(), ww, mixed); err != nil || ww.err != nil {
		t.Fatalf("ANY: %v %v", err, ww.err)
	}
	resp := ww.msg
	if len(resp.Answer) != 60 {
		t.Fatalf("ANY: %d answers, want 60", len(resp.Answer))
	}
	for _, rr := range resp.Answer {
		if rr.Header().Name != "BIG.moxxie.Test." {
			t.Fatalf("ANY answer owner %q, want the question's case", rr.Header().Name)
		}
	}
	// Each A record compressed: a 2-byte pointer and 14 bytes.
	if ww.size > 12+22+60*16 {
		t.Errorf("ANY answer of 60 A records is %d bytes: not compressed", ww.size)
	}
	// Without CoreDNS's ScrubWriter in front, the plugin's fallback writes
	// the whole message; the server truncates it. Check the fallback ran.
	_, resp = serve(t, m, req, false)
	if len(resp.Answer) != 60 {
		t.Errorf("UDP fallback: %d answers, want 60 before the server's truncation", len(resp.Answer))
	}
	req.SetEdns0(4096, false)
	if _, resp := serve(t, m, req, false); len(resp.Answer) != 60 || resp.IsEdns0() == nil {
		t.Errorf("UDP with EDNS 4096: %d answers, OPT %v; want all 60 and an OPT", len(resp.Answer), resp.IsEdns0())
	}
}
