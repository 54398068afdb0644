package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"log"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

const testTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// lines decodes the JSON records in b.
func lines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestContextHandler(t *testing.T) {
	var b bytes.Buffer
	log, err := NewLogger(&b, "json", "debug")
	if err != nil {
		t.Fatal(err)
	}
	ctx := ContextWithTraceParent(WithRequestID(context.Background(), "req-1"), testTraceParent)
	log.InfoContext(ctx, "with both")
	log.InfoContext(WithRequestID(context.Background(), "req-2"), "request only")
	log.Info("no context")
	log.InfoContext(ctx, "explicit", "request_id", "mine")
	log.With("request_id", "bound").InfoContext(ctx, "bound")
	log.DebugContext(ctx, "debug")
	got := lines(t, &b)
	want := []struct{ msg, req, trace string }{
		{"with both", "req-1", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"request only", "req-2", ""},
		{"no context", "", ""},
		{"explicit", "mine", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"bound", "bound", "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"debug", "req-1", "4bf92f3577b34da6a3ce929d0e0e4736"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines: %s", len(got), b.String())
	}
	for i, w := range want {
		req, _ := got[i][KeyRequestID].(string)
		tr, _ := got[i][KeyTraceID].(string)
		if got[i]["msg"] != w.msg || req != w.req || tr != w.trace {
			t.Errorf("line %d: %v, want %+v", i, got[i], w)
		}
	}
	if strings.Count(b.String(), `"request_id"`) != 5 {
		t.Errorf("a request_id was duplicated or lost:\n%s", b.String())
	}

	b.Reset()
	text, err := NewLogger(&b, "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	text.DebugContext(ctx, "hidden")
	text.InfoContext(ctx, "shown")
	if s := b.String(); !strings.Contains(s, "msg=shown request_id=req-1 trace_id=4bf92f3577b34da6a3ce929d0e0e4736") || strings.Contains(s, "hidden") {
		t.Errorf("text log %q", s)
	}
	if _, err := NewLogger(&b, "xml", "info"); err == nil {
		t.Error("format xml accepted")
	}
	if ContextLogger(text) != text {
		t.Error("ContextLogger wrapped a context logger again")
	}
	if l := ContextLogger(slog.New(slog.NewTextHandler(&b, nil))); l.Handler().(*contextHandler) == nil {
		t.Error("ContextLogger did not wrap")
	}
}

func TestTraceParentRoundTrip(t *testing.T) {
	ctx := ContextWithTraceParent(context.Background(), testTraceParent)
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsRemote() || !sc.IsSampled() || sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("span context %+v", sc)
	}
	if got := TraceParent(ctx); got != testTraceParent {
		t.Fatalf("TraceParent %q", got)
	}
	if TraceParent(context.Background()) != "" || TraceParent(ContextWithTraceParent(context.Background(), "00-garbage")) != "" {
		t.Fatal("a traceparent from nothing")
	}
}

// TestRouteStdLog logs through the standard library's log package as
// CoreDNS does: each line at the level its prefix names, without it.
func TestRouteStdLog(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	defer log.SetOutput(log.Writer())
	defer log.SetFlags(log.Flags())
	RouteStdLog(logger)
	log.Print("[ERROR] plugin/errors: 2 x.example. A: read udp: i/o timeout")
	log.Print("[WARNING] plugin/moxxie: a warning")
	log.Print("plain line")
	want := []string{
		`level=ERROR msg="plugin/errors: 2 x.example. A: read udp: i/o timeout"`,
		`level=WARN msg="plugin/moxxie: a warning"`,
		`level=INFO msg="plain line"`,
	}
	for _, w := range want {
		if !strings.Contains(buf.String(), w) {
			t.Errorf("log lacks %s:\n%s", w, buf.String())
		}
	}
}
