package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Targets from the write throughput issue, checked by report.
const (
	// targetP99 is the p99 latency a Moxxie run must stay under.
	targetP99 = 100 * time.Millisecond
	// targetRatio is the minimum of Moxxie writes/s over etcd puts/s.
	targetRatio = 1.0
)

func reportCmd(stdout, stderr io.Writer, args []string) error {
	fs := newFlagSet("report", stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: moxxiebench report RESULT.json...\n\nPrints a table of write and etcd results (saved with --out) and checks\nMoxxie against the targets: writes/s >= the first etcd result, p99 < %v.\n", targetP99)
	}
	if err := parseFlags(fs, args, true); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	var rs []Result
	for _, path := range fs.Args() {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		rs = append(rs, r)
	}
	printReport(stdout, rs)
	return nil
}

// printReport prints a comparison table of rs, then checks every Moxxie run
// against the targets. A run is compared with the etcd run listed last
// before it (the same round of the script), or the first etcd run if none
// precedes it.
func printReport(w io.Writer, rs []Result) {
	bases := make([]*Result, len(rs))
	for i, b := range baselines(rs) {
		if b >= 0 {
			bases[i] = &rs[b]
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tclients\twrites/s\tp50\tp90\tp99\tmax\terrors\tvs etcd\tserver cpu/write\tother load\t")
	for i, r := range rs {
		vs := "-"
		if b := bases[i]; b != nil && b.WritesPerSecond > 0 {
			vs = fmt.Sprintf("%.2fx", r.WritesPerSecond/b.WritesPerSecond)
		}
		cpu, other := "-", "-"
		if c := r.CPU; c != nil {
			if len(c.ServerSeconds) > 0 {
				cpu = fmt.Sprintf("%.0fµs", c.MicrosPerWrite)
			}
			other = fmt.Sprintf("%.0f%%", c.OtherPercent)
		}
		l := r.Latency
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t\n", r.Label, r.Clients, r.WritesPerSecond,
			fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P99), fmtMS(l.Max), sumCounts(r.Errors), vs, cpu, other)
	}
	tw.Flush()
	fmt.Fprintln(w, "(server cpu/write: CPU time of the server processes per successful write; other load: share of the")
	fmt.Fprintln(w, "machine used by neither the servers nor moxxiebench during the run, which makes a run noisy)")
	for _, r := range rs {
		if len(r.Errors) > 0 {
			fmt.Fprintf(w, "errors of %s: %s\n", r.Label, formatCounts(r.Errors))
		}
	}
	fmt.Fprintln(w)
	for i, r := range rs {
		if r.System != "moxxie" {
			continue
		}
		p99 := time.Duration(r.Latency.P99 * float64(time.Millisecond))
		fmt.Fprintf(w, "%s: p99 %s < %v: %s", r.Label, fmtMS(r.Latency.P99), targetP99, verdict(p99 < targetP99 && r.OK > 0))
		if b := bases[i]; b != nil && b.WritesPerSecond > 0 {
			ratio := r.WritesPerSecond / b.WritesPerSecond
			fmt.Fprintf(w, "; %.0f writes/s >= %s %.0f: %s (%.2fx)", r.WritesPerSecond, b.Label, b.WritesPerSecond, verdict(ratio >= targetRatio), ratio)
		}
		fmt.Fprintln(w)
	}
}

// baselines returns, for each result, the index of the etcd result it is
// compared with: the last one before it, else the first one, else -1.
func baselines(rs []Result) []int {
	first := slices.IndexFunc(rs, func(r Result) bool { return r.System == "etcd" })
	out := make([]int, len(rs))
	last := first
	for i, r := range rs {
		if r.System == "etcd" {
			last = i
		}
		out[i] = last
	}
	return out
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// formatCounts prints error counts as "503: 12, timeout: 3", or "none".
func formatCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func portsCmd(stdout, stderr io.Writer, args []string) error {
	fs := newFlagSet("ports", stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: moxxiebench ports N\n\nPrints N distinct free TCP ports on 127.0.0.1, one per line.\n")
	}
	if err := parseFlags(fs, args, true); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	n, err := strconv.Atoi(fs.Arg(0))
	if err != nil || n < 1 || n > 1000 {
		return errors.New("the number of ports must be between 1 and 1000")
	}
	ports, err := freePorts(n)
	if err != nil {
		return err
	}
	for _, p := range ports {
		fmt.Fprintln(stdout, p)
	}
	return nil
}

// freePorts asks the kernel for n distinct free loopback ports, holding all
// of them open until it has n so none is returned twice.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}
