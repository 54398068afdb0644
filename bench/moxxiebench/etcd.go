package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

func etcdCmd(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := newFlagSet("etcd", stderr)
	var lf loadFlags
	lf.register(fs)
	endpoints := fs.String("endpoints", "http://127.0.0.1:2379", "comma-separated etcd client URLs; clients are spread round-robin over them")
	cacert := fs.String("cacert", "", "CA certificate for https endpoints")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: moxxiebench etcd --endpoints URLs [flags]\n\nConcurrent durable puts through etcd's HTTP gateway: POST /v3/kv/put {\"key\", \"value\"} (base64).\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if err := lf.validate(); err != nil {
		return err
	}
	eps := splitList(*endpoints)
	if len(eps) == 0 {
		return errors.New("--endpoints is required")
	}
	tr, err := newTransport(*cacert, lf.clients)
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}

	fmt.Fprintf(stderr, "waiting for etcd (up to %v)\n", lf.readyTimeout)
	if err := waitEtcd(ctx, hc, eps, lf.readyTimeout); err != nil {
		return err
	}

	value := base64.StdEncoding.EncodeToString([]byte(valueOf(lf.valueSize)))
	urls := make([]string, lf.clients)
	for c := range urls {
		urls[c] = eps[c%len(eps)] + "/v3/kv/put"
	}
	do := func(ctx context.Context, c int, seq uint64) outcome {
		key := base64.StdEncoding.EncodeToString([]byte(keyName(seq, lf.keys)))
		body := []byte(`{"key":"` + key + `","value":"` + value + `"}`)
		o, _ := send(ctx, hc, http.MethodPost, urls[c], "", body, lf.timeout, http.StatusOK)
		return o
	}
	fmt.Fprintf(stderr, "etcd put: %d clients over %s, %v warm-up + %v\n", lf.clients, strings.Join(eps, ","), lf.warmup, lf.duration)
	started := time.Now()
	lr := runLoad(ctx, lf.config(), do)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	r := newResult(lf.config(), lr)
	r.System, r.Target, r.Endpoints, r.Label = "etcd", "all", eps, "etcd /v3/kv/put"
	r.Started = started.UTC().Format(time.RFC3339)
	lf.fill(&r)
	return lf.emit(stdout, r)
}

// waitEtcd polls GET /health on every endpoint until each reports healthy
// (which requires a leader).
func waitEtcd(ctx context.Context, hc *http.Client, eps []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, ep := range eps {
		for {
			o, body := send(ctx, hc, http.MethodGet, ep+"/health", "", nil, 2*time.Second, http.StatusOK)
			var h struct {
				Health string `json:"health"`
			}
			if o.Class == "" && json.Unmarshal(body, &h) == nil && h.Health == "true" {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("etcd %s not healthy after %v: %s %s%s", ep, timeout, o.Class, o.Detail, snippet(body))
			}
			if !sleepCtx(ctx, 100*time.Millisecond) {
				return ctx.Err()
			}
		}
	}
	return nil
}
