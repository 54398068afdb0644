package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/moxxie/moxxie/telemetry"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// Defaults for Options.
const (
	DefaultMaxBodyBytes     int64 = 1 << 20
	DefaultMaxSnapshotBytes int64 = 1 << 30
	// DefaultSnapshotUploadIdle is the default Options.SnapshotUploadIdle.
	DefaultSnapshotUploadIdle = 10 * time.Second
)

// Options configures the handler returned by New.
type Options struct {
	// Logger receives request failures, panics and, at debug level, one
	// line per request. Nil discards everything.
	Logger *slog.Logger
	// MaxBodyBytes bounds JSON request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxSnapshotBytes bounds an uploaded backup archive (PUT /v1/snapshot);
	// 0 means DefaultMaxSnapshotBytes.
	MaxSnapshotBytes int64
	// SnapshotUploadIdle is how long an upload to PUT /v1/snapshot may
	// send nothing before it is abandoned: it holds every write back while
	// it lasts. 0 means DefaultSnapshotUploadIdle.
	SnapshotUploadIdle time.Duration
	// TempDir is where GET /v1/snapshot spools the archive before sending
	// it; empty means os.TempDir().
	TempDir string
	// RateLimit is how many requests a second each token may make to this
	// server on average, and RateBurst how many at once; beyond them the
	// API answers 429 with Retry-After. AddressRateLimit and
	// AddressRateBurst limit requests without a valid token by client
	// address. Zero means the Default* values; a negative rate, no limit.
	RateLimit        float64
	RateBurst        int
	AddressRateLimit float64
	AddressRateBurst int
	// Metrics is the registry the API counts its requests in and GET
	// /v1/metrics serves, with the process default registry; nil means a
	// registry of its own (telemetry.NewRegistry).
	Metrics *prometheus.Registry
	// TracerProvider records a server span per request, named after its
	// route pattern, as the child of the traceparent the request carries.
	// Nil records nothing but still accepts and passes on the traceparent.
	TracerProvider trace.TracerProvider
	// DebugConfig, when set, returns this server's effective
	// configuration for GET /v1/debug/config, secrets left out; without
	// it the route answers 404.
	DebugConfig func() (any, error)
	// RecentLogs, when set, returns up to n of this server's latest log
	// records, oldest first, each a JSON object (GET /v1/debug/logs).
	RecentLogs func(n int) []json.RawMessage
}

// server is the http.Handler returned by New.
type server struct {
	b    Backend
	opts Options
	log  *slog.Logger
	// tracer makes the request spans; tracing says it records them.
	tracer  trace.Tracer
	tracing bool

	// mux routes requests to the route table; paths knows every path
	// pattern regardless of method, to tell 405 from 404.
	mux   *http.ServeMux
	paths *http.ServeMux
	allow map[string]string // path pattern -> Allow header value

	// reqPrefix and reqSeq generate request IDs: a random per-process
	// prefix and a counter.
	reqPrefix string
	reqSeq    atomic.Uint64

	// watchHook, when set by tests, runs just before a blocking query
	// starts waiting.
	watchHook func()

	// tokenLimit and addrLimit hold the rate limits per token and per
	// client address; nil when off.
	tokenLimit, addrLimit *limiter

	// metrics counts and times requests and serves GET /v1/metrics.
	metrics *apiMetrics
}

// New returns the /v1 API handler serving b. It validates, authenticates
// and forwards requests as described in the package documentation; node
// wraps it in its TLS listener.
func New(b Backend, opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// Lines logged with a request's context carry its request_id and
	// trace_id.
	opts.Logger = telemetry.ContextLogger(opts.Logger)
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxSnapshotBytes <= 0 {
		opts.MaxSnapshotBytes = DefaultMaxSnapshotBytes
	}
	if opts.SnapshotUploadIdle <= 0 {
		opts.SnapshotUploadIdle = DefaultSnapshotUploadIdle
	}
	var p [6]byte
	_, _ = rand.Read(p[:])
	s := &server{
		b:          b,
		opts:       opts,
		log:        opts.Logger,
		tracer:     telemetry.Tracer(opts.TracerProvider),
		tracing:    telemetry.Recording(opts.TracerProvider),
		mux:        http.NewServeMux(),
		paths:      http.NewServeMux(),
		allow:      map[string]string{},
		reqPrefix:  hex.EncodeToString(p[:]),
		tokenLimit: newLimiter(opts.RateLimit, opts.RateBurst, DefaultRateLimit, DefaultRateBurst),
		addrLimit:  newLimiter(opts.AddressRateLimit, opts.AddressRateBurst, DefaultAddressRateLimit, DefaultAddressRateBurst),
		metrics:    newAPIMetrics(opts.Metrics),
	}
	methods := map[string][]string{}
	for i := range routeTable {
		rt := &routeTable[i]
		s.mux.HandleFunc(rt.Pattern(), s.metrics.route(rt.Method, rt.Path).wrap(func(w http.ResponseWriter, r *http.Request) {
			s.serveRoute(rt, w, r)
		}))
		if _, seen := methods[rt.Path]; !seen {
			s.paths.Handle(rt.Path, http.NotFoundHandler())
		}
		methods[rt.Path] = append(methods[rt.Path], rt.Method)
		if rt.Method == http.MethodGet {
			methods[rt.Path] = append(methods[rt.Path], http.MethodHead)
		}
	}
	for path, ms := range methods {
		sort.Strings(ms)
		s.allow[path] = strings.Join(ms, ", ")
	}
	s.mux.HandleFunc("/", s.metrics.route("", "").wrap(s.serveUnrouted))
	return s
}

// serveUnrouted answers requests no route matched: 405 with Allow when the
// path exists under another method, 404 otherwise.
func (s *server) serveUnrouted(w http.ResponseWriter, r *http.Request) {
	rw := writerOf(w)
	if _, pattern := s.paths.Handler(r); pattern != "" {
		s.writeError(rw, r, &apiError{
			status:  http.StatusMethodNotAllowed,
			code:    CodeMethodNotAllowed,
			message: "method " + r.Method + " is not allowed on " + r.URL.Path,
			header:  map[string]string{"Allow": s.allow[pattern]},
		})
		return
	}
	s.writeError(rw, r, &apiError{
		status:  http.StatusNotFound,
		code:    CodeNotFound,
		message: "no route for " + r.URL.Path,
	})
}
