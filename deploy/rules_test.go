package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

const (
	rulesFile     = "prometheus/moxxie-rules.yml"
	rulesTestFile = "prometheus/moxxie-rules_test.yml"
	// runbookBase is where every alert's runbook_url points: a file under
	// docs/runbooks/ of this repository.
	runbookBase = "https://github.com/moxxie/moxxie/blob/main/"
)

// ruleFile is a Prometheus rule file.
type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []rule `yaml:"rules"`
	} `yaml:"groups"`
}

// rule is a recording rule (Record set) or an alerting rule (Alert set).
type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// name is the rule's record or alert name.
func (r rule) name() string {
	if r.Record != "" {
		return r.Record
	}
	return r.Alert
}

// ruleTestFile is the part of a promtool unit test file the tests read.
type ruleTestFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	var rf ruleFile
	readYAML(t, rulesFile, &rf)
	if len(rf.Groups) == 0 {
		t.Fatalf("%s: no rule groups", rulesFile)
	}
	return rf
}

// recordedRules returns the names of the recording rules of rf.
func recordedRules(rf ruleFile) map[string]bool {
	out := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				out[r.Record] = true
			}
		}
	}
	return out
}

// alertNames returns the distinct alert names of rf, sorted.
func alertNames(rf ruleFile) []string {
	seen := map[string]bool{}
	var out []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" && !seen[r.Alert] {
				seen[r.Alert] = true
				out = append(out, r.Alert)
			}
		}
	}
	sort.Strings(out)
	return out
}

func runPromtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestRules_PromtoolCheck(t *testing.T) {
	runPromtool(t, ".", "check", "rules", rulesFile)
}

func TestRules_PromtoolUnitTests(t *testing.T) {
	if testing.Short() {
		t.Skip("promtool test rules takes half a minute; skipped with -short")
	}
	runPromtool(t, filepath.Dir(rulesTestFile), "test", "rules", filepath.Base(rulesTestFile))
}

// TestRules_Names holds the rules to the metrics contract: every metric
// an expression uses is a contract name, every recording rule it uses is
// defined before it (earlier in its group, whose rules run in order, or in
// an earlier group), and recording rules are named slo:<sli>:<what>.
func TestRules_Names(t *testing.T) {
	rf := loadRules(t)
	recordName := regexp.MustCompile(`^slo:[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$`)
	defined := map[string]bool{}
	groups := map[string]bool{}
	for _, g := range rf.Groups {
		if groups[g.Name] {
			t.Errorf("group %s appears twice", g.Name)
		}
		groups[g.Name] = true
		for _, r := range g.Rules {
			if (r.Record == "") == (r.Alert == "") {
				t.Errorf("group %s: a rule has neither or both of record and alert: %+v", g.Name, r)
				continue
			}
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: empty expr", r.name())
			}
			for _, bad := range checkExpr(r.Expr, defined) {
				t.Errorf("%s (group %s): %s", r.name(), g.Name, bad)
			}
			if r.Record != "" {
				if !recordName.MatchString(r.Record) {
					t.Errorf("recording rule %s: want a name slo:<sli>:<what>", r.Record)
				}
				if defined[r.Record] {
					t.Errorf("recording rule %s is defined twice", r.Record)
				}
				defined[r.Record] = true
			}
		}
	}
}

// TestRules_SLOWindows checks that every SLI has its error ratio over
// each window the burn-rate alerts read.
func TestRules_SLOWindows(t *testing.T) {
	defined := recordedRules(loadRules(t))
	for _, sli := range []string{"api_availability", "api_write_latency", "dns_success", "agent_convergence"} {
		for _, w := range []string{"5m", "30m", "1h", "6h", "3d"} {
			if name := "slo:" + sli + ":error_ratio_" + w; !defined[name] {
				t.Errorf("no recording rule %s", name)
			}
		}
		if name := "slo:" + sli + ":error_budget_remaining_30d"; !defined[name] {
			t.Errorf("no recording rule %s", name)
		}
	}
}

// TestRules_Alerts checks what every alert carries: a severity of page or
// ticket, a summary, a description, and a runbook that exists; and that
// docs/slo.md names it.
func TestRules_Alerts(t *testing.T) {
	rf := loadRules(t)
	slo, err := os.ReadFile("../docs/slo.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if s := r.Labels["severity"]; s != "page" && s != "ticket" {
				t.Errorf("alert %s: severity %q, want page or ticket", r.Alert, s)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s: no %s annotation", r.Alert, a)
				}
			}
			url := r.Annotations["runbook_url"]
			path, ok := strings.CutPrefix(url, runbookBase)
			if !ok || !strings.HasPrefix(path, "docs/runbooks/") || !strings.HasSuffix(path, ".md") {
				t.Errorf("alert %s: runbook_url %q, want %sdocs/runbooks/NAME.md", r.Alert, url, runbookBase)
				continue
			}
			if _, err := os.Stat(filepath.Join("..", filepath.FromSlash(path))); err != nil {
				t.Errorf("alert %s: runbook: %v", r.Alert, err)
			}
			if !strings.Contains(string(slo), r.Alert) {
				t.Errorf("alert %s is not in docs/slo.md", r.Alert)
			}
		}
	}
}

// TestRules_EveryAlertTested checks that the promtool unit tests show
// every alert both firing and not firing, and test nothing that does not
// exist.
func TestRules_EveryAlertTested(t *testing.T) {
	rf := loadRules(t)
	var tf ruleTestFile
	readYAML(t, rulesTestFile, &tf)
	if len(tf.RuleFiles) != 1 || tf.RuleFiles[0] != filepath.Base(rulesFile) {
		t.Errorf("%s: rule_files %q, want [%s]", rulesTestFile, tf.RuleFiles, filepath.Base(rulesFile))
	}
	firing, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	known := map[string]bool{}
	for _, a := range alertNames(rf) {
		known[a] = true
		if !firing[a] {
			t.Errorf("alert %s: no unit test shows it firing", a)
		}
		if !quiet[a] {
			t.Errorf("alert %s: no unit test shows it not firing", a)
		}
	}
	for a := range firing {
		if !known[a] {
			t.Errorf("unit tests expect alert %s, which no rule defines", a)
		}
	}
	for a := range quiet {
		if !known[a] {
			t.Errorf("unit tests name alert %s, which no rule defines", a)
		}
	}
}
