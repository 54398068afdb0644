package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// closedAddr returns an https address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "https://" + addr
}

func TestConnError_Refused(t *testing.T) {
	addr := closedAddr(t)
	c, err := New(Config{Address: addr, RetryFor: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = c.Health(context.Background())
	var ce *ConnError
	if !errors.As(err, &ce) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err %v (%T), want a ConnError wrapping ECONNREFUSED", err, err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Errorf("gave up after %s, want about 300ms", d)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "cannot reach "+addr+": connection refused (retried for ") || strings.Contains(msg, "\n") {
		t.Errorf("message %q", msg)
	}

	c, _ = New(Config{Address: addr, RetryFor: -1})
	if err := c.Health(context.Background()); err == nil || strings.Contains(err.Error(), "retried") {
		t.Errorf("without retries: %v", err)
	}
}

func TestFailover(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	down := closedAddr(t)
	c := f.client(t, Config{Address: down + "," + f.URL, RetryFor: -1})
	for range 3 {
		if err := c.Health(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := int(c.preferred.Load()); got != 1 {
		t.Errorf("preferred server %d, want 1 (the one that answered)", got)
	}
	// Both down: the error names both, once.
	down2 := closedAddr(t)
	c, _ = New(Config{Address: down + "," + down2, RetryFor: -1})
	err := c.Health(context.Background())
	if err == nil || err.Error() != "cannot reach "+down+", "+down2+": connection refused" {
		t.Errorf("err %v, want both addresses named", err)
	}
}

func TestRetry_503(t *testing.T) {
	var mu sync.Mutex
	fails := map[string]int{}
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/v1/cluster/settings/plain" {
			writeErr(w, 503, "no_leader", "no cluster leader", "")
			return
		}
		if fails[r.URL.Path] < 2 {
			fails[r.URL.Path]++
			w.Header().Set("Retry-After", "0")
			writeErr(w, 503, "no_leader", "no cluster leader", "")
			return
		}
		writeJSON(w, 200, map[string]any{"key": "k", "value": "v"})
	})
	c := f.client(t, Config{})
	ctx := context.Background()
	if _, _, err := c.SettingGet(ctx, "k", nil); err != nil {
		t.Fatalf("read not retried: %v", err)
	}
	if _, _, err := c.SettingPut(ctx, "w", "v", nil); err != nil {
		t.Fatalf("write not retried: %v", err)
	}
	var keys []string
	for _, r := range f.requests() {
		if r.method == "PUT" {
			keys = append(keys, r.header.Get("Idempotency-Key"))
		}
	}
	if len(keys) != 3 || keys[0] == "" || keys[0] != keys[1] || keys[1] != keys[2] {
		t.Errorf("write attempts carried keys %q, want one key three times", keys)
	}

	n := len(f.requests())
	if _, _, err := c.SettingGet(ctx, "plain", nil); StatusCode(err) != 503 {
		t.Fatalf("503 without Retry-After: %v", err)
	}
	if got := len(f.requests()) - n; got != 1 {
		t.Errorf("503 without Retry-After sent %d times, want 1", got)
	}
}

func TestRetry_Budget(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		writeErr(w, 503, "no_leader", "no cluster leader", "")
	})
	c := f.client(t, Config{RetryFor: 300 * time.Millisecond})
	start := time.Now()
	_, err := c.Status(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.RetryAfter != time.Second {
		t.Fatalf("err %v, want the last 503", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("retried for %s, want the 300ms budget", d)
	}
	// One retry after the wait capped to the budget; on a loaded machine
	// the first attempt alone may use the whole budget.
	if n := len(f.requests()); n < 1 || n > 2 {
		t.Errorf("%d attempts, want at most 2 (one retry after the capped wait)", n)
	}

	n := len(f.requests())
	if err := c.Ready(context.Background()); StatusCode(err) != 503 {
		t.Fatalf("Ready: %v", err)
	}
	if got := len(f.requests()) - n; got != 1 {
		t.Errorf("Ready retried: %d attempts", got)
	}
}

func TestRetry_ContextCanceled(t *testing.T) {
	c, _ := New(Config{Address: closedAddr(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if err := c.Health(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v, want the context's error", err)
	}
}

func TestBrokenConnection_NotRepeatable(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	c := f.client(t, Config{RetryFor: 2 * time.Second})
	ctx := context.Background()

	// A write without an Idempotency-Key may have been applied: not retried.
	r := &request{method: http.MethodPost, path: "/v1/x"}
	if _, err := c.call(ctx, r, nil); err == nil {
		t.Fatal("broken connection reported success")
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("write without key sent %d times, want 1", n)
	}
	// With a key it is retried within the budget.
	c = f.client(t, Config{RetryFor: 300 * time.Millisecond})
	_, err := c.call(ctx, newWrite(http.MethodPost, "/v1/x", ""), nil)
	var ce *ConnError
	if !errors.As(err, &ce) || ce.Retried == 0 {
		t.Fatalf("err %v, want a ConnError after retries", err)
	}
	if n := len(f.requests()); n < 3 {
		t.Errorf("write with key sent %d times in total, want retries", n)
	}
}

func TestBlockingQuery_Timeout(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("index") != "" {
			time.Sleep(300 * time.Millisecond)
		}
		writeJSON(w, 200, map[string]any{"settings": []any{}})
	})
	c := f.client(t, Config{Timeout: 150 * time.Millisecond, RetryFor: -1})
	if _, _, err := c.SettingList(context.Background(), &QueryOptions{Index: 3, Wait: time.Second}); err != nil {
		t.Fatalf("blocking query cut by the timeout: %v", err)
	}
	if _, _, err := c.SettingList(context.Background(), &QueryOptions{Index: 3}); err != nil {
		t.Fatal(err)
	}
	if got := f.requests()[1].query; got != "index=3&wait=5m0s" {
		t.Errorf("default wait query %q", got)
	}
}
