package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Header names of the API.
const (
	headerRequestID      = "X-Request-Id"
	headerIndex          = "X-Moxxie-Index"
	headerIdempotencyKey = "Idempotency-Key"
	headerReplayed       = "Idempotent-Replayed"
	headerSnapshotSHA256 = "X-Moxxie-Snapshot-Sha256"
)

// Backoff between rounds of connection failures.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = time.Second
)

// request is one API call, which may be sent several times.
type request struct {
	method string
	path   string
	query  url.Values
	// body is sent as is on every attempt; nil sends none.
	body        []byte
	contentType string
	// idemKey is the Idempotency-Key of a write.
	idemKey string
	// wait is a blocking query's wait, added to the attempt timeout.
	wait time.Duration
	// noRetry disables retrying 503 answers (readiness checks want the
	// answer, not a retry).
	noRetry bool
	// retryCodes, for a write without an Idempotency-Key, lists the codes
	// of the 503 answers that say nothing was done, which are retried; any
	// other failure once it was sent is returned.
	retryCodes []string
}

// newWrite returns a write request carrying key, or a random
// Idempotency-Key when key is empty.
func newWrite(method, path, key string) *request {
	if key == "" {
		key = crand.Text()
	}
	return &request{method: method, path: path, idemKey: key}
}

// jsonBody sets v, encoded as JSON, as the request body.
func (r *request) jsonBody(v any) *request {
	b, err := json.Marshal(v)
	if err != nil {
		// Only the package's own request types are encoded here.
		panic(fmt.Sprintf("client: encode %T: %v", v, err))
	}
	r.body, r.contentType = b, "application/json"
	return r
}

// repeatable reports whether sending r twice does no harm: reads, and
// writes carrying an Idempotency-Key.
func (r *request) repeatable() bool {
	return r.method == http.MethodGet || r.method == http.MethodHead || r.idemKey != ""
}

// do sends r, failing over between servers and retrying as the package
// documentation describes. It returns a 2xx or 3xx answer, whose body the
// caller must close; an error answer is returned as *APIError.
func (c *Client) do(ctx context.Context, r *request) (*http.Response, error) {
	start := time.Now()
	deadline := start.Add(max(c.retryFor, 0))
	backoff := minBackoff
	n := len(c.addrs)
	retried := false
	for {
		first := int(c.preferred.Load())
		var failures []AddrError
		retryable := true
		for i := range n {
			idx := (first + i) % n
			resp, err := c.send(ctx, c.addrs[idx], r)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				failures = append(failures, AddrError{Address: c.addrs[idx], Err: err})
				switch {
				case isDialError(err):
					// Nothing was sent: the next server may answer.
				case isTLSError(err):
					retryable = false
				case !r.repeatable():
					return nil, &ConnError{Failures: failures}
				}
				continue
			}
			c.preferred.Store(int32(idx))
			if resp.StatusCode < 400 {
				return resp, nil
			}
			ae := readAPIError(resp)
			wait, hasRetryAfter := retryAfter(resp.Header)
			left := time.Until(deadline)
			again := r.repeatable() || slices.Contains(r.retryCodes, ae.Code)
			if resp.StatusCode != http.StatusServiceUnavailable || !hasRetryAfter || !again || r.noRetry || left <= 0 {
				return nil, ae
			}
			if err := sleep(ctx, min(max(wait, minBackoff), left)); err != nil {
				return nil, err
			}
			failures = nil
			retried = true
			break
		}
		if failures == nil {
			continue // a 503 to retry
		}
		left := time.Until(deadline)
		if !retryable || left <= 0 {
			ce := &ConnError{Failures: failures}
			if retried {
				ce.Retried = time.Since(start)
			}
			return nil, ce
		}
		if err := sleep(ctx, min(jitter(backoff), left)); err != nil {
			return nil, err
		}
		backoff = min(2*backoff, maxBackoff)
		retried = true
	}
}

// send makes one attempt at r against the server at base.
func (c *Client) send(ctx context.Context, base string, r *request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout+r.wait)
	u := base + r.path
	q := r.query
	if c.site != "" {
		q = url.Values{}
		for k, v := range r.query {
			q[k] = v
		}
		q.Set("site", c.site)
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		cancel()
		return nil, err
	}
	h := req.Header
	h.Set("User-Agent", c.userAgent)
	h.Set("Accept", "application/json")
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	if r.contentType != "" {
		h.Set("Content-Type", r.contentType)
	}
	if r.idemKey != "" {
		h.Set(headerIdempotencyKey, r.idemKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelOnClose releases an attempt's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// jitter returns d give or take a quarter, so clients do not retry in step.
func jitter(d time.Duration) time.Duration {
	return d - d/4 + rand.N(d/2+1)
}

// meta reads the headers every answer carries.
func meta(resp *http.Response, base string) *Meta {
	m := &Meta{
		RequestID: resp.Header.Get(headerRequestID),
		Replayed:  resp.Header.Get(headerReplayed) == "true",
		Address:   base,
	}
	m.Index, _ = strconv.ParseUint(resp.Header.Get(headerIndex), 10, 64)
	for _, v := range resp.Header.Values("Warning") {
		m.Warnings = append(m.Warnings, warningText(v))
	}
	return m
}

// warningText returns the text of a Warning header value (299 - "text"),
// or the value itself when it has another form.
func warningText(v string) string {
	_, rest, ok := strings.Cut(v, " ")
	if !ok {
		return v
	}
	if _, quoted, ok := strings.Cut(rest, " "); ok {
		if text, err := strconv.Unquote(quoted); err == nil {
			return text
		}
	}
	return v
}

// call sends r and decodes a JSON answer into out (unless out is nil).
func (c *Client) call(ctx context.Context, r *request, out any) (*Meta, error) {
	resp, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := meta(resp, resp.Request.URL.Scheme+"://"+resp.Request.URL.Host)
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return m, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return m, fmt.Errorf("%s %s: decode answer from %s: %w", r.method, r.path, m.Address, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return m, nil
}
