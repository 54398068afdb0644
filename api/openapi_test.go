package api

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"testing"
)

type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]openAPIOp       `json:"paths"`
	Components map[string]map[string]json.RawMessage `json:"components"`
}

type openAPIOp struct {
	OperationID string                     `json:"operationId"`
	Security    *[]map[string][]string     `json:"security"`
	Parameters  []map[string]any           `json:"parameters"`
	Responses   map[string]json.RawMessage `json:"responses"`
}

func loadOpenAPI(t *testing.T) (openAPIDoc, map[string]any) {
	t.Helper()
	var doc openAPIDoc
	mustJSON(t, openAPIDocument, &doc)
	var raw map[string]any
	mustJSON(t, openAPIDocument, &raw)
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	return doc, raw
}

// TestOpenAPI_MatchesRoutes fails when a route is added, removed or changed
// without the document following (or the other way round).
func TestOpenAPI_MatchesRoutes(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	documented := map[string]openAPIOp{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented[strings.ToUpper(method)+" "+path] = op
		}
	}
	routed := map[string]Route{}
	for _, r := range Routes() {
		routed[r.Pattern()] = r
	}
	var missing, extra []string
	for p := range routed {
		if _, ok := documented[p]; !ok {
			missing = append(missing, p)
		}
	}
	for p := range documented {
		if _, ok := routed[p]; !ok {
			extra = append(extra, p)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("routes missing from openapi.json: %v; documented but not routed: %v", missing, extra)
	}

	ids := map[string]bool{}
	for p, r := range routed {
		op := documented[p]
		if op.OperationID == "" || ids[op.OperationID] {
			t.Errorf("%s: missing or duplicate operationId %q", p, op.OperationID)
		}
		ids[op.OperationID] = true
		public := op.Security != nil && len(*op.Security) == 0
		if public == r.Auth() {
			t.Errorf("%s: document says public=%v, route auth=%v", p, public, r.Auth())
		}
		if r.Auth() {
			if _, ok := op.Responses["401"]; !ok {
				t.Errorf("%s: authenticated route documents no 401", p)
			}
		}
		if len(op.Responses) < 2 {
			t.Errorf("%s: documents too few responses", p)
		}
	}
}

// TestOpenAPI_RefsResolve checks that every $ref points at a component
// that exists, and that path parameters are declared.
func TestOpenAPI_RefsResolve(t *testing.T) {
	doc, raw := loadOpenAPI(t)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if k == "$ref" {
					ref, _ := e.(string)
					parts := strings.Split(strings.TrimPrefix(ref, "#/components/"), "/")
					if !strings.HasPrefix(ref, "#/components/") || len(parts) != 2 || doc.Components[parts[0]][parts[1]] == nil {
						t.Errorf("dangling $ref %q", ref)
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(raw)

	params := doc.Components["parameters"]
	for path, ops := range doc.Paths {
		for _, m := range regexp.MustCompile(`\{([a-z_]+)\}`).FindAllStringSubmatch(path, -1) {
			for method, op := range ops {
				found := false
				for _, p := range op.Parameters {
					ref, _ := p["$ref"].(string)
					var def struct{ Name, In string }
					if ref != "" {
						_ = json.Unmarshal(params[strings.TrimPrefix(ref, "#/components/parameters/")], &def)
					}
					if def.Name == m[1] && def.In == "path" {
						found = true
					}
				}
				if !found {
					t.Errorf("%s %s: path parameter %q not declared", method, path, m[1])
				}
			}
		}
	}
}
