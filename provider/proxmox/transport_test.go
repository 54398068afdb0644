package proxmox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moxxie/moxxie/provider"
)

// writeRaw answers with a status line of its own reason phrase, as
// pveproxy does ("HTTP/1.1 500 VM 999 does not exist").
func writeRaw(w http.ResponseWriter, code int, reason, body string) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, reason, len(body), body)
	_ = buf.Flush()
}

func TestTransport_StatusMapping(t *testing.T) {
	cases := []struct {
		name     string
		code     int
		reason   string
		body     string
		post     bool
		want     error
		attempts int64
		msg      string
	}{
		{"401", 401, "authentication failure", `{"data":null}`, false, provider.ErrUnauthorized, 1, "401 authentication failure"},
		{"403", 403, "Permission check failed (/, Sys.Audit)", `{"data":null}`, false, provider.ErrUnauthorized, 1, "Permission check failed"},
		{"404", 404, "Not Found", `{"data":null}`, false, provider.ErrNotFound, 1, "404"},
		{"400", 400, "Parameter verification failed.", `{"data":null,"errors":{"vmid":"invalid format"}}`, true, provider.ErrRejected, 1, "vmid: invalid format"},
		{"500 missing", 500, "Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist", `{"data":null}`, false, provider.ErrNotFound, 1, "999.conf' does not exist"},
		{"500 refused", 500, "VM 100 already running", `{"data":null}`, true, provider.ErrRejected, 1, "already running"},
		{"500 get", 500, "got timeout", `{"data":null}`, false, provider.ErrUnavailable, 4, "500 got timeout"},
		{"595 get", 595, "Connection refused", "", false, provider.ErrUnavailable, 4, "595 Connection refused"},
		{"500 post", 500, "unable to open file", `{"data":null}`, true, provider.ErrUnavailable, 1, "unable to open file"},
		{"595 post", 595, "No route to host", "", true, provider.ErrUnavailable, 1, "No route to host"},
		{"429 post", 429, "Too Many Requests", "", true, provider.ErrUnavailable, 4, "429"},
		{"501", 501, "Method 'GET /nodes' not implemented", "", false, provider.ErrRejected, 1, "not implemented"},
		{"message in body", 500, "Internal Server Error", `{"data":null,"message":"storage 'nfs' is not online\n"}`, false, provider.ErrUnavailable, 4, "storage 'nfs' is not online"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hits atomic.Int64
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				writeRaw(w, c.code, c.reason, c.body)
			}))
			defer srv.Close()
			p, _ := testProvider(t, srv, nil)
			var err error
			if c.post {
				_, err = p.StartGuest(context.Background(), provider.GuestRef{Node: "pve1", VMID: 100, Kind: provider.KindVM})
			} else {
				_, err = p.Nodes(context.Background())
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err = %v, want it to keep %q", err, c.msg)
			}
			if got := hits.Load(); got != c.attempts {
				t.Errorf("%d attempts, want %d", got, c.attempts)
			}
			if !strings.HasPrefix(err.Error(), "proxmox: ") {
				t.Errorf("err = %v, want the package prefix", err)
			}
		})
	}
}

func TestTransport_SecretEchoedByServer(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		writeRaw(w, 400, "bad token "+auth, fmt.Sprintf(`{"data":null,"message":%q,"errors":{"x":%q}}`, auth, auth))
	}))
	defer srv.Close()
	p, logs := testProvider(t, srv, nil)
	_, err := p.Inventory(context.Background())
	if !errors.Is(err, provider.ErrRejected) {
		t.Fatalf("err = %v", err)
	}
	noSecret(t, err)
	if !strings.Contains(err.Error(), "PVEAPIToken="+testTokenID+"="+redacted) {
		t.Errorf("err = %v, want the echo with the secret redacted", err)
	}
	// Inventory makes its own request; the library's calls log through
	// slog, redacted too.
	_, err = p.Nodes(context.Background())
	noSecret(t, err)
	if !strings.Contains(logs.String(), "SEND") {
		t.Error("go-proxmox's debug lines are not logged")
	}
}

func TestTransport_NotConnectedPOSTIsRetried(t *testing.T) {
	// A port nobody listens on: the connection is refused, so even a POST
	// that starts a task is safe to repeat.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p, err := New(Config{URL: "https://" + addr, TokenID: testTokenID, TokenSecret: testSecret, Insecure: true, Retries: 2})
	if err != nil {
		t.Fatal(err)
	}
	p.tr.backoffBase, p.tr.backoffMax = time.Millisecond, time.Millisecond
	_, err = p.CloneGuest(context.Background(), provider.CloneSpec{
		Source: provider.GuestRef{Node: "pve1", VMID: 9000, Kind: provider.KindVM}, NewID: 200,
	})
	if !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if got := p.tr.attempts.Load(); got != 3 {
		t.Errorf("%d attempts, want 3", got)
	}
	noSecret(t, err)

	// A server that accepts and hangs up before TLS completes: nothing was
	// sent either.
	l, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepts atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			c.Close()
		}
	}()
	p, err = New(Config{URL: "https://" + l.Addr().String(), TokenID: testTokenID, TokenSecret: testSecret, Insecure: true, Retries: 2})
	if err != nil {
		t.Fatal(err)
	}
	p.tr.backoffBase, p.tr.backoffMax = time.Millisecond, time.Millisecond
	_, err = p.StartGuest(context.Background(), provider.GuestRef{Node: "pve1", VMID: 100, Kind: provider.KindVM})
	if !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	l.Close()
	wg.Wait()
	if got := accepts.Load(); got != 3 {
		t.Errorf("%d connections, want 3", got)
	}
}

func TestTransport_TimeoutRetriesOnlyIdempotent(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		// Read the body: only then does the server notice the client
		// hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	defer srv.Close()
	p, _ := testProvider(t, srv, func(c *Config) { c.Timeout = 50 * time.Millisecond; c.Retries = 2 })

	_, err := p.Nodes(context.Background())
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("GET: err = %v, want ErrTimeout and ErrUnavailable", err)
	}
	if got := p.tr.attempts.Load(); got != 3 {
		t.Errorf("GET: %d attempts, want 3", got)
	}

	p.tr.attempts.Store(0)
	_, err = p.CreateGuest(context.Background(), provider.GuestRef{Node: "pve1", VMID: 300, Kind: provider.KindVM}, provider.GuestSpec{Name: "x"})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("POST: err = %v, want ErrTimeout", err)
	}
	if got := p.tr.attempts.Load(); got != 1 {
		t.Errorf("POST: %d attempts, want 1: a create that may have been applied must not be repeated", got)
	}
}

func TestTransport_ContextCanceled(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	defer srv.Close()
	p, _ := testProvider(t, srv, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Nodes(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if errors.Is(err, provider.ErrUnavailable) {
		t.Error("a canceled call is reported as the platform's fault")
	}
}

func TestTransport_UndecodableAnswer(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"data":"not a list"}`)
	}))
	defer srv.Close()
	p, _ := testProvider(t, srv, nil)
	_, err := p.Inventory(context.Background())
	if !errors.Is(err, provider.ErrUnavailable) || !strings.Contains(err.Error(), "unexpected answer") {
		t.Fatalf("err = %v", err)
	}
}

func TestFail_RedactsAnySource(t *testing.T) {
	p, err := New(Config{URL: "https://pve1:8006", TokenID: testTokenID, TokenSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	cause := errors.New("decoder choked on " + testSecret)
	err = p.fail("read", cause)
	noSecret(t, err)
	if !errors.Is(err, provider.ErrUnavailable) || !errors.Is(err, cause) || !strings.Contains(err.Error(), redacted) {
		t.Errorf("err = %v", err)
	}
	if p.fail("read", nil) != nil {
		t.Error("fail(nil) is not nil")
	}
}
