package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/pki"
)

// This file is the test harness other packages' tests use to run real
// servers in-process: real raft, real bolt stores, real mutual TLS on
// loopback, with 50 ms raft timers, port 0 and t.TempDir().

var (
	testCAOnce sync.Once
	testCA     map[string][]byte // file name -> contents
	testCAErr  error
)

// testCAFiles returns one CA per test process, generated once.
func testCAFiles() (map[string][]byte, error) {
	testCAOnce.Do(func() {
		dir, err := os.MkdirTemp("", "moxxie-test-ca-")
		if err != nil {
			testCAErr = err
			return
		}
		defer os.RemoveAll(dir)
		if testCAErr = pki.CreateCA(dir, "Moxxie test CA", 24*time.Hour); testCAErr != nil {
			return
		}
		testCA = map[string][]byte{}
		for _, name := range []string{"ca.pem", "ca-key.pem"} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				testCAErr = err
				return
			}
			testCA[name] = b
		}
	})
	return testCA, testCAErr
}

// TestTLS writes the test CA and a certificate of the given role named name
// into dir, and returns the TLS section of a config pointing at them.
func TestTLS(t testing.TB, dir, name string, role pki.Role) TLSConfig {
	t.Helper()
	files, err := testCAFiles()
	if err != nil {
		t.Fatalf("test CA: %v", err)
	}
	caDir := filepath.Join(dir, "ca")
	if err := os.MkdirAll(caDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(caDir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := pki.CreateCert(caDir, dir, name, role, []string{"127.0.0.1", "localhost"}, time.Hour); err != nil {
		t.Fatalf("test certificate: %v", err)
	}
	return TLSConfig{CAFile: filepath.Join(caDir, "ca.pem"), CertFile: pki.CertPath(dir, name), KeyFile: pki.KeyPath(dir, name)}
}

// TestConfig returns a configuration for an in-process test server with
// fast raft timers and port-0 addresses.
func TestConfig(t testing.TB, id string) *Config {
	t.Helper()
	dir := t.TempDir()
	c := DefaultConfig()
	c.NodeID = id
	c.DataDir = filepath.Join(dir, "data")
	c.RaftAddress = "127.0.0.1:0"
	c.APIAddress = "127.0.0.1:0"
	c.HoldTimeout = Duration(time.Second)
	c.LogLevel = "warn"
	c.TLS = TestTLS(t, dir, id, pki.RoleServer)
	c.Raft.HeartbeatTimeout = Duration(50 * time.Millisecond)
	c.Raft.ElectionTimeout = Duration(50 * time.Millisecond)
	c.Raft.LeaderLeaseTimeout = Duration(50 * time.Millisecond)
	c.Raft.CommitTimeout = Duration(5 * time.Millisecond)
	c.Site.FenceGrace = 0 // a test of the grace sets it
	return c
}

// TestDNS turns on DNS on a free loopback port; pass it (or call it from)
// the callback of TestServer or TestCluster. Server.DNSAddr tells the port.
func TestDNS(c *Config) { c.DNSAddress = "127.0.0.1:0" }

// testServers maps the IDs of running test servers to them, so helpers
// can reach whichever one leads.
var testServers sync.Map

func registerTestServer(t testing.TB, s *Server) {
	testServers.Store(s.ID(), s)
	t.Cleanup(func() { testServers.CompareAndDelete(s.ID(), s) })
}

// TestLeaderOf returns the running test server that s currently follows
// (or s itself), or nil when s knows no leader.
func TestLeaderOf(s *Server) *Server {
	_, id := s.raft.LeaderWithID()
	if v, ok := testServers.Load(string(id)); ok {
		return v.(*Server)
	}
	return nil
}

var testServerSeq struct {
	sync.Mutex
	n int
}

// TestServer starts a server that bootstraps itself as a one-server
// cluster unless cb sets BootstrapExpect to 0 (then join it with TestJoin).
// It is shut down when the test ends.
func TestServer(t testing.TB, cb func(*Config)) *Server {
	t.Helper()
	testServerSeq.Lock()
	testServerSeq.n++
	id := fmt.Sprintf("s%d", testServerSeq.n)
	testServerSeq.Unlock()
	c := TestConfig(t, id)
	c.BootstrapExpect = 1
	if cb != nil {
		cb(c)
	}
	return StartTestServer(t, c)
}

// StartTestServer starts a server from c (for restarts over the same data
// directory) and shuts it down when the test ends.
func StartTestServer(t testing.TB, c *Config) *Server {
	t.Helper()
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel))
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: lvl}))
	s, err := New(c, Options{Logger: logger})
	if err != nil {
		t.Fatalf("start server %s: %v", c.NodeID, err)
	}
	// Later restarts of this config reuse the ports it got.
	c.RaftAddress, c.APIAddress = s.RaftAddress(), s.APIAddress()
	if s.DNSAddr() != "" {
		c.DNSAddress = s.DNSAddr()
	}
	t.Cleanup(func() { _ = s.Shutdown(false) })
	registerTestServer(t, s)
	return s
}

// testWriter sends logs to t.Log, dropping them after the test ends.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // logging after the test completed
	w.t.Log(string(p))
	return len(p), nil
}

// TestJoin adds each of servers to leader's cluster as a voter. Leadership
// may move while the configuration grows (50 ms timers on a busy machine):
// it retries through whichever joined server leads.
func TestJoin(t testing.TB, leader *Server, servers ...*Server) {
	t.Helper()
	joined := []*Server{leader}
	for _, s := range servers {
		WaitForResult(t, 20*time.Second, func() error {
			l := leader
			for _, j := range joined {
				if j.IsLeader() {
					l = j
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := l.Join(ctx, api.JoinRequest{ID: s.ID(), RaftAddress: s.RaftAddress()}); err != nil {
				return fmt.Errorf("join %s via %s: %w", s.ID(), l.ID(), err)
			}
			return nil
		})
		joined = append(joined, s)
	}
}

// WaitForResult polls f until it returns nil or the timeout passes.
func WaitForResult(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %s: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitForLeader waits until exactly one of servers leads and all of them
// agree on it, and returns it.
func WaitForLeader(t testing.TB, servers ...*Server) *Server {
	t.Helper()
	var leader *Server
	WaitForResult(t, 10*time.Second, func() error {
		leader = nil
		for _, s := range servers {
			if s.IsLeader() {
				if leader != nil {
					return fmt.Errorf("two leaders: %s and %s", leader.ID(), s.ID())
				}
				leader = s
			}
		}
		if leader == nil {
			return fmt.Errorf("no leader among %d servers", len(servers))
		}
		for _, s := range servers {
			if _, id := s.raft.LeaderWithID(); string(id) != leader.ID() {
				return fmt.Errorf("%s sees leader %q, not %s", s.ID(), id, leader.ID())
			}
		}
		return nil
	})
	return leader
}

// WaitForApplied waits until every server's state has applied index.
// raft's AppliedIndex alone is not enough: raft counts an entry applied
// when it hands it to the FSM's goroutine, before the FSM has applied it,
// so a read right after could miss it.
func WaitForApplied(t testing.TB, index uint64, servers ...*Server) {
	t.Helper()
	WaitForResult(t, 10*time.Second, func() error {
		for _, s := range servers {
			if got := s.raft.AppliedIndex(); got < index {
				return fmt.Errorf("%s applied %d, want %d", s.ID(), got, index)
			}
			if want, got := s.lastCommandAtOrBelow(index), s.State().LatestIndex(); got < want {
				return fmt.Errorf("%s's state applied %d, want %d", s.ID(), got, want)
			}
		}
		return nil
	})
}

// Isolate cuts the server off from all peers (both directions, raft and
// forwarding) or reconnects it: a network partition on a real transport.
func (s *Server) Isolate(on bool) { s.mux.setIsolated(on) }

// LastIndex returns the index of the server's last raft log entry.
func (s *Server) LastIndex() uint64 { return s.raft.LastIndex() }

// TestHTTPClient returns an HTTPS client that trusts the test CA.
func TestHTTPClient(t testing.TB, s *Server) *http.Client {
	t.Helper()
	ca, err := os.ReadFile(s.cfg.TLS.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialContext:     (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// URL returns the base URL of the server's API.
func (s *Server) URL() string { return "https://" + s.apiAddr }

// TestCluster starts n servers that form a cluster from configuration alone
// (bootstrap_expect n, retry_join listing the others), waits for a leader
// and returns the servers in ID order.
func TestCluster(t testing.TB, n int, cb func(*Config)) []*Server {
	t.Helper()
	return TestClusterOptions(t, n, cb, nil)
}

// TestClusterOptions is TestCluster with opts(i) adding to the Options of
// server i, such as a clock of its own, a logger (instead of the test's
// log) or a tracer provider.
func TestClusterOptions(t testing.TB, n int, cb func(*Config), opts func(i int) Options) []*Server {
	t.Helper()
	lns := make([]net.Listener, n)
	cfgs := make([]*Config, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
	}
	testServerSeq.Lock()
	base := testServerSeq.n
	testServerSeq.n += n
	testServerSeq.Unlock()
	for i := range cfgs {
		c := TestConfig(t, fmt.Sprintf("s%d", base+i+1))
		c.RaftAddress = lns[i].Addr().String()
		c.BootstrapExpect = n
		for j, ln := range lns {
			if j != i {
				c.RetryJoin = append(c.RetryJoin, ln.Addr().String())
			}
		}
		if cb != nil {
			cb(c)
		}
		cfgs[i] = c
	}
	servers := make([]*Server, n)
	for i, c := range cfgs {
		var lvl slog.Level
		_ = lvl.UnmarshalText([]byte(c.LogLevel))
		logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: lvl}))
		o := Options{}
		if opts != nil {
			o = opts(i)
		}
		if o.Logger == nil {
			o.Logger = logger
		}
		o.RaftListener = lns[i]
		s, err := New(c, o)
		if err != nil {
			t.Fatalf("start server %s: %v", c.NodeID, err)
		}
		c.APIAddress = s.APIAddress()
		if s.DNSAddr() != "" {
			c.DNSAddress = s.DNSAddr()
		}
		t.Cleanup(func() { _ = s.Shutdown(false) })
		registerTestServer(t, s)
		servers[i] = s
	}
	WaitForLeader(t, servers...)
	return servers
}

// Config returns the server's configuration (for restarting it in tests).
func (s *Server) Config() *Config { return s.cfg }
