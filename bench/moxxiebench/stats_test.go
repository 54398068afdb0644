package main

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	seq := func(n int) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = time.Duration(i+1) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one p0", seq(1), 0, 1 * time.Millisecond},
		{"one p50", seq(1), 50, 1 * time.Millisecond},
		{"one p100", seq(1), 100, 1 * time.Millisecond},
		{"ten p50", seq(10), 50, 5 * time.Millisecond},
		{"ten p90", seq(10), 90, 9 * time.Millisecond},
		{"ten p99", seq(10), 99, 10 * time.Millisecond},
		{"twenty p50", seq(20), 50, 10 * time.Millisecond},
		{"twenty p90", seq(20), 90, 18 * time.Millisecond},
		{"twenty p99", seq(20), 99, 20 * time.Millisecond},
		{"hundred p99", seq(100), 99, 99 * time.Millisecond},
		{"thousand p99.9", seq(1000), 99.9, 999 * time.Millisecond},
		{"thousand p99", seq(1000), 99, 990 * time.Millisecond},
		{"below zero", seq(5), -1, 1 * time.Millisecond},
		{"above hundred", seq(5), 101, 5 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.in, tt.p); got != tt.want {
			t.Errorf("%s: percentile(p=%v) = %v, want %v", tt.name, tt.p, got, tt.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	in := []time.Duration{4 * time.Millisecond, 1 * time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond}
	s := summarize(in)
	want := Summary{Count: 4, Min: 1, Mean: 2.5, P50: 2, P90: 4, P99: 4, Max: 4}
	if s != want {
		t.Errorf("summarize = %+v, want %+v", s, want)
	}
	if in[0] != time.Millisecond || in[3] != 4*time.Millisecond {
		t.Errorf("summarize did not sort its input: %v", in)
	}
	if s := summarize(nil); s != (Summary{}) {
		t.Errorf("summarize(nil) = %+v, want zero", s)
	}
}

func TestFmtMS(t *testing.T) {
	tests := map[float64]string{
		0.8444: "840µs",
		12.34:  "12.3ms",
		1234.5: "1.235s",
	}
	for in, want := range tests {
		if got := fmtMS(in); got != want {
			t.Errorf("fmtMS(%v) = %q, want %q", in, got, want)
		}
	}
}
