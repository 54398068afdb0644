package telemetry

import (
	"errors"
	"net/http"
	"runtime"

	"github.com/moxxie/moxxie/version"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace starts the name of every metric of Moxxie's own.
const Namespace = "moxxie"

// LatencyBuckets are the histogram buckets of request, apply and call
// latencies, in seconds: from half a millisecond, where a local write or a
// read from memory lands, to ten seconds, where timeouts do.
var LatencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// buildInfoDesc describes moxxie_build_info.
var buildInfoDesc = prometheus.NewDesc(
	Namespace+"_build_info",
	"Always 1; the labels say which build is running: its version, VCS revision and Go version.",
	[]string{"version", "revision", "go_version"}, nil,
)

// NewRegistry returns a registry for the metrics of one server or agent,
// with moxxie_build_info in it. See the package documentation for why it
// is not the process default registry.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	v := version.Get()
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	reg.MustRegister(NewCollector(func(ch chan<- prometheus.Metric) {
		ch <- prometheus.MustNewConstMetric(buildInfoDesc, prometheus.GaugeValue, 1, v.Version, v.Commit, runtime.Version())
	}, buildInfoDesc))
	return reg
}

// Gatherer returns what a server's metrics endpoints serve: reg, and the
// process default registry with the Go runtime, the process and what
// libraries (CoreDNS) register there.
func Gatherer(reg prometheus.Gatherer) prometheus.Gatherer {
	return prometheus.Gatherers{reg, prometheus.DefaultGatherer}
}

// Handler serves Gatherer(reg) in the Prometheus text format (gzipped when
// the scraper accepts it). A collector that fails leaves its metrics out
// and the rest is served.
func Handler(reg prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(Gatherer(reg), promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
	})
}

// Register registers c in reg. When reg already holds an equal collector
// (the same descriptors: a second server of one process sharing a
// registry, a restarted component) it returns the one registered first,
// so callers keep counting into the series the registry serves.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if prev, ok := are.ExistingCollector.(C); ok {
				return prev
			}
		}
		panic(err)
	}
	return c
}

// collectorFunc is the collector NewCollector returns.
type collectorFunc struct {
	descs   []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

// NewCollector returns a collector whose metrics collect makes at scrape
// time (with prometheus.MustNewConstMetric, or Gauge and Counter), for
// values read from state rather than counted as they happen. descs are
// every descriptor collect uses.
func NewCollector(collect func(ch chan<- prometheus.Metric), descs ...*prometheus.Desc) prometheus.Collector {
	return &collectorFunc{descs: descs, collect: collect}
}

// Describe sends the collector's descriptors.
func (c *collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect sends the collector's metrics.
func (c *collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

// NewDesc describes a metric moxxie_<subsystem>_<name> with help and the
// variable labels.
func NewDesc(subsystem, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, subsystem, name), help, labels, nil)
}

// Gauge sends the gauge d with value v and the label values.
func Gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// Counter sends the counter d with value v and the label values.
func Counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

// Bool is 1 for true and 0 for false, for 0/1 gauges.
func Bool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
