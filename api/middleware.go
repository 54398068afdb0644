package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"
)

// Header names the API reads or writes.
const (
	headerRequestID      = "X-Request-Id"
	headerIndex          = "X-Moxxie-Index"
	headerForwarded      = "X-Moxxie-Forwarded"
	headerDNSIndex       = "X-Moxxie-DNS-Index"
	headerIdempotencyKey = "Idempotency-Key"
	headerReplayed       = "Idempotent-Replayed"
	headerSnapshotSHA256 = "X-Moxxie-Snapshot-Sha256"
)

// maxRequestIDLen bounds a caller-supplied X-Request-ID.
const maxRequestIDLen = 128

// responseWriter records what a handler wrote and stamps the headers every
// response carries. It also carries the request ID down to the handlers.
type responseWriter struct {
	http.ResponseWriter
	s           *server
	reqID       string
	status      int
	wroteHeader bool
	written     int64
	// bearer is the request's bearer token as the rate limit looked it
	// up, for authentication to reuse.
	bearer bearerLookup
}

// WriteHeader adds X-Moxxie-Index (the store's latest index unless a handler
// set a more precise one) and sends the header.
func (w *responseWriter) WriteHeader(status int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	w.status = status
	h := w.ResponseWriter.Header()
	if _, ok := h[headerIndex]; !ok {
		h.Set(headerIndex, strconv.FormatUint(w.s.b.State().LatestIndex(), 10))
	}
	w.ResponseWriter.WriteHeader(status)
}

// Write sends the header first if needed.
func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p) // #nosec G705 -- passes through the body its handler wrote, with the content type that handler set
	w.written += int64(n)
	return n, err
}

// Flush sends buffered data to the client, for streamed responses.
func (w *responseWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the underlying writer for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// securityHeaders are set on every response. The API serves JSON to
// programs, over HTTPS only: nothing in it is to be sniffed, cached,
// framed, or run as a page.
var securityHeaders = [...][2]string{
	{"X-Content-Type-Options", "nosniff"},
	{"Cache-Control", "no-store"},
	{"Strict-Transport-Security", "max-age=31536000"},
	{"X-Frame-Options", "DENY"},
	{"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
}

// ServeHTTP is the outermost layer: request ID, security headers, rate
// limits, panic recovery and request logging around the router.
//
// The request's context carries its request ID and trace context down to
// the handlers, the leader and the logs: every line logged with it has
// request_id and, when the request is traced or came with a traceparent,
// trace_id.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &responseWriter{ResponseWriter: w, s: s, reqID: s.requestID(r)}
	h := rw.Header()
	h.Set(headerRequestID, rw.reqID)
	// A server that forwarded the request sets these on its own answer
	// already; the leader's would only be sent back and copied over them.
	if !forwardedByPeer(r) {
		for _, kv := range securityHeaders {
			h.Set(kv[0], kv[1])
		}
	}
	start := time.Now()
	r, span := s.startRequest(r, rw.reqID)
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				s.endRequest(span, rw)
				panic(p)
			}
			s.log.ErrorContext(r.Context(), "panic serving request",
				"method", r.Method, "path", r.URL.Path,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if rw.wroteHeader {
				// Part of a response is out: abort the connection so the
				// client sees a failure rather than a short success.
				s.endRequest(span, rw)
				panic(http.ErrAbortHandler)
			}
			s.writeError(rw, r, internal(fmt.Errorf("panic: %v", p)))
		}
		s.endRequest(span, rw)
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.LogAttrs(r.Context(), slog.LevelDebug, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", rw.status),
				slog.Int64("bytes", rw.written),
				slog.Duration("duration", time.Since(start)),
				slog.Bool("forwarded", r.Header.Get(headerForwarded) != ""))
		}
	}()
	if ae := s.rateLimit(rw, r); ae != nil {
		s.nameSpan(r, "")
		s.writeError(rw, r, ae)
		return
	}
	if s.forwardSite(rw, r) {
		return
	}
	s.mux.ServeHTTP(rw, r)
}

// requestID returns the caller's X-Request-ID when it is valid (1 to 128
// printable ASCII characters, no spaces) and a new one otherwise.
func (s *server) requestID(r *http.Request) string {
	if id := r.Header.Get(headerRequestID); validRequestID(id) {
		return id
	}
	n := s.reqSeq.Add(1)
	b := make([]byte, 0, len(s.reqPrefix)+17)
	b = append(b, s.reqPrefix...)
	b = append(b, '-')
	b = strconv.AppendUint(b, n, 16)
	return string(b)
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// writerOf returns the responseWriter installed by ServeHTTP. Route
// handlers only ever run below it.
func writerOf(w http.ResponseWriter) *responseWriter {
	return w.(*responseWriter)
}
