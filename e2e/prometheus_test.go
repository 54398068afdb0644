package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moxxie/moxxie/internal/lockedbuf"
)

// TestDev_PrometheusScrapesClusterAndAgent starts a real Prometheus
// (Debian's package) on a free port, scraping the three servers of a dev
// appliance on their plain metrics listeners and a moxxie-agent holding a
// host namespace, and checks through Prometheus's HTTP API that every
// target is up and that the raft, API and agent series are there with
// sane values.
func TestDev_PrometheusScrapesClusterAndAgent(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus missing: apt-get install prometheus")
	}
	lab := requireNetns(t)
	dir := filepath.Join(t.TempDir(), "dev")
	startDev(t, dir)
	targets := readServerMetrics(t, dir)
	if len(targets) != 3 {
		t.Fatalf("servers.json lists metrics addresses %v, want 3", targets)
	}

	// One agent, enrolled and holding a committed plan.
	var tok struct {
		SecretID string `json:"secret_id"`
	}
	out, err := devctl(t, dir, "acl", "token", "create", "--role", "agent", "-o", "json")
	if err != nil || json.Unmarshal([]byte(jsonPart(out)), &tok) != nil {
		t.Fatalf("agent token: %v\n%s", err, out)
	}
	host := lab.hosts(1)[0]
	agentMetrics := freeAddr(t)
	startAgent(t, dir, "pve1", host, "192.0.2.1", tok.SecretID, t.TempDir(), "--metrics-address", agentMetrics)
	for _, args := range [][]string{
		{"sdn", "zone", "create", "loc", "--type", "simple"},
		{"sdn", "vnet", "create", "lan", "--zone", "loc"},
	} {
		if out, err := devctl(t, dir, args...); err != nil {
			t.Fatalf("moxxiectl %v: %v\n%s", args, err, out)
		}
	}
	waitUntil(t, 30*time.Second, "the agent enrolled and applied version 1", func() error {
		out, err := devctl(t, dir, "sdn", "apply", "--wait", "--timeout", "20s")
		if err != nil && !strings.Contains(out, "no hosts") {
			return fmt.Errorf("%v: %s", err, out)
		}
		if err != nil {
			return fmt.Errorf("not enrolled yet")
		}
		return nil
	})

	api := startPrometheus(t, promBin, fmt.Sprintf(`  - job_name: moxxied
    static_configs:
      - targets: [%s]
  - job_name: moxxie-agent
    static_configs:
      - targets: ["%s"]
`, `"`+strings.Join(targets, `", "`)+`"`, agentMetrics))

	waitUntil(t, 60*time.Second, "every target up in Prometheus", func() error {
		var r struct {
			Data struct {
				ActiveTargets []struct {
					ScrapeURL string `json:"scrapeUrl"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if err := getJSON(api+"targets", &r); err != nil {
			return err
		}
		if len(r.Data.ActiveTargets) != 4 {
			return fmt.Errorf("%d targets", len(r.Data.ActiveTargets))
		}
		for _, tg := range r.Data.ActiveTargets {
			if tg.Health != "up" {
				return fmt.Errorf("%s: %s %s", tg.ScrapeURL, tg.Health, tg.LastError)
			}
		}
		return nil
	})

	// Values, as Prometheus stored them.
	checks := []struct {
		query string
		ok    func(vals []float64) bool
		want  string
	}{
		{`up`, func(v []float64) bool { return len(v) == 4 && sum(v) == 4 }, "4 targets up"},
		{`sum(moxxie_raft_leader)`, func(v []float64) bool { return len(v) == 1 && v[0] == 1 }, "exactly one leader"},
		{`moxxie_raft_term`, func(v []float64) bool { return len(v) == 3 && minOf(v) >= 1 }, "a term >= 1 on every server"},
		{`moxxie_raft_commit_index - moxxie_raft_applied_index`, func(v []float64) bool { return len(v) == 3 && maxOf(v) < 1000 }, "applied close to commit on every server"},
		{`moxxie_raft_applied_index`, func(v []float64) bool { return len(v) == 3 && minOf(v) > 0 }, "an applied index on every server"},
		{`sum(moxxie_api_requests_total)`, func(v []float64) bool { return len(v) == 1 && v[0] > 0 }, "API requests counted"},
		{`count(moxxie_api_request_duration_seconds_bucket)`, func(v []float64) bool { return len(v) == 1 && v[0] > 0 }, "API latency histograms"},
		{`moxxie_build_info`, func(v []float64) bool { return len(v) == 4 }, "build info from the servers and the agent"},
		{`moxxie_agent_plan_version`, func(v []float64) bool { return len(v) == 1 && v[0] >= 1 }, "the agent's plan version"},
		{`sum(moxxie_agent_applies_total)`, func(v []float64) bool { return len(v) == 1 && v[0] >= 1 }, "agent applies counted"},
		// memory_limit auto on every server: 70% of this machine's memory,
		// never "no limit" (math.MaxInt64), and a dev cluster's heap far
		// below it, as MoxxieMemoryNearLimit reads them.
		{`go_gc_gomemlimit_bytes and on (cluster, job, instance) moxxie_raft_leader`, func(v []float64) bool { return len(v) == 3 && minOf(v) >= 64<<20 && maxOf(v) < 1<<50 }, "a memory limit on every server"},
		{`min_over_time(go_memstats_heap_alloc_bytes[30m]) / on (cluster, job, instance) go_gc_gomemlimit_bytes and on (cluster, job, instance) moxxie_raft_leader`, func(v []float64) bool { return len(v) == 3 && minOf(v) > 0 && maxOf(v) < 0.7 }, "every server's heap well below its memory limit"},
	}
	for _, c := range checks {
		waitUntil(t, 30*time.Second, c.want+" ("+c.query+")", func() error {
			vals, err := promQuery(api, c.query)
			if err != nil {
				return err
			}
			if !c.ok(vals) {
				return fmt.Errorf("got %v", vals)
			}
			return nil
		})
	}
}

// startPrometheus runs the Prometheus at promBin until the test ends,
// scraping every second with the scrape_configs entries scrapes and, when
// rules is set, evaluating the rules of that file every second. It
// returns the base URL of its HTTP API.
func startPrometheus(t *testing.T, promBin, scrapes string, rules ...string) string {
	t.Helper()
	promDir := t.TempDir()
	cfg := "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
	if len(rules) > 0 {
		cfg += "rule_files: [\"" + strings.Join(rules, `", "`) + "\"]\n"
	}
	cfg += "scrape_configs:\n" + scrapes
	if err := os.WriteFile(filepath.Join(promDir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)
	prom := exec.Command(promBin, "--config.file="+filepath.Join(promDir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(promDir, "data"), "--web.listen-address="+listen)
	promOut := &lockedbuf.Buffer{}
	prom.Stdout, prom.Stderr = promOut, promOut
	prom.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = prom.Process.Kill()
		_ = prom.Wait()
		if t.Failed() {
			t.Logf("prometheus:\n%s", promOut)
		}
	})
	return "http://" + listen + "/api/v1/"
}

// readServerMetrics returns the plain metrics addresses servers.json lists.
func readServerMetrics(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "servers.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []struct {
		MetricsAddress string `json:"metrics_address"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, s := range out {
		if s.MetricsAddress != "" {
			addrs = append(addrs, s.MetricsAddress)
		}
	}
	return addrs
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])
}

func getJSON(u string, out any) error {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// promQuery runs an instant query and returns the values of its vector.
func promQuery(api, q string) ([]float64, error) {
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(api+"query?query="+url.QueryEscape(q), &r); err != nil {
		return nil, err
	}
	var vals []float64
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("value %v: %w", s.Value, err)
		}
		vals = append(vals, v)
	}
	return vals, nil
}

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

func minOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
