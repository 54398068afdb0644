// Package promtest checks metrics in tests: Check runs promtool on a
// scrape, Gather reads values out of a registry.
package promtest

import (
	"bytes"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Check runs `promtool check metrics` on body, a scrape in the Prometheus
// text format, and fails t with what it reports. Without promtool it
// skips t (apt-get install prometheus provides it; CI installs it).
func Check(t testing.TB, body []byte) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool missing: apt-get install prometheus")
	}
	cmd := exec.Command(bin, "check", "metrics") // #nosec G204 -- bin is promtool as found on PATH by the test
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// Values returns the values of the metric called name that g gathers, by
// its labels formatted as name=value pairs joined by "," in label order
// ("" without labels). A histogram's value is its sample count.
func Values(t testing.TB, g prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			parts := make([]string, 0, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				parts = append(parts, fmt.Sprintf("%s=%s", l.GetName(), l.GetValue()))
			}
			var v float64
			switch {
			case m.Gauge != nil:
				v = m.Gauge.GetValue()
			case m.Counter != nil:
				v = m.Counter.GetValue()
			case m.Histogram != nil:
				v = float64(m.Histogram.GetSampleCount())
			case m.Untyped != nil:
				v = m.Untyped.GetValue()
			}
			out[strings.Join(parts, ",")] = v
		}
	}
	return out
}

// Value returns the value of the series of name with labels (name=value
// pairs joined by ","), failing t when there is none.
func Value(t testing.TB, g prometheus.Gatherer, name, labels string) float64 {
	t.Helper()
	vals := Values(t, g, name)
	v, ok := vals[labels]
	if !ok {
		keys := make([]string, 0, len(vals))
		for k := range vals {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		t.Fatalf("no series %s{%s}; have %q", name, labels, keys)
	}
	return v
}
