package node

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/hashicorp/raft"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/telemetry"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Tracing a write: the API's server span (on the follower that received
// it, then on the leader it was forwarded to) is the parent of the
// leader's "raft.apply" span, which Apply writes into the command as
// WriteMeta.TraceParent; every server's applyTracer starts its
// "fsm.apply" span from that, so one trace holds the whole write. The FSM
// itself only carries the string.

// Span attribute keys of the server's spans.
const (
	attrServer  = attribute.Key("moxxie.server")
	attrCommand = attribute.Key("moxxie.command")
	attrIndex   = attribute.Key("raft.index")
	attrBatch   = attribute.Key("moxxie.batch_size")
	attrLeader  = attribute.Key("moxxie.leader")
)

// startApplySpan starts the "raft.apply" span of a write proposed on the
// leader within a trace (an API request's; the leader's own loops propose
// untraced) and stamps the command with its trace context. Without
// tracing no span is started (nil), but a trace context that came with
// the request is still stamped, so that its trace ID reaches the apply
// logs.
func (s *Server) startApplySpan(ctx context.Context, cmd fsm.Command) (context.Context, trace.Span) {
	var span trace.Span
	if s.tracing && trace.SpanContextFromContext(ctx).IsValid() {
		ctx, span = s.tracer.Start(ctx, "raft.apply", trace.WithAttributes(
			attrServer.String(s.cfg.NodeID), attrCommand.String(cmd.Type().String())))
	}
	if tp := telemetry.TraceParent(ctx); tp != "" {
		cmd.Meta().TraceParent = tp
	}
	return ctx, span
}

// endApplySpan ends the span of startApplySpan (when there is one) and
// logs the write at debug level.
func (s *Server) endApplySpan(ctx context.Context, span trace.Span, cmd fsm.Command, start time.Time, res *fsm.Result, index uint64, err error) {
	if span != nil {
		span.SetAttributes(attrIndex.Int64(int64(index)))
		if res != nil && res.Err != nil {
			span.SetAttributes(attribute.String("moxxie.rejected", res.Err.Error()))
		}
		telemetry.EndSpan(span, err)
	}
	if !s.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{slog.String("type", cmd.Type().String()), slog.Uint64("index", index), slog.Duration("duration", time.Since(start))}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	} else if res != nil && res.Err != nil {
		attrs = append(attrs, slog.String("rejected", res.Err.Error()))
	}
	s.logger.LogAttrs(ctx, slog.LevelDebug, "raft apply", attrs...)
}

// applyTracer is the raft.FSM the server hands raft: its FSM, with an
// "fsm.apply" span around the apply of every command that carries a trace
// context, and, at debug level, a line per command a request caused,
// with the request's ID.
type applyTracer struct {
	*fsm.FSM
	s *Server
}

// tracedCommand is a command of the entry being applied that is traced or
// logged.
type tracedCommand struct {
	i    int // position in the entry
	ctx  context.Context
	span trace.Span // nil when not recorded
}

// Apply applies l, tracing and logging the commands of requests.
func (a applyTracer) Apply(l *raft.Log) any {
	s := a.s
	debug := s.logger.Enabled(context.Background(), slog.LevelDebug)
	if !s.tracing && !debug {
		return a.FSM.Apply(l)
	}
	e := a.FSM.DecodeEntry(l)
	cmds := e.Commands()
	var traced []tracedCommand
	for i, c := range cmds {
		if c == nil {
			continue
		}
		m := c.Meta()
		if m.TraceParent == "" && (m.RequestID == "" || !debug) {
			continue
		}
		t := tracedCommand{i: i, ctx: telemetry.ContextWithTraceParent(telemetry.WithRequestID(context.Background(), m.RequestID), m.TraceParent)}
		if s.tracing && m.TraceParent != "" {
			t.ctx, t.span = s.tracer.Start(t.ctx, "fsm.apply", trace.WithAttributes(
				attrServer.String(s.cfg.NodeID), attrCommand.String(c.Type().String()),
				attrIndex.Int64(int64(l.Index)), attrBatch.Int(len(cmds))))
		}
		traced = append(traced, t)
	}
	start := time.Now()
	out := a.FSM.ApplyEntry(e)
	if len(traced) == 0 {
		return out
	}
	d := time.Since(start)
	for _, t := range traced {
		r := resultAt(out, t.i)
		if t.span != nil {
			if r != nil && r.Err != nil {
				t.span.SetAttributes(attribute.String("moxxie.rejected", r.Err.Error()))
			}
			t.span.End()
		}
		if debug {
			attrs := []slog.Attr{slog.String("type", cmds[t.i].Type().String()), slog.Uint64("index", l.Index), slog.Duration("duration", d)}
			if r != nil && r.Err != nil {
				attrs = append(attrs, slog.String("rejected", r.Err.Error()))
			}
			s.logger.LogAttrs(t.ctx, slog.LevelDebug, "fsm apply", attrs...)
		}
	}
	return out
}

// resultAt returns the result of command i of an entry from what
// ApplyEntry returned, or nil.
func resultAt(out any, i int) *fsm.Result {
	switch v := out.(type) {
	case *fsm.Result:
		if i == 0 {
			return v
		}
	case []*fsm.Result:
		if i < len(v) {
			return v[i]
		}
	}
	return nil
}

// startForwardSpan starts the client span of a request forwarded to the
// leader and writes its trace context into the request's traceparent
// header; the batch frames carry the headers too. Without tracing no span
// is started (nil) and the request's own trace context, if any, is passed
// on as it came.
func (s *Server) startForwardSpan(r *http.Request) (*http.Request, trace.Span) {
	ctx := r.Context()
	var span trace.Span
	if s.tracing {
		ctx, span = s.tracer.Start(ctx, "forward", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
			attrServer.String(s.cfg.NodeID), attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path)))
		r = r.WithContext(ctx)
	}
	telemetry.Inject(ctx, r.Header)
	return r, span
}

// startOperationSpan returns ctx with the request ID and trace context of
// the request that started op, and starts the span of running it there
// (nil without tracing): the operation's platform calls join the trace
// of the request, however long after it they run.
func (s *Server) startOperationSpan(ctx context.Context, op *fsm.Operation) (context.Context, trace.Span) {
	ctx = telemetry.ContextWithTraceParent(telemetry.WithRequestID(ctx, op.RequestID), op.TraceParent)
	if !s.tracing {
		return ctx, nil
	}
	return s.tracer.Start(ctx, "operation "+op.Kind, trace.WithAttributes(
		attrServer.String(s.cfg.NodeID), attribute.String("moxxie.operation", op.ID), attribute.Int("moxxie.vmid", op.VMID)))
}
