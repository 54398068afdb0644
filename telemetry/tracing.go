package telemetry

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TracerName names the tracer of Moxxie's own spans.
const TracerName = "github.com/moxxie/moxxie"

// TracingConfig configures NewTracerProvider.
type TracingConfig struct {
	// Endpoint is the OTLP/HTTP traces endpoint, e.g.
	// http://otel-collector:4318 (the path defaults to /v1/traces). Empty
	// turns export off: no spans are recorded, but W3C trace context is
	// still accepted and passed on.
	Endpoint string
	// SampleRatio is the share of new traces recorded, 0 to 1. A request
	// that arrives with a traceparent follows its caller's decision.
	SampleRatio float64
	// ServiceName and InstanceID name the process in the exported
	// resource (service.name, service.instance.id); Version is its
	// service.version.
	ServiceName, InstanceID, Version string
}

// CheckEndpoint reports whether endpoint is a usable OTLP/HTTP endpoint:
// an http or https URL with a host and no user info, query or fragment.
func CheckEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("%q is not a URL", endpoint)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: the scheme must be http or https", endpoint)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", endpoint)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must not carry user info, a query or a fragment", u.Redacted())
	}
	return nil
}

// NewTracerProvider returns the tracer provider cfg describes and a
// function that flushes and stops it. Without an endpoint it is a no-op
// provider: spans are not recorded, but a span context that came in with
// a request (Extract) is kept and passed on, so trace IDs still reach the
// logs and the leader.
func NewTracerProvider(cfg TracingConfig) (trace.TracerProvider, func(context.Context) error, error) {
	if cfg.Endpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	if err := CheckEndpoint(cfg.Endpoint); err != nil {
		return nil, nil, err
	}
	if cfg.SampleRatio < 0 || cfg.SampleRatio > 1 {
		return nil, nil, fmt.Errorf("sample ratio %v is not between 0 and 1", cfg.SampleRatio)
	}
	endpoint := cfg.Endpoint
	if u, _ := url.Parse(endpoint); u.Path == "" || u.Path == "/" {
		endpoint = strings.TrimSuffix(endpoint, "/") + "/v1/traces"
	}
	exp, err := otlptracehttp.New(context.Background(),
		otlptracehttp.WithEndpointURL(endpoint),
		otlptracehttp.WithTimeout(10*time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(Sampler(cfg.SampleRatio)),
		sdktrace.WithResource(Resource(cfg)),
	)
	return tp, tp.Shutdown, nil
}

// Sampler samples ratio of new traces and follows the caller's decision
// for a request that carries one.
func Sampler(ratio float64) sdktrace.Sampler {
	return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
}

// Resource describes the process to the trace backend.
func Resource(cfg TracingConfig) *resource.Resource {
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.ServiceName)}
	if cfg.InstanceID != "" {
		attrs = append(attrs, attribute.String("service.instance.id", cfg.InstanceID))
	}
	if cfg.Version != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.Version))
	}
	return resource.NewSchemaless(attrs...)
}

// Tracer returns the tracer of Moxxie's spans from tp; a nil tp gives a
// no-op tracer that still carries incoming span contexts along.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(TracerName)
}

// Recording reports whether tp records spans (it is not a no-op).
func Recording(tp trace.TracerProvider) bool {
	if tp == nil {
		return false
	}
	_, isNoop := tp.(noop.TracerProvider)
	return !isNoop
}

// propagator reads and writes W3C trace context: the traceparent and
// tracestate headers.
var propagator = propagation.TraceContext{}

// Extract returns ctx with the span context of the traceparent header in
// h, when it has a valid one, as the remote parent of the spans started
// from it.
func Extract(ctx context.Context, h http.Header) context.Context {
	if h.Get("Traceparent") == "" {
		return ctx
	}
	return propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// Inject sets the traceparent (and tracestate) headers of h from ctx's
// span context; without a valid one it removes them, so that a caller's
// stale header is not passed on.
func Inject(ctx context.Context, h http.Header) {
	h.Del("Traceparent")
	h.Del("Tracestate")
	propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// TraceParent returns ctx's span context as a W3C traceparent value, or ""
// when it has none.
func TraceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	return c["traceparent"]
}

// ContextWithTraceParent returns ctx with the span context of traceparent
// as the remote parent of spans started from it; an empty or malformed
// traceparent leaves ctx as it is.
func ContextWithTraceParent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// EndSpan records err (when not nil) as the span's error status and ends
// it.
func EndSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
