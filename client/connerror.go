package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"
)

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
// Addresses that failed the same way share one clause.
func (e *ConnError) Error() string {
	type clause struct {
		addrs []string
		dial  bool
		desc  string
	}
	var clauses []*clause
next:
	for _, f := range e.Failures {
		dial, desc := isDialError(f.Err), describe(f.Err)
		for _, c := range clauses {
			if c.dial == dial && c.desc == desc {
				c.addrs = append(c.addrs, f.Address)
				continue next
			}
		}
		clauses = append(clauses, &clause{[]string{f.Address}, dial, desc})
	}
	parts := make([]string, len(clauses))
	for i, c := range clauses {
		parts[i] = strings.Join(c.addrs, ", ") + ": " + c.desc
		if c.dial {
			parts[i] = "cannot reach " + parts[i]
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
