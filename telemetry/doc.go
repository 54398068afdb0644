// Package telemetry is the plumbing of Moxxie's observability: Prometheus
// registries and collector helpers, structured logging, and OpenTelemetry
// tracing. It knows nothing of raft, the API or the state; the packages
// that do build their metrics, log lines and spans with it.
//
// # Metrics: one registry per server
//
// Every moxxied server and every moxxie-agent keeps its metrics in a
// registry of its own, made by NewRegistry, not in the process default
// registry that promauto and prometheus.MustRegister use. Tests (and
// benchmarks) run several servers in one process, and most of a server's
// metrics describe that server alone: its raft state, its API requests,
// the state its FSM holds. In the default registry two servers would
// register the same collectors twice (which panics) or count into the
// same series (which lies), and a test could not tell one server's
// numbers from another's. A registry per server also lets the server
// serve it twice, on the API behind a token and on a plain listener,
// without global state.
//
// What belongs to the process stays in the default registry: the Go
// runtime and process collectors, and what libraries register there
// (CoreDNS's plugins, including the coredns_moxxie_* series of our DNS
// plugin, labelled by server). Handler serves a server's registry and the
// default one together (Gatherer), so a scrape sees both; no metric name
// may be in both.
//
// Metric names follow moxxie_<subsystem>_<name>_<unit>; counters end in
// _total. Gauges derived from state are computed by collectors at scrape
// time (NewCollector with Gauge and Counter), never by goroutines that
// poll. Latency histograms use LatencyBuckets.
package telemetry
