package dns

import (
	"sync"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/moxxie/moxxie/telemetry"
)

const subsystem = pluginName

var (
	queriesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "queries_total",
		Help:      "Queries answered by the moxxie plugin, by query type and response code.",
	}, []string{"server", "type", "rcode"})
	passedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "passed_total",
		Help:      "Queries for names outside every zone, or falling through, passed to the next plugin.",
	}, []string{"server"})
	recordsGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "records",
		Help:      "A, AAAA and PTR records served.",
	}, []string{"server"})
	skippedGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "skipped_records",
		Help:      "Zones and records of the source not served because they are invalid.",
	}, []string{"server"})
	rebuildSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "rebuild_duration_seconds",
		Help:      "Time taken to rebuild the answers, or change those of the records that changed, after the source changed.",
		Buckets:   prometheus.ExponentialBuckets(0.0001, 4, 10),
	}, []string{"server"})
	updatesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "updates_total",
		Help:      "Times the answers were made again after the source changed: \"rebuild\", all of them from a snapshot (at start, after the source replaced its records whole, or when it could not tell its changes or they needed one); \"change\", those of the records and zones that changed.",
	}, []string{"server", "kind"})
)

// newQueryCounter returns moxxie_dns_queries_total, registered in reg (or
// the one reg holds already): every query the plugin saw, by query type
// and the response code it got, the counter of a server's DNS
// service-level indicator. Unlike coredns_moxxie_queries_total it is
// registered per moxxied server, without a server label.
func newQueryCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	return telemetry.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: telemetry.Namespace, Subsystem: "dns", Name: "queries_total",
		Help: "DNS queries this server answered, by query type (A, AAAA, PTR, SOA, NS, ANY, other) and response code: from Moxxie's zones, and for other names REFUSED, or what forwarding them gave (SERVFAIL when it failed).",
	}, []string{"qtype", "rcode"}))
}

// defaultQueries is moxxie_dns_queries_total in the default registry, for
// sources registered without a registry of their own; made on first use
// so that a server serving its own registry beside the default one never
// has the metric in both.
var defaultQueries = sync.OnceValue(func() *prometheus.CounterVec {
	return newQueryCounter(prometheus.DefaultRegisterer)
})

// typeLabels are the query types counted apart; others count as "other".
var typeLabels = [...]string{"A", "AAAA", "PTR", "SOA", "NS", "ANY", "other"}

// rcodeLabels are the response codes the plugin answers with itself.
var rcodeLabels = [...]int{dns.RcodeSuccess, dns.RcodeNameError, dns.RcodeNotImplemented, dns.RcodeServerFailure, dns.RcodeFormatError, dns.RcodeRefused}

// serverMetrics holds the metrics of one server, resolved once so a query
// only increments a counter.
type serverMetrics struct {
	server  string
	queries [len(typeLabels)][len(rcodeLabels)]prometheus.Counter
	// moxxie counts the same queries in moxxie_dns_queries_total;
	// moxxieVec is that counter, for the queries passed on.
	moxxie    [len(typeLabels)][len(rcodeLabels)]prometheus.Counter
	moxxieVec *prometheus.CounterVec
	passed    prometheus.Counter
	records   prometheus.Gauge
	skipped   prometheus.Gauge
	rebuild   prometheus.Observer
	// rebuilds and changes count the two kinds of updates.
	rebuilds, changes prometheus.Counter
}

func newServerMetrics(server string) *serverMetrics {
	sm := &serverMetrics{
		server:   server,
		passed:   passedTotal.WithLabelValues(server),
		records:  recordsGauge.WithLabelValues(server),
		skipped:  skippedGauge.WithLabelValues(server),
		rebuild:  rebuildSeconds.WithLabelValues(server),
		rebuilds: updatesTotal.WithLabelValues(server, "rebuild"),
		changes:  updatesTotal.WithLabelValues(server, "change"),
	}
	for t, tl := range typeLabels {
		for r, rc := range rcodeLabels {
			sm.queries[t][r] = queriesTotal.WithLabelValues(server, tl, dns.RcodeToString[rc])
		}
	}
	// Until setup says where, count into a counter no registry serves.
	sm.countQueriesIn(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "unused"}, []string{"qtype", "rcode"}))
	return sm
}

// countQueriesIn makes sm count moxxie_dns_queries_total in c; nil means
// the default registry's.
func (sm *serverMetrics) countQueriesIn(c *prometheus.CounterVec) {
	if c == nil {
		c = defaultQueries()
	}
	sm.moxxieVec = c
	for t, tl := range typeLabels {
		for r, rc := range rcodeLabels {
			sm.moxxie[t][r] = c.WithLabelValues(tl, dns.RcodeToString[rc])
		}
	}
}

// typeIndex returns the index of qtype's label in typeLabels.
func typeIndex(qtype uint16) int {
	switch qtype {
	case dns.TypeA:
		return 0
	case dns.TypeAAAA:
		return 1
	case dns.TypePTR:
		return 2
	case dns.TypeSOA:
		return 3
	case dns.TypeNS:
		return 4
	case dns.TypeANY:
		return 5
	}
	return len(typeLabels) - 1
}

// countPassed counts in moxxie_dns_queries_total a query the plugin passed
// on, with the response code it was answered with (REFUSED at the end of
// the chain, SERVFAIL when forwarding failed, or what the upstream said).
func (sm *serverMetrics) countPassed(qtype uint16, rcode int) {
	name, ok := dns.RcodeToString[rcode]
	if !ok {
		name = "other"
	}
	sm.moxxieVec.WithLabelValues(typeLabels[typeIndex(qtype)], name).Inc()
}

// count counts one answered query.
func (sm *serverMetrics) count(qtype uint16, rcode int) {
	t := typeIndex(qtype)
	r := 0 // the order of rcodeLabels
	switch rcode {
	case dns.RcodeNameError:
		r = 1
	case dns.RcodeNotImplemented:
		r = 2
	case dns.RcodeServerFailure:
		r = 3
	case dns.RcodeFormatError:
		r = 4
	case dns.RcodeRefused:
		r = 5
	}
	sm.queries[t][r].Inc()
	sm.moxxie[t][r].Inc()
}

// loaded records an update of the answers: a rebuild of them all, or a
// change of some.
func (sm *serverMetrics) loaded(ix *index, took time.Duration, rebuilt bool) {
	sm.records.Set(float64(ix.records))
	sm.skipped.Set(float64(ix.skipped))
	sm.rebuild.Observe(took.Seconds())
	if rebuilt {
		sm.rebuilds.Inc()
	} else {
		sm.changes.Inc()
	}
}

// unregister removes the server's series, when it stops.
func (sm *serverMetrics) unregister() {
	l := prometheus.Labels{"server": sm.server}
	queriesTotal.DeletePartialMatch(l)
	passedTotal.Delete(l)
	recordsGauge.Delete(l)
	skippedGauge.Delete(l)
	rebuildSeconds.Delete(l)
	updatesTotal.DeletePartialMatch(l)
}
