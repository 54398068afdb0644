package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/moxxie/moxxie/dns"
	"github.com/moxxie/moxxie/fsm"
)

// BenchmarkDNSChangeVisible measures how long a committed change takes to
// be answered over DNS: each iteration allocates an address with a new
// name through the FSM and queries a real DNS server (dns.Serve over a
// dnsSource) until it answers the name. "names" is how many named
// addresses the state holds; with churn, another writer adds a named
// address every 5 ms meanwhile, as an allocation storm would. The
// reported ns/op is the mean time to visible; max-ms the slowest.
func BenchmarkDNSChangeVisible(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		for _, churn := range []bool{false, true} {
			b.Run(fmt.Sprintf("names=%d/churn=%t", n, churn), func(b *testing.B) {
				benchDNSChangeVisible(b, n, churn)
			})
		}
	}
}

// benchDNS is a DNS server over the source of an FSM that holds named
// addresses in bench.test., until the benchmark ends.
type benchDNS struct {
	tf   *testFSM
	srv  *dns.Server
	stop chan struct{}
	wg   sync.WaitGroup
}

// newBenchDNS starts a benchDNS over n named addresses.
func newBenchDNS(b *testing.B, n int) *benchDNS {
	d := &benchDNS{tf: newTestFSM(b, "bench.test", "10.0.0.0/8"), stop: make(chan struct{})}
	for i := range n {
		d.tf.allocate(b, "p-bench.test", fmt.Sprintf("a%d", i), fmt.Sprintf("h%d.bench.test", i))
	}
	src := newDNSSource(d.tf.f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	src.open()
	d.wg.Go(func() { src.run(d.stop) })
	b.Cleanup(func() {
		close(d.stop)
		if d.srv != nil {
			d.srv.Stop()
		}
		d.wg.Wait()
	})
	srv, err := dns.Serve(context.Background(), dns.ServerConfig{Listen: "127.0.0.1:0", Source: src})
	if err != nil {
		b.Fatal(err)
	}
	d.srv = srv
	return d
}

func benchDNSChangeVisible(b *testing.B, n int, churn bool) {
	d := newBenchDNS(b, n)
	tf, srv, stop := d.tf, d.srv, d.stop
	var mu sync.Mutex // guards tf
	if churn {
		d.wg.Go(func() {
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				mu.Lock()
				tf.allocate(b, "p-bench.test", fmt.Sprintf("c%d", i), fmt.Sprintf("churn%d.bench.test", i))
				mu.Unlock()
			}
		})
	}
	var worst time.Duration
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("new%d.bench.test.", i)
		start := time.Now()
		mu.Lock()
		addr := tf.allocate(b, "p-bench.test", fmt.Sprintf("n%d", i), name)
		mu.Unlock()
		q := new(mdns.Msg).SetQuestion(name, mdns.TypeA)
		worst = max(worst, waitDNS(b, "new name", srv.Addr(), q, start, 30*time.Second, func(r *mdns.Msg) bool {
			return len(r.Answer) == 1 && r.Answer[0].(*mdns.A).A.String() == addr
		}))
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "max-ms")
}

// BenchmarkDNSNewPrefixVisible is BenchmarkDNSChangeVisible for a change
// of the zones: each iteration creates a prefix (a new reverse zone) and
// allocates a named address in it, and waits for its PTR record.
func BenchmarkDNSNewPrefixVisible(b *testing.B) {
	d := newBenchDNS(b, 100000)
	tf, srv := d.tf, d.srv
	var worst time.Duration
	for i := 0; b.Loop(); i++ {
		if i >= 1<<16 {
			b.Fatal("out of prefixes")
		}
		start := time.Now()
		pid := fmt.Sprintf("p%d", i)
		tf.apply(b, &fsm.PrefixCreateRequest{Prefix: fsm.Prefix{ID: pid, Prefix: fmt.Sprintf("172.%d.%d.0/24", 16+i>>8, i&255)}})
		addr := tf.allocate(b, pid, fmt.Sprintf("n%d", i), fmt.Sprintf("new%d.bench.test", i))
		q := new(mdns.Msg).SetQuestion(dns.ReverseName(netip.MustParseAddr(addr)), mdns.TypePTR)
		worst = max(worst, waitDNS(b, "PTR in a new prefix", srv.Addr(), q, start, 30*time.Second, func(r *mdns.Msg) bool {
			return len(r.Answer) == 1
		}))
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "max-ms")
}
