package telemetry_test

import (
	"io"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/telemetry"
	"github.com/moxxie/moxxie/telemetry/promtest"
	"github.com/moxxie/moxxie/version"
	"github.com/prometheus/client_golang/prometheus"
)

func TestNewRegistry_BuildInfo(t *testing.T) {
	reg := telemetry.NewRegistry()
	vals := promtest.Values(t, reg, "moxxie_build_info")
	if len(vals) != 1 {
		t.Fatalf("build info %v", vals)
	}
	for labels, v := range vals {
		if v != 1 || !strings.Contains(labels, "go_version="+runtime.Version()) || !strings.Contains(labels, "version="+version.Version) {
			t.Fatalf("build info {%s} %v", labels, v)
		}
	}
}

func TestRegister_ReturnsTheCollectorRegisteredFirst(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "moxxie_test_things_total", Help: "Things."}
	first := telemetry.Register(reg, prometheus.NewCounterVec(opts, []string{"kind"}))
	second := telemetry.Register(reg, prometheus.NewCounterVec(opts, []string{"kind"}))
	if first != second {
		t.Fatal("a second registration made a second counter")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a conflicting registration did not panic")
		}
	}()
	telemetry.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "moxxie_test_things_total", Help: "Other."}, []string{"x"}))
}

func TestHandler_ServesRegistryAndProcess(t *testing.T) {
	reg := telemetry.NewRegistry()
	d := telemetry.NewDesc("test", "level", "A level.", "kind")
	reg.MustRegister(telemetry.NewCollector(func(ch chan<- prometheus.Metric) {
		telemetry.Gauge(ch, d, 0.5, "a")
		telemetry.Gauge(ch, d, telemetry.Bool(true), "b")
	}, d))
	rec := httptest.NewRecorder()
	telemetry.Handler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{`moxxie_test_level{kind="a"} 0.5`, `moxxie_test_level{kind="b"} 1`, "moxxie_build_info{", "go_goroutines "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("no %s in\n%s", want, body)
		}
	}
	promtest.Check(t, body)
}
