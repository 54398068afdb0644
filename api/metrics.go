package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/moxxie/moxxie/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

// routeUnmatched is the route label of requests no route matched.
const routeUnmatched = "unmatched"

// apiMetrics are the API's metrics, in the server's registry
// (Options.Metrics), and the handler of GET /v1/metrics.
type apiMetrics struct {
	// reg is the registry; handler serves it with the process default one.
	reg     *prometheus.Registry
	handler http.Handler

	requests *prometheus.CounterVec   // route, method, code
	duration *prometheus.HistogramVec // route, method

	forwardOK, forwardErr prometheus.Counter
	forwardDuration       prometheus.Histogram

	rateLimited  *prometheus.CounterVec // kind
	auditDropped prometheus.Counter
}

func newAPIMetrics(reg *prometheus.Registry) *apiMetrics {
	if reg == nil {
		reg = telemetry.NewRegistry()
	}
	m := &apiMetrics{reg: reg, handler: telemetry.Handler(reg)}
	m.requests = telemetry.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: telemetry.Namespace, Subsystem: "api", Name: "requests_total",
		Help: "API requests this server answered, by route pattern (\"unmatched\" when no route matched), method and status code; forwarded ones count on the follower and on the leader.",
	}, []string{"route", "method", "code"}))
	m.duration = telemetry.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: telemetry.Namespace, Subsystem: "api", Name: "request_duration_seconds",
		Help:    "Time this server took to answer an API request, by route pattern and method; blocking queries (?index=) are not timed, since they wait as long as the client asks.",
		Buckets: telemetry.LatencyBuckets,
	}, []string{"route", "method"}))
	forwards := telemetry.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: telemetry.Namespace, Subsystem: "api", Name: "forwards_total",
		Help: "Requests this server forwarded to the leader, by result: ok when the leader answered (whatever its status), error when it could not be reached or no leader appeared in time.",
	}, []string{"result"}))
	m.forwardOK, m.forwardErr = forwards.WithLabelValues("ok"), forwards.WithLabelValues("error")
	m.forwardDuration = telemetry.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: telemetry.Namespace, Subsystem: "api", Name: "forward_duration_seconds",
		Help:    "Time from forwarding a request to the leader until its answer's headers arrived, waiting for a leader included.",
		Buckets: telemetry.LatencyBuckets,
	}))
	m.rateLimited = telemetry.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "moxxie_api_rate_limited_requests_total",
		Help: "API requests refused with 429 because a token (kind=token) or a client address without a valid token (kind=address) exceeded its rate limit.",
	}, []string{"kind"}))
	m.auditDropped = telemetry.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "moxxie", Subsystem: "audit", Name: "records_dropped_total",
		Help: "Audit records of refused authentications dropped by the per-address rate limit.",
	}))
	return m
}

// methodLabel bounds the method label to the methods the API knows.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// routeLabel returns the route label of a ServeMux pattern: its path,
// "/v1/ipam/prefixes/{id}", without the method; routeUnmatched for the
// catch-all and for requests no pattern matched.
func routeLabel(pattern string) string {
	_, path, ok := strings.Cut(pattern, " ")
	if !ok || path == "" {
		return routeUnmatched
	}
	return path
}

// routeMeter counts and times the requests of one route.
type routeMeter struct {
	m      *apiMetrics
	route  string
	method string
	// observe is the duration histogram of route and method, resolved once.
	observe prometheus.Observer
}

// route returns the meter of the route with path pattern path and method
// (empty for the catch-all of unmatched requests).
func (m *apiMetrics) route(method, path string) *routeMeter {
	rm := &routeMeter{m: m, route: path, method: method}
	if path == "" {
		rm.route = routeUnmatched
	}
	if method != "" {
		rm.observe = m.duration.WithLabelValues(rm.route, method)
	}
	return rm
}

// wrap returns h counted and timed. It runs below ServeHTTP, so w is the
// responseWriter, which knows the status. A handler that panics is
// counted with the 500 the recovery middleware answers (or the status it
// had sent already).
func (rm *routeMeter) wrap(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		returned := false
		defer func() {
			status := http.StatusOK
			if rw, ok := w.(*responseWriter); ok && rw.wroteHeader {
				status = rw.status
			} else if !returned {
				status = http.StatusInternalServerError
			}
			rm.record(r, status, start)
		}()
		h(w, r)
		returned = true
	}
}

// record counts one request and times it unless it was a blocking query.
func (rm *routeMeter) record(r *http.Request, status int, start time.Time) {
	method := methodLabel(r.Method)
	rm.m.requests.WithLabelValues(rm.route, method, strconv.Itoa(status)).Inc()
	if isBlocking(r.URL.RawQuery) {
		return
	}
	obs := rm.observe
	if obs == nil || method != rm.method {
		obs = rm.m.duration.WithLabelValues(rm.route, method)
	}
	obs.Observe(time.Since(start).Seconds())
}

// isBlocking reports whether a raw query string carries index=, which
// makes a read a blocking query.
func isBlocking(raw string) bool {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if k, v, _ := strings.Cut(kv, "="); k == "index" && v != "" && v != "0" {
			return true
		}
	}
	return false
}

// limited counts a request refused with 429 before it was routed.
func (s *server) limited(r *http.Request, kind string) {
	s.metrics.rateLimited.WithLabelValues(kind).Inc()
	_, pattern := s.mux.Handler(r)
	s.metrics.requests.WithLabelValues(routeLabel(pattern), methodLabel(r.Method), strconv.Itoa(http.StatusTooManyRequests)).Inc()
}

// forwardToLeader sends fr to the leader through Backend.Forward, counting
// and timing it.
func (s *server) forwardToLeader(fr *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := s.b.Forward(fr)
	s.metrics.forwardDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		s.metrics.forwardErr.Inc()
	} else {
		s.metrics.forwardOK.Inc()
	}
	return resp, err
}

// handleMetrics serves this server's metrics in the Prometheus text format:
// its own registry and the process's default one (telemetry.Handler).
func (s *server) handleMetrics(c *call) error {
	s.metrics.handler.ServeHTTP(c.w, c.r)
	return nil
}
