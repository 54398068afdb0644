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
	// targetRatio is the minimum of Moxxie writes/s over etcd puts/s; it
	// applies to single-address allocations too.
	targetRatio = 1.0
	// targetBatchRatio is the minimum of the addresses/s of a batched
	// allocation (count > 1) over those of single-address allocations.
	targetBatchRatio = 10.0
)

func reportCmd(stdout, stderr io.Writer, args []string) error {
	fs := newFlagSet("report", stderr)
	medians := fs.Bool("medians", false, "also print the median of each run over the rounds (labels ending in \" #N\")")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: moxxiebench report [--medians] RESULT.json...\n\nPrints a table of write, etcd and alloc results (saved with --out) and checks\n"+
			"Moxxie against the targets: writes/s >= the etcd result before it, p99 < %v;\n"+
			"single-address allocations/s >= etcd; addresses/s of a batched allocation >= %gx\nthose of single-address allocations.\n\n", targetP99, targetBatchRatio)
		fs.PrintDefaults()
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
	if *medians {
		fmt.Fprintln(stdout)
		printMedians(stdout, rs)
	}
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
	alloc := slices.ContainsFunc(rs, func(r Result) bool { return r.Count > 0 })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if alloc {
		fmt.Fprintln(tw, "run\tclients\twrites/s\taddresses/s\tp50\tp90\tp99\tmax\terrors\tvs etcd\tserver cpu/write\tfaults/write\tother load\t")
	} else {
		fmt.Fprintln(tw, "run\tclients\twrites/s\tp50\tp90\tp99\tmax\terrors\tvs etcd\tserver cpu/write\tfaults/write\tother load\t")
	}
	for i, r := range rs {
		vs := "-"
		if b := bases[i]; b != nil && b.WritesPerSecond > 0 && r.Count <= 1 {
			vs = fmt.Sprintf("%.2fx", r.WritesPerSecond/b.WritesPerSecond)
		}
		cpu, faults, other := "-", "-", "-"
		if c := r.CPU; c != nil {
			if len(c.ServerSeconds) > 0 {
				cpu = fmt.Sprintf("%.0fµs", c.MicrosPerWrite)
				faults = fmt.Sprintf("%.1f", c.MinorFaultsPerWrite)
			}
			other = fmt.Sprintf("%.0f%%", c.OtherPercent)
		}
		l := r.Latency
		addrs := ""
		if alloc {
			addrs = "-\t"
			if r.Count > 0 {
				addrs = fmt.Sprintf("%.0f\t", r.AddressesPerSecond)
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n", r.Label, r.Clients, r.WritesPerSecond, addrs,
			fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P99), fmtMS(l.Max), sumCounts(r.Errors), vs, cpu, faults, other)
	}
	tw.Flush()
	if alloc {
		fmt.Fprintln(w, "(writes/s: successful requests per second, an allocation of any count being one; addresses/s:")
		fmt.Fprintln(w, "writes/s times the addresses per allocation)")
	}
	fmt.Fprintln(w, "(server cpu/write: CPU time of the server processes per successful write; faults/write: their minor")
	fmt.Fprintln(w, "page faults per successful write, memory touched for the first time; other load: share of the")
	fmt.Fprintln(w, "machine used by neither the servers nor moxxiebench during the run, which makes a run noisy)")
	for _, r := range rs {
		if len(r.Errors) > 0 {
			fmt.Fprintf(w, "errors of %s: %s\n", r.Label, formatCounts(r.Errors))
		}
	}
	fmt.Fprintln(w)
	singles := singleBases(rs)
	for i, r := range rs {
		if r.System != "moxxie" {
			continue
		}
		if r.Count > 0 {
			printAllocVerdict(w, r, bases[i], singles[i], rs)
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

// printAllocVerdict checks an alloc run r: a single-address run against
// the etcd run base, a batched one against the single-address run of
// index single.
func printAllocVerdict(w io.Writer, r Result, base *Result, single int, rs []Result) {
	if ratio, ok := allocRatio(r, base, single, rs); ok {
		if r.Count == 1 {
			fmt.Fprintf(w, "%s: %.0f allocations/s >= %s %.0f: %s (%.2fx)\n", r.Label, r.WritesPerSecond, base.Label, base.WritesPerSecond, verdict(ratio >= targetRatio), ratio)
		} else {
			s := rs[single]
			fmt.Fprintf(w, "%s: %.0f addresses/s >= %gx %s %.0f: %s (%.1fx)\n", r.Label, r.AddressesPerSecond, targetBatchRatio, s.Label, s.AddressesPerSecond, verdict(ratio >= targetBatchRatio), ratio)
		}
	}
}

// allocRatio returns the ratio an alloc run r is checked by: allocations/s
// over etcd's puts/s (base) for count 1; addresses/s over those of the
// single-address run rs[single] for a larger count. ok is false when there
// is nothing to compare with.
func allocRatio(r Result, base *Result, single int, rs []Result) (ratio float64, ok bool) {
	switch {
	case r.Count == 1 && base != nil && base.WritesPerSecond > 0:
		return r.WritesPerSecond / base.WritesPerSecond, true
	case r.Count > 1 && single >= 0 && rs[single].AddressesPerSecond > 0:
		return r.AddressesPerSecond / rs[single].AddressesPerSecond, true
	}
	return 0, false
}

// singleBases returns, for each batched alloc result, the index of the
// single-address alloc result with the same target it is compared with:
// the last one before it, else the first one after it, else -1. Other
// results get -1.
func singleBases(rs []Result) []int {
	out := make([]int, len(rs))
	for i, r := range rs {
		out[i] = -1
		if r.Count <= 1 {
			continue
		}
		match := func(s Result) bool { return s.Count == 1 && s.Target == r.Target }
		for j := i - 1; j >= 0 && out[i] < 0; j-- {
			if match(rs[j]) {
				out[i] = j
			}
		}
		if out[i] < 0 {
			if j := slices.IndexFunc(rs[i+1:], match); j >= 0 {
				out[i] = i + 1 + j
			}
		}
	}
	return out
}

// printMedians prints, for each run repeated over rounds (the same label
// but for a " #N" suffix), the median of its rates and p99, and the median
// of its per-round ratios to what it is checked against.
func printMedians(w io.Writer, rs []Result) {
	bases, singles := baselines(rs), singleBases(rs)
	var order []string
	groups := map[string][]int{}
	for i, r := range rs {
		name := roundless(r.Label)
		if _, ok := groups[name]; !ok {
			order = append(order, name)
		}
		groups[name] = append(groups[name], i)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "median of\trounds\twrites/s\taddresses/s\tp99\tratio\t")
	for _, name := range order {
		var wps, aps, p99, ratios []float64
		what := ""
		for _, i := range groups[name] {
			r := rs[i]
			wps = append(wps, r.WritesPerSecond)
			aps = append(aps, r.AddressesPerSecond)
			p99 = append(p99, r.Latency.P99)
			var base *Result
			if b := bases[i]; b >= 0 {
				base = &rs[b]
			}
			switch {
			case r.System != "moxxie":
			case r.Count > 0:
				if q, ok := allocRatio(r, base, singles[i], rs); ok {
					ratios = append(ratios, q)
					what = " vs etcd"
					if r.Count > 1 {
						what = " vs count 1"
					}
				}
			case base != nil && base.WritesPerSecond > 0:
				ratios = append(ratios, r.WritesPerSecond/base.WritesPerSecond)
				what = " vs etcd"
			}
		}
		addrs, ratio := "-", "-"
		if rs[groups[name][0]].Count > 0 {
			addrs = fmt.Sprintf("%.0f", median(aps))
		}
		if len(ratios) > 0 {
			ratio = fmt.Sprintf("%.2fx%s", median(ratios), what)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t\n", name, len(groups[name]), median(wps), addrs, fmtMS(median(p99)), ratio)
	}
	tw.Flush()
	fmt.Fprintln(w, "(ratio: the median of the per-round ratios, each run against the etcd run of its round, or a batched")
	fmt.Fprintln(w, "allocation's addresses/s against the single-address run of its round)")
}

// roundless strips the " #N" round suffix the scripts add to labels.
func roundless(label string) string {
	i := strings.LastIndex(label, " #")
	if i < 0 {
		return label
	}
	if _, err := strconv.Atoi(label[i+2:]); err != nil {
		return label
	}
	return label[:i]
}

// median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
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
