package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// maxAllocCount is the largest count one allocation may ask for
// (fsm.MaxAllocateCount).
const maxAllocCount = 4096

// errExhausted reports that the prefix of an alloc run ran out of
// addresses: the run measured allocations that failed, not throughput.
var errExhausted = errors.New("prefix exhausted")

func allocCmd(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := newFlagSet("alloc", stderr)
	var lf loadFlags
	lf.registerLoad(fs)
	addr := fs.String("addr", os.Getenv("MOXXIE_ADDR"), "comma-separated API base URLs (default $MOXXIE_ADDR)")
	token := fs.String("token", os.Getenv("MOXXIE_TOKEN"), "bearer token (default $MOXXIE_TOKEN)")
	cacert := fs.String("cacert", os.Getenv("MOXXIE_CACERT"), "cluster CA certificate (default $MOXXIE_CACERT)")
	target := fs.String("target", "all", "all: spread clients round-robin over --addr (followers forward); leader: send every allocation to the leader found by /v1/status")
	count := fs.Int("count", 1, fmt.Sprintf("addresses per allocation, 1-%d", maxAllocCount))
	prefix := fs.String("prefix", "10.0.0.0/8", "active prefix to allocate from, created before the load")
	tenant := fs.String("tenant", "", "allocate for this tenant, created first (if missing) with an IPv4 quota no run reaches, so every allocation passes quota admission")
	zone := fs.String("dns-zone", "", "give each address a DNS name in this forward zone, created first (if missing), as c<CLIENT>-<I>.<ZONE>; needs --count 1")
	vrf := fs.String("vrf", "", "VRF of --prefix; empty: create a VRF bench-XXXXXXXX for this run, so the prefix is new and empty (an existing --prefix in a named VRF is reused)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: moxxiebench alloc --addr URLs --token T --cacert F [--count N] [--prefix CIDR] [flags]\n\n"+
			"Concurrent address allocations: POST /v1/ipam/prefixes/{id}/allocate {\"count\": N, \"owner\": \"vm:CLIENT/netI\"},\n"+
			"each with its own Idempotency-Key. The run fails if the prefix runs out.\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	lf.keys = 1 // no key space in alloc; validate wants one
	if err := lf.validate(); err != nil {
		return err
	}
	if *count < 1 || *count > maxAllocCount {
		return fmt.Errorf("--count must be between 1 and %d", maxAllocCount)
	}
	if *zone != "" && *count != 1 {
		return errors.New("--dns-zone needs --count 1: an address has a name of its own")
	}
	pfx, err := netip.ParsePrefix(*prefix)
	if err != nil {
		return fmt.Errorf("--prefix: %w", err)
	}
	if pfx != pfx.Masked() {
		return fmt.Errorf("--prefix %s is not canonical: did you mean %s?", pfx, pfx.Masked())
	}
	addrs := splitList(*addr)
	if len(addrs) == 0 {
		return errors.New("--addr (or $MOXXIE_ADDR) is required")
	}
	if *target != "all" && *target != "leader" {
		return fmt.Errorf("--target must be all or leader, not %q", *target)
	}
	tr, err := newTransport(*cacert, lf.clients)
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	api := &moxxieAPI{client: hc, token: *token, timeout: lf.timeout}

	fmt.Fprintf(stderr, "waiting for a leader (up to %v)\n", lf.readyTimeout)
	st, err := api.waitLeader(ctx, addrs, lf.readyTimeout)
	if err != nil {
		return err
	}
	leader, err := leaderAddr(st)
	if err != nil {
		return err
	}
	endpoints := addrs
	if *target == "leader" {
		endpoints = []string{leader}
	}

	run, err := runID()
	if err != nil {
		return err
	}
	sp := allocSetup{api: api, base: leader, run: run, timeout: lf.readyTimeout}
	if *tenant != "" {
		if err := sp.tenant(ctx, *tenant); err != nil {
			return err
		}
	}
	if *zone != "" {
		if err := sp.zone(ctx, *zone); err != nil {
			return err
		}
	}
	v, id, err := sp.prefix(ctx, *vrf, pfx.String())
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "allocating from prefix %s (%s in VRF %s)\n", id, pfx, v)

	loadCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	do := allocRequest(hc, *token, endpoints, id, run, *tenant, *zone, *count, lf.clients, lf.timeout, cancel)
	fmt.Fprintf(stderr, "moxxie alloc: %d clients, %d addresses per request, target %s (%s), %v warm-up + %v\n",
		lf.clients, *count, *target, strings.Join(endpoints, ","), lf.warmup, lf.duration)
	started := time.Now()
	lr := runLoad(loadCtx, lf.config(), do)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if err := context.Cause(loadCtx); err != nil {
		return err
	}
	r := newResult(lf.config(), lr)
	r.System, r.Target, r.Endpoints = "moxxie", *target, endpoints
	r.Label = fmt.Sprintf("moxxie alloc %d --target %s", *count, *target)
	if lf.label != "" {
		r.Label = lf.label
	}
	r.Count, r.Prefix, r.VRF, r.Tenant, r.DNSZone = *count, pfx.String(), v, *tenant, *zone
	r.AddressesPerSecond = r.WritesPerSecond * float64(*count)
	r.Started = started.UTC().Format(time.RFC3339)
	return lf.emit(stdout, r)
}

// allocRequest returns the request of an alloc run: client c asks the
// prefix for count addresses through endpoints[c % len], for owner
// vm:c/netI (I counting that client's requests) and tenant (when set),
// under the Idempotency-Key run-seq. A success is a 201 that lists count addresses. When the prefix
// has run out, it calls stop with an error wrapping errExhausted.
func allocRequest(hc *http.Client, token string, endpoints []string, prefixID, run, tenant, zone string, count, clients int, timeout time.Duration, stop context.CancelCauseFunc) requestFunc {
	withTenant := ""
	if tenant != "" {
		withTenant = fmt.Sprintf(`,"tenant":%q`, tenant)
	}
	urls := make([]string, clients)
	for c := range urls {
		urls[c] = endpoints[c%len(endpoints)] + "/v1/ipam/prefixes/" + url.PathEscape(prefixID) + "/allocate"
	}
	// sent[c] is touched only by client c's goroutine.
	sent := make([]uint64, clients)
	return func(ctx context.Context, c int, seq uint64) outcome {
		body := fmt.Appendf(nil, `{"count":%d,"owner":"vm:%d/net%d"%s`, count, c, sent[c], withTenant)
		if zone != "" {
			body = fmt.Appendf(body, `,"dns_name":"c%d-%d.%s"`, c, sent[c], zone)
		}
		body = append(body, '}')
		sent[c]++
		hdr := http.Header{"Idempotency-Key": {run + "-" + strconv.FormatUint(seq, 10)}}
		o, resp := sendHeader(ctx, hc, http.MethodPost, urls[c], token, hdr, body, timeout, http.StatusCreated)
		if o.Class != "" {
			if o.Class == "409" && errorCode(o.Detail) == "exhausted" {
				stop(fmt.Errorf("%w at request %d (use a larger --prefix): %s", errExhausted, seq, o.Detail))
			}
			return o
		}
		// Every Address object has exactly one "address" member; the
		// wrapper's "addresses" does not match.
		if n := bytes.Count(resp, []byte(`"address"`)); n != count {
			return outcome{Class: "short", Detail: fmt.Sprintf("201 with %d addresses, want %d: %s", n, count, snippet(resp))}
		}
		return outcome{}
	}
}

// errorCode returns the code of a Moxxie error body
// ({"error": {"code": ...}}), or "" if it is not one.
func errorCode(body string) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(body), &e) != nil {
		return ""
	}
	return e.Error.Code
}

// runID returns 8 random hex digits naming one run, in its VRF and its
// idempotency keys.
func runID() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// allocSetup creates what an alloc run allocates from, through base.
type allocSetup struct {
	api  *moxxieAPI
	base string
	// run names the run: the VRF bench-run and the idempotency keys.
	run string
	// timeout bounds the retries of each setup request.
	timeout time.Duration
}

// prefix makes sure the active prefix cidr exists in vrf and returns the
// VRF and the prefix's ID. With vrf empty it creates the VRF bench-RUN
// first, so the prefix is new. A prefix that already exists (409) is
// looked up and reused if it is the same active prefix.
func (s *allocSetup) prefix(ctx context.Context, vrf, cidr string) (string, string, error) {
	if vrf == "" {
		vrf = "bench-" + s.run
		body, _ := json.Marshal(map[string]string{"id": vrf, "description": "moxxiebench alloc"})
		if _, err := s.post(ctx, "/v1/ipam/vrfs", "vrf", body); err != nil {
			return "", "", err
		}
	}
	body, _ := json.Marshal(map[string]string{"prefix": cidr, "vrf": vrf, "status": "active", "description": "moxxiebench alloc"})
	created, err := s.post(ctx, "/v1/ipam/prefixes", "prefix", body)
	var conflict *conflictError
	switch {
	case errors.As(err, &conflict):
		id, lerr := s.lookup(ctx, vrf, cidr)
		if lerr != nil {
			return "", "", fmt.Errorf("%w; %w", err, lerr)
		}
		return vrf, id, nil
	case err != nil:
		return "", "", err
	}
	var p struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(created, &p); err != nil || p.ID == "" {
		return "", "", fmt.Errorf("POST /v1/ipam/prefixes: no id in %s", snippet(created))
	}
	return vrf, p.ID, nil
}

// tenant creates tenant with an IPv4 quota of 2^40 addresses, unless it
// exists.
func (s *allocSetup) tenant(ctx context.Context, name string) error {
	body, _ := json.Marshal(map[string]any{"id": name, "description": "moxxiebench alloc", "quota": map[string]int64{"ipv4_addresses": 1 << 40}})
	_, err := s.post(ctx, "/v1/tenants", "tenant", body)
	if errors.As(err, new(*conflictError)) {
		return nil
	}
	return err
}

// zone creates the forward DNS zone name, unless it exists.
func (s *allocSetup) zone(ctx context.Context, name string) error {
	body, _ := json.Marshal(map[string]string{"name": name, "description": "moxxiebench alloc"})
	_, err := s.post(ctx, "/v1/dns/zones", "zone", body)
	if errors.As(err, new(*conflictError)) {
		return nil
	}
	return err
}

// lookup finds the active prefix cidr in vrf and returns its ID.
func (s *allocSetup) lookup(ctx context.Context, vrf, cidr string) (string, error) {
	path := "/v1/ipam/prefixes?" + url.Values{"vrf": {vrf}, "contains": {cidr}}.Encode()
	o, body := send(ctx, s.api.client, http.MethodGet, s.base+path, s.api.token, nil, s.api.timeout, http.StatusOK)
	if o.Class != "" {
		return "", fmt.Errorf("GET %s: %s %s", path, o.Class, o.Detail)
	}
	var list struct {
		Prefixes []struct {
			ID     string `json:"id"`
			Prefix string `json:"prefix"`
			Status string `json:"status"`
		} `json:"prefixes"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return "", fmt.Errorf("GET %s: %w", path, err)
	}
	for _, p := range list.Prefixes {
		if p.Prefix == cidr {
			if p.Status != "active" {
				return "", fmt.Errorf("prefix %s in VRF %s is %s, not active", cidr, vrf, p.Status)
			}
			return p.ID, nil
		}
	}
	return "", fmt.Errorf("prefix %s is not in VRF %s; it overlaps another prefix", cidr, vrf)
}

// conflictError is a 409 answer to a setup request.
type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }

// post sends one setup request, expecting 201, and returns the body. It
// retries 5xx answers and transport errors (a cluster that has just
// elected its leader) for up to s.timeout under one Idempotency-Key, so a
// retry never creates twice. A 409 is a *conflictError.
func (s *allocSetup) post(ctx context.Context, path, what string, body []byte) ([]byte, error) {
	hdr := http.Header{"Idempotency-Key": {s.run + "-setup-" + what}}
	deadline := time.Now().Add(s.timeout)
	for {
		o, resp := sendHeader(ctx, s.api.client, http.MethodPost, s.base+path, s.api.token, hdr, body, s.api.timeout, http.StatusCreated)
		switch {
		case o.Class == "":
			return resp, nil
		case o.Class == "409":
			return nil, &conflictError{fmt.Sprintf("POST %s %s: 409 %s", path, body, o.Detail)}
		case strings.HasPrefix(o.Class, "4"), time.Now().After(deadline):
			return nil, fmt.Errorf("POST %s %s: %s %s", path, body, o.Class, o.Detail)
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
}
