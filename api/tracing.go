package api

import (
	"net/http"

	"github.com/moxxie/moxxie/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// spanUnmatched names the span of a request no route matched.
const spanUnmatched = "unmatched"

// startRequest prepares the context of a request: the trace context of
// its traceparent header (when valid), its request ID and, when tracing
// records, its server span, named spanUnmatched until serveRoute names it
// after the route pattern. The span is nil when nothing is recorded.
func (s *server) startRequest(r *http.Request, reqID string) (*http.Request, trace.Span) {
	ctx := telemetry.WithRequestID(telemetry.Extract(r.Context(), r.Header), reqID)
	var span trace.Span
	if s.tracing {
		ctx, span = s.tracer.Start(ctx, spanUnmatched, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("moxxie.server", s.b.ID()),
			attribute.String("moxxie.request_id", reqID),
			attribute.String("http.request.method", r.Method),
			attribute.String("url.path", r.URL.Path),
			attribute.Bool("moxxie.forwarded", r.Header.Get(headerForwarded) != ""),
		))
	}
	return r.WithContext(ctx), span
}

// nameSpan names the request's span after the route pattern that matched
// it ("POST /v1/ipam/prefixes/{id}/allocate"); an empty pattern is looked
// up, for requests refused before routing.
func (s *server) nameSpan(r *http.Request, pattern string) {
	if !s.tracing {
		return
	}
	if pattern == "" {
		if _, pattern = s.mux.Handler(r); pattern == "/" || pattern == "" {
			return
		}
	}
	span := trace.SpanFromContext(r.Context())
	span.SetName(pattern)
	span.SetAttributes(attribute.String("http.route", pattern))
}

// endRequest records the response status on the request's span and ends
// it; 5xx answers mark it failed.
func (s *server) endRequest(span trace.Span, rw *responseWriter) {
	if span == nil {
		return
	}
	status := rw.status
	if !rw.wroteHeader {
		status = http.StatusOK
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}
