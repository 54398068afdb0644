package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// APIError is an error answer from a server: its HTTP status and the
// {"error": {...}} body.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the machine-readable error code, such as "conflict".
	Code string
	// Message says what went wrong.
	Message string
	// Field names the offending field, parameter or header, if any.
	Field string
	// RequestID identifies the request in the servers' logs.
	RequestID string
	// RetryAfter is the delay the server asked for with Retry-After.
	RetryAfter time.Duration
}

// Error formats the error on one line, for example
// `409 conflict: setting "x" has modify index 5, not 3 (request 7f3a-12)`.
func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = strings.ToLower(http.StatusText(e.Status))
	}
	msg := strings.TrimPrefix(e.Message, code+": ")
	if msg == "" {
		msg = strings.ToLower(http.StatusText(e.Status))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s: %s", e.Status, code, oneLine(msg))
	var notes []string
	if e.Field != "" && !strings.Contains(msg, e.Field) {
		notes = append(notes, "field "+e.Field)
	}
	if e.RequestID != "" {
		notes = append(notes, "request "+e.RequestID)
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(notes, ", "))
	}
	return b.String()
}

// IsNotFound reports whether err is an API answer with status 404.
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// StatusCode returns the HTTP status of an *APIError in err's chain, or 0.
func StatusCode(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// readAPIError turns an error answer into an *APIError and closes its body.
func readAPIError(resp *http.Response) *APIError {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	ae := &APIError{Status: resp.StatusCode, RequestID: resp.Header.Get(headerRequestID)}
	ae.RetryAfter, _ = retryAfter(resp.Header)
	var env struct {
		Error *struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			Field     string `json:"field"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error != nil {
		ae.Code, ae.Message, ae.Field = env.Error.Code, env.Error.Message, env.Error.Field
		if env.Error.RequestID != "" {
			ae.RequestID = env.Error.RequestID
		}
		return ae
	}
	// Not an API error body (a proxy, or a server that is not Moxxie): keep
	// the start of what it said.
	msg := strings.TrimSpace(string(body))
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	ae.Message = msg
	return ae
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(h http.Header) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	var secs int
	if _, err := fmt.Sscanf(v, "%d", &secs); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

// ConnError means no server completed the request: none could be reached,
// TLS failed, or the connection broke before an answer arrived.
type ConnError struct {
	// Failures lists each address tried with its last error, in order.
	Failures []AddrError
	// Retried is how long the client retried before giving up; zero if it
	// did not retry.
	Retried time.Duration
}

// AddrError is the failure of a request to one server.
type AddrError struct {
	Address string
	Err     error
}

// Error formats the failures on one line, for example
// `cannot reach https://10.0.0.1:8443: connection refused (retried for 10s)`.
func (e *ConnError) Error() string {
	parts := make([]string, len(e.Failures))
	for i, f := range e.Failures {
		if isDialError(f.Err) {
			parts[i] = "cannot reach " + f.Address + ": " + describe(f.Err)
		} else {
			parts[i] = f.Address + ": " + describe(f.Err)
		}
	}
	s := strings.Join(parts, "; ")
	if e.Retried > 0 {
		s += fmt.Sprintf(" (retried for %s)", e.Retried.Round(100*time.Millisecond))
	}
	return s
}

// Unwrap returns the underlying errors, so errors.Is finds, for example,
// syscall.ECONNREFUSED.
func (e *ConnError) Unwrap() []error {
	out := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		out[i] = f.Err
	}
	return out
}

// isDialError reports whether err happened while connecting, before any
// byte of the request was sent.
func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED)
}

// isTLSError reports whether err is a certificate or TLS protocol failure:
// a configuration problem that retrying does not fix.
func isTLSError(err error) bool {
	var (
		cv  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		rhe tls.RecordHeaderError
	)
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) ||
		errors.As(err, &ci) || errors.As(err, &rhe) || isTLSAlert(err) || isPlainHTTP(err)
}

// describe says in a few words why a request failed.
func describe(err error) string {
	var (
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		rhe tls.RecordHeaderError
		dns *net.DNSError
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &ua):
		return "TLS: server certificate signed by an unknown authority (wrong CA certificate?)"
	case errors.As(err, &he):
		return "TLS: " + he.Error()
	case errors.As(err, &ci):
		return "TLS: " + ci.Error()
	case isTLSAlert(err):
		return "TLS: the server refused the handshake (" + alertText(err) + "; client certificate missing or not accepted?)"
	case errors.As(err, &rhe):
		return "TLS: the server does not speak TLS"
	case errors.As(err, &dns):
		return dns.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return "timed out"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before an answer"
	case isPlainHTTP(err):
		return "the server speaks plain HTTP, not HTTPS"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return oneLine(op.Err.Error())
	}
	return oneLine(err.Error())
}

// isPlainHTTP reports whether a server answered a TLS handshake in plain
// HTTP; net/http reports it only as text.
func isPlainHTTP(err error) bool {
	return strings.Contains(err.Error(), "HTTP response to HTTPS client")
}

// isTLSAlert reports whether err is a TLS alert sent by the server. The
// alert type of crypto/tls is unexported; its text is stable.
func isTLSAlert(err error) bool { return strings.Contains(err.Error(), remoteAlert) }

const remoteAlert = "remote error: tls: "

func alertText(err error) string {
	s := err.Error()
	return s[strings.Index(s, remoteAlert)+len("remote error: "):]
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
