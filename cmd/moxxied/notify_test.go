package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moxxie/moxxie/node"
)

// fakeSystemd is a NOTIFY_SOCKET: a unix datagram socket in a temporary
// directory whose messages arrive on msgs, each with the time it came.
type fakeSystemd struct {
	path string
	msgs chan notifyMsg
}

type notifyMsg struct {
	state string
	at    time.Time
}

func newFakeSystemd(t *testing.T) *fakeSystemd {
	t.Helper()
	// A short directory: socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeSystemd{path: filepath.Join(dir, "notify"), msgs: make(chan notifyMsg, 1024)}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: f.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				close(f.msgs)
				return
			}
			f.msgs <- notifyMsg{string(buf[:n]), time.Now()}
		}
	}()
	return f
}

// next returns the next message, failing the test after timeout.
func (f *fakeSystemd) next(t *testing.T, timeout time.Duration) notifyMsg {
	t.Helper()
	select {
	case m, ok := <-f.msgs:
		if !ok {
			t.Fatal("notify socket closed")
		}
		return m
	case <-time.After(timeout):
		t.Fatalf("no notify message within %v", timeout)
	}
	return notifyMsg{}
}

// until returns the first message starting with prefix, skipping others
// (which skip returns), failing after timeout.
func (f *fakeSystemd) until(t *testing.T, prefix string, timeout time.Duration) (notifyMsg, []string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var skipped []string
	for {
		m := f.next(t, time.Until(deadline))
		if strings.HasPrefix(m.state, prefix) {
			return m, skipped
		}
		skipped = append(skipped, m.state)
	}
}

func TestSDNotifier_AbstractAndAbsent(t *testing.T) {
	if n := newSDNotifier(func(string) string { return "" }); n.enabled() || n.notify("READY=1") != nil {
		t.Fatal("without NOTIFY_SOCKET the notifier must do nothing")
	}
	n := newSDNotifier(func(string) string { return "@moxxie-test" })
	if got := n.addr.Name; got != "\x00moxxie-test" {
		t.Fatalf("abstract socket name = %q", got)
	}
}

func TestWatchdogInterval(t *testing.T) {
	pid := os.Getpid()
	for _, tc := range []struct {
		usec, wpid string
		want       time.Duration
		err        bool
	}{
		{"", "", 0, false},
		{"30000000", "", 30 * time.Second, false},
		{"30000000", strconv.Itoa(pid), 30 * time.Second, false},
		{"30000000", strconv.Itoa(pid + 1), 0, false},
		{"0", "", 0, true},
		{"x", "", 0, true},
		{"30000000", "x", 0, true},
	} {
		env := map[string]string{"WATCHDOG_USEC": tc.usec, "WATCHDOG_PID": tc.wpid}
		got, err := watchdogInterval(func(k string) string { return env[k] }, pid)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: got %v, %v; want %v, error %v", tc.usec, tc.wpid, got, err, tc.want, tc.err)
		}
	}
}

// TestRunServer_Systemd runs moxxied server as systemd would, with
// NOTIFY_SOCKET and WATCHDOG_USEC set: READY=1 comes once the API serves,
// WATCHDOG=1 every half interval, RELOADING=1 and READY=1 around SIGHUP,
// STOPPING=1 on SIGTERM, then runServer returns.
func TestRunServer_Systemd(t *testing.T) {
	sd := newFakeSystemd(t)
	const wd = 300 * time.Millisecond
	t.Setenv("NOTIFY_SOCKET", sd.path)
	t.Setenv("WATCHDOG_USEC", strconv.FormatInt(wd.Microseconds(), 10))
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	cfg := node.TestConfig(t, "s1")
	cfg.BootstrapExpect = 1
	cfg.LogFormat = "text"
	// The API and raft ports must be known before the server starts, to
	// check the API when READY arrives.
	cfg.APIAddress, cfg.RaftAddress = freePort(t), freePort(t)
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })

	done := make(chan error, 1)
	go func() { done <- runServer(cfg, false) }()

	ready, skipped := sd.until(t, "READY=1", 30*time.Second)
	if len(skipped) > 0 {
		t.Fatalf("messages before READY=1: %q", skipped)
	}
	if !strings.Contains(ready.state, "STATUS=serving: API "+cfg.APIAddress) {
		t.Errorf("READY message %q lacks the status line", ready.state)
	}
	// The server serves when READY arrives.
	if err := checkHealth(t, cfg); err != nil {
		t.Fatalf("READY=1 sent but GET /v1/health fails: %v", err)
	}

	// Pings every half interval.
	last := ready.at
	for i := 0; i < 4; i++ {
		m := sd.next(t, 2*wd)
		if m.state != "WATCHDOG=1" {
			t.Fatalf("got %q, want WATCHDOG=1", m.state)
		}
		if gap := m.at.Sub(last); gap >= wd {
			t.Errorf("watchdog ping %d came %v after the previous message; systemd would have killed the server after %v", i, gap, wd)
		}
		last = m.at
	}

	// SIGHUP reloads: RELOADING=1 with MONOTONIC_USEC, then READY=1.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	m, _ := sd.until(t, "RELOADING=1", 5*time.Second)
	if !strings.Contains(m.state, "\nMONOTONIC_USEC=") {
		t.Errorf("reload message %q lacks MONOTONIC_USEC", m.state)
	}
	if m, _ = sd.until(t, "READY=1", 5*time.Second); m.state != "READY=1" {
		t.Errorf("after the reload got %q, want READY=1", m.state)
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sd.until(t, "STOPPING=1", 5*time.Second)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("runServer: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("runServer did not return after SIGTERM")
	}
	// No ping after STOPPING=1.
	select {
	case m, ok := <-sd.msgs:
		if ok {
			t.Fatalf("message after STOPPING=1: %q", m.state)
		}
	case <-time.After(wd):
	}
}

// TestWaitServing_ReadyOnlyOnceServing: READY waits for the first
// successful check.
func TestWaitServing_ReadyOnlyOnceServing(t *testing.T) {
	var calls atomic.Int32
	check := func(context.Context) error {
		if calls.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	}
	if err := waitServing(context.Background(), check, discardLogger()); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("check ran %d times, want 3", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := waitServing(ctx, func(context.Context) error { return errors.New("never") }, discardLogger()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waitServing with a failing check = %v, want the context's error", err)
	}
}

// TestWatchdog_WithholdsPingsWhileUnhealthy: no WATCHDOG=1 while the check
// fails (systemd would kill the server), a STATUS line says why, and
// pings resume when it passes again.
func TestWatchdog_WithholdsPingsWhileUnhealthy(t *testing.T) {
	sd := newFakeSystemd(t)
	n := newSDNotifier(func(string) string { return sd.path })
	var sick atomic.Bool
	check := func(context.Context) error {
		if sick.Load() {
			return errors.New("raft has shut down")
		}
		return nil
	}
	const wd = 240 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		watchdog{interval: wd, check: check, notify: n.notify, logger: discardLogger()}.run(ctx)
		close(stopped)
	}()

	if m := sd.next(t, wd); m.state != "WATCHDOG=1" {
		t.Fatalf("got %q, want WATCHDOG=1", m.state)
	}
	sick.Store(true)
	// Drain what was sent before the check saw the change.
	deadline := time.Now().Add(wd)
	var m notifyMsg
	for m = sd.next(t, wd); m.state == "WATCHDOG=1" && time.Now().Before(deadline); m = sd.next(t, wd) {
	}
	if m.state != "STATUS=unhealthy: raft has shut down" {
		t.Fatalf("got %q, want the unhealthy status", m.state)
	}
	quiet := time.After(2 * wd)
	for waiting := true; waiting; {
		select {
		case m := <-sd.msgs:
			if strings.Contains(m.state, "WATCHDOG=1") {
				t.Fatalf("watchdog pinged while unhealthy: %q", m.state)
			}
		case <-quiet:
			waiting = false
		}
	}
	sick.Store(false)
	m, _ = sd.until(t, "WATCHDOG=1", wd)
	if m.state != "WATCHDOG=1\nSTATUS=serving" {
		t.Fatalf("first ping after recovery = %q, want it to reset the status", m.state)
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(time.Second):
		t.Fatal("watchdog did not stop with its context")
	}
}

// checkHealth asks the server configured by cfg for GET /v1/health.
func checkHealth(t *testing.T, cfg *node.Config) error {
	t.Helper()
	ca, err := os.ReadFile(cfg.TLS.CAFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + cfg.APIAddress + "/v1/health")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// freePort returns a loopback address with a port free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
