package dns

import (
	"context"
	"fmt"
	stdlog "log"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/moxxie/moxxie/internal/lockedbuf"
	"github.com/moxxie/moxxie/telemetry/promtest"
	"github.com/prometheus/client_golang/prometheus"
)

// startServer starts Serve on a free loopback port and stops it when the
// test ends.
func startServer(t *testing.T, cfg ServerConfig) *Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	s, err := Serve(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

// query asks addr over net ("udp" or "tcp") and fails the test on a
// transport error.
func query(t *testing.T, network, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	resp, _, err := c.Exchange(new(dns.Msg).SetQuestion(name, qtype), addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return resp
}

func TestServeEndToEnd(t *testing.T) {
	// An upstream serving example.org., for forwarding and fallthrough.
	upstream := startServer(t, ServerConfig{Source: NewStaticSource(&Records{
		Zones:   []Zone{{Name: "example.org."}, {Name: "moxxie.test."}},
		Records: []Record{{Name: "www.example.org.", Type: TypeA, Value: "192.0.2.1"}, {Name: "legacy.moxxie.test.", Type: TypeA, Value: "192.0.2.2"}},
	})})
	src := NewStaticSource(testRecords())
	s := startServer(t, ServerConfig{Source: src, Forward: []string{upstream.Addr()}, Fallthrough: []string{"moxxie.test."}, Sockets: 2})
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || s.Addr() == "127.0.0.1:0" {
		t.Fatalf("Addr() = %q, want the bound port", s.Addr())
	}
	if s.fast == nil {
		t.Error("no UDP fast path on a loopback address")
	}

	tests := []struct {
		name   string
		qtype  uint16
		rcode  int
		answer string
	}{
		{"web.moxxie.test.", dns.TypeA, dns.RcodeSuccess, "10.0.0.5"},
		{"WEB.moxxie.test.", dns.TypeAAAA, dns.RcodeSuccess, "2001:db8::5"},
		{"5.0.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "web.moxxie.test."},
		{"99.0.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, ""},
		{"prod.moxxie.test.", dns.TypeA, dns.RcodeSuccess, ""},
		{"web.moxxie.test.", dns.TypeANY, dns.RcodeSuccess, "10.0.0.5"},
		{"www.example.org.", dns.TypeA, dns.RcodeSuccess, "192.0.2.1"},    // forwarded
		{"legacy.moxxie.test.", dns.TypeA, dns.RcodeSuccess, "192.0.2.2"}, // fell through
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			resp := query(t, network, s.Addr(), tt.name, tt.qtype)
			if resp.Rcode != tt.rcode {
				t.Errorf("%s: %s %s: rcode %s, want %s", network, tt.name, dns.TypeToString[tt.qtype], dns.RcodeToString[resp.Rcode], dns.RcodeToString[tt.rcode])
				continue
			}
			// Its own answers are authoritative; what it forwards is not,
			// though the upstream's is. A server that forwards offers
			// recursion, in every answer.
			if forwarded := tt.answer == "192.0.2.1" || tt.answer == "192.0.2.2"; resp.Authoritative == forwarded || !resp.RecursionAvailable {
				t.Errorf("%s: %s: AA %v RA %v, want AA %v RA true", network, tt.name, resp.Authoritative, resp.RecursionAvailable, !forwarded)
			}
			// One that does not forward offers none.
			if up := query(t, network, upstream.Addr(), "www.example.org.", dns.TypeA); !up.Authoritative || up.RecursionAvailable {
				t.Errorf("%s: the upstream's own answer: AA %v RA %v, want AA true RA false", network, up.Authoritative, up.RecursionAvailable)
			}
			if tt.answer == "" {
				if len(resp.Answer) != 0 || len(resp.Ns) != 1 || resp.Ns[0].Header().Rrtype != dns.TypeSOA {
					t.Errorf("%s: %s: answer %v authority %v, want the SOA alone", network, tt.name, resp.Answer, resp.Ns)
				}
				continue
			}
			if len(resp.Answer) == 0 || !strings.HasSuffix(resp.Answer[0].String(), "\t"+tt.answer) {
				t.Errorf("%s: %s %s: answer %v, want %s", network, tt.name, dns.TypeToString[tt.qtype], resp.Answer, tt.answer)
			}
		}
	}

	// A committed change is served within a second, over the fast path.
	recs := testRecords()
	recs.Records = append(recs.Records, HostRecords("new.moxxie.test.", netip.MustParseAddr("10.0.0.9"), 0)...)
	src.Set(recs)
	eventually(t, "the change served", time.Second, func() bool {
		return len(query(t, "udp", s.Addr(), "new.moxxie.test.", dns.TypeA).Answer) == 1
	})
}

func TestServeWithoutForwardRefuses(t *testing.T) {
	s := startServer(t, ServerConfig{Source: NewStaticSource(testRecords())})
	for _, network := range []string{"udp", "tcp"} {
		if resp := query(t, network, s.Addr(), "example.org.", dns.TypeA); resp.Rcode != dns.RcodeRefused {
			t.Errorf("%s: rcode %s for a name outside every zone, want REFUSED", network, dns.RcodeToString[resp.Rcode])
		}
	}
}

func TestServeStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Serve(ctx, ServerConfig{Listen: "127.0.0.1:0", Source: NewStaticSource(testRecords())})
	if err != nil {
		t.Fatal(err)
	}
	name := s.name
	cancel()
	eventually(t, "the server unregistered after its context ended", 5*time.Second, func() bool { return handlerOf(name) == nil })
	if err := s.Stop(); err != nil {
		t.Errorf("Stop after the context ended: %v", err)
	}
	// The port is free again, for UDP and TCP.
	pc, err := net.ListenPacket("udp", s.Addr())
	if err != nil {
		t.Fatalf("UDP port still bound after Stop: %v", err)
	}
	pc.Close()
	ln, err := net.Listen("tcp", s.Addr())
	if err != nil {
		t.Fatalf("TCP port still bound after Stop: %v", err)
	}
	ln.Close()
}

func TestServeConfigErrors(t *testing.T) {
	src := NewStaticSource(nil)
	for _, cfg := range []ServerConfig{
		{Listen: "127.0.0.1:0"},
		{Listen: "127.0.0.1", Source: src},
		{Listen: "127.0.0.1:99999", Source: src},
		{Listen: "127.0.0.1:0", Source: src, Sockets: -1},
		{Listen: "127.0.0.1:0", Source: src, Fallthrough: []string{"bad..zone"}},
		{Listen: "127.0.0.1:0", Source: src, Forward: []string{"1.1.1.1 }"}},
		{Listen: "192.0.2.1:0", Source: src}, // an address this host does not have
	} {
		if s, err := Serve(context.Background(), cfg); err == nil {
			s.Stop()
			t.Errorf("Serve(%+v) succeeded, want an error", cfg)
		}
	}
}

// TestDig queries a running server with the real dig, as an operator would.
func TestDig(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("dig missing: apt-get install dnsutils")
	}
	s := startServer(t, ServerConfig{Source: NewStaticSource(testRecords())})
	host, port, _ := net.SplitHostPort(s.Addr())
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"web.moxxie.test", "A"}, "10.0.0.5"},
		{[]string{"web.moxxie.test", "AAAA"}, "2001:db8::5"},
		{[]string{"-x", "10.0.0.5"}, "web.moxxie.test."},
		{[]string{"-x", "10.0.0.6"}, "db.prod.moxxie.test."},
		{[]string{"-x", "2001:db8::5"}, "web.moxxie.test."},
		{[]string{"+tcp", "web.moxxie.test", "A"}, "10.0.0.5"},
		{[]string{"moxxie.test", "NS"}, "ns1.moxxie.test."},
		{[]string{"nope.moxxie.test", "A"}, ""},
	}
	for _, tt := range tests {
		args := append([]string{"@" + host, "-p", port, "+short", "+time=2", "+tries=1"}, tt.args...)
		out, err := exec.Command(dig, args...).CombinedOutput()
		if err != nil {
			t.Errorf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
			continue
		}
		if got := strings.TrimSpace(string(out)); got != tt.want {
			t.Errorf("dig %s = %q, want %q", strings.Join(args, " "), got, tt.want)
		}
	}
	out, err := exec.Command(dig, "@"+host, "-p", port, "nope.moxxie.test", "A").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "status: NXDOMAIN") || !strings.Contains(string(out), "flags: qr aa rd;") {
		t.Errorf("dig nope.moxxie.test: %v\n%s\nwant an authoritative NXDOMAIN", err, out)
	}
}

func TestServeIPv6(t *testing.T) {
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	s := startServer(t, ServerConfig{Listen: "[::1]:0", Source: NewStaticSource(testRecords())})
	for _, network := range []string{"udp", "tcp"} {
		resp := query(t, network, s.Addr(), "web.moxxie.test.", dns.TypeAAAA)
		if len(resp.Answer) != 1 {
			t.Errorf("%s over IPv6: %v", network, resp)
		}
		if resp := query(t, network, s.Addr(), "example.org.", dns.TypeA); resp.Rcode != dns.RcodeRefused {
			t.Errorf("%s over IPv6: rcode %s for a name outside the zones, want REFUSED", network, dns.RcodeToString[resp.Rcode])
		}
	}
}

// TestServeLongUDPQuery sends queries padded with EDNS(0) padding
// (RFC 7830) past the size a fast-path socket reads whole: one that fits
// is answered, a longer one arrives cut and gets FORMERR, as from CoreDNS,
// and the server goes on answering.
func TestServeLongUDPQuery(t *testing.T) {
	s := startServer(t, ServerConfig{Source: NewStaticSource(testRecords()), Sockets: 2})
	if s.fast == nil {
		t.Skip("skipped: the UDP fast path is Linux only (SO_REUSEPORT steering); elsewhere CoreDNS serves UDP itself")
	}
	padded := func(n int) *dns.Msg {
		m := new(dns.Msg).SetQuestion("web.moxxie.test.", dns.TypeA)
		m.SetEdns0(1232, false)
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_PADDING{Padding: make([]byte, n)})
		return m
	}
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second, UDPSize: 1232}
	for _, tc := range []struct {
		pad   int
		rcode int
	}{
		{1000, dns.RcodeSuccess},
		{udpQuerySize + 1000, dns.RcodeFormatError},
		{0, dns.RcodeSuccess},
	} {
		req := padded(tc.pad)
		wire, err := req.Pack()
		if err != nil {
			t.Fatal(err)
		}
		resp, _, err := c.Exchange(req, s.Addr())
		if err != nil {
			t.Fatalf("%d-byte query: %v", len(wire), err)
		}
		if resp.Rcode != tc.rcode {
			t.Errorf("%d-byte query: rcode %s, want %s", len(wire), dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
		}
		if tc.rcode == dns.RcodeSuccess && (len(resp.Answer) != 1 || !strings.HasSuffix(resp.Answer[0].String(), "\t10.0.0.5")) {
			t.Errorf("%d-byte query: answer %v, want 10.0.0.5", len(wire), resp.Answer)
		}
	}
}

// TestServeHeaderWithoutQuestion: a header that counts one question and
// carries none (12 bytes) is FORMERR over UDP, and the server goes on.
func TestServeHeaderWithoutQuestion(t *testing.T) {
	s := startServer(t, ServerConfig{Source: NewStaticSource(testRecords()), Sockets: 2})
	conn, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte{0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	if n < 4 || buf[0] != 0x12 || buf[1] != 0x34 || int(buf[3]&0xf) != dns.RcodeFormatError {
		t.Fatalf("answer % x, want FORMERR for id 0x1234", buf[:n])
	}
	if resp := query(t, "udp", s.Addr(), "web.moxxie.test.", dns.TypeA); resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("after it: rcode %s", dns.RcodeToString[resp.Rcode])
	}
}

// TestServeStopRightAway stops servers the moment Serve returns, as a
// caller whose context ends during start-up does: Stop must stop CoreDNS's
// UDP and TCP servers even if they had only just started, and free the port.
func TestServeStopRightAway(t *testing.T) {
	for i := range 40 {
		listen := "127.0.0.1:0" // with the fast path
		if i%2 == 1 {
			listen = ":0" // every address, CoreDNS only
		}
		s, err := Serve(context.Background(), ServerConfig{Listen: listen, Source: NewStaticSource(testRecords()), Sockets: 1})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Stop() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("server %d: Stop: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("server %d: Stop right after Serve still waiting after 10 s", i)
		}
		pc, err := net.ListenPacket("udp", s.Addr())
		if err != nil {
			t.Fatalf("server %d: UDP port still bound after Stop: %v", i, err)
		}
		pc.Close()
		ln, err := net.Listen("tcp", s.Addr())
		if err != nil {
			t.Fatalf("server %d: TCP port still bound after Stop: %v", i, err)
		}
		ln.Close()
	}
}

func TestProbeAddr(t *testing.T) {
	for _, tt := range []struct {
		addr net.Addr
		want string
	}{
		{&net.UDPAddr{IP: net.IPv4(127, 0, 0, 53), Port: 53}, "127.0.0.53:53"},
		{&net.UDPAddr{IP: net.IPv4zero, Port: 53}, "127.0.0.1:53"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 5353}, "[::1]:5353"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 53}, "[2001:db8::1]:53"},
	} {
		if got := probeAddr(tt.addr); got != tt.want {
			t.Errorf("probeAddr(%v) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

// gatedSource is a StaticSource whose records are current from version
// from on; none while from is 0.
type gatedSource struct {
	*StaticSource
	from atomic.Uint64
}

func (g *gatedSource) Current(version uint64) bool {
	from := g.from.Load()
	return from != 0 && version >= from
}

// TestServeNotCurrent serves from a GatedSource that is not current: every
// query, in a zone or not, over UDP (the fast path's socket) and TCP, is
// SERVFAIL, with the Extended DNS Error "Not Ready" when the query has EDNS;
// once a version is current, the same queries are answered.
func TestServeNotCurrent(t *testing.T) {
	src := &gatedSource{StaticSource: NewStaticSource(testRecords())}
	s := startServer(t, ServerConfig{Source: src, Sockets: 2})
	for _, network := range []string{"udp", "tcp"} {
		for _, name := range []string{"web.moxxie.test.", "nothing.moxxie.test.", "www.example.org."} {
			if resp := query(t, network, s.Addr(), name, dns.TypeA); resp.Rcode != dns.RcodeServerFailure || len(resp.Answer) > 0 || resp.IsEdns0() != nil {
				t.Errorf("%s over %s before current: %s", name, network, resp)
			}
			req := new(dns.Msg).SetQuestion(name, dns.TypeA).SetEdns0(1232, false)
			c := &dns.Client{Net: network, Timeout: 2 * time.Second}
			resp, _, err := c.Exchange(req, s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			var ede *dns.EDNS0_EDE
			if o := resp.IsEdns0(); o != nil {
				for _, opt := range o.Option {
					if e, ok := opt.(*dns.EDNS0_EDE); ok {
						ede = e
					}
				}
			}
			if resp.Rcode != dns.RcodeServerFailure || ede == nil || ede.InfoCode != dns.ExtendedErrorCodeNotReady {
				t.Errorf("%s over %s with EDNS before current: %s", name, network, resp)
			}
		}
	}

	src.from.Store(1)
	src.Update(Change{})
	eventually(t, "answers once current", 5*time.Second, func() bool {
		return query(t, "udp", s.Addr(), "web.moxxie.test.", dns.TypeA).Rcode == dns.RcodeSuccess
	})
	for _, network := range []string{"udp", "tcp"} {
		if resp := query(t, network, s.Addr(), "web.moxxie.test.", dns.TypeA); resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
			t.Errorf("over %s once current: %s", network, resp)
		}
		if resp := query(t, network, s.Addr(), "nothing.moxxie.test.", dns.TypeA); resp.Rcode != dns.RcodeNameError {
			t.Errorf("over %s once current: %s", network, resp)
		}
	}
}

// TestServeForwardLoop runs two servers whose Forward name each other: a
// query for a name outside their zones goes round a few times and ends
// SERVFAIL, instead of going round for ever.
func TestServeForwardLoop(t *testing.T) {
	port, err := freePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	bAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	a := startServer(t, ServerConfig{Source: NewStaticSource(testRecords()), Forward: []string{bAddr}})
	b := startServer(t, ServerConfig{Listen: bAddr, Source: NewStaticSource(testRecords()), Forward: []string{a.Addr()}})
	passed := func() float64 {
		v := func(addr string) float64 {
			return promtest.Value(t, prometheus.DefaultGatherer, "coredns_moxxie_passed_total", "server=dns://"+addr)
		}
		return v(a.Addr()) + v(b.Addr())
	}
	for _, edns := range []bool{false, true} {
		before := passed()
		req := new(dns.Msg).SetQuestion("www.example.org.", dns.TypeA)
		if edns {
			req.SetEdns0(1232, false)
		}
		c := &dns.Client{Timeout: 5 * time.Second}
		resp, _, err := c.Exchange(req, a.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if resp.Rcode != dns.RcodeServerFailure {
			t.Errorf("EDNS %v: %s, want SERVFAIL", edns, resp)
		}
		if o := resp.IsEdns0(); (o != nil) != edns {
			t.Errorf("EDNS %v: answer's OPT %v", edns, o)
		} else if o != nil && (len(o.Option) != 1 || o.Option[0].Option() != dns.EDNS0EDE) {
			t.Errorf("EDNS %v: answer's options %v, want one Extended DNS Error", edns, o.Option)
		}
		// Every hop passed the query on once, then it stopped.
		if got := passed() - before; got != maxHops+1 {
			t.Errorf("EDNS %v: %v queries passed on, want %d", edns, got, maxHops+1)
		}
	}
}

// TestServeForwardHidesHops forwards to an upstream: the answers carry no
// hop count, and no OPT record to a query without one.
func TestServeForwardHidesHops(t *testing.T) {
	up := startServer(t, ServerConfig{Source: NewStaticSource(&Records{
		Zones:   []Zone{{Name: "example.org."}},
		Records: []Record{{Name: "www.example.org.", Type: TypeA, Value: "192.0.2.1"}},
	})})
	s := startServer(t, ServerConfig{Source: NewStaticSource(testRecords()), Forward: []string{up.Addr()}})
	for _, network := range []string{"udp", "tcp"} {
		if resp := query(t, network, s.Addr(), "www.example.org.", dns.TypeA); resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 || resp.IsEdns0() != nil {
			t.Errorf("over %s without EDNS: %s", network, resp)
		}
		c := &dns.Client{Net: network, Timeout: 2 * time.Second}
		resp, _, err := c.Exchange(new(dns.Msg).SetQuestion("www.example.org.", dns.TypeA).SetEdns0(1232, false), s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 || resp.IsEdns0() == nil || len(resp.IsEdns0().Option) != 0 {
			t.Errorf("over %s with EDNS: %s", network, resp)
		}
	}
}

// TestServeMalformed sends queries that are malformed, or that no server
// answers, over UDP (the fast path's socket) and TCP where they can be
// sent there.
func TestServeMalformed(t *testing.T) {
	s := startServer(t, ServerConfig{Source: NewStaticSource(testRecords()), Sockets: 2})
	raw := func(network string, p []byte) *dns.Msg { return rawQuery(t, network, s.Addr(), p) }
	pack := func(edit func(*dns.Msg)) []byte { return packQuery(t, edit) }
	noTypeClass := pack(func(*dns.Msg) {})
	noTypeClass = noTypeClass[:len(noTypeClass)-4]
	twoOPT := pack(func(q *dns.Msg) {
		q.SetEdns0(1232, false)
		q.Extra = append(q.Extra, q.Extra[0])
	})
	tests := []struct {
		name     string
		networks []string
		p        []byte
		rcode    int
	}{
		{"name over 255 octets", []string{"udp", "tcp"}, longNameQuery(7), dns.RcodeFormatError},
		{"question without type and class", []string{"udp"}, noTypeClass, dns.RcodeFormatError},
		{"two OPT records", []string{"udp", "tcp"}, twoOPT, dns.RcodeFormatError},
		{"OPT owner not the root", []string{"udp", "tcp"}, pack(func(q *dns.Msg) { q.SetEdns0(1232, false); q.Extra[0].Header().Name = "x." }), dns.RcodeFormatError},
		{"AXFR", []string{"udp", "tcp"}, pack(func(q *dns.Msg) { q.Question[0].Qtype = dns.TypeAXFR }), dns.RcodeRefused},
		{"IXFR", []string{"udp", "tcp"}, pack(func(q *dns.Msg) { q.Question[0].Qtype = dns.TypeIXFR }), dns.RcodeRefused},
		{"AXFR outside the zones", []string{"udp", "tcp"}, pack(func(q *dns.Msg) {
			q.Question[0] = dns.Question{Name: "example.org.", Qtype: dns.TypeAXFR, Qclass: dns.ClassINET}
		}), dns.RcodeRefused},
	}
	for _, tt := range tests {
		for _, network := range tt.networks {
			if got := raw(network, tt.p); got.Rcode != tt.rcode || len(got.Answer) > 0 || len(got.Ns) > 0 {
				t.Errorf("%s over %s: %s, want %s", tt.name, network, got, dns.RcodeToString[tt.rcode])
			}
		}
	}

	// BADVERS advertises the server's UDP size, not 0.
	bad := raw("udp", pack(func(q *dns.Msg) { q.SetEdns0(1232, false); q.Extra[0].(*dns.OPT).SetVersion(1) }))
	if o := bad.IsEdns0(); o == nil || o.ExtendedRcode() != dns.RcodeBadVers || o.UDPSize() != udpSize {
		t.Errorf("EDNS version 1 over UDP: %s, want BADVERS with UDP size %d", bad, udpSize)
	}
	// The server still answers.
	if resp := query(t, "udp", s.Addr(), "web.moxxie.test.", dns.TypeA); resp.Rcode != dns.RcodeSuccess {
		t.Errorf("after the malformed queries: %s", resp)
	}
}

// rawQuery sends the packed query p to addr over network ("udp" or
// "tcp") and returns the answer; of one that does not unpack, the header's
// rcode alone.
func rawQuery(t *testing.T, network, addr string, p []byte) *dns.Msg {
	t.Helper()
	conn, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if network == "tcp" {
		p = append([]byte{byte(len(p) >> 8), byte(len(p))}, p...)
	}
	if _, err := conn.Write(p); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 65536)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no answer over %s: %v", network, err)
	}
	if network == "tcp" {
		buf, n = buf[2:], n-2
	}
	m := new(dns.Msg)
	if err := m.Unpack(buf[:n]); err != nil {
		// A bare header: the rcode is all there is.
		m.MsgHdr.Rcode = int(buf[3] & 0xf)
	}
	return m
}

// TestServeNotPassedOn sends a server that forwards, over UDP and TCP,
// queries no server should pass to its upstream: of another class than
// IN, of types that are no records' or that it does not offer, of another
// opcode than QUERY, or signed with a key it does not have. It answers
// them itself, the same way over both, whether the name is its own or
// not.
func TestServeNotPassedOn(t *testing.T) {
	upstream := startServer(t, ServerConfig{Source: NewStaticSource(&Records{
		Zones:   []Zone{{Name: "example.org."}, {Name: "moxxie.test."}, {Name: "bind."}},
		Records: []Record{{Name: "www.example.org.", Type: TypeA, Value: "192.0.2.1"}, {Name: "web.moxxie.test.", Type: TypeA, Value: "192.0.2.2"}},
	})})
	s := startServer(t, ServerConfig{Source: NewStaticSource(testRecords()), Forward: []string{upstream.Addr()}, Sockets: 2})
	for _, name := range []string{"web.moxxie.test.", "www.example.org."} {
		q := func(edit func(*dns.Msg)) []byte {
			return packQuery(t, func(m *dns.Msg) { m.Question[0].Name = name; edit(m) })
		}
		tests := []struct {
			what  string
			p     []byte
			rcode int
		}{
			{"class ANY", q(func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassANY }), dns.RcodeRefused},
			{"class CH", q(func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }), dns.RcodeRefused},
			{"NOTIFY", q(func(m *dns.Msg) { m.Opcode, m.Question[0].Qtype = dns.OpcodeNotify, dns.TypeSOA }), dns.RcodeNotImplemented},
			{"UPDATE", q(func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate }), dns.RcodeNotImplemented},
			{"type 0", q(func(m *dns.Msg) { m.Question[0].Qtype = 0 }), dns.RcodeFormatError},
			{"type OPT", q(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeOPT }), dns.RcodeFormatError},
			{"type TSIG", q(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeTSIG }), dns.RcodeFormatError},
			{"type TKEY", q(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeTKEY }), dns.RcodeNotImplemented},
			{"type MAILA", q(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeMAILA }), dns.RcodeNotImplemented},
			{"type MAILB", q(func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeMAILB }), dns.RcodeNotImplemented},
			{"TSIG", q(func(m *dns.Msg) { m.SetEdns0(1232, false).SetTsig("k1.", dns.HmacSHA256, 300, 1700000000) }), dns.RcodeNotAuth},
			{"TSIG and AXFR", q(func(m *dns.Msg) {
				m.Question[0].Qtype = dns.TypeAXFR
				m.SetTsig("k1.", dns.HmacSHA256, 300, 1700000000)
			}), dns.RcodeNotAuth},
			{"TSIG and class CH", q(func(m *dns.Msg) {
				m.Question[0].Qclass = dns.ClassCHAOS
				m.SetTsig("k1.", dns.HmacSHA256, 300, 1700000000)
			}), dns.RcodeNotAuth},
			{"TSIG before OPT", q(func(m *dns.Msg) {
				m.SetTsig("k1.", dns.HmacSHA256, 300, 1700000000)
				m.Extra = append(m.Extra, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 1232}})
			}), dns.RcodeFormatError},
		}
		for _, tt := range tests {
			for _, network := range []string{"udp", "tcp"} {
				got := rawQuery(t, network, s.Addr(), tt.p)
				// RA as on every answer of a server that forwards, but
				// for an UPDATE over TCP: CoreDNS refuses it before any
				// plugin sees it.
				coredns := network == "tcp" && tt.what == "UPDATE"
				if got.Rcode != tt.rcode || len(got.Answer) > 0 || len(got.Ns) > 0 || got.RecursionAvailable == coredns {
					t.Errorf("%s %s over %s: %s, want %s with RA", name, tt.what, network, got, dns.RcodeToString[tt.rcode])
				}
				if tt.rcode != dns.RcodeNotAuth {
					continue
				}
				// Unsigned, with the TSIG error BADKEY (RFC 8945, 5.2.2).
				if sig := got.IsTsig(); sig == nil || sig.Error != dns.RcodeBadKey || sig.MAC != "" || sig.Hdr.Name != "k1." {
					t.Errorf("%s TSIG over %s: %v, want an unsigned TSIG with BADKEY", name, network, sig)
				}
			}
		}
	}
	// Its own answers, and the error answers of the UDP fast path's
	// sockets, advertise its UDP size, whatever the client's.
	for _, size := range []uint16{100, 512, 4096} {
		for _, p := range [][]byte{
			packQuery(t, func(m *dns.Msg) { m.SetEdns0(size, false) }),
			packQuery(t, func(m *dns.Msg) { m.Question[0].Qtype = dns.TypeANY; m.SetEdns0(size, false) }),
			packQuery(t, func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS; m.SetEdns0(size, false) }),
		} {
			got := rawQuery(t, "udp", s.Addr(), p)
			if o := got.IsEdns0(); o == nil || o.UDPSize() != udpSize || !got.RecursionAvailable {
				t.Errorf("EDNS %d: %s, want UDP size %d and RA", size, got, udpSize)
			}
		}
	}
}

// TestServeUDPSizeCapped asks over UDP for more records than fit 1232
// bytes with a larger EDNS buffer: the answer stays within 1232 bytes, the
// size it advertises, with TC set, so that no answer is fragmented; over
// TCP all of them come.
func TestServeUDPSizeCapped(t *testing.T) {
	recs := testRecords()
	for i := range 300 {
		recs.Records = append(recs.Records, HostRecords("rr.moxxie.test.", netip.AddrFrom4([4]byte{10, 0, byte(1 + i/250), byte(1 + i%250)}), 0)...)
	}
	s := startServer(t, ServerConfig{Source: NewStaticSource(recs), Sockets: 2})
	conn, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, size := range []uint16{1232, 4096, 65000} {
		q, _ := new(dns.Msg).SetQuestion("rr.moxxie.test.", dns.TypeA).SetEdns0(size, false).Pack()
		if _, err := conn.Write(q); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		wire := make([]byte, 65536)
		n, err := conn.Read(wire)
		if err != nil {
			t.Fatal(err)
		}
		resp := new(dns.Msg)
		if err := resp.Unpack(wire[:n]); err != nil {
			t.Fatal(err)
		}
		if !resp.Truncated || n > udpSize || resp.IsEdns0() == nil || resp.IsEdns0().UDPSize() != udpSize {
			wire = wire[:n]
			t.Errorf("EDNS %d: %d bytes, TC %v, OPT %v; want at most %d bytes, TC, advertising %d", size, len(wire), resp.Truncated, resp.IsEdns0(), udpSize, udpSize)
		}
	}
	c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	resp, _, err := c.Exchange(new(dns.Msg).SetQuestion("rr.moxxie.test.", dns.TypeA).SetEdns0(4096, false), s.Addr())
	if err != nil || resp.Truncated || len(resp.Answer) != 300 {
		t.Fatalf("over TCP: %v, %d answers, TC %v", err, len(resp.Answer), resp.Truncated)
	}
}

// TestServeFailuresLoggedOncePerMinute forwards UDP queries to an upstream
// that is not there: the first failure is logged, the rest are held back.
func TestServeFailuresLoggedOncePerMinute(t *testing.T) {
	var buf lockedbuf.Buffer
	defer stdlog.SetOutput(stdlog.Writer())
	stdlog.SetOutput(&buf)
	port, err := freePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, ServerConfig{Source: NewStaticSource(testRecords()), Forward: []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}, Sockets: 1})
	for i := range 5 {
		if resp := query(t, "udp", s.Addr(), fmt.Sprintf("x%d.example.org.", i), dns.TypeA); resp.Rcode != dns.RcodeServerFailure {
			t.Fatalf("query %d: %s", i, resp)
		}
	}
	if n := strings.Count(buf.String(), "example.org. A"); n != 1 {
		t.Errorf("%d log lines about the failed queries, want 1:\n%s", n, buf.String())
	}
}

func TestThrottle(t *testing.T) {
	var th throttle
	t0 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		after time.Duration
		ok    bool
		held  int
	}{
		{0, true, 0}, {time.Second, false, 0}, {30 * time.Second, false, 0}, {logGap, true, 2}, {logGap + time.Second, false, 0}, {3 * logGap, true, 1},
	} {
		ok, held := th.allow(t0.Add(c.after))
		if ok != c.ok || held != c.held {
			t.Errorf("after %s: %v %d, want %v %d", c.after, ok, held, c.ok, c.held)
		}
	}
}
