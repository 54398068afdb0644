package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// loadFlags are the flags shared by the write and etcd commands.
type loadFlags struct {
	clients      int
	duration     time.Duration
	warmup       time.Duration
	valueSize    int
	keys         int
	timeout      time.Duration
	readyTimeout time.Duration
	label        string
	json         bool
	out          string
	cpuPIDs      string
}

func (f *loadFlags) register(fs *flag.FlagSet) {
	f.registerLoad(fs)
	fs.IntVar(&f.valueSize, "value-size", 64, "bytes per value")
	fs.IntVar(&f.keys, "keys", 10000, "size of the key space; consecutive writes use consecutive keys")
}

// registerLoad registers the flags of every load command, without the
// key-value flags of write and etcd (--value-size, --keys): those keep
// the values f already holds.
func (f *loadFlags) registerLoad(fs *flag.FlagSet) {
	fs.IntVar(&f.clients, "clients", 64, "concurrent clients, each one goroutine issuing one request at a time")
	fs.DurationVar(&f.duration, "duration", 20*time.Second, "measured duration")
	fs.DurationVar(&f.warmup, "warmup", 2*time.Second, "unmeasured load before the measurement (connections, caches)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "timeout of one request")
	fs.DurationVar(&f.readyTimeout, "ready-timeout", 60*time.Second, "how long to wait for the cluster to be ready before starting")
	fs.StringVar(&f.label, "label", "", "name of the run in reports (default: system and target)")
	fs.BoolVar(&f.json, "json", false, "print the result as JSON instead of text")
	fs.StringVar(&f.out, "out", "", "also write the JSON result to this file")
	fs.StringVar(&f.cpuPIDs, "cpu-pids", "", "comma-separated pids of the servers; report the CPU time they use per write")
}

func (f *loadFlags) validate() error {
	switch {
	case f.clients < 1 || f.clients > 4096:
		return errors.New("--clients must be between 1 and 4096")
	case f.duration <= 0 || f.duration > time.Hour:
		return errors.New("--duration must be positive and at most 1h")
	case f.warmup < 0 || f.warmup > 10*time.Minute:
		return errors.New("--warmup must be between 0 and 10m")
	case f.valueSize < 0 || f.valueSize > 1<<20:
		return errors.New("--value-size must be between 0 and 1048576")
	case f.keys < 1:
		return errors.New("--keys must be positive")
	case f.timeout <= 0:
		return errors.New("--timeout must be positive")
	}
	_, err := parsePIDs(f.cpuPIDs)
	if err != nil {
		return fmt.Errorf("--cpu-pids: %w", err)
	}
	return nil
}

func (f *loadFlags) config() loadConfig {
	pids, _ := parsePIDs(f.cpuPIDs) // checked by validate
	return loadConfig{Clients: f.clients, Warmup: f.warmup, Duration: f.duration, CPUPIDs: pids}
}

// fill copies the run parameters into r.
func (f *loadFlags) fill(r *Result) {
	r.ValueSize, r.Keys = f.valueSize, f.keys
	if f.label != "" {
		r.Label = f.label
	}
}

// emit prints r as text or JSON and saves it with --out.
func (f *loadFlags) emit(stdout io.Writer, r Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if f.out != "" {
		if err := os.WriteFile(f.out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if f.json {
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	printResult(stdout, r)
	return nil
}

// keyName returns the key of write number seq in a key space of n keys.
func keyName(seq uint64, n int) string {
	return fmt.Sprintf("bench-%07d", seq%uint64(n))
}

func writeCmd(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := newFlagSet("write", stderr)
	var lf loadFlags
	lf.register(fs)
	addr := fs.String("addr", os.Getenv("MOXXIE_ADDR"), "comma-separated API base URLs (default $MOXXIE_ADDR)")
	token := fs.String("token", os.Getenv("MOXXIE_TOKEN"), "bearer token (default $MOXXIE_TOKEN)")
	cacert := fs.String("cacert", os.Getenv("MOXXIE_CACERT"), "cluster CA certificate (default $MOXXIE_CACERT)")
	target := fs.String("target", "all", "all: spread clients round-robin over --addr (followers forward); leader: send every write to the leader found by /v1/status")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: moxxiebench write --addr URLs --token T --cacert F [flags]\n\nConcurrent durable writes: PUT /v1/cluster/settings/{key} {\"value\": ...}.\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if err := lf.validate(); err != nil {
		return err
	}
	addrs := splitList(*addr)
	if len(addrs) == 0 {
		return errors.New("--addr (or $MOXXIE_ADDR) is required")
	}
	if *target != "all" && *target != "leader" {
		return fmt.Errorf("--target must be all or leader, not %q", *target)
	}
	tr, err := newTransport(*cacert, lf.clients)
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	api := &moxxieAPI{client: hc, token: *token, timeout: lf.timeout}

	fmt.Fprintf(stderr, "waiting for a leader (up to %v)\n", lf.readyTimeout)
	st, err := api.waitLeader(ctx, addrs, lf.readyTimeout)
	if err != nil {
		return err
	}
	endpoints := addrs
	if *target == "leader" {
		la, err := leaderAddr(st)
		if err != nil {
			return err
		}
		endpoints = []string{la}
	}

	body, err := json.Marshal(map[string]string{"value": valueOf(lf.valueSize)})
	if err != nil {
		return err
	}
	prefixes := make([]string, lf.clients)
	for c := range prefixes {
		prefixes[c] = endpoints[c%len(endpoints)] + "/v1/cluster/settings/"
	}
	do := func(ctx context.Context, c int, seq uint64) outcome {
		o, _ := send(ctx, hc, http.MethodPut, prefixes[c]+keyName(seq, lf.keys), *token, body, lf.timeout, http.StatusOK)
		return o
	}
	fmt.Fprintf(stderr, "moxxie write: %d clients, target %s (%s), %v warm-up + %v\n",
		lf.clients, *target, strings.Join(endpoints, ","), lf.warmup, lf.duration)
	started := time.Now()
	lr := runLoad(ctx, lf.config(), do)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	r := newResult(lf.config(), lr)
	r.System, r.Target, r.Endpoints, r.Label = "moxxie", *target, endpoints, "moxxie --target "+*target
	r.Started = started.UTC().Format(time.RFC3339)
	lf.fill(&r)
	return lf.emit(stdout, r)
}

// printResult prints r as text.
func printResult(w io.Writer, r Result) {
	per := "write"
	if r.Count > 0 {
		per = "request"
		fmt.Fprintf(w, "%s: %d clients, %d addresses per request from %s in VRF %s, %s\n", r.Label, r.Clients, r.Count, r.Prefix, r.VRF, strings.Join(r.Endpoints, ","))
		fmt.Fprintf(w, "  allocations: %d ok in %.2fs = %.0f requests/s, %.0f addresses/s\n", r.OK, r.DurationSeconds, r.WritesPerSecond, r.AddressesPerSecond)
	} else {
		fmt.Fprintf(w, "%s: %d clients, %d-byte values, %d keys, %s\n", r.Label, r.Clients, r.ValueSize, r.Keys, strings.Join(r.Endpoints, ","))
		fmt.Fprintf(w, "  writes:  %d ok in %.2fs = %.0f writes/s\n", r.OK, r.DurationSeconds, r.WritesPerSecond)
	}
	l := r.Latency
	fmt.Fprintf(w, "  latency: p50 %s  p90 %s  p99 %s  max %s  (mean %s, min %s)\n",
		fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P99), fmtMS(l.Max), fmtMS(l.Mean), fmtMS(l.Min))
	if c := r.CPU; c != nil {
		if len(c.ServerSeconds) > 0 {
			fmt.Fprintf(w, "  cpu:     servers %.1fs (%.0f%% of the machine), %.0fµs and %.1f minor page faults per %s; moxxiebench %.1fs; machine %.0f%% busy (%.0f%% other load)\n",
				c.ServersTotalSeconds, c.ServersPercentOfMachine, c.MicrosPerWrite, c.MinorFaultsPerWrite, per, c.ClientSeconds, c.MachineBusyPercent, c.OtherPercent)
		} else {
			fmt.Fprintf(w, "  cpu:     moxxiebench %.1fs; machine %.0f%% busy\n", c.ClientSeconds, c.MachineBusyPercent)
		}
	}
	fmt.Fprintf(w, "  errors:  %s\n", formatCounts(r.Errors))
	if len(r.WarmupErrors) > 0 {
		fmt.Fprintf(w, "  warm-up errors: %s\n", formatCounts(r.WarmupErrors))
	}
	for _, k := range sortedKeys(r.ErrorSamples) {
		fmt.Fprintf(w, "  first %s: %s\n", k, r.ErrorSamples[k])
	}
}
