package api

import (
	"encoding/json"
	"net/url"
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
// query parameters its operation takes, sorted by name. It is read from
// the document on the first request with a query string (7 ms), not at
// start-up.
var routeQuery = sync.OnceValue(func() map[string][]queryParam { return queryParams(openAPIDocument) })

// emptyMeansDefault holds the parameters that select nothing, where an
// empty value means what leaving them out means (the first page, no
// blocking, the default page size): a paging loop starts with ?after=.
var emptyMeansDefault = map[string]bool{"after": true, "since_seq": true, "index": true, "wait": true, "limit": true}

// queryParam is one query parameter of an operation.
type queryParam struct {
	name string
	// emptyOK is set for a boolean, which may be given without a value
	// (?stale), for site, where empty names this site, and for the
	// parameters of emptyMeansDefault.
	emptyOK bool
}

// queryParams reads the query parameters of every operation of an
// OpenAPI document, resolving references to shared parameters. It panics
// on a document it cannot read: the document is embedded, and its tests
// parse it.
func queryParams(doc []byte) map[string][]queryParam {
	type param struct {
		Ref    string `json:"$ref"`
		Name   string `json:"name"`
		In     string `json:"in"`
		Schema struct {
			Type string `json:"type"`
		} `json:"schema"`
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
	out := map[string][]queryParam{}
	for path, ops := range d.Paths {
		for method, raw := range ops {
			var op struct {
				Parameters []param `json:"parameters"`
			}
			if json.Unmarshal(raw, &op) != nil { // not an operation
				continue
			}
			params := []queryParam{{name: "site", emptyOK: true}}
			for _, p := range op.Parameters {
				if p.Ref != "" {
					p = d.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
				}
				if p.In == "query" {
					params = append(params, queryParam{name: p.Name, emptyOK: p.Schema.Type == "boolean" || emptyMeansDefault[p.Name]})
				}
			}
			slices.SortFunc(params, func(a, b queryParam) int { return strings.Compare(a.name, b.name) })
			out[strings.ToUpper(method)+" "+path] = slices.CompactFunc(params, func(a, b queryParam) bool { return a.name == b.name })
		}
	}
	return out
}

// checkPreconditions refuses a write with an HTTP precondition (If-Match
// and the like): the API has no entity tags, and a write carried out
// without the condition its client asked for could overwrite a change the
// client meant to guard against.
func checkPreconditions(c *call) error {
	if c.rt.Kind != KindWrite {
		return nil
	}
	for _, h := range []string{"If-Match", "If-None-Match", "If-Unmodified-Since"} {
		if _, ok := c.r.Header[h]; ok {
			return invalid(h, "conditional writes are not supported: send the write without %s (changes of one object apply in turn, each with its own modify_index; settings take ?cas=INDEX)", h)
		}
	}
	return nil
}

// parseQuery parses a query string, refusing one that url.Values would
// quietly cut short: it drops a pair with a bad percent escape or a
// semicolon, so ?prefix_id=x%zz would list every address and
// ?force=%zz release without force. The error names the pair's parameter.
func parseQuery(raw string) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err == nil {
		return q, nil
	}
	for pair := range strings.SplitSeq(raw, "&") {
		key, value, _ := strings.Cut(pair, "=")
		name, kerr := url.QueryUnescape(key)
		if kerr != nil {
			name = key
		}
		switch _, verr := url.QueryUnescape(value); {
		case strings.Contains(pair, ";"):
			return nil, invalid(name, "query parameter %q holds a semicolon: send it as %%3B (a semicolon does not separate parameters)", name)
		case kerr != nil || verr != nil:
			return nil, invalid(name, "query parameter %q is not URL-encoded: a %% must start an escape of two hex digits (%%25 for a %% itself)", name)
		}
	}
	return nil, invalid("query", "the query string cannot be parsed: %v", err)
}

// checkQuery refuses a query parameter the call's route does not take,
// naming it and the ones it does; one given more than once: every
// parameter takes one value, and a proxy or log in front may read another
// of them than the server (?force=true&force=false); and one given empty,
// other than a boolean (?stale): an empty $PREFIX in a script's
// ?prefix_id=$PREFIX would otherwise list everything.
func checkQuery(c *call) error {
	if c.r.URL.RawQuery == "" || strings.HasPrefix(c.rt.Path, "/debug/pprof/") {
		// pprof's protocol has query strings of its own (symbol lookups
		// send bare addresses).
		return nil
	}
	q, err := parseQuery(c.r.URL.RawQuery)
	if err != nil {
		return err
	}
	c.query = q
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
	var unknown, empty []string
	for name, vs := range c.q() {
		i, found := slices.BinarySearchFunc(known, name, func(p queryParam, name string) int { return strings.Compare(p.name, name) })
		switch {
		case !found:
			unknown = append(unknown, name)
		case vs[0] == "" && !known[i].emptyOK:
			empty = append(empty, name)
		}
	}
	if len(unknown) > 0 {
		name := slices.Min(unknown)
		names := make([]string, len(known))
		for i, p := range known {
			names[i] = p.name
		}
		return invalid(name, "unknown query parameter %q; %s takes %s", name, c.rt.Pattern(), strings.Join(names, ", "))
	}
	if len(empty) > 0 {
		name := slices.Min(empty)
		return invalid(name, "query parameter %q is empty: give it a value, or leave it out", name)
	}
	return nil
}
