// Command moxxiedns serves a generated set of records with Moxxie's DNS
// plugin, for benchmarks against other DNS servers (scripts/bench-dns.sh).
//
// Usage:
//
//	moxxiedns serve --listen 127.0.0.1:5353 [--names 10000] [--sockets 0]
//	moxxiedns gen   --dir DIR [--names 10000]
//
// serve answers for the zones bench.test. and 0.10.in-addr.arpa. until
// interrupted. gen writes the same records as BIND zone files with a
// named.conf for other servers (DIR/named.conf, DIR/*.zone), and a dnsperf
// query file (DIR/queries.txt): A and PTR queries for existing names and a
// tenth of queries for names that do not exist.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"

	mdns "github.com/moxxie/moxxie/dns"
)

const (
	forwardZone = "bench.test."
	reverseZone = "0.10.in-addr.arpa."
	// maxNames keeps every host inside 10.0.0.0/16, clear of the name
	// server's address.
	maxNames = 65000
)

// nsAddr is the address of the zones' name server, ns1.bench.test.
var nsAddr = netip.MustParseAddr("10.0.255.254")

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: moxxiedns serve|gen [flags]")
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stdout)
	case "gen":
		err = gen(args[1:])
	default:
		err = fmt.Errorf("unknown command %q", args[0])
	}
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "moxxiedns:", err)
		return 1
	}
	return 0
}

func serve(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:5353", "UDP and TCP `address` to listen on")
	names := fs.Int("names", 10000, "number of host names")
	sockets := fs.Int("sockets", 0, "sockets per protocol (0: one per GOMAXPROCS)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the serving to `file`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	recs, err := records(*names)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	src := mdns.NewStaticSource(recs)
	srv, err := mdns.Serve(ctx, mdns.ServerConfig{
		Listen:  *listen,
		Source:  src,
		Sockets: *sockets,
	})
	if err != nil {
		return err
	}
	// A live server's answers have changed since they were built: serve
	// from such answers too (an overlay over the built ones), not from a
	// fresh build alone. The name is not in the query file.
	src.Update(mdns.Change{Serial: 2, Add: []mdns.Record{{Name: "changed." + forwardZone, Type: mdns.TypeA, Value: "10.0.255.254"}}})
	fmt.Fprintf(stdout, "moxxiedns: serving %d names on %s\n", *names, srv.Addr())
	<-ctx.Done()
	return srv.Stop()
}

// host returns the name and address of host i.
func host(i int) (string, netip.Addr) {
	n := i + 1 // skip 10.0.0.0
	return fmt.Sprintf("host-%d.%s", i, forwardZone), netip.AddrFrom4([4]byte{10, 0, byte(n >> 8), byte(n)})
}

// records returns the benchmark's zones and records for n hosts.
func records(n int) (*mdns.Records, error) {
	if n < 1 || n > maxNames {
		return nil, fmt.Errorf("--names must be between 1 and %d", maxNames)
	}
	ns := "ns1." + forwardZone
	recs := &mdns.Records{
		Zones: []mdns.Zone{
			{Name: forwardZone, Kind: mdns.ZoneForward, Serial: 1, NS: []string{ns}, TTL: 300},
			{Name: reverseZone, Kind: mdns.ZoneReverse, Serial: 1, NS: []string{ns}, TTL: 300},
		},
		Records: mdns.HostRecords(ns, nsAddr, 0),
	}
	for i := range n {
		name, addr := host(i)
		recs.Records = append(recs.Records, mdns.HostRecords(name, addr, 0)...)
	}
	return recs, nil
}

func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	dir := fs.String("dir", "", "`directory` to write named.conf, zone files and queries.txt to")
	names := fs.Int("names", 10000, "number of host names")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("gen needs --dir")
	}
	recs, err := records(*names)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(abs, "named.conf"), func(w io.Writer) {
		for _, z := range recs.Zones {
			fmt.Fprintf(w, "zone %q { type master; file %q; };\n", z.Name, filepath.Join(abs, z.Name+"zone"))
		}
	}); err != nil {
		return err
	}
	for _, z := range recs.Zones {
		if err := writeFile(filepath.Join(abs, z.Name+"zone"), func(w io.Writer) { writeZone(w, z, recs.Records) }); err != nil {
			return err
		}
	}
	return writeFile(filepath.Join(abs, "queries.txt"), func(w io.Writer) { writeQueries(w, *names) })
}

// writeZone writes z and the records of its kind in BIND's format, with
// the TTLs and SOA values the plugin uses.
func writeZone(w io.Writer, z mdns.Zone, recs []mdns.Record) {
	fmt.Fprintf(w, "$ORIGIN %s\n$TTL %d\n", z.Name, z.TTL)
	fmt.Fprintf(w, "@ IN SOA %s hostmaster.%s %d 3600 600 86400 %d\n", z.NS[0], z.Name, z.Serial, mdns.DefaultNegativeTTL)
	for _, ns := range z.NS {
		fmt.Fprintf(w, "@ IN NS %s\n", ns)
	}
	for _, r := range recs {
		switch {
		case z.Kind == mdns.ZoneForward && r.Type == mdns.TypeA:
			fmt.Fprintf(w, "%s IN A %s\n", r.Name, r.Value)
		case z.Kind == mdns.ZoneReverse && r.Type == mdns.TypePTR:
			fmt.Fprintf(w, "%s IN PTR %s\n", r.Name, r.Value)
		}
	}
}

// writeQueries writes a dnsperf query file: for every host an A query, for
// every fourth a PTR query, for every tenth a query for a missing name.
func writeQueries(w io.Writer, n int) {
	for i := range n {
		name, addr := host(i)
		fmt.Fprintf(w, "%s A\n", name)
		if i%4 == 0 {
			fmt.Fprintf(w, "%s PTR\n", mdns.ReverseName(addr))
		}
		if i%10 == 0 {
			fmt.Fprintf(w, "missing-%d.%s A\n", i, forwardZone)
		}
	}
}

// writeFile creates path with what fill writes.
func writeFile(path string, fill func(io.Writer)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	fill(bw)
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
