package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moxxie/moxxie/agent"
	"github.com/moxxie/moxxie/client"
	"github.com/moxxie/moxxie/internal/lockedbuf"
	"github.com/moxxie/moxxie/sdn"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// spanAttr returns the string value of attribute key of span, or "".
func spanAttr(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// TestObservability_WriteTrace: a write sent to a follower gives one
// trace: the follower's API span, its forward to the leader, the leader's
// API span, the leader's raft apply and the FSM applies, each the child
// of the one before (the FSM apply on every server).
func TestObservability_WriteTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	servers := TestClusterOptions(t, 3, nil, func(int) Options { return Options{TracerProvider: tp} })
	leader := WaitForLeader(t, servers...)
	var follower *Server
	for _, s := range servers {
		if s != leader {
			follower = s
			break
		}
	}
	token := bootstrapToken(t, follower)

	r := call(t, follower, http.MethodPut, "/v1/cluster/settings/traced", token, map[string]string{"value": "1"}, nil)
	if r.status != http.StatusOK {
		t.Fatalf("write via %s: %d %s", follower.ID(), r.status, r.body)
	}
	reqID := r.header.Get("X-Request-Id")
	const route = "PUT /v1/cluster/settings/{key}"

	var spans []tracetest.SpanStub
	var root tracetest.SpanStub
	find := func(name, server string, parent trace.SpanContext) (tracetest.SpanStub, error) {
		for _, s := range spans {
			if s.Name == name && spanAttr(s, "moxxie.server") == server && s.Parent.SpanID() == parent.SpanID() {
				return s, nil
			}
		}
		var have []string
		for _, s := range spans {
			have = append(have, fmt.Sprintf("%s@%s", s.Name, spanAttr(s, "moxxie.server")))
		}
		return tracetest.SpanStub{}, fmt.Errorf("no span %q on %s under %s; trace has %v", name, server, parent.SpanID(), have)
	}
	WaitForResult(t, 10*time.Second, func() error {
		root, spans = tracetest.SpanStub{}, nil
		for _, s := range exp.GetSpans() {
			if s.Name == route && spanAttr(s, "moxxie.server") == follower.ID() && spanAttr(s, "moxxie.request_id") == reqID {
				root = s
			}
		}
		if !root.SpanContext.IsValid() {
			return fmt.Errorf("no API span of request %s on %s", reqID, follower.ID())
		}
		for _, s := range exp.GetSpans() {
			if s.SpanContext.TraceID() == root.SpanContext.TraceID() {
				spans = append(spans, s)
			}
		}
		fwd, err := find("forward", follower.ID(), root.SpanContext)
		if err != nil {
			return err
		}
		if fwd.SpanKind != trace.SpanKindClient || spanAttr(fwd, "moxxie.leader") != leader.ID() {
			return fmt.Errorf("forward span %+v", fwd)
		}
		lapi, err := find(route, leader.ID(), fwd.SpanContext)
		if err != nil {
			return err
		}
		if lapi.SpanKind != trace.SpanKindServer || spanAttr(lapi, "moxxie.request_id") != reqID || spanAttr(lapi, "http.response.status_code") != "200" {
			return fmt.Errorf("leader API span %+v", lapi.Attributes)
		}
		apply, err := find("raft.apply", leader.ID(), lapi.SpanContext)
		if err != nil {
			return err
		}
		if spanAttr(apply, "moxxie.command") != "setting_upsert" && spanAttr(apply, "moxxie.command") == "" {
			return fmt.Errorf("raft apply span %+v", apply.Attributes)
		}
		for _, s := range servers {
			if _, err := find("fsm.apply", s.ID(), apply.SpanContext); err != nil {
				return err
			}
		}
		return nil
	})
	if root.Parent.IsValid() {
		t.Fatalf("the follower's span has a parent %v though the client sent no traceparent", root.Parent)
	}
	if root.SpanKind != trace.SpanKindServer || !containsAttr(root.Attributes, "http.route", route) {
		t.Fatalf("follower API span %+v", root)
	}
	t.Logf("trace %s: %d spans", root.SpanContext.TraceID(), len(spans))
}

func containsAttr(kvs []attribute.KeyValue, key, value string) bool {
	for _, kv := range kvs {
		if string(kv.Key) == key && kv.Value.String() == value {
			return true
		}
	}
	return false
}

// logBuffer collects one component's JSON log lines.
type logBuffer struct{ lockedbuf.Buffer }

// records returns the log records, decoded.
func (b *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	data := b.Bytes()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// find returns the messages of the records whose attributes include all
// of want.
func (b *logBuffer) find(t *testing.T, want map[string]string) []string {
	t.Helper()
	var msgs []string
	for _, m := range b.records(t) {
		ok := true
		for k, v := range want {
			if s, _ := m[k].(string); s != v {
				ok = false
				break
			}
		}
		if ok {
			msg, _ := m["msg"].(string)
			msgs = append(msgs, msg)
		}
	}
	return msgs
}

// fakeKernel holds plans in memory: it "applies" a version once.
type fakeKernel struct {
	mu   sync.Mutex
	held uint64 // guarded by mu
}

func (k *fakeKernel) Apply(_ context.Context, p sdn.Plan) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.held == p.Version {
		return nil, nil
	}
	k.held = p.Version
	return []string{fmt.Sprintf("held version %d", p.Version)}, nil
}

func (k *fakeKernel) Verify(p sdn.Plan) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.held != p.Version {
		return []string{"version differs"}, nil
	}
	return nil, nil
}

func (k *fakeKernel) Watch(ctx context.Context, _ func()) error {
	<-ctx.Done()
	return nil
}

// agentAPI is the Moxxie API as an agent sees it, as moxxie-agent builds
// it.
type agentAPI struct{ c *client.Client }

func (s agentAPI) Enrol(ctx context.Context, h sdn.Host) error {
	_, _, err := s.c.SDNHostEnrol(ctx, h, nil)
	return err
}

func (s agentAPI) Plan(ctx context.Context, host string, index uint64, wait time.Duration) (agent.Assignment, uint64, error) {
	v, m, err := s.c.SDNHostPlan(ctx, host, &client.QueryOptions{Index: index, Wait: wait})
	if err != nil {
		return agent.Assignment{}, 0, err
	}
	return agent.Assignment{Version: v.Version, RolloutID: v.RolloutID, Phase: v.Phase, Plan: v.Plan, RequestID: v.RequestID}, m.Index, nil
}

func (s agentAPI) Report(ctx context.Context, host string, r agent.Report) error {
	_, _, err := s.c.SDNHostReport(ctx, host, client.SDNReport{
		Version: r.Version, State: r.State, Error: r.Error, Drift: r.Drift, Actions: r.Actions,
	}, nil)
	return err
}

// TestObservability_RequestIDCorrelation: the request ID of an sdn apply
// sent to a follower is in the follower's log, in the leader's (the
// forwarded request, its raft apply and FSM apply) and in the log of the
// agent that applies the version; the caller's traceparent puts its trace
// ID next to it, with tracing off.
func TestObservability_RequestIDCorrelation(t *testing.T) {
	logs := make([]*logBuffer, 3)
	servers := TestClusterOptions(t, 3, nil, func(i int) Options {
		logs[i] = &logBuffer{}
		return Options{Logger: slog.New(slog.NewJSONHandler(logs[i], &slog.HandlerOptions{Level: slog.LevelDebug}))}
	})
	leader := WaitForLeader(t, servers...)
	var follower *Server
	var fLog, lLog *logBuffer
	for i, s := range servers {
		if s == leader {
			lLog = logs[i]
		} else if follower == nil {
			follower, fLog = s, logs[i]
		}
	}
	token := bootstrapToken(t, follower)

	c, err := client.New(client.Config{Address: follower.URL(), Token: token, CACert: follower.cfg.TLS.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	agentLog := &logBuffer{}
	host := sdn.Host{Name: "obs1", Address: "192.0.2.10"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Config{
			Host: host, Server: agentAPI{c}, Kernel: &fakeKernel{}, Resync: time.Hour, Wait: 2 * time.Second,
			Logger: slog.New(slog.NewJSONHandler(agentLog, nil)).With("host", host.Name),
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	WaitForResult(t, 10*time.Second, func() error {
		if _, h, err := leader.State().SDNHost(nil, host.Name); err != nil || h == nil {
			return fmt.Errorf("host %s not enrolled yet (%v)", host.Name, err)
		}
		return nil
	})
	for _, w := range []struct {
		path string
		body any
	}{
		{"/v1/sdn/zones", sdn.Zone{ID: "obsz", Type: sdn.ZoneSimple}},
		{"/v1/sdn/vnets", sdn.Vnet{ID: "obsv", Zone: "obsz"}},
	} {
		if r := call(t, follower, http.MethodPost, w.path, token, w.body, nil); r.status != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", w.path, r.status, r.body)
		}
	}

	const (
		reqID   = "obs-apply-7f3a"
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	)
	r := call(t, follower, http.MethodPost, "/v1/sdn/apply", token, nil, map[string]string{
		"X-Request-ID": reqID,
		"Traceparent":  "00-" + traceID + "-00f067aa0ba902b7-01",
	})
	if r.status != http.StatusAccepted {
		t.Fatalf("sdn apply: %d %s", r.status, r.body)
	}
	if got := r.header.Get("X-Request-Id"); got != reqID {
		t.Fatalf("X-Request-ID %q", got)
	}

	WaitForResult(t, 15*time.Second, func() error {
		if len(agentLog.find(t, map[string]string{"msg": "applied", "request_id": reqID})) == 0 {
			return fmt.Errorf("the agent has not logged applying the rollout of %s", reqID)
		}
		return nil
	})
	both := map[string]string{"request_id": reqID, "trace_id": traceID}
	if msgs := fLog.find(t, both); !strings.Contains(strings.Join(msgs, "|"), "request") {
		t.Errorf("follower %s logged %q with the request and trace IDs\n%s", follower.ID(), msgs, fLog)
	}
	WaitForResult(t, 5*time.Second, func() error {
		msgs := strings.Join(lLog.find(t, both), "|")
		for _, want := range []string{"request", "raft apply", "fsm apply"} {
			if !strings.Contains(msgs, want) {
				return fmt.Errorf("leader %s logged %q with the request and trace IDs, not %q", leader.ID(), msgs, want)
			}
		}
		return nil
	})
	// The rollout records the request; its plan view tells the agents.
	rollouts, _, err := c.SDNRolloutList(context.Background(), nil)
	if err != nil || len(rollouts) != 1 || rollouts[0].RequestID != reqID {
		t.Fatalf("rollouts %+v, %v", rollouts, err)
	}
}

func TestConfig_Tracing(t *testing.T) {
	c := TestConfig(t, "s1")
	if c.Tracing.Endpoint != "" || c.Tracing.SampleRatio != 1 {
		t.Fatalf("default tracing %+v", c.Tracing)
	}
	env := map[string]string{"MOXXIE_TRACING_ENDPOINT": "http://otel:4318", "MOXXIE_TRACING_SAMPLE_RATIO": "0.25"}
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if c.Tracing.Endpoint != "http://otel:4318" || c.Tracing.SampleRatio != 0.25 {
		t.Fatalf("tracing from the environment %+v", c.Tracing)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []TracingConfig{{Endpoint: "otel:4318", SampleRatio: 1}, {SampleRatio: 1.5}, {SampleRatio: -0.1}} {
		c.Tracing = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "tracing.") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if err := c.ApplyEnv(func(k string) (string, bool) { return "x", k == "MOXXIE_TRACING_SAMPLE_RATIO" }); err == nil {
		t.Error("sample ratio x accepted")
	}
}
