package dns

import (
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
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
		Help:      "Time taken to rebuild the answers after the source changed.",
		Buckets:   prometheus.ExponentialBuckets(0.0001, 4, 10),
	}, []string{"server"})
)

// typeLabels are the query types counted apart; others count as "other".
var typeLabels = [...]string{"A", "AAAA", "PTR", "SOA", "NS", "ANY", "other"}

// rcodeLabels are the response codes the plugin answers with itself.
var rcodeLabels = [...]int{dns.RcodeSuccess, dns.RcodeNameError, dns.RcodeNotImplemented}

// serverMetrics holds the metrics of one server, resolved once so a query
// only increments a counter.
type serverMetrics struct {
	server  string
	queries [len(typeLabels)][len(rcodeLabels)]prometheus.Counter
	passed  prometheus.Counter
	records prometheus.Gauge
	skipped prometheus.Gauge
	rebuild prometheus.Observer
}

func newServerMetrics(server string) *serverMetrics {
	sm := &serverMetrics{
		server:  server,
		passed:  passedTotal.WithLabelValues(server),
		records: recordsGauge.WithLabelValues(server),
		skipped: skippedGauge.WithLabelValues(server),
		rebuild: rebuildSeconds.WithLabelValues(server),
	}
	for t, tl := range typeLabels {
		for r, rc := range rcodeLabels {
			sm.queries[t][r] = queriesTotal.WithLabelValues(server, tl, dns.RcodeToString[rc])
		}
	}
	return sm
}

// count counts one answered query.
func (sm *serverMetrics) count(qtype uint16, rcode int) {
	t := len(typeLabels) - 1
	switch qtype {
	case dns.TypeA:
		t = 0
	case dns.TypeAAAA:
		t = 1
	case dns.TypePTR:
		t = 2
	case dns.TypeSOA:
		t = 3
	case dns.TypeNS:
		t = 4
	case dns.TypeANY:
		t = 5
	}
	r := 0
	switch rcode {
	case dns.RcodeNameError:
		r = 1
	case dns.RcodeNotImplemented:
		r = 2
	}
	sm.queries[t][r].Inc()
}

// loaded records a rebuild.
func (sm *serverMetrics) loaded(ix *index, took time.Duration) {
	sm.records.Set(float64(ix.records))
	sm.skipped.Set(float64(ix.skipped))
	sm.rebuild.Observe(took.Seconds())
}

// unregister removes the server's series, when it stops.
func (sm *serverMetrics) unregister() {
	l := prometheus.Labels{"server": sm.server}
	queriesTotal.DeletePartialMatch(l)
	passedTotal.Delete(l)
	recordsGauge.Delete(l)
	skippedGauge.Delete(l)
	rebuildSeconds.Delete(l)
}
