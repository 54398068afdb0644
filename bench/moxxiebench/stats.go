package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the p-th percentile (0-100) of sorted, which must be in
// ascending order, by the nearest-rank method: the smallest sample that is
// greater than or equal to p percent of the samples. It returns 0 for no
// samples, the minimum for p <= 0 and the maximum for p >= 100.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	switch {
	case n == 0:
		return 0
	case p <= 0:
		return sorted[0]
	case p >= 100:
		return sorted[n-1]
	}
	// p*n first keeps integer products exact (99*200 = 19800); the small
	// epsilon absorbs the rounding of fractional percentiles like 99.9.
	rank := int(math.Ceil(p*float64(n)/100 - 1e-9))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// Summary describes a latency distribution. Durations are in milliseconds in
// JSON.
type Summary struct {
	Count int     `json:"count"`
	Min   float64 `json:"min_ms"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// summarize sorts samples in place and returns their distribution.
func summarize(samples []time.Duration) Summary {
	slices.Sort(samples)
	s := Summary{Count: len(samples)}
	if len(samples) == 0 {
		return s
	}
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	s.Min = ms(samples[0])
	s.Mean = ms(sum / time.Duration(len(samples)))
	s.P50 = ms(percentile(samples, 50))
	s.P90 = ms(percentile(samples, 90))
	s.P99 = ms(percentile(samples, 99))
	s.Max = ms(samples[len(samples)-1])
	return s
}

// ms converts d to fractional milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fmtMS formats a duration given in milliseconds for a table: "0.84ms",
// "12.3ms", "1.234s".
func fmtMS(v float64) string {
	d := time.Duration(v * float64(time.Millisecond))
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(10 * time.Microsecond).String()
	}
}
