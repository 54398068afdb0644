package node

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/quota"
	"github.com/moxxie/moxxie/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

// serverMetrics are one server's metrics, in its own registry (see the
// telemetry package for why not the default one). Counters are counted
// where things happen; gauges of raft and of the state are read at scrape
// time by collectors (raftCollector, stateCollector).
type serverMetrics struct {
	reg *prometheus.Registry

	// applyDuration times a write on the leader from its proposal to its
	// result (Server.Apply).
	applyDuration prometheus.Histogram
	// applies and applyErrors count the commands the FSM applied and
	// rejected, by message type, resolved once per type.
	applies, applyErrors [256]prometheus.Counter
	applyVec, errorVec   *prometheus.CounterVec
	// snapshots counts the snapshots written to the snapshot store.
	snapshots atomic.Uint64

	// Inventory sync (the leader's loop).
	syncRuns     *prometheus.CounterVec
	syncChanges  prometheus.Counter
	syncDuration prometheus.Histogram

	// Calls to the provider, by operation.
	providerRequests *prometheus.CounterVec
	providerDuration *prometheus.HistogramVec
}

func newServerMetrics() *serverMetrics {
	m := &serverMetrics{reg: telemetry.NewRegistry()}
	f := promautoWith(m.reg)
	m.applyDuration = f.histogram(prometheus.HistogramOpts{
		Namespace: telemetry.Namespace, Subsystem: "raft", Name: "apply_duration_seconds",
		Help:    "Time a write takes on the leader from its proposal to raft until the FSM's result, batching wait included.",
		Buckets: telemetry.LatencyBuckets,
	})
	m.applyVec = f.counterVec(prometheus.CounterOpts{
		Namespace: telemetry.Namespace, Subsystem: "fsm", Name: "applies_total",
		Help: "Commands applied by this server's FSM, by message type; rejected ones included.",
	}, "type")
	m.errorVec = f.counterVec(prometheus.CounterOpts{
		Namespace: telemetry.Namespace, Subsystem: "fsm", Name: "apply_errors_total",
		Help: "Commands this server's FSM rejected (the command's error, such as a conflict or an exhausted prefix), by message type.",
	}, "type")
	for _, t := range fsm.MessageTypes() {
		if t == fsm.BatchType {
			continue // never applied as itself
		}
		m.applies[t] = m.applyVec.WithLabelValues(t.String())
		m.applyErrors[t] = m.errorVec.WithLabelValues(t.String())
	}
	m.syncRuns = f.counterVec(prometheus.CounterOpts{
		Namespace: telemetry.Namespace, Subsystem: "inventory", Name: "syncs_total",
		Help: "Inventory sync cycles run by the leader, by result (ok, error).",
	}, "result")
	m.syncChanges = f.counter(prometheus.CounterOpts{
		Namespace: telemetry.Namespace, Subsystem: "inventory", Name: "changes_total",
		Help: "Inventory objects written by sync: changed, new or gone.",
	})
	m.syncDuration = f.histogram(prometheus.HistogramOpts{
		Namespace: telemetry.Namespace, Subsystem: "inventory", Name: "sync_duration_seconds",
		Help:    "Wall time of one inventory sync cycle.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
	})
	m.providerRequests = f.counterVec(prometheus.CounterOpts{
		Namespace: telemetry.Namespace, Subsystem: "provider", Name: "requests_total",
		Help: "Calls to the virtualization platform, by operation (such as inventory or start_guest) and result (ok, error).",
	}, "op", "result")
	m.providerDuration = f.histogramVec(prometheus.HistogramOpts{
		Namespace: telemetry.Namespace, Subsystem: "provider", Name: "request_duration_seconds",
		Help:    "Time a call to the virtualization platform takes, by operation; wait_task lasts as long as the task.",
		Buckets: telemetry.LatencyBuckets,
	}, "op")
	return m
}

// promautoFactory registers what it makes in one registry.
type promautoFactory struct{ reg prometheus.Registerer }

func promautoWith(reg prometheus.Registerer) promautoFactory { return promautoFactory{reg} }

func (f promautoFactory) counter(o prometheus.CounterOpts) prometheus.Counter {
	c := prometheus.NewCounter(o)
	f.reg.MustRegister(c)
	return c
}

func (f promautoFactory) counterVec(o prometheus.CounterOpts, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(o, labels)
	f.reg.MustRegister(c)
	return c
}

func (f promautoFactory) histogram(o prometheus.HistogramOpts) prometheus.Histogram {
	h := prometheus.NewHistogram(o)
	f.reg.MustRegister(h)
	return h
}

func (f promautoFactory) histogramVec(o prometheus.HistogramOpts, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(o, labels)
	f.reg.MustRegister(h)
	return h
}

// onApply counts one command the FSM applied; it runs on the FSM's
// goroutine and only increments counters.
func (m *serverMetrics) onApply(t fsm.MessageType, r *fsm.Result) {
	c, e := m.applies[t], m.applyErrors[t]
	if c == nil {
		c, e = m.applyVec.WithLabelValues(t.String()), m.errorVec.WithLabelValues(t.String())
	}
	c.Inc()
	if r.Err != nil {
		e.Inc()
	}
}

// observeApply records a write's time since start.
func (m *serverMetrics) observeApply(start time.Time) {
	m.applyDuration.Observe(time.Since(start).Seconds())
}

// Descriptions of the raft metrics.
var (
	raftStateDesc = telemetry.NewDesc("raft", "state",
		"1 for the raft state this server is in (leader, follower, candidate or shutdown), 0 for the others.", "state")
	raftLeaderDesc = telemetry.NewDesc("raft", "leader", "1 while this server is the raft leader, 0 otherwise.")
	raftTermDesc   = telemetry.NewDesc("raft", "term", "The raft term this server is in.")
	raftCommitDesc = telemetry.NewDesc("raft", "commit_index",
		"The highest raft log index this server knows to be committed.")
	raftAppliedDesc = telemetry.NewDesc("raft", "applied_index",
		"The highest raft log index this server's FSM has applied.")
	raftContactDesc = telemetry.NewDesc("raft", "last_contact_seconds",
		"Seconds since this server last heard from the leader; 0 on the leader, absent before the first contact.")
	raftSnapshotsDesc = telemetry.NewDesc("raft", "snapshots_total",
		"Snapshots written to this server's snapshot store: taken of its FSM or received from the leader.")
	raftPeersDesc = telemetry.NewDesc("raft", "peers",
		"Voting servers in the latest raft configuration, this one included.")
	raftProposalsDesc = telemetry.NewDesc("raft", "proposals_total",
		"Raft log entries this server proposed as leader; each carries one write or a batch of them.")
	raftProposedDesc = telemetry.NewDesc("raft", "proposed_writes_total",
		"Writes this server proposed as leader, whether alone or batched into one entry.")
)

// raftStates are the values of moxxie_raft_state's state label.
var raftStates = [...]raft.RaftState{raft.Leader, raft.Follower, raft.Candidate, raft.Shutdown}

// raftCollector reads the server's raft state at scrape time.
func raftCollector(s *Server) prometheus.Collector {
	return telemetry.NewCollector(func(ch chan<- prometheus.Metric) {
		r := s.raft
		if r == nil {
			return
		}
		state := r.State()
		for _, st := range raftStates {
			telemetry.Gauge(ch, raftStateDesc, telemetry.Bool(st == state), strings.ToLower(st.String()))
		}
		telemetry.Gauge(ch, raftLeaderDesc, telemetry.Bool(state == raft.Leader))
		telemetry.Gauge(ch, raftTermDesc, float64(r.CurrentTerm()))
		telemetry.Gauge(ch, raftCommitDesc, float64(r.CommitIndex()))
		telemetry.Gauge(ch, raftAppliedDesc, float64(r.AppliedIndex()))
		if state == raft.Leader {
			telemetry.Gauge(ch, raftContactDesc, 0)
		} else if last := r.LastContact(); !last.IsZero() {
			telemetry.Gauge(ch, raftContactDesc, time.Since(last).Seconds())
		}
		telemetry.Counter(ch, raftSnapshotsDesc, float64(s.metrics.snapshots.Load()))
		voters := 0
		if f := r.GetConfiguration(); f.Error() == nil {
			for _, srv := range f.Configuration().Servers {
				if srv.Suffrage == raft.Voter {
					voters++
				}
			}
		}
		telemetry.Gauge(ch, raftPeersDesc, float64(voters))
		telemetry.Counter(ch, raftProposalsDesc, float64(s.proposals.Load()))
		telemetry.Counter(ch, raftProposedDesc, float64(s.proposed.Load()))
	}, raftStateDesc, raftLeaderDesc, raftTermDesc, raftCommitDesc, raftAppliedDesc, raftContactDesc,
		raftSnapshotsDesc, raftPeersDesc, raftProposalsDesc, raftProposedDesc)
}

// Descriptions of the metrics read from the replicated state.
var (
	prefixUtilDesc = telemetry.NewDesc("ipam", "prefix_utilization_ratio",
		"Share of a prefix in use, 0 to 1: allocated, reserved, ranged and quarantined addresses of an active prefix, child blocks of a container.",
		"prefix_id", "prefix", "vrf")
	poolUtilDesc = telemetry.NewDesc("ipam", "pool_utilization_ratio",
		"Share of a VLAN or VNI pool's IDs allocated, 0 to 1.", "pool_id", "pool", "kind")
	addressesDesc = telemetry.NewDesc("ipam", "addresses",
		"IP addresses by status: active, reserved or deprecated, and quarantined ones (released, held before reuse).", "status")
	quotaUsageDesc = telemetry.NewDesc("quota", "usage",
		"What a tenant, or a project (scope tenant/project), holds of a quota resource.", "scope", "resource")
	quotaLimitDesc = telemetry.NewDesc("quota", "limit",
		"A tenant's or project's quota limit of a resource; resources without a limit are absent.", "scope", "resource")
	invLagDesc = telemetry.NewDesc("inventory", "sync_lag_seconds",
		"Seconds since an inventory sync last reached the platform; absent before the first.")
	invObjectsDesc = telemetry.NewDesc("inventory", "objects",
		"Inventory objects by kind (node, guest, storage) and state: present on the platform, or gone from it.", "kind", "state")
	invStaleDesc = telemetry.NewDesc("inventory", "stale",
		"1 while the platform cannot be read and the inventory is as last seen.")
	sdnCommittedDesc = telemetry.NewDesc("sdn", "committed_version",
		"The newest SDN version every host committed; 0 before the first.")
	sdnHostsDesc = telemetry.NewDesc("sdn", "hosts",
		"Enrolled SDN hosts by state: applied (holding their target version), failed (their last report failed) or pending.", "state")
	sdnRolloutsDesc = telemetry.NewDesc("sdn", "rollouts_total",
		"SDN rollouts that ended, by phase: committed or aborted.", "phase")
	sdnPreparingDesc = telemetry.NewDesc("sdn", "rollout_in_progress",
		"1 while an SDN rollout is preparing, 0 otherwise.")
	storagePoolUsedDesc = telemetry.NewDesc("storage", "pool_used_ratio",
		"Share of a storage pool in use, 0 to 1 (a shared storage once, a local one per node as node/storage).", "pool")
	storagePoolBytesDesc = telemetry.NewDesc("storage", "pool_size_bytes",
		"A storage pool's capacity in bytes.", "pool")
	policyLastSuccessDesc = telemetry.NewDesc("storage", "policy_last_success_timestamp_seconds",
		"When the newest run of a snapshot or backup policy finished, if it succeeded; absent otherwise. Alert on its age.", "policy", "kind")
	policySkippedDesc = telemetry.NewDesc("storage", "policy_skipped_slots_total",
		"Slots of a policy that did not run: found too late without repeat_missed, or covered by a catch-up run.", "policy", "kind")
	auditLengthDesc = telemetry.NewDesc("audit", "chain_length",
		"Entries appended to the audit chain since it began (its head's sequence number), truncated ones included.")
)

// stateCollector reads the replicated state at scrape time, in one read
// transaction (fsm.Store.StateMetrics). now is the clock of the
// inventory sync lag.
func stateCollector(state func() *fsm.Store, now func() time.Time, logger *slog.Logger) prometheus.Collector {
	return telemetry.NewCollector(func(ch chan<- prometheus.Metric) {
		m, err := state().StateMetrics()
		if err != nil {
			logger.Warn("reading the state for metrics failed", "error", err)
			return
		}
		collectState(ch, m, now())
	}, prefixUtilDesc, poolUtilDesc, addressesDesc, quotaUsageDesc, quotaLimitDesc, invLagDesc, invObjectsDesc,
		invStaleDesc, sdnCommittedDesc, sdnHostsDesc, sdnRolloutsDesc, sdnPreparingDesc, auditLengthDesc,
		storagePoolUsedDesc, storagePoolBytesDesc, policyLastSuccessDesc, policySkippedDesc)
}

func ratio(used, size float64) float64 {
	if size <= 0 {
		return 0
	}
	return used / size
}

func collectState(ch chan<- prometheus.Metric, m *fsm.StateMetrics, now time.Time) {
	for _, p := range m.Prefixes {
		telemetry.Gauge(ch, prefixUtilDesc, ratio(p.Used, p.Size), p.ID, p.Prefix, p.VRF)
	}
	for _, p := range m.Pools {
		telemetry.Gauge(ch, poolUtilDesc, ratio(p.Used, p.Size), p.ID, p.Name, p.Kind)
	}
	for st, n := range m.Addresses {
		telemetry.Gauge(ch, addressesDesc, float64(n), st)
	}
	for _, sc := range m.Scopes {
		for _, r := range quota.Resources {
			lim, limited := sc.Limits[r]
			use := sc.Usage[r]
			if limited {
				telemetry.Gauge(ch, quotaLimitDesc, float64(lim), sc.Scope, string(r))
			}
			if limited || use != 0 {
				telemetry.Gauge(ch, quotaUsageDesc, float64(use), sc.Scope, string(r))
			}
		}
	}
	if m.InventoryLastSync != 0 {
		lag := now.Sub(time.Unix(0, int64(m.InventoryLastSync))).Seconds()
		telemetry.Gauge(ch, invLagDesc, max(lag, 0))
	}
	for _, k := range []struct {
		kind string
		pg   fsm.PresentGone
	}{{"node", m.Nodes}, {"guest", m.Guests}, {"storage", m.Storage}} {
		telemetry.Gauge(ch, invObjectsDesc, float64(k.pg.Present), k.kind, "present")
		telemetry.Gauge(ch, invObjectsDesc, float64(k.pg.Gone), k.kind, "gone")
	}
	telemetry.Gauge(ch, invStaleDesc, telemetry.Bool(m.InventoryStale))
	telemetry.Gauge(ch, sdnCommittedDesc, float64(m.SDNCommitted))
	for st, n := range m.SDNHosts {
		telemetry.Gauge(ch, sdnHostsDesc, float64(n), st)
	}
	for _, ph := range []string{fsm.SDNPhaseCommitted, fsm.SDNPhaseAborted} {
		telemetry.Counter(ch, sdnRolloutsDesc, float64(m.SDNRollouts[ph]), ph)
	}
	telemetry.Gauge(ch, sdnPreparingDesc, telemetry.Bool(m.SDNRollouts[fsm.SDNPhasePreparing] > 0))
	telemetry.Gauge(ch, auditLengthDesc, float64(m.AuditSeq))
	for _, p := range m.StoragePools {
		telemetry.Gauge(ch, storagePoolUsedDesc, ratio(p.Used, p.Total), p.ID)
		telemetry.Gauge(ch, storagePoolBytesDesc, p.Total, p.ID)
	}
	for _, p := range m.Policies {
		if p.LastSuccess != 0 {
			telemetry.Gauge(ch, policyLastSuccessDesc, float64(p.LastSuccess)/1e9, p.ID, p.Kind)
		}
		telemetry.Counter(ch, policySkippedDesc, float64(p.Skipped), p.ID, p.Kind)
	}
}

// countingSnapshots counts the snapshots its store completes.
type countingSnapshots struct {
	raft.SnapshotStore
	n *atomic.Uint64
}

// Create starts a snapshot whose successful Close is counted.
func (c countingSnapshots) Create(v raft.SnapshotVersion, index, term uint64, cfg raft.Configuration, cfgIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := c.SnapshotStore.Create(v, index, term, cfg, cfgIndex, trans)
	if err != nil {
		return nil, err
	}
	return &countingSink{SnapshotSink: sink, n: c.n}, nil
}

type countingSink struct {
	raft.SnapshotSink
	n      *atomic.Uint64
	closed bool // the FSM's Persist and raft both close the sink
}

// Close completes the snapshot and counts it, once.
func (s *countingSink) Close() error {
	err := s.SnapshotSink.Close()
	if err == nil && !s.closed {
		s.closed = true
		s.n.Add(1)
	}
	return err
}

// MetricsRegistry returns the registry of this server's own metrics.
func (s *Server) MetricsRegistry() *prometheus.Registry { return s.metrics.reg }

// MetricsAddr returns the host:port of the plain metrics listener (the
// port it got when metrics_address asked for port 0), or "" when it is
// off.
func (s *Server) MetricsAddr() string {
	if s.metricsLn == nil {
		return ""
	}
	return advertised(s.cfg.MetricsAddress, s.metricsLn.Addr())
}

// metricsOnly serves GET /metrics and nothing else: the plain listener
// is for a trusted scrape network, not for the API.
func metricsOnly(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	return mux
}

// serveMetrics starts the plain metrics listener of metrics_address.
func (s *Server) serveMetrics(ln net.Listener) {
	errLog := slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn)
	s.metricsLn = ln
	s.metricsSrv = newHTTPServer(metricsOnly(telemetry.Handler(s.metrics.reg)), errLog)
	s.goRun(func() {
		if err := s.metricsSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.logger.Error("metrics listener failed", "error", err)
		}
	})
}
