package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

const dashboardFile = "grafana/moxxie-dashboard.json"

// dsInput is the data source reference the dashboard uses everywhere:
// Grafana asks for a Prometheus data source on import and puts it here.
const dsInput = "${DS_PROMETHEUS}"

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	Inputs []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string     `json:"name"`
			Type       string     `json:"type"`
			Datasource datasource `json:"datasource"`
			Definition string     `json:"definition"`
			Query      struct {
				Query string `json:"query"`
			} `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// query is one PromQL expression of the dashboard and where it is.
type query struct {
	where, expr string
}

func loadDashboard(t *testing.T) (dashboard, []panel, []query) {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var panels []panel
	var queries []query
	for _, p := range d.Panels {
		panels = append(panels, p)
		panels = append(panels, p.Panels...)
	}
	for _, p := range panels {
		for _, tg := range p.Targets {
			queries = append(queries, query{fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID), tg.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			queries = append(queries, query{"variable " + v.Name, v.Query.Query}, query{"variable " + v.Name + " definition", v.Definition})
		}
	}
	return d, panels, queries
}

// TestDashboard_Structure checks what importing needs: the data source
// input, every panel and query on it, unique panel ids, and panels that
// fit the 24-column grid without overlapping.
func TestDashboard_Structure(t *testing.T) {
	d, panels, _ := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q, title %q: want both", d.UID, d.Title)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].Type != "datasource" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs = %+v, want one prometheus datasource input DS_PROMETHEUS", d.Inputs)
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" && v.Datasource.UID != dsInput {
			t.Errorf("variable %s: datasource %+v, want uid %s", v.Name, v.Datasource, dsInput)
		}
	}
	ids := map[int]bool{}
	type rect struct {
		id         int
		x, y, w, h int
	}
	var placed []rect
	for _, p := range panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if strings.TrimSpace(p.Title) == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 || g.Y < 0 {
			t.Errorf("panel %d %q: gridPos %+v outside the 24-column grid", p.ID, p.Title, g)
		}
		r := rect{p.ID, g.X, g.Y, g.W, g.H}
		for _, o := range placed {
			if r.x < o.x+o.w && o.x < r.x+r.w && r.y < o.y+o.h && o.y < r.y+r.h {
				t.Errorf("panels %d and %d overlap", o.id, r.id)
			}
		}
		placed = append(placed, r)
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != dsInput {
			t.Errorf("panel %d %q: datasource %+v, want uid %s", p.ID, p.Title, p.Datasource, dsInput)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %d %q has no queries", p.ID, p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %d %q target %s: empty expr", p.ID, p.Title, tg.RefID)
			}
			if tg.Datasource == nil || tg.Datasource.UID != dsInput {
				t.Errorf("panel %d %q target %s: datasource %+v, want uid %s", p.ID, p.Title, tg.RefID, tg.Datasource, dsInput)
			}
		}
	}
}

// TestDashboard_Names holds every query to the metrics contract and the
// recording rules of the rules file, and checks that the dashboard shows
// every contract metric.
func TestDashboard_Names(t *testing.T) {
	_, _, queries := loadDashboard(t)
	defined := recordedRules(loadRules(t))
	used := map[string]bool{}
	for _, q := range queries {
		for _, bad := range checkExpr(q.expr, defined) {
			t.Errorf("%s: %s", q.where, bad)
		}
		metrics, _ := exprNames(q.expr)
		for _, m := range metrics {
			if base, ok := contractMetric(m); ok {
				used[base] = true
			}
		}
	}
	for m := range metricsContract {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}

// TestDashboard_PromtoolParses has promtool parse every query of the
// dashboard, each written as a recording rule with Grafana's variables
// replaced.
func TestDashboard_PromtoolParses(t *testing.T) {
	_, _, queries := loadDashboard(t)
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "$cluster", ".*")
	type recRule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []recRule
	for i, q := range queries {
		if strings.HasPrefix(q.expr, "label_values(") {
			continue // Grafana's, not PromQL
		}
		rules = append(rules, recRule{fmt.Sprintf("dashboard:query:%d", i), vars.Replace(q.expr)})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []map[string]any{{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, ".", "check", "rules", path)
}
