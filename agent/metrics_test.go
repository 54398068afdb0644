package agent

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/moxxie/moxxie/sdn"
	"github.com/moxxie/moxxie/telemetry"
	"github.com/moxxie/moxxie/telemetry/promtest"
)

func TestMetrics_CountPassesDriftAndVersion(t *testing.T) {
	reg := telemetry.NewRegistry()
	srv, k := newFakeServer(), &fakeKernel{}
	srv.assign(Assignment{Version: 1, Plan: sdn.Plan{Host: "h1", Version: 1}})
	startRunner(t, srv, k, func(c *Config) { c.Metrics = NewMetrics(reg) })
	nextReport(t, srv)
	if v := promtest.Value(t, reg, "moxxie_agent_applies_total", "result=ok"); v != 1 {
		t.Errorf("ok applies %v", v)
	}
	if v := promtest.Value(t, reg, "moxxie_agent_plan_version", ""); v != 1 {
		t.Errorf("plan version %v", v)
	}
	if v := promtest.Value(t, reg, "moxxie_agent_last_apply_success_timestamp_seconds", ""); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success %v", v)
	}

	// Drift once the agent watches the links.
	k.drift(t)
	nextReport(t, srv)
	if v := promtest.Value(t, reg, "moxxie_agent_drift_events_total", ""); v != 1 {
		t.Errorf("drift events %v", v)
	}

	k.mu.Lock()
	k.fail = errors.New("create v2: name taken")
	k.mu.Unlock()
	srv.assign(Assignment{Version: 2, Plan: sdn.Plan{Host: "h1", Version: 2}})
	nextReport(t, srv)
	if v := promtest.Value(t, reg, "moxxie_agent_applies_total", "result=error"); v != 1 {
		t.Errorf("failed applies %v", v)
	}
	if v := promtest.Value(t, reg, "moxxie_agent_plan_version", ""); v != 1 {
		t.Errorf("plan version after a failed pass %v, want 1 still", v)
	}
	if v := promtest.Value(t, reg, "moxxie_agent_apply_duration_seconds", ""); v != 3 {
		t.Errorf("timed passes %v, want 3", v)
	}

	// What the agent's --metrics-address serves passes promtool.
	ts := httptest.NewServer(telemetry.Handler(reg))
	defer ts.Close()
	resp, err := http.Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	promtest.Check(t, body)
}

func TestMetrics_NilCountsNothing(t *testing.T) {
	var m *Metrics
	m.applied(1, time.Millisecond, true)
	m.healed()
}
