package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRunLoad(t *testing.T) {
	cfg := loadConfig{Clients: 4, Warmup: 20 * time.Millisecond, Duration: 100 * time.Millisecond}
	do := func(ctx context.Context, c int, seq uint64) outcome {
		time.Sleep(time.Millisecond)
		if seq%10 == 0 {
			return outcome{Class: "503", Detail: "no leader"}
		}
		return outcome{}
	}
	lr := runLoad(context.Background(), cfg, do)
	if lr.Elapsed < 90*time.Millisecond || lr.Elapsed > 100*time.Millisecond {
		t.Errorf("Elapsed = %v, want about 100ms", lr.Elapsed)
	}
	if lr.OK == 0 || len(lr.Latencies) != lr.OK {
		t.Errorf("OK = %d with %d latencies", lr.OK, len(lr.Latencies))
	}
	if lr.Errors["503"] == 0 || lr.ErrorSamples["503"] != "no leader" {
		t.Errorf("Errors = %v, samples %v", lr.Errors, lr.ErrorSamples)
	}
	if ratio := float64(lr.Errors["503"]) / float64(lr.OK+lr.Errors["503"]); ratio < 0.05 || ratio > 0.15 {
		t.Errorf("error share %.2f, want about 0.1", ratio)
	}
	if lr.CPU == nil {
		t.Error("CPU usage missing")
	}
	r := newResult(cfg, lr)
	if r.WritesPerSecond <= 0 || r.Latency.Count != lr.OK {
		t.Errorf("result = %+v", r)
	}
}

func TestSend(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/busy" {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error": {"code": "no_leader"}}`))
			return
		}
		w.Write([]byte(`{"ok": true}`))
	}))
	defer ts.Close()
	tr, err := newTransport("", 4)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: tr}
	ctx := context.Background()
	if o, body := send(ctx, c, http.MethodPut, ts.URL+"/ok", "tok", []byte(`{}`), time.Second, 200); o.Class != "" || string(body) != `{"ok": true}` {
		t.Errorf("ok: %+v %q", o, body)
	}
	if o, _ := send(ctx, c, http.MethodPut, ts.URL+"/busy", "tok", []byte(`{}`), time.Second, 200); o.Class != "503" || o.Detail != `{"error": {"code": "no_leader"}}` {
		t.Errorf("busy: %+v", o)
	}
	ts.Close()
	tr.CloseIdleConnections()
	if o, _ := send(ctx, c, http.MethodPut, ts.URL+"/ok", "tok", []byte(`{}`), time.Second, 200); o.Class != "conn-refused" {
		t.Errorf("closed server: %+v", o)
	}
}
