// Package node runs one Moxxie server: raft over a mutual-TLS transport with
// raft-boltdb and file snapshots, bootstrap and join, forwarding to the
// leader, read consistency, leader-only loops, and the HTTPS API.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/dns"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/provider"
	"github.com/moxxie/moxxie/telemetry"
	"github.com/moxxie/moxxie/version"
	"go.opentelemetry.io/otel/trace"
)

// Options carries what a server needs besides its Config. Zero values are
// fine outside tests.
type Options struct {
	// Logger receives the server's structured logs.
	Logger *slog.Logger
	// RaftListener and APIListener, when set, are used instead of listening
	// on the configured addresses (tests pass port-0 listeners).
	RaftListener net.Listener
	APIListener  net.Listener
	// Now is the leader clock; time.Now when nil.
	Now func() time.Time
	// Provider, when set, is used instead of the one the proxmox section
	// of the configuration describes (tests pass one for a simulator).
	Provider provider.Provider
	// TracerProvider, when set, records the server's spans instead of
	// the one the tracing section of the configuration describes (tests
	// pass one with an in-memory exporter). The server does not shut it
	// down.
	TracerProvider trace.TracerProvider
	// OnHalt, when set, is called when the server halts at an entry its
	// state must not take (fsm.FSM.Halt), after it logs why; the server
	// then panics unless OnHalt ends the goroutine (tests do).
	OnHalt func(reason string)
}

// Server is one moxxied server.
type Server struct {
	cfg    *Config
	logger *slog.Logger
	now    func() time.Time

	fsm       *fsm.FSM
	raft      *raft.Raft
	store     *raftboltdb.BoltStore
	transport *raft.NetworkTransport
	mux       *mux
	certs     *certs

	raftAddr string
	apiAddr  string
	apiLn    net.Listener
	apiSrv   *http.Server
	fwdSrv   *http.Server
	fwd      *http.Client
	handler  http.Handler

	// provider is the virtualization platform; nil without one.
	provider provider.Provider
	// secrets holds the key-encryption keys of the secrets store.
	secrets *secretKeys
	// syncKick asks the inventory loop to sync now; syncCycles counts the
	// cycles it ran.
	syncKick chan struct{}
	// drKick asks the DR loop to enforce fences now: a site that fenced
	// itself stops its guests without waiting for the next sync.
	drKick     chan struct{}
	syncCycles atomic.Uint64
	// storageKick asks the storage sync to list the storages now;
	// storageCycles counts the syncs it recorded.
	storageKick   chan struct{}
	storageCycles atomic.Uint64
	// site is this server's membership of the sites' pool; nil when the
	// server is in no site.
	site *siteMember
	// siteHTTP passes requests on to other sites, made once.
	siteClientOnce sync.Once
	siteHTTP       *http.Client

	// tracer makes the server's spans; tracing says it records them.
	// stopTracing flushes and stops the provider the server made.
	tracer      trace.Tracer
	tracing     bool
	stopTracing func(context.Context) error

	dnsSrc *dnsSource  // nil without dns_address
	dnsSrv *dns.Server // nil without dns_address

	// metrics holds the server's metrics; metricsLn and metricsSrv serve
	// them on metrics_address (nil when off).
	metrics    *serverMetrics
	metricsLn  net.Listener
	metricsSrv *http.Server

	applyCh chan *applyReq
	// leaders wakes forwards waiting on a leader that is no longer one.
	leaders *leaderWatch
	// writes fences writes against a snapshot restore: Apply holds it
	// shared until its write is answered, SnapshotRestore exclusively.
	// restoring is the channel closed when the running restore ends; it
	// is set for as long as a restore holds or waits for writes.
	writes    sync.RWMutex
	restoring atomic.Pointer[chan struct{}]

	fwdMu      sync.Mutex
	fwdClients map[string]*fwdClient // guarded by fwdMu; batch connections by leader address
	fwdPlain   map[string]time.Time  // guarded by fwdMu; leaders that took no batched frames, until when to forward them plain HTTP
	// proposals and proposed count raft log entries proposed by batchLoop
	// and the writes they carried.
	proposals, proposed atomic.Uint64

	// consistentReady is true while this server leads and has applied a
	// barrier in its term, so its store reflects every committed write.
	consistentReady atomic.Bool

	shutdownOnce sync.Once
	shutdownCh   chan struct{}
	wg           sync.WaitGroup
}

// New starts a server: it opens the stores, starts raft and the listeners,
// and begins bootstrap or join as configured. It returns once the server
// accepts connections; a leader may not exist yet.
func New(cfg *Config, opts Options) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The server keeps its latest log records for GET /v1/debug/logs.
	recentLogs := newLogRing()
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.Logger = withLogRing(opts.Logger, recentLogs)
	logger := telemetry.ContextLogger(opts.Logger)
	if logger == nil {
		logger = telemetry.ContextLogger(slog.Default())
	}
	// s is not the named result: the cleanup below runs after a failed
	// return has set that to nil.
	s := &Server{
		cfg: cfg, logger: logger.With("server", cfg.NodeID), now: opts.Now,
		fsm: fsm.New(), applyCh: make(chan *applyReq, 4096), leaders: newLeaderWatch(), shutdownCh: make(chan struct{}),
		fwdClients: map[string]*fwdClient{}, fwdPlain: map[string]time.Time{}, provider: opts.Provider, syncKick: make(chan struct{}, 1), drKick: make(chan struct{}, 1), storageKick: make(chan struct{}, 1),
		metrics: newServerMetrics(),
	}
	s.fsm.OnApply = s.metrics.onApply
	s.fsm.Halt = func(reason string) {
		s.logger.Error("halting: the state must not take the next entry", "reason", reason)
		if opts.OnHalt != nil {
			opts.OnHalt(reason)
		}
	}
	if s.now == nil {
		s.now = time.Now
	}
	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()

	tp, stopTracing := opts.TracerProvider, func(context.Context) error { return nil }
	if tp == nil {
		if tp, stopTracing, err = telemetry.NewTracerProvider(telemetry.TracingConfig{
			Endpoint: cfg.Tracing.Endpoint, SampleRatio: cfg.Tracing.SampleRatio,
			ServiceName: "moxxied", InstanceID: cfg.NodeID, Version: version.Version,
		}); err != nil {
			return nil, fmt.Errorf("config: tracing: %w", err)
		}
		closers = append(closers, func() { _ = stopTracing(context.Background()) })
	}
	s.tracer, s.tracing, s.stopTracing = telemetry.Tracer(tp), telemetry.Recording(tp), stopTracing

	if s.certs, err = loadCerts(cfg.TLS, cfg.Site.Name); err != nil {
		return nil, err
	}
	s.warnCertNamesNoSite()
	s.metrics.reg.MustRegister(certCollector(s.certs))
	if s.secrets, err = loadSecretKeys(cfg.Secrets, os.LookupEnv, s.logger); err != nil {
		return nil, err
	}
	if s.provider == nil {
		if s.provider, err = newProvider(cfg.Proxmox, s.logger, tp, s.Secret); err != nil {
			return nil, err
		}
	}
	s.provider = metered(s.provider, s.metrics)
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "raft"), 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}

	raftLn := opts.RaftListener
	if raftLn == nil {
		if raftLn, err = net.Listen("tcp", cfg.RaftAddress); err != nil {
			return nil, fmt.Errorf("raft_address: %w", err)
		}
	}
	closers = append(closers, func() { raftLn.Close() })
	s.raftAddr = advertised(cfg.RaftAddress, raftLn.Addr())
	advAddr, err := net.ResolveTCPAddr("tcp", s.raftAddr)
	if err != nil {
		return nil, fmt.Errorf("raft_address: %w", err)
	}
	s.mux = newMux(raftLn, advAddr, s.certs.peerServerTLS(), s.certs.peerClientTLS(), s.logger)
	s.mux.rpc = s.handleRPC
	s.mux.batch = s.serveForwardMsgpack
	s.mux.frames = s.serveForwardFrames
	closers = append(closers, func() { s.mux.close() })

	if err := s.setupRaft(); err != nil {
		return nil, err
	}
	closers = append(closers, func() { _ = s.raft.Shutdown().Error(); s.store.Close() })
	s.metrics.reg.MustRegister(raftCollector(s), stateCollector(s.State, s.now, s.logger), siteCollector(s), drCollector(s.State, s.now))

	s.apiLn = opts.APIListener
	if s.apiLn == nil {
		if s.apiLn, err = net.Listen("tcp", cfg.APIAddress); err != nil {
			return nil, fmt.Errorf("api_address: %w", err)
		}
	}
	s.apiAddr = advertised(cfg.APIAddress, s.apiLn.Addr())
	apiOpts := api.Options{
		Logger: s.logger, DebugConfig: cfg.debugDump, RecentLogs: recentLogs.last, Metrics: s.metrics.reg, TracerProvider: tp,
		// A restore's upload holds writes back; one that sends nothing for
		// twice as long as a write waits is abandoned.
		SnapshotUploadIdle: 2 * time.Duration(cfg.HoldTimeout),
	}
	handler := api.New(s, cfg.APIRateLimit.apiOptions(apiOpts))
	s.handler = handler
	errLog := slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn)
	s.apiSrv = newHTTPServer(handler, errLog)
	s.fwdSrv = newHTTPServer(handler, errLog)
	s.fwd = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			c, err := s.mux.dial(ctx, addr, connForward)
			if err != nil {
				return nil, &dialError{err}
			}
			return c, nil
		},
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     time.Minute,
	}}
	if cfg.MetricsAddress != "" {
		ln, err := net.Listen("tcp", cfg.MetricsAddress)
		if err != nil {
			return nil, fmt.Errorf("metrics_address: %w", err)
		}
		closers = append(closers, func() { ln.Close() })
		s.serveMetrics(ln)
	}
	if cfg.DNSAddress != "" {
		s.dnsSrc = newDNSSource(s.fsm, s.logger)
		s.dnsSrv, err = dns.Serve(context.Background(), dns.ServerConfig{Listen: cfg.DNSAddress, Source: s.dnsSrc, Forward: cfg.DNSForward, Metrics: s.metrics.reg})
		if err != nil {
			return nil, fmt.Errorf("dns_address: %w", err)
		}
		closers = append(closers, func() { _ = s.dnsSrv.Stop() })
		s.goRun(func() { s.dnsSrc.run(s.shutdownCh) })
		s.goRun(s.openDNS)
	}
	go s.mux.serve()
	tlsLn := tls.NewListener(s.apiLn, s.certs.apiTLS())
	s.goRun(func() { serveHTTP(s.apiSrv, tlsLn, s.logger) })
	s.goRun(func() { serveHTTP(s.fwdSrv, forwardListener{s.mux}, s.logger) })
	s.goRun(s.batchLoop)
	s.goRun(func() { watchLeader(s.raft, s.leaders, s.shutdownCh) })
	s.goRun(s.monitorLeadership)
	s.goRun(s.bootstrapOrJoin)
	s.startSite()
	s.logger.Info("server started", "raft_address", s.raftAddr, "api_address", s.apiAddr, "dns_address", s.DNSAddr(), "metrics_address", s.MetricsAddr())
	return s, nil
}

func serveHTTP(srv *http.Server, ln net.Listener, logger *slog.Logger) {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		logger.Error("HTTP server failed", "error", err)
	}
}

// advertised returns the configured address, with the port the listener
// really got when the configuration asked for port 0.
func advertised(configured string, bound net.Addr) string {
	host, port, err := net.SplitHostPort(configured)
	if err != nil || port != "0" {
		return configured
	}
	_, p, _ := net.SplitHostPort(bound.String())
	return net.JoinHostPort(host, p)
}

func (s *Server) goRun(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

func (s *Server) setupRaft() error {
	rc := s.cfg.Raft
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(s.cfg.NodeID)
	conf.HeartbeatTimeout = time.Duration(rc.HeartbeatTimeout)
	conf.ElectionTimeout = time.Duration(rc.ElectionTimeout)
	conf.LeaderLeaseTimeout = time.Duration(rc.LeaderLeaseTimeout)
	conf.CommitTimeout = time.Duration(rc.CommitTimeout)
	conf.SnapshotThreshold = rc.SnapshotThreshold
	conf.SnapshotInterval = time.Duration(rc.SnapshotInterval)
	conf.TrailingLogs = rc.TrailingLogs
	conf.BatchApplyCh = true
	conf.Logger = newHCLogger(s.logger, "raft", s.cfg.LogLevel)

	dir := filepath.Join(s.cfg.DataDir, "raft")
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), BoltOptions: raftStoreOptions(0)})
	if err != nil {
		return fmt.Errorf("open raft store: %w", err)
	}
	fileSnaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 3, conf.Logger.Named("snapshots"))
	if err != nil {
		store.Close()
		return fmt.Errorf("open snapshot store: %w", err)
	}
	snaps := countingSnapshots{SnapshotStore: fileSnaps, n: &s.metrics.snapshots}
	s.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  raftLayer{s.mux},
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  conf.Logger.Named("transport"),
	})
	// Replication reads back entries the leader has just written; a cache
	// keeps those reads off bolt.
	logs, err := raft.NewLogCache(512, store)
	if err != nil {
		store.Close()
		return err
	}
	r, err := raft.NewRaft(conf, applyTracer{FSM: s.fsm, s: s}, logs, store, snaps, s.transport)
	if err != nil {
		store.Close()
		return fmt.Errorf("start raft: %w", err)
	}
	s.store, s.raft = store, r
	return nil
}

// ID returns this server's node ID.
func (s *Server) ID() string { return s.cfg.NodeID }

// RaftAddress returns the address peers reach this server's raft transport on.
func (s *Server) RaftAddress() string { return s.raftAddr }

// APIAddress returns the host:port of this server's HTTPS API.
func (s *Server) APIAddress() string { return s.apiAddr }

// DNSAddr returns the host:port this server answers DNS on (the port it
// got when dns_address asked for port 0), or "" when DNS is off.
func (s *Server) DNSAddr() string {
	if s.dnsSrv == nil {
		return ""
	}
	return s.dnsSrv.Addr()
}

// State returns the local replicated store.
func (s *Server) State() *fsm.Store { return s.fsm.State() }

// FSM returns the server's state machine, for tests comparing servers.
func (s *Server) FSM() *fsm.FSM { return s.fsm }

// IsLeader reports whether this server leads now.
func (s *Server) IsLeader() bool { return s.raft.State() == raft.Leader }

// WaitDNS waits until this server's DNS answers from a state that holds
// the change of raft index index to what it serves, or ctx ends. Without
// DNS it returns at once.
func (s *Server) WaitDNS(ctx context.Context, index uint64) error {
	if s.dnsSrc == nil {
		return nil
	}
	return s.dnsSrc.waitServes(ctx, index)
}

// Now returns the clock used to stamp commands.
func (s *Server) Now() time.Time { return s.now() }

// ReloadCertificates re-reads the CA and certificate files (on SIGHUP).
func (s *Server) ReloadCertificates() error {
	if err := s.certs.Reload(); err != nil {
		return err
	}
	s.warnCertNamesNoSite()
	return nil
}

// warnCertNamesNoSite logs, for a server in a site, that its certificate
// names no site: other sites refuse the DR plans it sends them.
func (s *Server) warnCertNamesNoSite() {
	if site := s.cfg.Site.Name; site != "" && *s.certs.certSite.Load() == "" {
		s.logger.Warn("the server certificate names no site: other sites refuse the DR plans this server sends them (docs/dr.md)",
			"cert_file", s.cfg.TLS.CertFile, "site", site, "fix", "moxxied tls cert create --server --site "+site)
	}
}

// Shutdown stops the server. With leave set and this server leading, it
// first hands leadership to another voter so writes pause only briefly.
func (s *Server) Shutdown(leave bool) error {
	var err error
	s.shutdownOnce.Do(func() {
		if leave && s.IsLeader() {
			if f := s.raft.LeadershipTransfer(); f.Error() != nil {
				s.logger.Warn("leadership transfer failed", "error", f.Error())
			} else {
				s.logger.Info("leadership transferred")
			}
		}
		close(s.shutdownCh)
		s.stopSite(leave)
		if s.dnsSrv != nil {
			if derr := s.dnsSrv.Stop(); derr != nil {
				s.logger.Warn("stopping DNS failed", "error", derr)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.apiSrv.Shutdown(ctx)
		if s.metricsSrv != nil {
			_ = s.metricsSrv.Shutdown(ctx)
		}
		err = s.shutdownRaft()
		s.closeFwdClients()
		s.mux.close()
		_ = s.fwdSrv.Close()
		s.wg.Wait()
		if cerr := s.store.Close(); err == nil {
			err = cerr
		}
		tctx, tcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer tcancel()
		if terr := s.stopTracing(tctx); terr != nil {
			s.logger.Warn("flushing traces failed", "error", terr)
		}
	})
	return err
}

// raftShutdownTimeout bounds the wait for raft's goroutines to stop.
const raftShutdownTimeout = 15 * time.Second

// shutdownRaft stops raft and waits for it, at most raftShutdownTimeout.
// hashicorp/raft 1.7.3 can hang there: a pipelined replication blocked
// handing a request to its pipeline's decoder, which is blocked handing a
// response to raft's consumer that shutdown already stopped, so the
// pipeline's deferred Close never runs. Those goroutines touch neither the
// log store nor the FSM; past the bound the server goes on shutting down
// and leaves them, rather than never returning.
func (s *Server) shutdownRaft() error {
	done := make(chan error, 1)
	go func() { done <- s.raft.Shutdown().Error() }()
	select {
	case err := <-done:
		return err
	case <-time.After(raftShutdownTimeout):
		s.logger.Error("raft did not stop within the shutdown timeout; going on without it", "timeout", raftShutdownTimeout)
		return nil
	}
}

// newHCLogger adapts slog for raft's hclog.
func newHCLogger(l *slog.Logger, name, level string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.LevelFromString(level),
		Output:     slogWriter{l.With("component", name)},
		JSONFormat: false,
	})
}

// slogWriter turns hclog's lines into slog records.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	msg := string(p)
	lvl := slog.LevelInfo
	switch {
	case containsAny(msg, "[ERROR]"):
		lvl = slog.LevelError
	case containsAny(msg, "[WARN]"):
		lvl = slog.LevelWarn
	case containsAny(msg, "[DEBUG]", "[TRACE]"):
		lvl = slog.LevelDebug
	}
	w.l.Log(context.Background(), lvl, trimLine(msg))
	return len(p), nil
}

var _ io.Writer = slogWriter{}
