package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeIPAM is a one-server Moxxie that serves what alloc uses: status,
// VRF and prefix creation, prefix lookup and allocation.
type fakeIPAM struct {
	t   *testing.T
	srv *httptest.Server

	// existing makes prefix creation answer 409 and the lookup list this
	// prefix.
	existing string
	// capacity is how many addresses the prefix holds (0: unlimited).
	capacity int
	// short makes allocations answer one address fewer than asked for.
	short bool

	mu    sync.Mutex
	keys  map[string]bool   // guarded by mu
	vrfs  []string          // guarded by mu
	given int               // guarded by mu
	bad   []string          // guarded by mu
	names map[string]bool   // guarded by mu; the dns_names allocated
	setup map[string]string // path -> body; guarded by mu
}

var ownerRE = regexp.MustCompile(`^vm:[0-9]+/net[0-9]+$`)

func newFakeIPAM(t *testing.T) *fakeIPAM {
	f := &fakeIPAM{t: t, keys: map[string]bool{}, setup: map[string]string{}, names: map[string]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIPAM) fail(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bad = append(f.bad, fmt.Sprintf(format, args...))
}

func (f *fakeIPAM) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer tok" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	body, _ := io.ReadAll(r.Body)
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/status":
		fmt.Fprintf(w, `{"leader":"s1","servers":[{"id":"s1","api_address":%q,"state":"leader"}]}`, f.srv.URL)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/ipam/vrfs":
		var v struct{ ID string }
		json.Unmarshal(body, &v)
		f.mu.Lock()
		f.vrfs = append(f.vrfs, v.ID)
		f.setup[r.URL.Path] = string(body)
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":%q}`, v.ID)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/ipam/prefixes":
		f.mu.Lock()
		f.setup[r.URL.Path] = string(body)
		f.mu.Unlock()
		if f.existing != "" {
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error":{"code":"conflict","field":"prefix","message":"overlaps"}}`))
			return
		}
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"id":"p-new","prefix":"10.0.0.0/8","status":"active"}`))
	case r.Method == http.MethodGet && r.URL.Path == "/v1/ipam/prefixes":
		if q := r.URL.Query(); q.Get("vrf") != "lab" || q.Get("contains") != f.existing {
			f.fail("lookup query %q", r.URL.RawQuery)
		}
		fmt.Fprintf(w, `{"prefixes":[{"id":"p-parent","prefix":"10.0.0.0/8","status":"container"},{"id":"p-old","prefix":%q,"status":"active"}]}`, f.existing)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/dns/zones":
		f.mu.Lock()
		f.setup[r.URL.Path] = string(body)
		f.mu.Unlock()
		w.WriteHeader(http.StatusConflict) // as if an earlier run made it
		w.Write([]byte(`{"error":{"code":"conflict","field":"name","message":"zone exists"}}`))
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/allocate"):
		f.allocate(w, r, body)
	default:
		f.fail("unexpected %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusNotFound)
	}
}

func (f *fakeIPAM) allocate(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct {
		Count   int    `json:"count"`
		Owner   string `json:"owner"`
		DNSName string `json:"dns_name"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Count < 1 || !ownerRE.MatchString(req.Owner) {
		f.fail("allocate body %s", body)
	}
	f.mu.Lock()
	if req.DNSName != "" {
		if f.names[req.DNSName] {
			f.bad = append(f.bad, "dns_name "+req.DNSName+" used twice")
		}
		f.names[req.DNSName] = true
	}
	f.mu.Unlock()
	key := r.Header.Get("Idempotency-Key")
	f.mu.Lock()
	if key == "" || f.keys[key] {
		f.bad = append(f.bad, fmt.Sprintf("Idempotency-Key %q empty or reused", key))
	}
	f.keys[key] = true
	if f.capacity > 0 && f.given+req.Count > f.capacity {
		f.mu.Unlock()
		w.WriteHeader(http.StatusConflict)
		fmt.Fprintf(w, `{"error":{"code":"exhausted","field":"count","message":"%d requested, 0 available"}}`, req.Count)
		return
	}
	first := f.given
	f.given += req.Count
	f.mu.Unlock()
	n := req.Count
	if f.short {
		n--
	}
	var b bytes.Buffer
	b.WriteString(`{"addresses":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"a%d","address":"10.0.%d.%d","prefix_id":"p","owner":%q}`, first+i, (first+i)/256, (first+i)%256, req.Owner)
	}
	b.WriteString("]}\n")
	w.WriteHeader(http.StatusCreated)
	w.Write(b.Bytes())
}

// run runs moxxiebench alloc against f with extra args and returns its
// result and error.
func (f *fakeIPAM) run(t *testing.T, args ...string) (Result, string, error) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "alloc.json")
	args = append([]string{"--addr", f.srv.URL, "--token", "tok", "--cacert", "", "--clients", "4",
		"--warmup", "20ms", "--duration", "150ms", "--ready-timeout", "2s", "--out", out}, args...)
	var stdout, stderr bytes.Buffer
	err := allocCmd(context.Background(), &stdout, &stderr, args)
	var r Result
	if err == nil {
		b, rerr := os.ReadFile(out)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if jerr := json.Unmarshal(b, &r); jerr != nil {
			t.Fatal(jerr)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.bad {
		t.Error(b)
	}
	return r, stdout.String(), err
}

func TestAllocCmd(t *testing.T) {
	for _, target := range []string{"all", "leader"} {
		t.Run(target, func(t *testing.T) {
			f := newFakeIPAM(t)
			r, out, err := f.run(t, "--count", "3", "--target", target)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK == 0 || len(r.Errors) != 0 {
				t.Fatalf("OK = %d, errors %v", r.OK, r.Errors)
			}
			if r.Count != 3 || r.AddressesPerSecond != 3*r.WritesPerSecond {
				t.Errorf("count %d, %.1f addresses/s at %.1f requests/s", r.Count, r.AddressesPerSecond, r.WritesPerSecond)
			}
			if r.Label != "moxxie alloc 3 --target "+target || r.System != "moxxie" || r.Target != target || r.Prefix != "10.0.0.0/8" {
				t.Errorf("result %+v", r)
			}
			if len(f.vrfs) != 1 || r.VRF != f.vrfs[0] || !strings.HasPrefix(r.VRF, "bench-") {
				t.Errorf("VRF %q, created %q", r.VRF, f.vrfs)
			}
			if !strings.Contains(f.setup["/v1/ipam/prefixes"], `"vrf":"`+r.VRF+`"`) {
				t.Errorf("prefix created with %s", f.setup["/v1/ipam/prefixes"])
			}
			if !strings.Contains(out, "requests/s") || !strings.Contains(out, "addresses/s") {
				t.Errorf("output:\n%s", out)
			}
		})
	}
}

// TestAllocCmd_DNSZone checks that --dns-zone makes the zone (an existing
// one is fine) and names every address differently in it.
func TestAllocCmd_DNSZone(t *testing.T) {
	f := newFakeIPAM(t)
	r, _, err := f.run(t, "--dns-zone", "bench.test")
	if err != nil {
		t.Fatal(err)
	}
	if r.OK == 0 || r.DNSZone != "bench.test" {
		t.Fatalf("OK = %d, zone %q", r.OK, r.DNSZone)
	}
	if !strings.Contains(f.setup["/v1/dns/zones"], `"name":"bench.test"`) {
		t.Errorf("zone created with %s", f.setup["/v1/dns/zones"])
	}
	f.mu.Lock()
	if len(f.names) != f.given {
		t.Errorf("%d names for %d addresses", len(f.names), f.given)
	}
	for n := range f.names {
		if !strings.HasSuffix(n, ".bench.test") || !strings.HasPrefix(n, "c") {
			t.Errorf("name %q", n)
		}
		break
	}
	f.mu.Unlock()
	if _, _, err := f.run(t, "--dns-zone", "bench.test", "--count", "2"); err == nil || !strings.Contains(err.Error(), "--count 1") {
		t.Errorf("--dns-zone with --count 2: %v", err)
	}
}

func TestAllocCmd_ExistingPrefix(t *testing.T) {
	f := newFakeIPAM(t)
	f.existing = "10.1.0.0/16"
	r, _, err := f.run(t, "--vrf", "lab", "--prefix", "10.1.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.vrfs) != 0 {
		t.Errorf("created VRFs %q with --vrf given", f.vrfs)
	}
	if r.VRF != "lab" || r.Prefix != "10.1.0.0/16" || r.OK == 0 {
		t.Errorf("result %+v", r)
	}
}

func TestAllocCmd_Exhausted(t *testing.T) {
	f := newFakeIPAM(t)
	f.capacity = 50
	_, _, err := f.run(t, "--count", "2")
	if !errors.Is(err, errExhausted) || !strings.Contains(err.Error(), "0 available") {
		t.Fatalf("err = %v, want exhausted", err)
	}
}

func TestAllocCmd_ShortAnswer(t *testing.T) {
	f := newFakeIPAM(t)
	f.short = true
	r, _, err := f.run(t, "--count", "5")
	if err != nil {
		t.Fatal(err)
	}
	if r.OK != 0 || r.Errors["short"] == 0 || !strings.Contains(r.ErrorSamples["short"], "201 with 4 addresses, want 5") {
		t.Errorf("OK %d, errors %v, samples %v", r.OK, r.Errors, r.ErrorSamples)
	}
}

func TestAllocCmd_Flags(t *testing.T) {
	for _, args := range [][]string{
		{"--count", "0"},
		{"--count", "4097"},
		{"--prefix", "10.0.0.5/8"},
		{"--prefix", "nonsense"},
		{"--target", "follower"},
		{"--value-size", "10"},
	} {
		var stderr bytes.Buffer
		all := append([]string{"--addr", "http://127.0.0.1:1"}, args...)
		if err := allocCmd(context.Background(), io.Discard, &stderr, all); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

func TestErrorCode(t *testing.T) {
	for body, want := range map[string]string{
		`{"error":{"code":"exhausted","field":"count"}}`: "exhausted",
		`{"error": {"code": "conflict"}}`:                "conflict",
		`not json`:                                       "",
		`{"error":{"code":"exhausted","message":"trun`:   "",
	} {
		if got := errorCode(body); got != want {
			t.Errorf("errorCode(%q) = %q, want %q", body, got, want)
		}
	}
}

func TestSingleBases(t *testing.T) {
	e := Result{System: "etcd"}
	a1, l1 := Result{System: "moxxie", Count: 1, Target: "all"}, Result{System: "moxxie", Count: 1, Target: "leader"}
	a100, l100 := Result{System: "moxxie", Count: 100, Target: "all"}, Result{System: "moxxie", Count: 100, Target: "leader"}
	w := Result{System: "moxxie", Target: "all"}
	tests := []struct {
		in   []Result
		want []int
	}{
		{[]Result{e, a1, l1, a100}, []int{-1, -1, -1, 1}},
		{[]Result{e, a1, a100, e, a1, a100}, []int{-1, -1, 1, -1, -1, 4}},
		{[]Result{a100, a1}, []int{1, -1}},
		{[]Result{a1, l100, w}, []int{-1, -1, -1}},
		{[]Result{l1, a1, l100}, []int{-1, -1, 0}},
	}
	for _, tt := range tests {
		if got := singleBases(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("singleBases(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestRoundless(t *testing.T) {
	for in, want := range map[string]string{
		"etcd /v3/kv/put #3":          "etcd /v3/kv/put",
		"moxxie alloc 1 --target all": "moxxie alloc 1 --target all",
		"run #x":                      "run #x",
		"moxxie alloc 100 #12":        "moxxie alloc 100",
	} {
		if got := roundless(in); got != want {
			t.Errorf("roundless(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func allocResult(label string, count int, target string, rps float64) Result {
	return Result{Label: label, System: "moxxie", Count: count, Target: target, Clients: 64, OK: 1,
		WritesPerSecond: rps, AddressesPerSecond: rps * float64(count), Latency: Summary{P99: 40}}
}

func TestPrintReport_Alloc(t *testing.T) {
	rs := []Result{
		{Label: "etcd #1", System: "etcd", Clients: 64, WritesPerSecond: 2000, Latency: Summary{P99: 50}},
		allocResult("moxxie alloc 1 --target all #1", 1, "all", 2200),
		allocResult("moxxie alloc 1 --target leader #1", 1, "leader", 1800),
		allocResult("moxxie alloc 100 --target all #1", 100, "all", 300),
		{Label: "etcd #2", System: "etcd", Clients: 64, WritesPerSecond: 1000, Latency: Summary{P99: 70}},
		allocResult("moxxie alloc 1 --target all #2", 1, "all", 1500),
		allocResult("moxxie alloc 1 --target leader #2", 1, "leader", 1600),
		allocResult("moxxie alloc 100 --target all #2", 100, "all", 100),
	}
	var buf bytes.Buffer
	printReport(&buf, rs)
	printMedians(&buf, rs)
	out := buf.String()
	for _, want := range []string{
		"addresses/s",
		"moxxie alloc 1 --target all #1: 2200 allocations/s >= etcd #1 2000: met (1.10x)",
		"moxxie alloc 1 --target leader #1: 1800 allocations/s >= etcd #1 2000: MISSED (0.90x)",
		"moxxie alloc 100 --target all #1: 30000 addresses/s >= 10x moxxie alloc 1 --target all #1 2200: met (13.6x)",
		"moxxie alloc 1 --target all #2: 1500 allocations/s >= etcd #2 1000: met (1.50x)",
		"moxxie alloc 100 --target all #2: 10000 addresses/s >= 10x moxxie alloc 1 --target all #2 1500: MISSED (6.7x)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	// Medians: etcd 1500; alloc 1 all 1850 req/s, ratios 1.10 and 1.50;
	// alloc 100 all 20000 addresses/s, ratios 13.6 and 6.7.
	for _, re := range []string{
		`etcd +2 +1500 +- +60ms +-`,
		`moxxie alloc 1 --target all +2 +1850 +1850 +40ms +1.30x vs etcd`,
		`moxxie alloc 100 --target all +2 +200 +20000 +40ms +10.15x vs count 1`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("medians lack %q:\n%s", re, out)
		}
	}
	if strings.Contains(out, "p99 40ms < 100ms") {
		t.Errorf("alloc runs checked against the write p99 target:\n%s", out)
	}

	buf.Reset()
	printReport(&buf, rs[:1])
	if strings.Contains(buf.String(), "addresses") {
		t.Errorf("report without alloc runs shows addresses:\n%s", buf.String())
	}
}
