package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestOpenAPI_IPAMAnswersMatchTheSchemas drives every IPAM and DNS
// operation of openapi.json through the handlers over a real FSM, with
// objects that fill in as many optional fields as the API has, and checks
// each answer against the response schema the document gives it: its
// required members, no undocumented ones, types, formats, patterns and
// bounds. A client generated from the document must read every answer.
func TestOpenAPI_IPAMAnswersMatchTheSchemas(t *testing.T) {
	ts := newLeader(t)
	sc := newSchemaChecker(t)
	ids := map[string]string{}
	// step runs one operation, checks its answer and returns the decoded
	// body; template is the path as openapi.json writes it, {x} filled in
	// from ids.
	step := func(method, template, query, body string, status int) map[string]any {
		t.Helper()
		target := template
		for k, v := range ids {
			target = strings.ReplaceAll(target, "{"+k+"}", v)
		}
		if strings.Contains(target, "{") {
			t.Fatalf("%s %s: no value for a path parameter", method, template)
		}
		b := wantStatus(t, ts.do(method, target+query, body), status)
		sc.check(t, method, template, status, b)
		var out map[string]any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: %v", method, target, err)
		}
		return out
	}
	str := func(m map[string]any, k string) string {
		t.Helper()
		s, ok := m[k].(string)
		if !ok {
			t.Fatalf("no %q in %v", k, m)
		}
		return s
	}

	step("POST", "/v1/ipam/vrfs", "", `{"id":"blue","description":"lab","tenant":"acme"}`, 201)
	ids["id"] = "global"
	step("GET", "/v1/ipam/vrfs/{id}", "", "", 200)
	ids["id"] = "blue"
	step("GET", "/v1/ipam/vrfs/{id}", "", "", 200)
	step("GET", "/v1/ipam/vrfs", "", "", 200)

	container := step("POST", "/v1/ipam/prefixes", "", `{"prefix":"10.0.0.0/16","status":"container","description":"site","tenant":"acme"}`, 201)
	ids["id"] = str(container, "id")
	child := step("POST", "/v1/ipam/prefixes/{id}/allocate-prefix", "", `{"prefix_length":24,"tenant":"acme","description":"web"}`, 201)
	step("GET", "/v1/ipam/prefixes/{id}/available", "", "", 200)
	ids["id"] = str(child, "id")
	step("PATCH", "/v1/ipam/prefixes/{id}", "", `{"description":"web tier"}`, 200)
	step("POST", "/v1/ipam/prefixes", "", `{"prefix":"10.9.0.0/24","vrf":"blue","gateway":"10.9.0.1","is_pool":false}`, 201)
	v6 := step("POST", "/v1/ipam/prefixes", "", `{"prefix":"2001:db8::/64"}`, 201)
	step("GET", "/v1/ipam/prefixes/{id}", "", "", 200)
	step("GET", "/v1/ipam/prefixes/{id}/available", "?limit=3", "", 200)
	step("GET", "/v1/ipam/prefixes", "", "", 200)

	rng := step("POST", "/v1/ipam/ip-ranges", "", `{"prefix_id":"`+ids["id"]+`","start_address":"10.0.0.200","end_address":"10.0.0.250","description":"dhcp"}`, 201)
	step("POST", "/v1/dns/zones", "", `{"name":"moxxie.test","ttl":60,"description":"lab","tenant":"acme"}`, 201)
	step("POST", "/v1/ipam/prefixes/{id}/allocate", "", `{"count":2,"dns_name":"web.moxxie.test","tenant":"acme","owner":"vm:101/net0","description":"web","status":"reserved"}`, 201)
	ids["id"] = str(v6, "id")
	step("POST", "/v1/ipam/prefixes/{id}/allocate", "", `{"dns_name":"web.moxxie.test"}`, 201)
	made := step("POST", "/v1/ipam/addresses", "", `{"address":"10.0.0.77","dns_name":"db.moxxie.test","description":"db"}`, 201)
	addr := made["addresses"].([]any)[0].(map[string]any)
	ids["id"] = str(addr, "id")
	step("GET", "/v1/ipam/addresses/{id}", "", "", 200)
	step("PATCH", "/v1/ipam/addresses/{id}", "", `{"owner":"vm:102/net0","status":"deprecated"}`, 200)
	step("GET", "/v1/ipam/addresses", "", "", 200)
	step("GET", "/v1/ipam/addresses", "?limit=1", "", 200) // with a cursor
	step("DELETE", "/v1/ipam/addresses/{id}", "", "", 200)
	step("DELETE", "/v1/ipam/addresses/{id}", "", "", 404)
	ids["id"] = str(rng, "id")
	step("GET", "/v1/ipam/ip-ranges/{id}", "", "", 200)
	step("GET", "/v1/ipam/ip-ranges", "", "", 200)
	step("DELETE", "/v1/ipam/ip-ranges/{id}", "", "", 200)

	for _, k := range []struct{ pools, items, number string }{
		{"vlan-groups", "vlans", "vid"},
		{"vni-pools", "vnis", "vni"},
	} {
		pool := step("POST", "/v1/ipam/"+k.pools, "", `{"name":"lab","ranges":[{"first":100,"last":199}],"tenant":"acme","description":"lab"}`, 201)
		ids["id"] = str(pool, "id")
		step("GET", "/v1/ipam/"+k.pools+"/{id}", "", "", 200)
		step("PATCH", "/v1/ipam/"+k.pools+"/{id}", "", `{"description":"the lab"}`, 200)
		item := step("POST", "/v1/ipam/"+k.pools+"/{id}/allocate", "", `{"name":"web","owner":"vm:101/net0","tenant":"acme","description":"web"}`, 201)
		step("GET", "/v1/ipam/"+k.pools, "", "", 200)
		ids["id"] = str(item, "id")
		step("GET", "/v1/ipam/"+k.items+"/{id}", "", "", 200)
		step("PATCH", "/v1/ipam/"+k.items+"/{id}", "", `{"description":"web tier"}`, 200)
		step("GET", "/v1/ipam/"+k.items, "", "", 200)
		step("DELETE", "/v1/ipam/"+k.items+"/{id}", "", "", 200)
		ids["id"] = str(pool, "id")
		step("DELETE", "/v1/ipam/"+k.pools+"/{id}", "", "", 200)
	}

	ids["name"] = "moxxie.test"
	step("GET", "/v1/dns/zones/{name}", "", "", 200)
	step("PATCH", "/v1/dns/zones/{name}", "", `{"ttl":30}`, 200)
	step("GET", "/v1/dns/zones", "", "", 200)
	step("DELETE", "/v1/dns/zones/{name}", "?force=true", "", 200)
	spare := step("POST", "/v1/ipam/prefixes", "", `{"prefix":"10.8.0.0/24"}`, 201)
	ids["id"] = str(spare, "id")
	step("DELETE", "/v1/ipam/prefixes/{id}", "", "", 200)
	step("POST", "/v1/ipam/vrfs", "", `{"id":"empty"}`, 201)
	ids["id"] = "empty"
	step("DELETE", "/v1/ipam/vrfs/{id}", "", "", 200)

	// Every IPAM and DNS operation was run.
	for _, op := range sc.operations("/v1/ipam/", "/v1/dns/") {
		if !sc.checked[op] {
			t.Errorf("%s: not run by this test", op)
		}
	}
}

// schemaChecker checks JSON answers against openapi.json's response
// schemas, for the subset of OpenAPI 3.0 the document uses.
type schemaChecker struct {
	doc     map[string]any
	checked map[string]bool // "METHOD /path" of the operations checked
}

func newSchemaChecker(t *testing.T) *schemaChecker {
	var doc map[string]any
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	return &schemaChecker{doc: doc, checked: map[string]bool{}}
}

// operations lists the "METHOD /path" of the document's operations under
// any of prefixes.
func (sc *schemaChecker) operations(prefixes ...string) []string {
	var out []string
	for path, ops := range sc.doc["paths"].(map[string]any) {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(path, p) }) {
			continue
		}
		for method := range ops.(map[string]any) {
			if method != "parameters" {
				out = append(out, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(out)
	return out
}

// check checks body, the answer with status to method on the document's
// path template, against the schema the document gives that answer (the
// operation's, or for an error the Error schema).
func (sc *schemaChecker) check(t *testing.T, method, template string, status int, body []byte) {
	t.Helper()
	op, ok := sc.doc["paths"].(map[string]any)[template].(map[string]any)[strings.ToLower(method)].(map[string]any)
	if !ok {
		t.Fatalf("%s %s: no such operation in openapi.json", method, template)
	}
	sc.checked[method+" "+template] = true
	var schema any = map[string]any{"$ref": "#/components/schemas/Error"}
	if status < 400 {
		resp, ok := op["responses"].(map[string]any)[fmt.Sprint(status)].(map[string]any)
		if !ok {
			t.Errorf("%s %s: answered %d, which openapi.json does not list", method, template, status)
			return
		}
		schema = resp["content"].(map[string]any)["application/json"].(map[string]any)["schema"]
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s %s: %v", method, template, err)
	}
	for _, e := range sc.validate("$", schema.(map[string]any), v) {
		t.Errorf("%s %s (%d): %s\n%s", method, template, status, e, body)
	}
}

// validate returns what in v, at path, does not match schema.
func (sc *schemaChecker) validate(path string, schema map[string]any, v any) []string {
	if ref, ok := schema["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		s, ok := sc.doc["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any)
		if !ok {
			return []string{path + ": unknown $ref " + ref}
		}
		return sc.validate(path, s, v)
	}
	if v == nil {
		if schema["nullable"] == true || schema["type"] == nil {
			return nil
		}
		return []string{path + ": null, which the schema does not allow"}
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	if enum, ok := schema["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		fail("%v is none of %v", v, enum)
	}
	switch typ, _ := schema["type"].(string); typ {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			fail("%T, want an object", v)
			break
		}
		props, _ := schema["properties"].(map[string]any)
		for _, r := range asList(schema["required"]) {
			if _, ok := m[r.(string)]; !ok {
				fail("required member %q is missing", r)
			}
		}
		for k, mv := range m {
			if ps, ok := props[k].(map[string]any); ok {
				errs = append(errs, sc.validate(path+"."+k, ps, mv)...)
				continue
			}
			switch ap := schema["additionalProperties"].(type) {
			case bool:
				if !ap {
					fail("member %q is not in the schema", k)
				}
			case map[string]any:
				errs = append(errs, sc.validate(path+"."+k, ap, mv)...)
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			fail("%T, want an array", v)
			break
		}
		if n, ok := schema["maxItems"].(float64); ok && float64(len(a)) > n {
			fail("%d items, at most %v", len(a), n)
		}
		if n, ok := schema["minItems"].(float64); ok && float64(len(a)) < n {
			fail("%d items, at least %v", len(a), n)
		}
		if items, ok := schema["items"].(map[string]any); ok {
			for i, e := range a {
				errs = append(errs, sc.validate(fmt.Sprintf("%s[%d]", path, i), items, e)...)
			}
		}
	case "string":
		s, ok := v.(string)
		if !ok {
			fail("%T, want a string", v)
			break
		}
		if n, ok := schema["maxLength"].(float64); ok && float64(utf8.RuneCountInString(s)) > n {
			fail("%d characters, at most %v", utf8.RuneCountInString(s), n)
		}
		if p, ok := schema["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(s) {
			fail("%q does not match %s", s, p)
		}
		if schema["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				fail("%q is no RFC 3339 time", s)
			}
		}
	case "integer", "number":
		n, ok := v.(json.Number)
		if !ok {
			fail("%T, want a %s", v, typ)
			break
		}
		x, ok := new(big.Rat).SetString(n.String())
		if !ok || typ == "integer" && !x.IsInt() {
			fail("%s is no %s", n, typ)
			break
		}
		if m, ok := schema["minimum"].(float64); ok && x.Cmp(new(big.Rat).SetFloat64(m)) < 0 {
			fail("%s is below the minimum %v", n, m)
		}
		if m, ok := schema["maximum"].(float64); ok && x.Cmp(new(big.Rat).SetFloat64(m)) > 0 {
			fail("%s is above the maximum %v", n, m)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			fail("%T, want a boolean", v)
		}
	}
	return errs
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// TestOpenAPI_TypesAreOpenAPI30: the document is OpenAPI 3.0, where a
// schema's type is one name (a null is "nullable": true); a list of types
// is 3.1's, which 3.0 tools refuse.
func TestOpenAPI_TypesAreOpenAPI30(t *testing.T) {
	sc := newSchemaChecker(t)
	valid := []string{"object", "array", "string", "integer", "number", "boolean"}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if strings.HasPrefix(path, "/components/securitySchemes") {
				return // types of their own (http, apiKey...)
			}
			if typ, ok := v["type"]; ok {
				if s, isString := typ.(string); !isString || !slices.Contains(valid, s) {
					if _, isSchema := typ.(map[string]any); !isSchema { // a property named "type"
						t.Errorf("%s: type %v is not an OpenAPI 3.0 type", path, typ)
					}
				}
			}
			for k, e := range v {
				walk(path+"/"+k, e)
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s/%d", path, i), e)
			}
		}
	}
	walk("", sc.doc)
}
