package dns

import (
	"context"
	"errors"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	"github.com/moxxie/moxxie/telemetry/promtest"
	"github.com/prometheus/client_golang/prometheus"
)

// TestMetrics_QueriesByTypeAndRcode counts in moxxie_dns_queries_total the
// queries answered from the zones and those passed on, with the response
// code each got.
func TestMetrics_QueriesByTypeAndRcode(t *testing.T) {
	m := newTestMoxxie(t, testRecords())
	reg := prometheus.NewRegistry()
	m.metrics.countQueriesIn(newQueryCounter(reg))
	ask := func(name string, qtype uint16) {
		t.Helper()
		req := new(dns.Msg)
		req.SetQuestion(name, qtype)
		_, _ = m.ServeDNS(context.Background(), &wireWriter{}, req)
	}
	ask("web.moxxie.test.", dns.TypeA)    // NOERROR
	ask("web.moxxie.test.", dns.TypeAAAA) // NOERROR
	ask("nope.moxxie.test.", dns.TypeA)   // NXDOMAIN
	ask("example.org.", dns.TypeA)        // no next plugin: REFUSED
	ask("5.0.0.10.in-addr.arpa.", dns.TypePTR)
	m.Next = test.NextHandler(dns.RcodeServerFailure, errors.New("upstream down"))
	ask("example.org.", dns.TypeMX) // forwarding failed: SERVFAIL
	m.Next = plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		a := new(dns.Msg)
		a.SetRcode(r, dns.RcodeNameError)
		return dns.RcodeSuccess, w.WriteMsg(a)
	})
	ask("example.org.", dns.TypeAAAA) // the upstream says NXDOMAIN

	got := promtest.Values(t, reg, "moxxie_dns_queries_total")
	for labels, want := range map[string]float64{
		"qtype=A,rcode=NOERROR":      1,
		"qtype=AAAA,rcode=NOERROR":   1,
		"qtype=A,rcode=NXDOMAIN":     1,
		"qtype=A,rcode=REFUSED":      1,
		"qtype=PTR,rcode=NOERROR":    1,
		"qtype=other,rcode=SERVFAIL": 1,
		"qtype=AAAA,rcode=NXDOMAIN":  1,
	} {
		if got[labels] != want {
			t.Errorf("queries{%s} = %v, want %v", labels, got[labels], want)
		}
	}
}
