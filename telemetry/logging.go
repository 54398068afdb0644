package telemetry

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Log attribute keys the context handler adds.
const (
	// KeyRequestID is the X-Request-ID of the API request being served.
	KeyRequestID = "request_id"
	// KeyTraceID is the W3C trace ID of the request's trace.
	KeyTraceID = "trace_id"
)

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request ID id; every line logged
// with the context then carries it as request_id.
func WithRequestID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request ID ctx carries, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// NewLogger returns a logger writing to w in format ("json" or "text") at
// level ("debug", "info", "warn" or "error"), whose lines carry the
// request_id and trace_id of the context they are logged with.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch format {
	case "json", "":
		h = slog.NewJSONHandler(w, opts)
	case "text":
		h = slog.NewTextHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: must be json or text", format)
	}
	return slog.New(NewContextHandler(h)), nil
}

// ContextLogger returns l with its handler wrapped by NewContextHandler
// (l itself when it is wrapped already); nil stays nil.
func ContextLogger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return nil
	}
	if _, ok := l.Handler().(*contextHandler); ok {
		return l
	}
	return slog.New(NewContextHandler(l.Handler()))
}

// NewContextHandler wraps h so that every record logged with a context
// carrying a request ID (WithRequestID) or a valid trace span context
// gets request_id and trace_id attributes, unless the logger or the
// record has them already. Records logged without a context (or with
// context.Background) are passed on unchanged.
func NewContextHandler(h slog.Handler) slog.Handler {
	if ch, ok := h.(*contextHandler); ok {
		return ch
	}
	return &contextHandler{h: h}
}

// contextHandler is the slog.Handler NewContextHandler returns.
type contextHandler struct {
	h slog.Handler
	// hasReqID and hasTraceID say that the logger's own attributes (With)
	// carry the key already.
	hasReqID, hasTraceID bool
	// grouped says that WithGroup was called: attributes added to a
	// record would land in the group.
	grouped bool
}

// Enabled reports whether the wrapped handler handles level.
func (c *contextHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return c.h.Enabled(ctx, level)
}

// Handle adds the context's request and trace IDs to r and passes it on.
func (c *contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil || c.grouped {
		return c.h.Handle(ctx, r)
	}
	var reqID, traceID string
	if !c.hasReqID {
		reqID = RequestID(ctx)
	}
	if !c.hasTraceID {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			traceID = sc.TraceID().String()
		}
	}
	if reqID == "" && traceID == "" {
		return c.h.Handle(ctx, r)
	}
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case KeyRequestID:
			reqID = ""
		case KeyTraceID:
			traceID = ""
		}
		return reqID != "" || traceID != ""
	})
	if reqID != "" || traceID != "" {
		r = r.Clone()
		if reqID != "" {
			r.AddAttrs(slog.String(KeyRequestID, reqID))
		}
		if traceID != "" {
			r.AddAttrs(slog.String(KeyTraceID, traceID))
		}
	}
	return c.h.Handle(ctx, r)
}

// WithAttrs returns a handler whose records carry attrs.
func (c *contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *c
	n.h = c.h.WithAttrs(attrs)
	if !c.grouped {
		for _, a := range attrs {
			switch a.Key {
			case KeyRequestID:
				n.hasReqID = true
			case KeyTraceID:
				n.hasTraceID = true
			}
		}
	}
	return &n
}

// WithGroup returns a handler that nests later attributes in the group
// name. The request and trace IDs are not added below a group: add them
// before, with With.
func (c *contextHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return c
	}
	n := *c
	n.h = c.h.WithGroup(name)
	n.grouped = true
	return &n
}

// stdLogLevels are the level prefixes CoreDNS's plugins write to the
// standard library's log package with.
var stdLogLevels = [...]struct {
	prefix string
	level  slog.Level
}{
	{"[ERROR] ", slog.LevelError},
	{"[WARNING] ", slog.LevelWarn},
	{"[INFO] ", slog.LevelInfo},
	{"[DEBUG] ", slog.LevelDebug},
	{"[FATAL] ", slog.LevelError},
}

// RouteStdLog sends what the standard library's log package is given to
// logger, at the level a line names in CoreDNS's way ("[ERROR] plugin/...")
// and at info otherwise, without the prefix: a failing upstream is an
// error in the server's log, not an info line that says ERROR.
func RouteStdLog(logger *slog.Logger) {
	log.SetFlags(0)
	log.SetOutput(stdLogWriter{logger})
}

type stdLogWriter struct{ l *slog.Logger }

func (w stdLogWriter) Write(p []byte) (int, error) {
	msg, level := strings.TrimRight(string(p), "\n"), slog.LevelInfo
	for _, x := range stdLogLevels {
		if rest, ok := strings.CutPrefix(msg, x.prefix); ok {
			msg, level = rest, x.level
			break
		}
	}
	w.l.Log(context.Background(), level, msg)
	return len(p), nil
}
