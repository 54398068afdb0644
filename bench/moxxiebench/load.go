package main

import (
	"context"
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// loadConfig shapes a closed-loop load: Clients goroutines each issue one
// request at a time, back to back.
type loadConfig struct {
	// Clients is the number of concurrent clients.
	Clients int
	// Warmup runs the load without recording it, so connections are
	// established and caches warm before the measurement starts.
	Warmup time.Duration
	// Duration is the measured window after the warm-up.
	Duration time.Duration
	// CPUPIDs are processes (the servers under test) whose CPU time is
	// measured over the window, along with the machine's.
	CPUPIDs []int
}

// outcome is the result of one request: an empty Class on success,
// otherwise a short error class ("503", "timeout", ...) and an optional
// Detail such as the start of the response body.
type outcome struct {
	Class  string
	Detail string
}

// requestFunc performs request number seq (unique across clients, starting
// at 1) on behalf of client number client.
type requestFunc func(ctx context.Context, client int, seq uint64) outcome

// loadResult is what runLoad measured inside its window.
type loadResult struct {
	// Elapsed is the length of the measured window; shorter than the
	// configured duration when the run was interrupted.
	Elapsed time.Duration
	// OK counts successful requests that completed inside the window.
	OK int
	// Latencies holds the latency of each successful request counted in OK.
	Latencies []time.Duration
	// Errors counts failed requests that completed inside the window, by
	// class.
	Errors map[string]int
	// ErrorSamples holds the first detail seen for each error class,
	// including warm-up errors.
	ErrorSamples map[string]string
	// WarmupErrors counts failures during the warm-up, by class.
	WarmupErrors map[string]int
	// CPU is the CPU time used in the window; nil when interrupted.
	CPU *CPUUsage
}

// runLoad drives cfg.Clients goroutines calling do until the warm-up and the
// measured window have passed or ctx is done. Requests are counted when they
// complete inside the window, so rate = OK / Elapsed.
func runLoad(parent context.Context, cfg loadConfig, do requestFunc) loadResult {
	start := time.Now()
	from := start.Add(cfg.Warmup)
	until := from.Add(cfg.Duration)
	ctx, cancel := context.WithDeadline(parent, until)
	defer cancel()
	cpuFrom, cpuUntil := make(chan cpuSample, 1), make(chan cpuSample, 1)
	t1 := time.AfterFunc(time.Until(from), func() { cpuFrom <- takeCPUSample(cfg.CPUPIDs) })
	t2 := time.AfterFunc(time.Until(until), func() { cpuUntil <- takeCPUSample(cfg.CPUPIDs) })
	defer t1.Stop()
	defer t2.Stop()

	var seq atomic.Uint64
	type workerResult struct {
		lat     []time.Duration
		errs    map[string]int
		warm    map[string]int
		samples map[string]string
	}
	results := make([]workerResult, cfg.Clients)
	var wg sync.WaitGroup
	for c := 0; c < cfg.Clients; c++ {
		wg.Go(func() {
			r := workerResult{errs: map[string]int{}, warm: map[string]int{}, samples: map[string]string{}}
			for ctx.Err() == nil {
				t0 := time.Now()
				o := do(ctx, c, seq.Add(1))
				t1 := time.Now()
				if t1.After(until) {
					break
				}
				inWindow := !t1.Before(from)
				switch {
				case o.Class == "" && inWindow:
					r.lat = append(r.lat, t1.Sub(t0))
				case o.Class == "":
				case ctx.Err() != nil:
					// Cut short by the deadline or an interrupt: not a
					// server error.
				default:
					if _, ok := r.samples[o.Class]; !ok {
						r.samples[o.Class] = o.Detail
					}
					if inWindow {
						r.errs[o.Class]++
					} else {
						r.warm[o.Class]++
					}
				}
			}
			results[c] = r
		})
	}
	wg.Wait()

	end := time.Now()
	if end.After(until) {
		end = until
	}
	out := loadResult{Errors: map[string]int{}, ErrorSamples: map[string]string{}, WarmupErrors: map[string]int{}}
	if end.After(from) {
		out.Elapsed = end.Sub(from)
	}
	for _, r := range results {
		out.Latencies = append(out.Latencies, r.lat...)
		for k, v := range r.errs {
			out.Errors[k] += v
		}
		for k, v := range r.warm {
			out.WarmupErrors[k] += v
		}
		for k, v := range r.samples {
			if _, ok := out.ErrorSamples[k]; !ok {
				out.ErrorSamples[k] = v
			}
		}
	}
	out.OK = len(out.Latencies)
	if parent.Err() == nil {
		// Not interrupted: the workers ran until the window closed, so both
		// samples have been taken or are being taken.
		out.CPU = cpuUsage(<-cpuFrom, <-cpuUntil, out.OK)
	}
	return out
}

// Result is the outcome of a write, etcd or alloc run, as printed with --json and
// saved with --out.
type Result struct {
	// Label names the run in a report table.
	Label string `json:"label"`
	// System is "moxxie" or "etcd".
	System string `json:"system"`
	// Target is how writes were spread: "all" (clients spread round-robin
	// over the endpoints) or "leader".
	Target          string   `json:"target"`
	Endpoints       []string `json:"endpoints"`
	Clients         int      `json:"clients"`
	ValueSize       int      `json:"value_size"`
	Keys            int      `json:"keys"`
	WarmupSeconds   float64  `json:"warmup_seconds"`
	DurationSeconds float64  `json:"duration_seconds"`
	// OK is the number of successful writes in the measured window.
	OK int `json:"ok"`
	// WritesPerSecond is OK divided by the measured window.
	WritesPerSecond float64 `json:"writes_per_second"`
	// Latency is the distribution of successful writes.
	Latency      Summary           `json:"latency"`
	Errors       map[string]int    `json:"errors"`
	WarmupErrors map[string]int    `json:"warmup_errors,omitempty"`
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	// Count is the number of addresses each request allocates, in alloc
	// runs; 0 in write and etcd runs.
	Count int `json:"count,omitempty"`
	// AddressesPerSecond is OK times Count divided by the measured window,
	// in alloc runs.
	AddressesPerSecond float64 `json:"addresses_per_second,omitempty"`
	// Prefix is the prefix an alloc run allocated from, and its VRF.
	Prefix string `json:"prefix,omitempty"`
	VRF    string `json:"vrf,omitempty"`
	// Tenant is the tenant an alloc run allocated for, if any.
	Tenant string `json:"tenant,omitempty"`
	// DNSZone is the forward zone an alloc run named its addresses in, if
	// any.
	DNSZone string `json:"dns_zone,omitempty"`
	// CPU is the CPU time used by the servers and the machine during the
	// measured window.
	CPU *CPUUsage `json:"cpu,omitempty"`
	// Started is when the run began (RFC 3339).
	Started string `json:"started"`
}

// newResult fills a Result from a load run.
func newResult(cfg loadConfig, lr loadResult) Result {
	r := Result{
		Clients:         cfg.Clients,
		WarmupSeconds:   cfg.Warmup.Seconds(),
		DurationSeconds: lr.Elapsed.Seconds(),
		OK:              lr.OK,
		Latency:         summarize(lr.Latencies),
		Errors:          maps.Clone(lr.Errors),
		WarmupErrors:    maps.Clone(lr.WarmupErrors),
		ErrorSamples:    maps.Clone(lr.ErrorSamples),
		CPU:             lr.CPU,
	}
	if lr.Elapsed > 0 {
		r.WritesPerSecond = float64(lr.OK) / lr.Elapsed.Seconds()
	}
	if len(r.WarmupErrors) == 0 {
		r.WarmupErrors = nil
	}
	return r
}
