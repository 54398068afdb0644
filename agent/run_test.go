package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/moxxie/moxxie/sdn"
)

// fakeServer serves one assignment at a time and records reports.
type fakeServer struct {
	mu       sync.Mutex
	enrolErr int // enrolments to refuse before accepting
	enrolled []sdn.Host
	refused  int // reports refused while reportOK was false
	index    uint64
	cur      Assignment
	changed  chan struct{}
	reports  chan Report
	reportOK bool
}

func newFakeServer() *fakeServer {
	return &fakeServer{changed: make(chan struct{}), reports: make(chan Report, 100), reportOK: true}
}

func (s *fakeServer) Enrol(_ context.Context, h sdn.Host) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enrolErr > 0 {
		s.enrolErr--
		return errors.New("no leader")
	}
	s.enrolled = append(s.enrolled, h)
	return nil
}

func (s *fakeServer) Plan(ctx context.Context, _ string, index uint64, wait time.Duration) (Assignment, uint64, error) {
	s.mu.Lock()
	if s.index > index {
		defer s.mu.Unlock()
		return s.cur, s.index, nil
	}
	ch := s.changed
	s.mu.Unlock()
	select {
	case <-ctx.Done():
		return Assignment{}, 0, ctx.Err()
	case <-ch:
	case <-time.After(wait):
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, s.index, nil
}

func (s *fakeServer) Report(_ context.Context, _ string, r Report) error {
	s.mu.Lock()
	ok := s.reportOK
	if !ok {
		s.refused++
	}
	s.mu.Unlock()
	if !ok {
		return errors.New("unreachable")
	}
	s.reports <- r
	return nil
}

func (s *fakeServer) assign(a Assignment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index++
	s.cur = a
	close(s.changed)
	s.changed = make(chan struct{})
}

// fakeKernel holds plans in memory; fail makes Apply fail.
type fakeKernel struct {
	mu        sync.Mutex
	held      *sdn.Plan
	fail      error
	applies   int
	drifted   bool
	fn        func()
	watchFail int // Watch calls to fail at once
	watches   int
}

func (k *fakeKernel) Apply(_ context.Context, p sdn.Plan) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.applies++
	if k.fail != nil {
		return nil, k.fail
	}
	if k.held != nil && k.held.Version == p.Version && !k.drifted {
		return nil, nil
	}
	k.held, k.drifted = &p, false
	return []string{"create bridge v1"}, nil
}

func (k *fakeKernel) Verify(p sdn.Plan) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.held == nil || k.held.Version != p.Version {
		return []string{"plan not held"}, nil
	}
	if k.drifted {
		return []string{"link v1 missing"}, nil
	}
	return nil, nil
}

func (k *fakeKernel) Watch(ctx context.Context, fn func()) error {
	k.mu.Lock()
	k.watches++
	if k.watchFail > 0 {
		k.watchFail--
		k.mu.Unlock()
		return errors.New("netlink: no buffer space available")
	}
	k.fn = fn
	k.mu.Unlock()
	<-ctx.Done()
	return nil
}

// drift deletes the held link and tells the watcher, as netlink would,
// once the runner has subscribed.
func (k *fakeKernel) drift(t testing.TB) {
	t.Helper()
	waitFor(t, 5*time.Second, func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.fn != nil
	})
	k.mu.Lock()
	k.drifted = true
	fn := k.fn
	k.mu.Unlock()
	fn()
}

// TestRunResubscribesWhenWatchFails: a dead netlink subscription is
// replaced, and drift is still healed afterwards.
func TestRunResubscribesWhenWatchFails(t *testing.T) {
	srv, k := newFakeServer(), &fakeKernel{watchFail: 1}
	srv.assign(Assignment{Version: 1, Plan: sdn.Plan{Host: "h1", Version: 1}})
	startRunner(t, srv, k, nil)
	nextReport(t, srv)
	waitFor(t, 5*time.Second, func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.fn != nil && k.watches == 2
	})
	k.drift(t)
	if r := nextReport(t, srv); len(r.Drift) == 0 {
		t.Fatalf("report %+v, want healed drift", r)
	}
}

func startRunner(t *testing.T, srv *fakeServer, k *fakeKernel, mod func(*Config)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := Config{
		Host: sdn.Host{Name: "h1", Address: "192.0.2.1"}, Server: srv, Kernel: k,
		Resync: time.Hour, Wait: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func nextReport(t *testing.T, srv *fakeServer) Report {
	t.Helper()
	select {
	case r := <-srv.reports:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no report within 5s")
		return Report{}
	}
}

func noReport(t *testing.T, srv *fakeServer) {
	t.Helper()
	select {
	case r := <-srv.reports:
		t.Fatalf("unexpected report %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestRunAppliesAndReports(t *testing.T) {
	srv, k := newFakeServer(), &fakeKernel{}
	srv.enrolErr = 2
	srv.assign(Assignment{Version: 1, Phase: "preparing", Plan: sdn.Plan{Host: "h1", Version: 1}})
	startRunner(t, srv, k, nil)
	if r := nextReport(t, srv); r.Version != 1 || r.State != StateApplied || r.Actions != 1 {
		t.Fatalf("report = %+v, want version 1 applied with 1 action", r)
	}
	if len(srv.enrolled) != 1 || srv.enrolled[0].Name != "h1" {
		t.Fatalf("enrolled %v after two refusals, want h1 once", srv.enrolled)
	}
	// The same version committed: nothing to apply, nothing to report.
	srv.assign(Assignment{Version: 1, Phase: "committed", Plan: sdn.Plan{Host: "h1", Version: 1}})
	noReport(t, srv)

	// A version that fails is reported failed, with the error.
	k.mu.Lock()
	k.fail = errors.New("create v2: name taken by an unmanaged link")
	k.mu.Unlock()
	srv.assign(Assignment{Version: 2, Phase: "preparing", Plan: sdn.Plan{Host: "h1", Version: 2}})
	if r := nextReport(t, srv); r.Version != 2 || r.State != StateFailed || r.Error == "" {
		t.Fatalf("report = %+v, want version 2 failed with an error", r)
	}
	// The rollback to version 1 is applied and reported.
	k.mu.Lock()
	k.fail = nil
	k.mu.Unlock()
	srv.assign(Assignment{Version: 1, Phase: "aborted", Plan: sdn.Plan{Host: "h1", Version: 1}})
	if r := nextReport(t, srv); r.Version != 1 || r.State != StateApplied {
		t.Fatalf("report = %+v, want version 1 applied after the rollback", r)
	}
}

func TestRunHealsDrift(t *testing.T) {
	srv, k := newFakeServer(), &fakeKernel{}
	srv.assign(Assignment{Version: 3, Plan: sdn.Plan{Host: "h1", Version: 3}})
	startRunner(t, srv, k, nil)
	nextReport(t, srv)
	k.drift(t)
	r := nextReport(t, srv)
	if r.Version != 3 || r.State != StateApplied || len(r.Drift) != 1 || r.Actions != 1 {
		t.Fatalf("report = %+v, want the healed drift", r)
	}
}

func TestRunRetriesReports(t *testing.T) {
	srv, k := newFakeServer(), &fakeKernel{}
	srv.reportOK = false
	srv.assign(Assignment{Version: 1, Plan: sdn.Plan{Host: "h1", Version: 1}})
	startRunner(t, srv, k, nil)
	waitFor(t, 5*time.Second, func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return srv.refused > 0
	})
	srv.mu.Lock()
	srv.reportOK = true
	srv.mu.Unlock()
	if r := nextReport(t, srv); r.Version != 1 || r.State != StateApplied {
		t.Fatalf("report = %+v, want version 1 applied once the server answers", r)
	}
}

func TestRunDryRunReportsNothing(t *testing.T) {
	srv, k := newFakeServer(), &fakeKernel{}
	srv.assign(Assignment{Version: 1, Plan: sdn.Plan{Host: "h1", Version: 1}})
	startRunner(t, srv, k, func(c *Config) { c.DryRun = true })
	noReport(t, srv)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.applies == 0 {
		t.Fatal("dry run never computed the plan's actions")
	}
}

func TestRunHoldsSavedPlanWithoutServer(t *testing.T) {
	dir := t.TempDir()
	srv, k := newFakeServer(), &fakeKernel{}
	srv.assign(Assignment{Version: 4, Plan: sdn.Plan{Host: "h1", Version: 4}})
	startRunner(t, srv, k, func(c *Config) { c.StateDir = dir })
	nextReport(t, srv)

	// A new agent whose server never enrols it still holds version 4.
	srv2, k2 := newFakeServer(), &fakeKernel{}
	srv2.enrolErr = 1 << 30
	startRunner(t, srv2, k2, func(c *Config) { c.StateDir = dir })
	waitFor(t, 5*time.Second, func() bool {
		k2.mu.Lock()
		defer k2.mu.Unlock()
		return k2.held != nil && k2.held.Version == 4
	})
}
