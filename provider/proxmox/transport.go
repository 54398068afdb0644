package proxmox

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/moxxie/moxxie/provider"
	"github.com/moxxie/moxxie/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// ErrTimeout marks a request that got no complete answer within
// Config.Timeout. Such errors also wrap provider.ErrUnavailable.
var ErrTimeout = errors.New("timed out")

// maxBody bounds the size of an API answer read into memory.
const maxBody = 64 << 20

// transport is the http.RoundTripper under the go-proxmox client. It gives
// every attempt its own timeout, reads the whole answer within it, turns
// every failure into an error wrapping one of the provider sentinels, and
// retries what is safe to retry (see the package documentation).
type transport struct {
	base        http.RoundTripper
	timeout     time.Duration
	retries     int
	backoffBase time.Duration
	backoffMax  time.Duration
	prefix      string // path prefix of the API, /api2/json
	secret      string
	log         *slog.Logger
	tracer      trace.Tracer
	tracing     bool         // the tracer records spans
	attempts    atomic.Int64 // HTTP attempts made, for tests
}

// attemptError is the outcome of one failed attempt.
type attemptError struct {
	err   error // the error returned to the caller
	retry bool  // whether another attempt is safe and may help
}

// RoundTrip sends req, retrying failures that are safe to retry. Unlike an
// ordinary RoundTripper it returns an answer with a non-2xx status as an
// error, never as a response: go-proxmox does not look at most statuses
// (it would decode a 595 or 404 as an empty success), so they are turned
// into errors before it sees them.
//
// Each request is traced as a client span "proxmox METHOD" in the trace of
// its context, covering every attempt.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.tracing {
		res, _, err := t.roundTrip(req)
		return res, err
	}
	ctx, span := t.tracer.Start(req.Context(), "proxmox "+req.Method, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("http.request.method", req.Method),
		attribute.String("url.path", t.path(req)),
		attribute.String("server.address", req.URL.Host)))
	res, attempts, err := t.roundTrip(req.WithContext(ctx))
	span.SetAttributes(attribute.Int("moxxie.attempts", attempts))
	if code := statusOf(err); code != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", code))
	} else if res != nil {
		span.SetAttributes(attribute.Int("http.response.status_code", res.StatusCode))
	}
	telemetry.EndSpan(span, err)
	return res, err
}

// roundTrip is RoundTrip without the span; it also returns the number of
// attempts made.
func (t *transport) roundTrip(req *http.Request) (*http.Response, int, error) {
	ctx := req.Context()
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	for attempt := 0; ; attempt++ {
		res, aerr := t.once(req, attempt)
		if aerr == nil {
			return res, attempt + 1, nil
		}
		if ctx.Err() != nil {
			return nil, attempt + 1, fmt.Errorf("%s %s: %w", req.Method, t.path(req), ctx.Err())
		}
		if !aerr.retry || attempt >= t.retries || !replayable {
			if attempt > 0 {
				return nil, attempt + 1, fmt.Errorf("%w (after %d attempts)", aerr.err, attempt+1)
			}
			return nil, 1, aerr.err
		}
		delay := t.backoff(attempt)
		t.log.WarnContext(ctx, "proxmox: retrying request", "method", req.Method, "path", t.path(req),
			"attempt", attempt+1, "delay", delay, "error", aerr.err.Error())
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, attempt + 1, fmt.Errorf("%s %s: %w", req.Method, t.path(req), ctx.Err())
		case <-timer.C:
		}
	}
}

// once makes one attempt under its own timeout and reads the whole answer.
func (t *transport) once(req *http.Request, attempt int) (*http.Response, *attemptError) {
	t.attempts.Add(1)
	actx, cancel := context.WithTimeout(req.Context(), t.timeout)
	defer cancel()
	var connected atomic.Bool
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { connected.Store(true) }}
	r := req.Clone(httptrace.WithClientTrace(actx, trace))
	if attempt > 0 && req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, &attemptError{err: fmt.Errorf("%s %s: %w", req.Method, t.path(req), err)}
		}
		r.Body = body
	}

	res, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, t.networkError(req, actx, err, connected.Load())
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	_ = res.Body.Close()
	if err == nil && actx.Err() != nil {
		// net/http may still hand over an answer the server wrote as the
		// connection was torn down at the deadline; it does not count.
		err = actx.Err()
	}
	if err != nil {
		return nil, t.networkError(req, actx, err, true)
	}
	if res.StatusCode/100 != 2 {
		return nil, t.statusError(req, res, body)
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	res.ContentLength = int64(len(body))
	res.Request = req
	return res, nil
}

// idempotent reports whether a request of this method may be repeated
// after it reached the server. POST and DELETE start tasks on Proxmox
// (create, clone, start, destroy, ...), so they are not.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodOptions:
		return true
	}
	return false
}

// networkError classifies a failure without an HTTP answer. connected
// tells whether a connection was obtained, i.e. whether any of the request
// may have reached the server.
func (t *transport) networkError(req *http.Request, actx context.Context, err error, connected bool) *attemptError {
	retry := idempotent(req.Method) || !connected
	if certificateError(err) {
		return &attemptError{err: t.fail(req, t.redact(err.Error()), provider.ErrUnavailable)}
	}
	if errors.Is(actx.Err(), context.DeadlineExceeded) && req.Context().Err() == nil || isTimeout(err) {
		return &attemptError{
			err:   t.fail(req, fmt.Sprintf("%v after %s", ErrTimeout, t.timeout), ErrTimeout, provider.ErrUnavailable),
			retry: retry,
		}
	}
	return &attemptError{err: t.fail(req, t.redact(err.Error()), provider.ErrUnavailable), retry: retry}
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// certificateError reports whether err is a failed verification of the
// server's certificate; retrying cannot help with those.
func certificateError(err error) bool {
	var (
		fe  *fingerprintError
		cve *tls.CertificateVerificationError
		uae x509.UnknownAuthorityError
		he  x509.HostnameError
		cie x509.CertificateInvalidError
	)
	return errors.As(err, &fe) || errors.As(err, &cve) || errors.As(err, &uae) ||
		errors.As(err, &he) || errors.As(err, &cie)
}

// statusError classifies an answer with a non-2xx status, keeping the
// message Proxmox gave.
func (t *transport) statusError(req *http.Request, res *http.Response, body []byte) *attemptError {
	code := res.StatusCode
	msg := t.redact(message(res, body))
	detail := strconv.Itoa(code)
	if msg != "" {
		detail += " " + msg
	}
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return &attemptError{err: t.failStatus(req, code, detail, provider.ErrUnauthorized)}
	case code == http.StatusNotFound:
		return &attemptError{err: t.failStatus(req, code, detail, provider.ErrNotFound)}
	case code == http.StatusTooManyRequests:
		// The server declined the request without acting on it.
		return &attemptError{err: t.failStatus(req, code, detail, provider.ErrUnavailable), retry: true}
	case code == http.StatusRequestTimeout:
		return &attemptError{err: t.failStatus(req, code, detail, provider.ErrUnavailable), retry: idempotent(req.Method)}
	case code == http.StatusNotImplemented:
		return &attemptError{err: t.failStatus(req, code, detail, provider.ErrRejected)}
	case code >= 400 && code < 500:
		// A 400 may say a path parameter names nothing ("upid: no such
		// task").
		if notFoundMessage(msg) {
			return &attemptError{err: t.failStatus(req, code, detail, provider.ErrNotFound)}
		}
		return &attemptError{err: t.failStatus(req, code, detail, provider.ErrRejected)}
	case code >= 500 && code < 600:
		// Proxmox answers 500 for missing objects and refused actions
		// too; only its message tells them from server trouble.
		switch {
		case notFoundMessage(msg):
			return &attemptError{err: t.failStatus(req, code, detail, provider.ErrNotFound)}
		case refusedMessage(msg):
			return &attemptError{err: t.failStatus(req, code, detail, provider.ErrRejected)}
		}
		return &attemptError{err: t.failStatus(req, code, detail, provider.ErrUnavailable), retry: idempotent(req.Method)}
	}
	return &attemptError{err: t.failStatus(req, code, "unexpected status "+detail, provider.ErrUnavailable)}
}

// fail builds the error of one request that got no answer.
func (t *transport) fail(req *http.Request, detail string, kinds ...error) error {
	return &apiError{Method: req.Method, Path: t.path(req), Detail: detail, kinds: kinds}
}

// failStatus builds the error of one request answered with status code.
func (t *transport) failStatus(req *http.Request, code int, detail string, kind error) error {
	return &apiError{Method: req.Method, Path: t.path(req), Status: code, Detail: detail, kinds: []error{kind}}
}

// apiError is a failed API request.
type apiError struct {
	Method string
	Path   string // below /api2/json, without the query
	Status int    // the HTTP status; 0 when there was no answer
	Detail string // what happened, with Proxmox's message
	kinds  []error
}

// Error returns "METHOD /path: detail: sentinel".
func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: %s: %v", e.Method, e.Path, e.Detail, e.kinds[len(e.kinds)-1])
}

// Unwrap returns the sentinels the error stands for.
func (e *apiError) Unwrap() []error { return e.kinds }

// statusOf returns the HTTP status of a failed request, or 0.
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// path returns the request's path below the API prefix.
func (t *transport) path(req *http.Request) string {
	p := req.URL.Path
	if i := strings.Index(p, t.prefix); i >= 0 {
		p = p[i+len(t.prefix):]
	}
	return p
}

// redact removes the token secret from s.
func (t *transport) redact(s string) string {
	return redactSecret(s, t.secret)
}

// redactSecret replaces every occurrence of secret in s.
func redactSecret(s, secret string) string {
	if secret == "" || !strings.Contains(s, secret) {
		return s
	}
	return strings.ReplaceAll(s, secret, redacted)
}

// backoff returns the pause before retry number attempt+1: exponential
// from backoffBase up to backoffMax, with the upper half jittered.
func (t *transport) backoff(attempt int) time.Duration {
	d := t.backoffBase
	for i := 0; i < attempt && d < t.backoffMax; i++ {
		d *= 2
	}
	d = min(d, t.backoffMax)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half)
}

// message extracts Proxmox's explanation of a failed request: the reason
// phrase of the status line, the message field of the body and the
// per-parameter errors of a 400 answer.
func message(res *http.Response, body []byte) string {
	var parts []string
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s != "" && !slices.Contains(parts, s) {
			parts = append(parts, s)
		}
	}
	reason := strings.TrimSpace(strings.TrimPrefix(res.Status, strconv.Itoa(res.StatusCode)))
	if reason != http.StatusText(res.StatusCode) {
		add(reason)
	}
	var b struct {
		Message string         `json:"message"`
		Errors  map[string]any `json:"errors"`
	}
	if json.Unmarshal(body, &b) == nil {
		add(b.Message)
		keys := make([]string, 0, len(b.Errors))
		for k := range b.Errors {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			add(fmt.Sprintf("%s: %v", k, b.Errors[k]))
		}
	}
	if len(parts) == 0 {
		add(reason)
	}
	s := strings.Join(parts, "; ")
	if len(s) > 1000 {
		s = s[:1000] + "..."
	}
	return s
}

// notFoundMessage reports whether a Proxmox error message says that the
// object of the request does not exist.
func notFoundMessage(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{"does not exist", "no such", "not found", "doesn't exist",
		"hostname lookup"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// refusedMessage reports whether a Proxmox error message refuses an action
// for a reason that retrying will not change.
func refusedMessage(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{"already exists", "already running", "not running", " is running",
		"without --online", "is a template", "feature is not available", "not allowed",
		// SDN configuration: a taken ID, a zone in use, a property the
		// zone type does not have, and a parameter check run under the
		// SDN lock, which Proxmox reports as a 500.
		"already defined", " is used by ", "unexpected property", "missing value for required option",
		"unable to delete", "cannot set and delete", "parameter verification failed",
		// Disks and volumes: a resize that would shrink or change
		// nothing, a move Proxmox cannot make, a restore over a guest
		// that must stay, a configuration changed since it was read.
		"shrink", "already at specified size", "you can't move", "cannot move", "can't overwrite",
		"protection mode", "checksum mismatch", "detected modified configuration"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}
