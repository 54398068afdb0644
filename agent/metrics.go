package agent

import (
	"time"

	"github.com/moxxie/moxxie/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the agent's metrics: how its passes over the kernel went
// and which plan version it holds. A nil *Metrics counts nothing.
type Metrics struct {
	applyDuration         prometheus.Histogram
	appliesOK, appliesErr prometheus.Counter
	drift                 prometheus.Counter
	planVersion           prometheus.Gauge
	lastSuccess           prometheus.Gauge
}

// NewMetrics returns the agent's metrics, registered in reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	applies := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: telemetry.Namespace, Subsystem: "agent", Name: "applies_total",
		Help: "Passes that made the kernel hold the plan (a new plan, a change of a managed link, the periodic resync), by result: ok, or error when applying failed or the kernel still differed after it.",
	}, []string{"result"})
	m := &Metrics{
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: telemetry.Namespace, Subsystem: "agent", Name: "apply_duration_seconds",
			Help:    "Time one pass took to apply the plan to the kernel (netlink and nftables), verification excluded.",
			Buckets: telemetry.LatencyBuckets,
		}),
		appliesOK:  applies.WithLabelValues("ok"),
		appliesErr: applies.WithLabelValues("error"),
		drift: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: telemetry.Namespace, Subsystem: "agent", Name: "drift_events_total",
			Help: "Passes that found the kernel drifted from the plan held (a managed link or rule changed or gone) and healed it.",
		}),
		planVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: telemetry.Namespace, Subsystem: "agent", Name: "plan_version",
			Help: "The SDN plan version the kernel last held after a successful pass; 0 before the first.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: telemetry.Namespace, Subsystem: "agent", Name: "last_apply_success_timestamp_seconds",
			Help: "When a pass last left the kernel holding the plan, in seconds since the Unix epoch; 0 before the first.",
		}),
	}
	reg.MustRegister(applies, m.applyDuration, m.drift, m.planVersion, m.lastSuccess)
	return m
}

// applied records a pass over version that took took and succeeded or not.
func (m *Metrics) applied(version uint64, took time.Duration, ok bool) {
	if m == nil {
		return
	}
	m.applyDuration.Observe(took.Seconds())
	if !ok {
		m.appliesErr.Inc()
		return
	}
	m.appliesOK.Inc()
	m.planVersion.Set(float64(version))
	m.lastSuccess.Set(float64(time.Now().UnixNano()) / 1e9)
}

// healed records drift that a pass healed.
func (m *Metrics) healed() {
	if m != nil {
		m.drift.Inc()
	}
}
