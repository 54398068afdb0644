package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewTracerProvider_Off(t *testing.T) {
	tp, stop, err := NewTracerProvider(TracingConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stop(context.Background()) }()
	if Recording(tp) {
		t.Fatal("no endpoint, yet recording")
	}
	// Off, a caller's trace context still passes through a span.
	h := http.Header{"Traceparent": {testTraceParent}}
	ctx, span := Tracer(tp).Start(Extract(context.Background(), h), "x")
	defer span.End()
	out := http.Header{"Traceparent": {"stale"}}
	Inject(ctx, out)
	if got := out.Get("Traceparent"); got != testTraceParent {
		t.Fatalf("passed on %q", got)
	}
	Inject(context.Background(), out)
	if out.Get("Traceparent") != "" {
		t.Fatal("a stale traceparent was passed on")
	}
}

// TestNewTracerProvider_OTLP: spans go to the collector over OTLP/HTTP at
// /v1/traces, and a sample ratio of 0 still follows a sampled caller.
func TestNewTracerProvider_OTLP(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" {
			posts.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	tp, stop, err := NewTracerProvider(TracingConfig{Endpoint: srv.URL, SampleRatio: 0, ServiceName: "moxxied", InstanceID: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	if !Recording(tp) {
		t.Fatal("not recording")
	}
	_, unsampled := Tracer(tp).Start(context.Background(), "root")
	unsampled.End()
	if unsampled.SpanContext().IsSampled() {
		t.Fatal("ratio 0 sampled a new trace")
	}
	_, span := Tracer(tp).Start(ContextWithTraceParent(context.Background(), testTraceParent), "child")
	if !span.SpanContext().IsSampled() || span.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("child of a sampled caller: %+v", span.SpanContext())
	}
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := stop(ctx); err != nil {
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Fatal("no spans exported")
	}
}

func TestCheckEndpoint(t *testing.T) {
	for _, ok := range []string{"http://otel:4318", "https://otel.example.com/v1/traces"} {
		if err := CheckEndpoint(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"otel:4318", "grpc://otel:4317", "http://", "http://u:p@otel:4318", "http://otel:4318/?x=1"} {
		if CheckEndpoint(bad) == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if _, _, err := NewTracerProvider(TracingConfig{Endpoint: "http://otel:4318", SampleRatio: 2}); err == nil {
		t.Error("sample ratio 2 accepted")
	}
}
