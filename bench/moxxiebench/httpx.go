package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// newTransport returns one keep-alive transport shared by all clients of a
// run, keeping at least conns idle connections per host so every client
// goroutine can hold its own. With caFile empty it trusts the system roots
// (and serves plain http:// URLs as well). Requests use HTTP/1.1, one
// request per connection at a time, as most HTTP clients of an API do.
func newTransport(caFile string, conns int) (*http.Transport, error) {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          0, // no global limit
		MaxIdleConnsPerHost:   conns + 8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificates", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return tr, nil
}

// send performs one request with its own timeout and drains the response so
// the connection is reused. It returns the outcome: success when the status
// is want, otherwise the status code or a transport error class, with the
// start of the response body or the error as detail. The body, if any, is
// returned on success.
func send(ctx context.Context, c *http.Client, method, url, token string, body []byte, timeout time.Duration, want int) (outcome, []byte) {
	return sendHeader(ctx, c, method, url, token, nil, body, timeout, want)
}

// sendHeader is send with extra request headers (hdr may be nil).
func sendHeader(ctx context.Context, c *http.Client, method, url, token string, hdr http.Header, body []byte, timeout time.Duration, want int) (outcome, []byte) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return outcome{Class: "request", Detail: err.Error()}, nil
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return outcome{Class: errorClass(err), Detail: err.Error()}, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return outcome{Class: errorClass(err), Detail: err.Error()}, nil
	}
	if resp.StatusCode != want {
		return outcome{Class: strconv.Itoa(resp.StatusCode), Detail: snippet(b)}, nil
	}
	return outcome{}, b
}

// errorClass names a transport error for the error table.
func errorClass(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "conn-refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "conn-reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	default:
		return "transport"
	}
}

// snippet returns the start of a response body, on one line, for an error
// sample.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// splitList splits a comma-separated flag value, dropping empty elements and
// trailing slashes.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimRight(strings.TrimSpace(p), "/"); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// baseURL turns an api_address ("127.0.0.1:8443") into a base URL; a value
// that already has a scheme is kept.
func baseURL(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimRight(addr, "/")
	}
	return "https://" + addr
}

// valueOf returns a printable value of n bytes.
func valueOf(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[i%len(alphabet)]
	}
	return string(b)
}

// sleepCtx waits for d or until ctx is done, and reports whether the full
// duration passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
