package node

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

func TestServer_Healthy(t *testing.T) {
	s := TestServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Healthy needs no leader, but answers through the real listener.
	if err := s.Healthy(ctx); err != nil {
		t.Fatalf("Healthy on a running server: %v", err)
	}
	if err := s.Shutdown(false); err != nil {
		t.Fatal(err)
	}
	if err := s.Healthy(ctx); err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("Healthy after Shutdown = %v, want a shutting-down error", err)
	}
}

func TestServer_HealthyNeedsTheAPI(t *testing.T) {
	s := TestServer(t, nil)
	// The API listener dies while raft runs on: the check fails.
	s.apiLn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	WaitForResult(t, 5*time.Second, func() error {
		if err := s.Healthy(ctx); err == nil {
			return errors.New("still healthy")
		}
		return nil
	})
}

func TestServer_HealthyWithoutLeader(t *testing.T) {
	// A server waiting for peers that never come is healthy (READY and
	// watchdog pings go on), though not ready.
	s := TestServer(t, func(c *Config) {
		c.BootstrapExpect = 3
		c.RetryJoin = []string{"127.0.0.1:1", "127.0.0.1:2"}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Healthy(ctx); err != nil {
		t.Fatalf("Healthy without a leader: %v", err)
	}
	if s.Ready() == nil {
		t.Fatal("Ready without a leader = nil")
	}
}

func TestSelfAddress(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.11:7300":  "10.0.0.11:7300",
		":7300":           "127.0.0.1:7300",
		"0.0.0.0:7300":    "127.0.0.1:7300",
		"[::]:7300":       "[::1]:7300",
		"[2001:db8::1]:1": "[2001:db8::1]:1",
		"pve1:7300":       "pve1:7300",
	} {
		if got := selfAddress(in); got != want {
			t.Errorf("selfAddress(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNew_LateBindFailureIsAnError: a listener that cannot bind after raft
// started (here the metrics address, taken) fails New with an error and
// closes what it opened, instead of crashing in the cleanup.
func TestNew_LateBindFailureIsAnError(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	c := TestConfig(t, "late")
	c.BootstrapExpect = 1
	c.MetricsAddress = taken.Addr().String()
	s, err := New(c, Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err == nil {
		_ = s.Shutdown(false)
		t.Fatal("New with a taken metrics address succeeded")
	}
	if !strings.Contains(err.Error(), taken.Addr().String()) {
		t.Fatalf("error %q does not name the address", err)
	}
	// Everything New opened is closed: the same data dir opens again.
	c.MetricsAddress = ""
	StartTestServer(t, c)
}
