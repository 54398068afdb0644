package dns

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// testRecords is the view most tests serve: a forward zone with a delegated
// looking child name, IPv4 and IPv6 reverse zones.
func testRecords() *Records {
	recs := &Records{
		Zones: []Zone{
			{Name: "moxxie.test.", Kind: ZoneForward, Serial: 7, NS: []string{"ns1.moxxie.test."}},
			{Name: "0.0.10.in-addr.arpa.", Kind: ZoneReverse, Serial: 7, NS: []string{"ns1.moxxie.test."}},
			{Name: "8.b.d.0.1.0.0.2.ip6.arpa.", Kind: ZoneReverse, Serial: 7, NS: []string{"ns1.moxxie.test."}},
		},
	}
	add := func(name, addr string) {
		recs.Records = append(recs.Records, HostRecords(name, netip.MustParseAddr(addr), 0)...)
	}
	add("web.moxxie.test.", "10.0.0.5")
	add("web.moxxie.test.", "2001:db8::5")
	add("db.prod.moxxie.test.", "10.0.0.6")
	add("ns1.moxxie.test.", "10.0.0.53")
	return recs
}

// newTestMoxxie returns a handler serving recs, as setup would build it.
func newTestMoxxie(t testing.TB, recs *Records) *Moxxie {
	t.Helper()
	return watchSource(t, NewStaticSource(recs))
}

// watchSource returns a handler serving from src, kept current by a
// watcher until the test ends; its metrics are labelled
// "dns://test-" + t.Name().
func watchSource(t testing.TB, src Source) *Moxxie {
	t.Helper()
	m := newMoxxie("dns://test-" + t.Name())
	w := newWatcher(m, src)
	if err := w.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.close()
		m.metrics.unregister()
	})
	return m
}

// wireWriter is a test.ResponseWriter that keeps the last response written,
// unpacked from the bytes the plugin wrote or packed and unpacked from the
// message, so tests see what a client would.
type wireWriter struct {
	test.ResponseWriter
	msg  *dns.Msg
	size int // bytes of the last message written
	err  error
}

func (w *wireWriter) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		w.err = err
		return 0, err
	}
	w.msg, w.size = m, len(b)
	return len(b), nil
}

func (w *wireWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		w.err = err
		return err
	}
	_, err = w.Write(b)
	return err
}

// serve runs req through h and returns the rcode h returned and the
// response a client would receive (nil when h wrote none).
func serve(t testing.TB, h plugin.Handler, req *dns.Msg, tcp bool) (int, *dns.Msg) {
	t.Helper()
	ww := &wireWriter{ResponseWriter: test.ResponseWriter{TCP: tcp}}
	rec := dnstest.NewRecorder(ww)
	rcode, err := h.ServeDNS(context.Background(), rec, req)
	if err != nil {
		t.Fatalf("ServeDNS(%s): %v", req.Question[0].String(), err)
	}
	if ww.err != nil {
		t.Fatalf("ServeDNS(%s) wrote a bad response: %v", req.Question[0].String(), ww.err)
	}
	return rcode, ww.msg
}

// waitServed asks m req until ok accepts the rcode and response, and
// returns how long that took. It fails t after timeout.
func waitServed(t testing.TB, m *Moxxie, req *dns.Msg, timeout time.Duration, ok func(rcode int, resp *dns.Msg) bool) time.Duration {
	t.Helper()
	return eventually(t, req.Question[0].Name+" served as wanted", timeout, func() bool {
		return ok(serve(t, m, req, false))
	})
}

// eventually calls cond until it is true and returns how long that took.
// It fails t, saying what it waited for, after timeout.
func eventually(t testing.TB, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not after %s", what, timeout)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// packQuery packs a query for A of web.moxxie.test., changed by edit first.
func packQuery(t testing.TB, edit func(*dns.Msg)) []byte {
	t.Helper()
	q := new(dns.Msg).SetQuestion("web.moxxie.test.", dns.TypeA)
	edit(q)
	p, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
