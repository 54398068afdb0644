package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moxxie/moxxie/pki"
)

func TestAPIError_Error(t *testing.T) {
	tests := []struct {
		err  APIError
		want string
	}{
		{
			APIError{Status: 409, Code: "conflict", Message: `conflict: setting "x" has modify index 5, not 3`, RequestID: "7f3a"},
			`409 conflict: setting "x" has modify index 5, not 3 (request 7f3a)`,
		},
		{
			APIError{Status: 400, Code: "invalid_request", Message: "must not be empty", Field: "value", RequestID: "r1"},
			`400 invalid_request: must not be empty (field value, request r1)`,
		},
		{
			APIError{Status: 400, Code: "invalid_request", Message: "value: must not be empty", Field: "value"},
			`400 invalid_request: value: must not be empty`,
		},
		{APIError{Status: 404, Code: "not_found", Message: `not found: setting "x"`}, `404 not_found: setting "x"`},
		{APIError{Status: 502, Message: "bad\ngateway  here"}, `502 bad gateway: bad gateway here`},
		{APIError{Status: 503}, `503 service unavailable: service unavailable`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q\nwant      %q", got, tt.want)
		}
	}
}

func TestErrorAnswers(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/cluster/settings/missing":
			writeErr(w, 404, "not_found", `not found: setting "missing"`, "")
		default:
			w.WriteHeader(502)
			io.WriteString(w, "<html>upstream down</html>\nmore")
		}
	})
	c := f.client(t, Config{})
	_, _, err := c.SettingGet(context.Background(), "missing", nil)
	if !IsNotFound(err) {
		t.Fatalf("err %v, want a 404", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "not_found" || ae.RequestID != "req-1" {
		t.Errorf("APIError %+v", ae)
	}
	err = c.Health(context.Background())
	if StatusCode(err) != 502 || err.Error() != "502 bad gateway: <html>upstream down</html> (request req-1)" {
		t.Errorf("non-JSON error: %v", err)
	}
}

func TestTLS_WrongCA(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	// httptest servers share one certificate: another CA comes from pki.
	caDir := t.TempDir()
	if err := pki.CreateCA(caDir, "Other CA", time.Hour); err != nil {
		t.Fatal(err)
	}
	c := f.client(t, Config{CACert: filepath.Join(caDir, pki.CACertFile)})
	start := time.Now()
	err := c.Health(context.Background())
	if err == nil || !strings.Contains(err.Error(), f.URL+": TLS: server certificate signed by an unknown authority") {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a TLS failure was retried for %s", d)
	}
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer plain.Close()
	c = f.client(t, Config{Address: strings.Replace(plain.URL, "http://", "https://", 1)})
	if err := c.Health(context.Background()); err == nil || !strings.HasSuffix(err.Error(), ": the server speaks plain HTTP, not HTTPS") {
		t.Errorf("plain HTTP server: %v", err)
	}
}

func TestConnError_Error(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	e := &ConnError{Failures: []AddrError{
		{"https://a:1", refused},
		{"https://b:1", context.DeadlineExceeded},
		{"https://c:1", refused},
	}, Retried: 10 * time.Second}
	want := "cannot reach https://a:1, https://c:1: connection refused; https://b:1: timed out (retried for 10s)"
	if got := e.Error(); got != want {
		t.Errorf("Error() = %q\nwant      %q", got, want)
	}
}
