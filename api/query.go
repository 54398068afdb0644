package api

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
)

// A query parameter an endpoint does not take is refused, as an unknown
// field of a body is: a filter misspelt (?prefix= for ?prefix_id=) would
// otherwise list everything, and a script deleting what the list holds
// would delete all of it. Each route takes the query parameters the
// OpenAPI document gives its operation, plus site, which any request may
// carry to address another site (sites.go).

// routeQuery maps a route's pattern ("GET /v1/ipam/addresses") to the
// query parameters its operation takes, sorted. It is read from the
// document on the first request with a query string (7 ms), not at
// start-up.
var routeQuery = sync.OnceValue(func() map[string][]string { return queryParams(openAPIDocument) })

// queryParams reads the query parameters of every operation of an
// OpenAPI document, resolving references to shared parameters. It panics
// on a document it cannot read: the document is embedded, and its tests
// parse it.
func queryParams(doc []byte) map[string][]string {
	type param struct {
		Ref  string `json:"$ref"`
		Name string `json:"name"`
		In   string `json:"in"`
	}
	var d struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Parameters map[string]param `json:"parameters"`
		} `json:"components"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		panic("api: openapi.json: " + err.Error())
	}
	out := map[string][]string{}
	for path, ops := range d.Paths {
		for method, raw := range ops {
			var op struct {
				Parameters []param `json:"parameters"`
			}
			if json.Unmarshal(raw, &op) != nil { // not an operation
				continue
			}
			names := []string{"site"}
			for _, p := range op.Parameters {
				if p.Ref != "" {
					p = d.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
				}
				if p.In == "query" {
					names = append(names, p.Name)
				}
			}
			slices.Sort(names)
			out[strings.ToUpper(method)+" "+path] = slices.Compact(names)
		}
	}
	return out
}

// checkQuery refuses a query parameter the call's route does not take,
// naming it and the ones it does, and one given more than once: every
// parameter takes one value, and a proxy or log in front may read another
// of them than the server (?force=true&force=false).
func checkQuery(c *call) error {
	if c.r.URL.RawQuery == "" || strings.HasPrefix(c.rt.Path, "/debug/pprof/") {
		// pprof's protocol has query strings of its own (symbol lookups
		// send bare addresses).
		return nil
	}
	var repeated []string
	for name, vs := range c.q() {
		if len(vs) > 1 {
			repeated = append(repeated, name)
		}
	}
	if len(repeated) > 0 {
		name := slices.Min(repeated)
		return invalid(name, "query parameter %q is given %d times; give it once", name, len(c.q()[name]))
	}
	known, ok := routeQuery()[c.rt.Pattern()]
	if !ok {
		return nil
	}
	var unknown []string
	for name := range c.q() {
		if _, found := slices.BinarySearch(known, name); !found {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	name := slices.Min(unknown)
	return invalid(name, "unknown query parameter %q; %s takes %s", name, c.rt.Pattern(), strings.Join(known, ", "))
}
