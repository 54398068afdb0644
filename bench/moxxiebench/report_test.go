package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestBaselines(t *testing.T) {
	m, e := Result{System: "moxxie"}, Result{System: "etcd"}
	tests := []struct {
		in   []Result
		want []int
	}{
		{nil, []int{}},
		{[]Result{m, m}, []int{-1, -1}},
		{[]Result{e, m, m}, []int{0, 0, 0}},
		{[]Result{m, e, m}, []int{1, 1, 1}},
		{[]Result{e, m, e, m}, []int{0, 0, 2, 2}},
	}
	for _, tt := range tests {
		if got := baselines(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("baselines(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestPrintReport(t *testing.T) {
	rs := []Result{
		{Label: "etcd", System: "etcd", Clients: 64, WritesPerSecond: 1000, Latency: Summary{P99: 50}},
		{Label: "fast", System: "moxxie", Clients: 64, WritesPerSecond: 1500, Latency: Summary{P99: 20}, OK: 1},
		{Label: "slow", System: "moxxie", Clients: 64, WritesPerSecond: 500, Latency: Summary{P99: 150}, OK: 1, Errors: map[string]int{"503": 2}},
	}
	var buf bytes.Buffer
	printReport(&buf, rs)
	out := buf.String()
	for _, want := range []string{
		"1.50x",
		"fast: p99 20ms < 100ms: met; 1500 writes/s >= etcd 1000: met (1.50x)",
		"slow: p99 150ms < 100ms: MISSED; 500 writes/s >= etcd 1000: MISSED (0.50x)",
		"errors of slow: 503: 2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
