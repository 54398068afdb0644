package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/fsm"
)

func TestDecodeErrorsNameTheField(t *testing.T) {
	ts := newLeader(t)
	for _, c := range []struct {
		name, body, field, message string
	}{
		{"empty", "", "", "request body is empty; a JSON object is required"},
		{"blank", " \n", "", "request body is empty; a JSON object is required"},
		{"malformed", `{"value":"x",}`, "", "malformed JSON at byte offset 14: invalid character '}' looking for beginning of object key string"},
		{"truncated", `{"value":"x"`, "", "malformed JSON: unexpected end of input at byte offset 12"},
		{"unknown field", `{"value":"x","colour":"red"}`, "colour", `unknown field "colour"`},
		{"wrong type", `{"value":42}`, "value", "must be a string"},
		{"trailing data", `{"value":"x"} {"value":"y"}`, "", "unexpected data after the JSON object at byte offset 14"},
		{"trailing garbage", `{"value":"x"}}`, "", "unexpected data after the JSON object at byte offset 13"},
		{"array", `["x"]`, "", "request body must be a JSON object"},
		{"null", `null`, "", "request body must be a JSON object"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := wantError(t, ts.do("PUT", "/v1/cluster/settings/k", c.body), 400, CodeInvalidRequest, c.field)
			if d.Message != c.message {
				t.Errorf("message %q, want %q", d.Message, c.message)
			}
		})
	}
	d := wantError(t, ts.do("POST", "/v1/cluster/join", `{"id":"s2","raft_address":["a"]}`), 400, CodeInvalidRequest, "raft_address")
	if d.Message != "must be a string" {
		t.Errorf("message %q", d.Message)
	}
	if ts.b.State().StateIndex() != 1 {
		t.Fatal("a rejected request changed the state")
	}
}

func TestDecodeTypeMessages(t *testing.T) {
	type inner struct {
		N int `json:"n"`
	}
	var v struct {
		S  string   `json:"s"`
		B  bool     `json:"b"`
		U  uint64   `json:"u"`
		F  float64  `json:"f"`
		L  []string `json:"l"`
		In inner    `json:"in"`
	}
	for body, want := range map[string][2]string{
		`{"s":true}`:       {"s", "must be a string"},
		`{"b":"yes"}`:      {"b", "must be a boolean"},
		`{"u":-1}`:         {"u", "must be a non-negative integer"},
		`{"f":"1"}`:        {"f", "must be a number"},
		`{"l":"a"}`:        {"l", "must be an array"},
		`{"in":[]}`:        {"in", "must be an object"},
		`{"in":{"n":1.5}}`: {"in.n", "must be an integer"},
	} {
		err := decodeJSON([]byte(body), &v, true)
		var ae *apiError
		if !errors.As(err, &ae) || ae.field != want[0] || ae.message != want[1] {
			t.Errorf("%s: %v, want field %q message %q", body, err, want[0], want[1])
		}
	}
	if err := decodeJSON(nil, &v, false); err != nil {
		t.Errorf("optional empty body: %v", err)
	}
}

func TestBodyLimitAndContentType(t *testing.T) {
	ts := newTestServer(t, newFakeBackend("s1", fsm.New(), true), Options{MaxBodyBytes: 64})
	ts.bootstrap()
	big := `{"value":"` + strings.Repeat("x", 100) + `"}`
	d := wantError(t, ts.do("PUT", "/v1/cluster/settings/k", big), http.StatusRequestEntityTooLarge, CodeRequestTooLarge, "")
	if d.Message != "request body exceeds the limit of 64 bytes" {
		t.Errorf("message %q", d.Message)
	}

	// Without Content-Length the limit holds while reading.
	req, _ := http.NewRequest("PUT", "/v1/cluster/settings/k", struct{ *strings.Reader }{strings.NewReader(big)})
	req.Header.Set("Authorization", "Bearer "+ts.secret)
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	ts.h.ServeHTTP(rec, req)
	wantError(t, rec, http.StatusRequestEntityTooLarge, CodeRequestTooLarge, "")

	wantError(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"x"}`, "Content-Type", "text/plain"), http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "Content-Type")
	wantError(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"x"}`, "Content-Type", "application/x-www-form-urlencoded"), http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "Content-Type")
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"x"}`, "Content-Type", "application/json"), 200)
}

// TestBodyMustBeText: a body that is not UTF-8, or whose escapes give a
// lone surrogate or a NUL, is refused rather than stored with U+FFFD (or
// a NUL) in its place; so is one in another character set, or compressed.
func TestBodyMustBeText(t *testing.T) {
	ts := newLeader(t)
	before := ts.b.applies.Load()
	for _, body := range []string{
		"{\"value\":\"\xff\xfe\"}",
		`{"value":"\ud800"}`,
		`{"value":"\uDC00x"}`,
		`{"value":"\ud800\u0041"}`,
		`{"value":"a\u0000b"}`,
		`{"value":"\\\u0000"}`, // an escaped backslash, then a NUL
	} {
		e := wantError(t, ts.do("PUT", "/v1/cluster/settings/k", body), http.StatusBadRequest, CodeInvalidRequest, "")
		if !strings.Contains(e.Message, "UTF-8") && !strings.Contains(e.Message, "surrogate") && !strings.Contains(e.Message, "NUL") {
			t.Errorf("%q: message %q", body, e.Message)
		}
	}
	wantError(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"x"}`, "Content-Type", "application/json; charset=latin1"), http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "Content-Type")
	wantError(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"x"}`, "Content-Encoding", "gzip"), http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "Content-Encoding")
	// Given twice, the Content-Type is refused whatever the first says: a
	// proxy may read the other one.
	req := httptest.NewRequest("PUT", "/v1/cluster/settings/k", strings.NewReader(`{"value":"x"}`))
	req.Header.Set("Authorization", "Bearer "+ts.secret)
	req.Header["Content-Type"] = []string{"application/json", "application/json; charset=latin1"}
	rec := httptest.NewRecorder()
	ts.h.ServeHTTP(rec, req)
	wantError(t, rec, http.StatusBadRequest, CodeInvalidRequest, "Content-Type")
	if n := ts.b.applies.Load(); n != before {
		t.Fatalf("%d refused requests reached Apply", n-before)
	}
	for _, body := range []string{
		`{"value":"\ud83d\ude00 \u00e9 é"}`, // a pair, and plain text
		`{"value":"\\u0000"}`,               // a backslash and "u0000"
		`{"value":"\\ud800"}`,
		`{"value":"\u0001"}`,
	} {
		wantStatus(t, ts.do("PUT", "/v1/cluster/settings/k", body), 200)
	}
	for _, cs := range []string{"UTF-8", "utf8", "us-ascii"} {
		wantStatus(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"x"}`, "Content-Type", "application/json; charset="+cs), 200)
	}
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"x"}`, "Content-Encoding", "identity"), 200)
}

// FuzzCheckText checks that checkText never panics and that what it
// accepts decodes to text: valid UTF-8, no NUL, and no U+FFFD that the
// body did not spell.
func FuzzCheckText(f *testing.F) {
	for _, s := range []string{
		`{"value":"x"}`, `{"value":"\ud800"}`, `{"value":"\ud83d\ude00"}`, `{"value":"\\ud800"}`, `\`, `\u`, `\u12`,
		`{"value":"\u0000"}`, `{"value":"\ufffd"}`, "\xff", `{"value":"\ud800\u"}`, `{"a":"\udbff\udfff"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if checkText(body) != nil || !json.Valid(body) {
			return
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return
		}
		spelled := bytes.Count(body, []byte("\ufffd")) + bytes.Count(bytes.ToLower(body), []byte(`\ufffd`))
		var walk func(any) int
		walk = func(v any) int {
			n := 0
			switch v := v.(type) {
			case string:
				if strings.ContainsRune(v, 0) {
					t.Fatalf("%q accepted with a NUL", body)
				}
				n += strings.Count(v, "\ufffd")
			case []any:
				for _, e := range v {
					n += walk(e)
				}
			case map[string]any:
				for k, e := range v {
					n += walk(k) + walk(e)
				}
			}
			return n
		}
		if got := walk(v); got > spelled {
			t.Fatalf("%q accepted: decodes to %d U+FFFD, spells %d", body, got, spelled)
		}
	})
}

// FuzzDecodeSettingPut checks that the strict decoder never panics, answers
// every bad body with a 400, and accepts only single, valid JSON objects
// that decode the same way again.
func FuzzDecodeSettingPut(f *testing.F) {
	for _, s := range []string{
		`{"value":"x"}`, `{"value":""}`, `{"value":null}`, `{}`, ``, ` `, `null`, `[]`, `"x"`,
		`{"value":1}`, `{"value":"x","extra":1}`, `{"value":"x"} {}`, `{"value":"x"}}`, `{"value":"\u00e9\ud800"}`,
		`{"VALUE":"x"}`, `{"value":"x","value":"y"}`, `{"value`, "{\"value\":\"x\"}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req SettingPutRequest
		err := decodeJSON(body, &req, true)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != http.StatusBadRequest || ae.code != CodeInvalidRequest || ae.message == "" {
				t.Fatalf("%q: error %#v is not a 400", body, err)
			}
			return
		}
		trimmed := bytes.TrimSpace(body)
		if !json.Valid(trimmed) || trimmed[0] != '{' {
			t.Fatalf("%q accepted but is not one JSON object", body)
		}
		again, _ := json.Marshal(req)
		var req2 SettingPutRequest
		if err := decodeJSON(again, &req2, true); err != nil {
			t.Fatalf("re-encoded %s rejected: %v", again, err)
		}
		if (req.Value == nil) != (req2.Value == nil) || (req.Value != nil && *req.Value != *req2.Value) {
			t.Fatalf("round trip changed %q", body)
		}
	})
}

func TestDecodePatchNulls(t *testing.T) {
	for _, c := range []struct {
		name, body, field string
		want              AddressUpdateRequest
	}{
		{"absent", `{"owner":"vm:1/net0"}`, "", AddressUpdateRequest{Owner: new("vm:1/net0")}},
		{"null clears", `{"tenant":null,"dns_name":null}`, "", AddressUpdateRequest{Tenant: new(""), DNSName: new("")}},
		{"folded case", `{"TENANT":null}`, "tenant", AddressUpdateRequest{}}, // names are exact
		// A member given twice is refused, in any case.
		{"value then null", `{"tenant":"a","tenant":null}`, "tenant", AddressUpdateRequest{}},
		{"null then value", `{"tenant":null,"tenant":"a"}`, "tenant", AddressUpdateRequest{}},
		{"folded null before a value", `{"TENANT":null,"tenant":"a"}`, "tenant", AddressUpdateRequest{}},
		{"spaces", `{ "tenant" : null , "owner":"x" }`, "", AddressUpdateRequest{Tenant: new(""), Owner: new("x")}},
		{"unknown null", `{"colour":null}`, "colour", AddressUpdateRequest{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got AddressUpdateRequest
			err := decodePatch([]byte(c.body), &got)
			if c.field != "" {
				var ae *apiError
				if !errors.As(err, &ae) || ae.field != c.field {
					t.Fatalf("error %v, want one on %q", err, c.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(c.want)
			if !bytes.Equal(a, b) {
				t.Fatalf("got %s, want %s", a, b)
			}
		})
	}
	for _, c := range []struct{ body, message string }{
		{`{"quota":null}`, "must not be null: send {} to remove every limit, or leave quota out to keep it as it is"},
		{`{"quota":{"guests":null}}`, "the limit of guests is null: give a number, or leave guests out for no limit"},
	} {
		var u TenancyUpdate
		var ae *apiError
		if err := decodeQuotaPatch([]byte(c.body), &u); !errors.As(err, &ae) || ae.field != "quota" || ae.message != c.message {
			t.Errorf("%s: error %v", c.body, err)
		}
	}
	// The old meaning of a null limit would have been a limit of 0.
	var u TenancyUpdate
	if err := decodeQuotaPatch([]byte(`{"quota":{"guests":0}}`), &u); err != nil || u.Quota == nil || len(*u.Quota) != 1 {
		t.Fatalf("a limit of 0: %v %+v", err, u)
	}
}

// FuzzDecodePatch checks that the PATCH decoder never panics, answers every
// bad body with a 400 and, when it accepts one, reads a null member as the
// empty string.
func FuzzDecodePatch(f *testing.F) {
	for _, s := range []string{
		`{"tenant":null}`, `{"tenant":"a","tenant":null}`, `{"Tenant":null,"dns_name":""}`, `{"status":null}`,
		`{"colour":null}`, `{}`, ``, `null`, `{"tenant":null}}`, `{"quota":{"guests":null}}`, `{"tenant" : null }`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req AddressUpdateRequest
		err := decodePatch(body, &req)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != http.StatusBadRequest || ae.message == "" {
				t.Fatalf("%q: error %#v is not a 400", body, err)
			}
			return
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) != nil {
			t.Fatalf("%q accepted but is not one JSON object", body)
		}
		if raw, ok := m["tenant"]; ok && string(bytes.TrimSpace(raw)) == "null" && (req.Tenant == nil || *req.Tenant != "") {
			t.Fatalf("%q: null tenant read as %v", body, req.Tenant)
		}
	})
}

func TestDuplicateMember(t *testing.T) {
	for _, c := range []struct {
		body string
		name string
		dup  bool
	}{
		{`{"count":1}`, "", false},
		{`{"count":1,"count":100}`, "count", true},
		{`{"count":1,"Count":100}`, "", false},
		{`{"a":{"x":1,"y":2},"b":{"x":1}}`, "", false},
		{`{"a":{"x":1,"x":2}}`, "x", true},
		{`{"ranges":[{"first":1,"last":2},{"first":3,"first":4}]}`, "first", true},
		{`{"a":[1,{"b":2}],"c":"a:b","a":3}`, "a", true},
		{`{"a":"x:y","b":"z"}`, "", false},
		{`{"a":[],"b":{},"c":[[{}]],"d":null}`, "", false},
	} {
		name, dup := duplicateMember([]byte(c.body), nil)
		if name != c.name || dup != c.dup {
			t.Errorf("%s: %q %v, want %q %v", c.body, name, dup, c.name, c.dup)
		}
	}
	// The outermost members that name a struct's fields are compared as
	// encoding/json matches them: without regard to case.
	fields := reflect.TypeFor[AddressUpdateRequest]()
	if name, dup := duplicateMember([]byte(`{"Owner":"a","owner":"b"}`), fields); !dup || name != "owner" {
		t.Errorf("folded field: %q %v", name, dup)
	}
	if _, dup := duplicateMember([]byte(`{"owner":"a","x":{"K":1,"k":2}}`), fields); dup {
		t.Error("keys of a nested object that differ in case are two keys")
	}
	ts := newLeader(t)
	e := wantError(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"a","value":"b"}`), http.StatusBadRequest, CodeInvalidRequest, "value")
	if !strings.Contains(e.Message, "more than once") {
		t.Errorf("message %q", e.Message)
	}
}

// refDuplicate is duplicateMember's answer by another road: a recursive
// walk over raw values.
func refDuplicate(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return false
	}
	switch raw[0] {
	case '{':
		seen, dup := map[string]bool{}, false
		_ = eachMember(raw, func(name string, v json.RawMessage) {
			dup = dup || seen[name] || refDuplicate(v)
			seen[name] = true
		})
		return dup
	case '[':
		var items []json.RawMessage
		_ = json.Unmarshal(raw, &items)
		for _, it := range items {
			if refDuplicate(it) {
				return true
			}
		}
	}
	return false
}

// FuzzDuplicateMember holds duplicateMember to a recursive walk on every
// valid JSON document.
func FuzzDuplicateMember(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"b":[{"c":1,"c":2}]}}`, `[{"a":1},{"a":1}]`, `{"a":"b:c","d":{"a":1}}`, `{}`, `1`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		_, dup := duplicateMember(body, nil)
		if want := refDuplicate(body); dup != want {
			t.Fatalf("%s: duplicate %v, want %v", body, dup, want)
		}
	})
}

type nestedRange struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

type Meta struct {
	Note string `json:"note"`
}

// nestedBody has members of every shape fieldPath walks.
type nestedBody struct {
	Meta
	Name   string                 `json:"name"`
	Ranges []nestedRange          `json:"ranges"`
	Ptrs   []*nestedRange         `json:"ptrs"`
	ByName map[string]nestedRange `json:"by_name"`
	Raw    json.RawMessage        `json:"raw"`
}

func TestDecodeErrorsNameNestedFields(t *testing.T) {
	var v nestedBody
	for _, c := range []struct{ body, field, message string }{
		{`{"ranges":[{"start":1,"end":2},{"start":1,"stop":2}]}`, "ranges[1].stop", `unknown field "stop"`},
		{`{"name":"a","ranges":[{"name":"b"}]}`, "ranges[0].name", `unknown field "name"`},
		{`{"raw":{"stop":1},"ptrs":[null,{"stop":1}]}`, "ptrs[1].stop", `unknown field "stop"`},
		{`{"by_name":{"x":{"start":1,"stop":2}}}`, "by_name.x.stop", `unknown field "stop"`},
		{`{"note":"n","colour":1}`, "colour", `unknown field "colour"`},
		{`{"ranges":[{"start":1},{"start":"x"}]}`, "ranges[1].start", "must be an integer"},
		{`{"ranges":[{"start":1},{"start":1.5}]}`, "ranges[1].start", "must be an integer"},
		{`{"ranges":[{"start":1},[1]]}`, "ranges[1]", "must be an object"},
		{`{"ranges":{"start":1}}`, "ranges", "must be an array"},
		{`{"note":7}`, "note", "must be a string"},
		{`{"Ranges":[{"START":"x"}]}`, "ranges", `unknown member "Ranges": did you mean "ranges"? Member names are matched exactly`},
		{`{"ranges":[{"start":1,"end":2},{"start":1,"start":2,"end":3}]}`, "ranges[1].start", `"start" is given more than once: each member of a JSON object must be unique`},
		{`{"name":"a","ranges":[{"start":1}],"NAME":"b"}`, "name", `"NAME" is given more than once: each member of a JSON object must be unique`},
		{`{"by_name":{"x":{"end":1},"x":{"end":2}}}`, "by_name.x", `"x" is given more than once: each member of a JSON object must be unique`},
	} {
		err := decodeJSON([]byte(c.body), &v, true)
		var ae *apiError
		if !errors.As(err, &ae) || ae.field != c.field || ae.message != c.message {
			t.Errorf("%s: %v, want field %q message %q", c.body, err, c.field, c.message)
		}
	}
}

// FuzzDecodeNested checks that every body decoded into a struct with
// nested arrays, maps and embedded structs is accepted or refused with a
// 400, and that a refusal naming a field names one the body holds.
func FuzzDecodeNested(f *testing.F) {
	for _, s := range []string{`{"ranges":[{"start":1},{"stop":2}]}`, `{"by_name":{"a":{"end":"x"}}}`, `{"note":1}`,
		`{"ptrs":[null,[1]]}`, `{"raw":{"x":[1,{"y":2}]},"name":"n"}`, `{"ranges":[{"start":1.5}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v nestedBody
		err := decodeJSON(body, &v, true)
		if err == nil {
			return
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.status != http.StatusBadRequest || ae.message == "" {
			t.Fatalf("%q: error %#v is not a 400", body, err)
		}
		if ae.field == "" {
			return
		}
		last := ae.field[strings.LastIndexAny(ae.field, ".]")+1:]
		if last != "" && !bytes.Contains(bytes.ToLower(body), []byte(strings.ToLower(last))) {
			t.Fatalf("%q: field %q is not in the body", body, ae.field)
		}
	})
}

// TestExactNames: a member that names a field only without regard to case
// is refused, naming the field, at any depth; map keys and values keep
// their case, and nothing is written.
func TestExactNames(t *testing.T) {
	ts := newLeader(t)
	p := ts.createPrefix(`{"prefix":"10.0.0.0/24","description":"Upper Case Is Fine Here"}`)
	for _, c := range []struct{ method, path, body, field, name string }{
		{"POST", "/v1/ipam/prefixes/" + p.ID + "/allocate", `{"COUNT":2}`, "count", "COUNT"},
		{"POST", "/v1/ipam/prefixes/" + p.ID + "/allocate", `{"count":1,"Owner":"vm:1/net0"}`, "owner", "Owner"},
		{"POST", "/v1/ipam/vlan-groups", `{"name":"g","ranges":[{"first":1,"Last":9}]}`, "ranges[0].last", "Last"},
		{"PATCH", "/v1/ipam/prefixes/" + p.ID, `{"Description":"x"}`, "description", "Description"},
		// encoding/json folds escapes and these too.
		{"POST", "/v1/ipam/prefixes/" + p.ID + "/allocate", `{"\u0043\u004f\u0055\u004e\u0054":2}`, "count", "COUNT"},
		{"POST", "/v1/ipam/prefixes/" + p.ID + "/allocate", `{"dnſ_name":"a.moxxie.test"}`, "dns_name", "dnſ_name"},
		{"POST", "/v1/ipam/addresses", `{"address":"10.0.0.9","fallbac\u212a":true}`, "fallback", "fallbac\u212a"},
		// The name is named first, also when the value has the wrong type.
		{"POST", "/v1/ipam/prefixes/" + p.ID + "/allocate", `{"COUNT":"2"}`, "count", "COUNT"},
		{"POST", "/v1/ipam/vlan-groups", `{"name":"g","ranges":[{"first":1,"Last":"9"}]}`, "ranges[0].last", "Last"},
	} {
		before := ts.b.applies.Load()
		e := wantError(t, ts.do(c.method, c.path, c.body), http.StatusBadRequest, CodeInvalidRequest, c.field)
		if !strings.Contains(e.Message, `unknown member "`+c.name+`"`) || ts.b.applies.Load() != before {
			t.Errorf("%s: %q (applies %d)", c.body, e.Message, ts.b.applies.Load()-before)
		}
	}
	ts.call("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"count":1,"description":"Web Front"}`, 201, nil)
	// The refusal of a member no field has is unchanged.
	wantError(t, ts.do("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"Nope":1}`), http.StatusBadRequest, CodeInvalidRequest, "Nope")
}
