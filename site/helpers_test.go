package site

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fastTiming keeps the cluster tests short: a probe every 100 ms, a suspect
// member dead after SuspicionMult * ProbeInterval = 200 ms, votes after
// 300 ms; timingScale times that under the race detector.
var fastTiming = Timing{
	ProbeInterval:     timingScale * 100 * time.Millisecond,
	ProbeTimeout:      timingScale * 50 * time.Millisecond,
	SuspicionMult:     2,
	GossipInterval:    timingScale * 50 * time.Millisecond,
	DownAfter:         timingScale * 300 * time.Millisecond,
	PushPullInterval:  timingScale * 500 * time.Millisecond,
	ReconnectInterval: timingScale * 300 * time.Millisecond,
}

// With fastTiming a site failure is detected in about fastDetectTypical
// (measured by TestPool_SiteFailureDetected), always within fastDetect.
const (
	fastDetectTypical = timingScale * 1200 * time.Millisecond
	fastDetect        = timingScale * 3 * time.Second
)

var (
	keyOne = bytes.Repeat([]byte{1}, 32)
	keyTwo = bytes.Repeat([]byte{2}, 32)
)

// testLogs is the log of one test's servers: Info and above go to the
// test's output until the test ends (memberlist's goroutines and a join in
// flight may log after that), and memberlist's complaints about packets it
// cannot decrypt are counted.
type testLogs struct {
	mu       sync.Mutex
	t        testing.TB
	done     bool         // guarded by mu
	decrypts atomic.Int64 // memberlist's decryption failures
}

var testLogsByTest sync.Map // testing.TB -> *testLogs

// logsOf returns the logs of t's servers.
func logsOf(t testing.TB) *testLogs {
	l, loaded := testLogsByTest.LoadOrStore(t, &testLogs{t: t})
	logs := l.(*testLogs)
	if !loaded {
		t.Cleanup(func() {
			logs.mu.Lock()
			logs.done = true
			logs.mu.Unlock()
			testLogsByTest.Delete(t)
		})
	}
	return logs
}

func (l *testLogs) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Log(string(bytes.TrimRight(b, "\n")))
	}
	return len(b), nil
}

// testLogger is the logger of server name in test t.
func testLogger(t testing.TB, name string) *slog.Logger {
	logs := logsOf(t)
	text := slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})
	return slog.New(&countingHandler{Handler: text.WithAttrs([]slog.Attr{slog.String("server", name)}), logs: logs})
}

// countingHandler counts memberlist's decryption failures, which it logs
// at Debug (through slog.NewLogLogger), before passing records on.
type countingHandler struct {
	slog.Handler
	logs *testLogs
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(strings.ToLower(r.Message), "decrypt") {
		h.logs.decrypts.Add(1)
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h *countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &countingHandler{Handler: h.Handler.WithAttrs(as), logs: h.logs}
}

func (h *countingHandler) WithGroup(g string) slog.Handler {
	return &countingHandler{Handler: h.Handler.WithGroup(g), logs: h.logs}
}

// testConfig is the configuration of server node of site, on a free port of
// 127.0.0.1.
func testConfig(t testing.TB, site, node string) Config {
	return Config{
		Site:       site,
		Node:       node,
		BindAddr:   "127.0.0.1:0",
		APIAddress: fmt.Sprintf("https://%s-%s.example:8443", site, node),
		Keyring:    [][]byte{keyOne},
		Timing:     fastTiming,
		Logger:     testLogger(t, site+"/"+node),
	}
}

// startPool starts a server and shuts it down at the end of the test.
func startPool(t testing.TB, cfg Config) *Pool {
	t.Helper()
	p, err := Start(cfg)
	if err != nil {
		t.Fatalf("start %s/%s: %v", cfg.Site, cfg.Node, err)
	}
	t.Cleanup(func() {
		if err := p.Shutdown(); err != nil {
			t.Errorf("shutdown %s: %v", p.name, err)
		}
	})
	return p
}

// cluster is a pool of test servers by site.
type cluster struct {
	sites map[string][]*Pool
	names []string // sites in order
}

// all returns every server, or those of the given sites.
func (c *cluster) all(sites ...string) []*Pool {
	if len(sites) == 0 {
		sites = c.names
	}
	var out []*Pool
	for _, s := range sites {
		out = append(out, c.sites[s]...)
	}
	return out
}

// startCluster starts n servers in each site, the first of the first site
// seeding the joins, edit adjusting each configuration, and waits until every
// server sees every site up. A server learns of those that join after it
// by gossip, which may miss it; then a push-pull, at most two of its
// intervals away, tells it. So the wait allows two push-pull intervals on
// top of what a loaded machine needs to start the servers. The tests that use it do not run in parallel:
// each runs about nine memberlists with 50 ms timers, and several at once
// under -race on two cores starve each other's probes into false suspicions.
func startCluster(t testing.TB, n int, sites []string, edit func(*Config)) *cluster {
	t.Helper()
	c := &cluster{sites: make(map[string][]*Pool), names: sites}
	var seed string
	var pushPull time.Duration
	for _, site := range sites {
		for i := 1; i <= n; i++ {
			cfg := testConfig(t, site, fmt.Sprintf("s%d", i))
			if seed != "" {
				cfg.Join = []string{seed}
			}
			if edit != nil {
				edit(&cfg)
			}
			pushPull = max(pushPull, cfg.Timing.withDefaults().PushPullInterval)
			p := startPool(t, cfg)
			if seed == "" {
				seed = p.Local().Addr
			}
			c.sites[site] = append(c.sites[site], p)
		}
	}
	waitAll(t, 20*time.Second+2*pushPull, c.all(), func(p *Pool) error {
		return sitesIn(p, SiteUp, n, sites...)
	})
	return c
}

// sitesIn checks that p sees exactly the given sites, each in state with n
// members.
func sitesIn(p *Pool, state string, n int, sites ...string) error {
	got := p.Sites()
	if len(got) != len(sites) {
		return fmt.Errorf("%s sees %d sites, want %d", p.name, len(got), len(sites))
	}
	for _, s := range got {
		if !slices.Contains(sites, s.Name) {
			return fmt.Errorf("%s sees unexpected site %s", p.name, s.Name)
		}
		if s.State != state || len(s.Members) != n {
			return fmt.Errorf("%s sees site %s %s with %d members, want %s with %d", p.name, s.Name, s.State, len(s.Members), state, n)
		}
	}
	return nil
}

// siteState returns the state p sees site in, "" if it does not know it.
func siteState(p *Pool, site string) string {
	s, _ := p.Site(site)
	return s.State
}

// waitFor polls cond until it returns nil or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %s: %v", timeout, err)
		}
		<-tick.C
	}
}

// waitAll waits until cond holds for every server.
func waitAll(t testing.TB, timeout time.Duration, pools []*Pool, cond func(*Pool) error) {
	t.Helper()
	waitFor(t, timeout, func() error {
		for _, p := range pools {
			if err := cond(p); err != nil {
				return err
			}
		}
		return nil
	})
}

// holdsThroughout checks cond on every server at every change of its sites
// for window, and fails the test with the first violation.
func holdsThroughout(t testing.TB, window time.Duration, pools []*Pool, cond func(*Pool) error) {
	t.Helper()
	stop := make(chan struct{})
	timer := time.AfterFunc(window, func() { close(stop) })
	defer timer.Stop()
	errs := make(chan error, len(pools))
	var wg sync.WaitGroup
	for _, p := range pools {
		wg.Go(func() {
			for {
				changed := p.Changed()
				if err := cond(p); err != nil {
					errs <- err
					return
				}
				select {
				case <-changed:
				case <-stop:
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// notDown fails when p sees one of the sites down.
func notDown(sites ...string) func(*Pool) error {
	return func(p *Pool) error {
		for _, s := range sites {
			if st, _ := p.Site(s); st.State == SiteDown {
				return fmt.Errorf("%s sees site %s down (votes %v, quorum %d)", p.name, s, st.Votes, st.Quorum)
			}
		}
		return nil
	}
}
