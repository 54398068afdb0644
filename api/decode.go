package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// checkContentType refuses a JSON body declared as something else, in
// another character set than UTF-8 or with a Content-Encoding (compressed):
// each would be read as bytes it is not. A missing Content-Type is
// accepted; one given twice is refused, as servers and proxies may each
// read another of the two.
func checkContentType(r *http.Request) error {
	if ce := r.Header.Values("Content-Encoding"); len(ce) > 0 && !(len(ce) == 1 && strings.EqualFold(ce[0], "identity")) {
		return unsupportedMedia("Content-Encoding", "request body must not be encoded (compressed): send it as it is, without Content-Encoding "+strconv.Quote(strings.Join(ce, ", ")))
	}
	if cts := r.Header.Values("Content-Type"); len(cts) > 1 {
		return invalid("Content-Type", "Content-Type is given %d times (%s): give it once", len(cts), strconv.Quote(strings.Join(cts, ", ")))
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" || ct == "application/json" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return unsupportedMedia("Content-Type", "request body must be application/json, not "+strconv.Quote(ct))
	}
	if cs, ok := params["charset"]; ok && !utf8Charset(cs) {
		return unsupportedMedia("Content-Type", "request body must be UTF-8, not charset "+strconv.Quote(cs))
	}
	return nil
}

// utf8Charset reports whether a charset parameter names UTF-8, or ASCII,
// which UTF-8 holds.
func utf8Charset(cs string) bool {
	switch strings.ToLower(cs) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return true
	}
	return false
}

func unsupportedMedia(field, message string) error {
	return &apiError{status: http.StatusUnsupportedMediaType, code: CodeUnsupportedMediaType, field: field, message: message}
}

// checkText refuses a body that is not UTF-8, or whose JSON escapes give
// what is not text: a lone UTF-16 surrogate (\ud800) or a NUL (\u0000).
// The JSON decoder would store U+FFFD for the first two, quietly, and a
// NUL cuts a string short in much that reads it later (logs, Proxmox,
// DNS tools).
func checkText(body []byte) error {
	if !utf8.Valid(body) {
		return invalid("", "request body is not valid UTF-8")
	}
	for i := bytes.IndexByte(body, '\\'); i >= 0 && i+1 < len(body); {
		next := 2
		if body[i+1] == 'u' {
			next = 6
			switch r := hexRune(body[i+2:]); {
			case r == 0:
				return invalid("", "request body holds a NUL character (\\u0000)")
			case utf16.IsSurrogate(r):
				pair := r < 0xdc00 && len(body) >= i+12 && body[i+6] == '\\' && body[i+7] == 'u'
				if !pair || utf16.DecodeRune(r, hexRune(body[i+8:])) == utf8.RuneError {
					return invalid("", "request body holds a lone UTF-16 surrogate (%s), which is no character", body[i:min(i+6, len(body))])
				}
				next = 12
			}
		}
		j := bytes.IndexByte(body[min(i+next, len(body)):], '\\')
		if j < 0 {
			break
		}
		i += next + j
	}
	return nil
}

// hexRune reads the four hex digits at the start of b, or returns -1.
func hexRune(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	v, err := strconv.ParseUint(string(b[:4]), 16, 16)
	if err != nil {
		return -1
	}
	return rune(v)
}

// readBody reads the whole request body within the route's limit; a larger
// body is a 413 naming the limit.
func (s *server) readBody(c *call) ([]byte, error) {
	limit := s.bodyLimit(c)
	if c.r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	if c.r.Body == nil || c.r.Body == http.NoBody {
		return nil, nil
	}
	var buf bytes.Buffer
	if n := c.r.ContentLength; n > 0 {
		buf.Grow(int(n) + bytes.MinRead)
	}
	// MaxBytesReader gets the server's own writer so that it can close the
	// connection after an oversized body.
	if _, err := buf.ReadFrom(http.MaxBytesReader(c.w.ResponseWriter, c.r.Body, limit)); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(limit)
		}
		return nil, invalid("", "reading the request body: %v", err)
	}
	return buf.Bytes(), nil
}

// decodeJSON decodes body, which must hold exactly one JSON object, into
// v, rejecting unknown fields. An empty body is an error when required and
// leaves v untouched otherwise. Errors are 400s naming the field at fault.
func decodeJSON(body []byte, v any, required bool) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		if required {
			return invalid("", "request body is empty; a JSON object is required")
		}
		return nil
	}
	if trimmed[0] != '{' {
		return invalid("", "request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			// A member named with the wrong case is the first thing to
			// fix: its value's type is checked against a field it does not
			// name.
			if nerr := exactNames(body, reflect.TypeOf(v)); nerr != nil {
				return nerr
			}
		}
		return decodeError(err, body, reflect.TypeOf(v))
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		rest := body[end:]
		end += int64(len(rest) - len(bytes.TrimLeft(rest, " \t\r\n")))
		return invalid("", "unexpected data after the JSON object at byte offset %d", end)
	}
	var fields reflect.Type
	if t := reflect.TypeOf(v); t != nil && t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct {
		fields = t.Elem()
	}
	if name, ok := duplicateMember(body, fields); ok {
		field := name
		seen := map[string]bool{} // the paths of the members walked so far
		if p, ok := fieldPath(body, reflect.TypeOf(v), func(m member) bool {
			if m.name == "" {
				return false
			}
			if seen[m.path] {
				return true
			}
			seen[m.path] = true
			return false
		}); ok {
			field = p
		}
		return invalid(field, "%q is given more than once: each member of a JSON object must be unique", name)
	}
	return exactNames(body, reflect.TypeOf(v))
}

// exactNames refuses a member whose name matches a field's only without
// regard to case ("COUNT" for "count"), which encoding/json would take:
// the API's names are exact, as they are written in its answers. Only a
// body with an upper-case letter, an escape or a byte beyond ASCII (which
// encoding/json folds too: "ſ" for "s", the Kelvin sign for "k") can hold
// one, which keeps the walk off the usual request.
func exactNames(body []byte, t reflect.Type) error {
	if !slices.ContainsFunc(body, func(b byte) bool { return 'A' <= b && b <= 'Z' || b == '\\' || b >= 0x80 }) {
		return nil
	}
	var bad member
	path, ok := fieldPath(body, t, func(m member) bool {
		if m.field != "" && m.name != m.field {
			bad = m
			return true
		}
		return false
	})
	if !ok {
		return nil
	}
	return invalid(path, "unknown member %q: did you mean %q? Member names are matched exactly", bad.name, bad.field)
}

// duplicateMember returns the name of the first member of an object in
// body, at any depth, whose name an earlier member of the same object has,
// and whether there is one. encoding/json would keep the last silently,
// where a proxy or a log in front of the API may read the first. Names are
// compared exactly (the keys of a map may differ in case alone), but
// members of the outermost object that name a field of the struct type
// fields are compared by that field, as encoding/json matches them:
// without regard to case. body must be well-formed JSON.
func duplicateMember(body []byte, fields reflect.Type) (string, bool) {
	if bytes.Count(body, []byte{':'}) < 2 {
		return "", false // at most one member in all
	}
	// A scan of the bytes, not encoding/json's tokens: it runs on every
	// write, and tokens cost an allocation each.
	var stack []memberSet // the objects and arrays open at i
	wantKey := false
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '{':
			stack = append(stack, memberSet{})
			wantKey = true
		case '[':
			stack = append(stack, memberSet{array: true})
			wantKey = false
		case '}', ']':
			stack = stack[:len(stack)-1]
			wantKey = false
		case ',':
			wantKey = len(stack) > 0 && !stack[len(stack)-1].array
		case '"':
			end := stringEnd(body, i)
			if wantKey {
				name := memberName(body[i : end+1])
				key := name
				if len(stack) == 1 && fields != nil {
					if f, ok := jsonField(fields, name); ok {
						key = "\x00" + strconv.Itoa(f) // no JSON name holds NUL unescaped
					}
				}
				if !stack[len(stack)-1].add(key) {
					return name, true
				}
				wantKey = false
			}
			i = end
		}
	}
	return "", false
}

// memberSet holds the member names of one object seen so far: in a slice
// while there are few, in a map beyond.
type memberSet struct {
	array bool
	names []string
	big   map[string]bool
}

// add adds name and reports whether it was new.
func (m *memberSet) add(name string) bool {
	if m.big != nil {
		if m.big[name] {
			return false
		}
		m.big[name] = true
		return true
	}
	if slices.Contains(m.names, name) {
		return false
	}
	m.names = append(m.names, name)
	if len(m.names) > 16 {
		m.big = make(map[string]bool, 2*len(m.names))
		for _, n := range m.names {
			m.big[n] = true
		}
	}
	return true
}

// stringEnd returns the index of the quote that ends the JSON string
// starting at body[i].
func stringEnd(body []byte, i int) int {
	for j := i + 1; j < len(body); j++ {
		switch body[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return len(body) - 1
}

// memberName returns the name a quoted JSON string holds.
func memberName(quoted []byte) string {
	if bytes.IndexByte(quoted, '\\') < 0 {
		return string(quoted[1 : len(quoted)-1])
	}
	var s string
	_ = json.Unmarshal(quoted, &s)
	return s
}

// decodeError turns an encoding/json error from decoding body into a
// value of type t into a 400 naming the field, with its array indexes
// (ranges[1].start), which encoding/json leaves out.
func decodeError(err error, body []byte, t reflect.Type) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return invalid("", "malformed JSON at byte offset %d: %s", syn.Offset, syn.Error())
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return invalid("", "malformed JSON: unexpected end of input at byte offset %d", len(body))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return invalid("", "request body must be a JSON object")
		}
		kind, text, _ := strings.Cut(typ.Value, " ") // "number 1.5"
		field := typ.Field
		want := nonPointer(typ.Type)
		if p, ok := fieldPath(body, t, func(m member) bool {
			return m.dotted == typ.Field && m.kind == kind && m.typ == want && (text == "" || m.text == text)
		}); ok {
			field = p
		}
		return invalid(field, "%s", typeMessage(typ.Type))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if unq, uerr := strconv.Unquote(name); uerr == nil {
			name = unq
		}
		field := name
		if p, ok := fieldPath(body, t, func(m member) bool { return !m.known && m.name == name }); ok {
			field = p
		}
		return invalid(field, "unknown field %q", name)
	}
	var inv *json.InvalidUnmarshalError
	if errors.As(err, &inv) {
		return internal(err)
	}
	return invalid("", "malformed JSON: %v", err)
}

// member is one value in a JSON document, as fieldPath shows it to its
// match function.
type member struct {
	// name is the name of the member that holds the value ("" for an array
	// element) and dotted its path from the outermost object without array
	// indexes, as encoding/json's UnmarshalTypeError.Field gives it
	// (ranges.start).
	name, dotted string
	// known is false when the value is a member of an object decoded into
	// a struct that has no field of its name.
	known bool
	// field is, for a member decoded into a struct field that has a JSON
	// name, that name; encoding/json matches it without regard to case.
	field string
	// kind is the JSON kind of the value: object, array, string, number,
	// bool or null; text is a number's literal.
	kind, text string
	// typ is the Go type it is decoded into, without pointers (nil when
	// unknown).
	typ reflect.Type
	// path is its path as fieldPath returns it.
	path string
}

// fieldPath returns the path, as the API names fields in errors
// (ranges[1].start), of the first value in body, decoded into a value of
// type t, for which match reports true, and whether there is one. A member
// is known unless it is decoded into a struct without a field of its name;
// the members of values that decode themselves (json.Unmarshaler,
// encoding.TextUnmarshaler) are all known. It is for the error path only:
// body is read with encoding/json's tokenizer.
func fieldPath(body []byte, t reflect.Type, match func(member) bool) (string, bool) {
	w := pathWalker{dec: json.NewDecoder(bytes.NewReader(body)), match: match}
	w.dec.UseNumber()
	tok, err := w.dec.Token()
	if err != nil {
		return "", false
	}
	return w.value(tok, member{known: true, typ: nonPointer(t)}, "")
}

// pathWalker walks a JSON document for fieldPath.
type pathWalker struct {
	dec   *json.Decoder
	match func(member) bool
}

// value walks the value m that starts with tok, at path.
func (w *pathWalker) value(tok json.Token, m member, path string) (string, bool) {
	m.kind, m.path = jsonKind(tok), path
	if n, ok := tok.(json.Number); ok {
		m.text = n.String()
	}
	if w.match(m) {
		return path, true
	}
	t := structural(m.typ)
	switch tok {
	case json.Delim('{'):
		for w.dec.More() {
			nt, err := w.dec.Token()
			name, isName := nt.(string)
			if err != nil || !isName {
				return "", false
			}
			vt, err := w.dec.Token()
			if err != nil {
				return "", false
			}
			mm := member{name: name, known: true}
			embedded, canonical := "", name
			switch {
			case t != nil && t.Kind() == reflect.Struct:
				if f, in, ok := fieldOf(t, name); ok {
					mm.typ, embedded = f.Type, in
					canonical, _, _ = strings.Cut(f.Tag.Get("json"), ",")
					mm.field = canonical
				} else {
					mm.known = false
				}
			case t != nil && t.Kind() == reflect.Map:
				mm.typ = t.Elem()
			}
			mm.typ = nonPointer(mm.typ)
			mm.dotted = joinPath(m.dotted, embedded+canonical)
			if p, ok := w.value(vt, mm, joinPath(path, canonical)); ok {
				return p, true
			}
		}
	case json.Delim('['):
		em := member{dotted: m.dotted, known: true}
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			em.typ = nonPointer(t.Elem())
		}
		for i := 0; w.dec.More(); i++ {
			vt, err := w.dec.Token()
			if err != nil {
				return "", false
			}
			if p, ok := w.value(vt, em, path+"["+strconv.Itoa(i)+"]"); ok {
				return p, true
			}
		}
	default:
		return "", false // a scalar
	}
	_, _ = w.dec.Token() // the closing delimiter
	return "", false
}

// nonPointer returns t without its pointers.
func nonPointer(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// structural returns t without its pointers, or nil when t is nil or
// decodes itself, so that its members are not encoding/json's fields.
func structural(t reflect.Type) reflect.Type {
	if t = nonPointer(t); t == nil {
		return nil
	}
	pt := reflect.PointerTo(t)
	if pt.Implements(reflect.TypeFor[json.Unmarshaler]()) || pt.Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return nil
	}
	return t
}

// fieldOf returns the field of struct type t that encoding/json decodes
// the member name into, looking into embedded structs, the Go names of the
// embedded structs it is in as encoding/json's UnmarshalTypeError.Field
// gives them ("Meta."), and whether there is one.
func fieldOf(t reflect.Type, name string) (reflect.StructField, string, bool) {
	if f, ok := jsonField(t, name); ok {
		return t.Field(f), "", true
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.Anonymous || f.Tag.Get("json") != "" {
			continue
		}
		if et := structural(f.Type); et != nil && et.Kind() == reflect.Struct {
			if ff, embedded, ok := fieldOf(et, name); ok {
				return ff, f.Name + "." + embedded, true
			}
		}
	}
	return reflect.StructField{}, "", false
}

// joinPath appends the member name to the path of its object.
func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// jsonKind names the kind of JSON value that starts with tok.
func jsonKind(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		if tok == json.Delim('[') {
			return "array"
		}
		return "object"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "bool"
	}
	return "null"
}

// typeMessage says what JSON type a Go type expects.
func typeMessage(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "has the wrong type"
	}
	switch t.Kind() {
	case reflect.String:
		return "must be a string"
	case reflect.Bool:
		return "must be a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "must be an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "must be a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "must be a number"
	case reflect.Slice, reflect.Array:
		return "must be an array"
	case reflect.Map, reflect.Struct:
		return "must be an object"
	}
	return "has the wrong type"
}

// decodePatch decodes the body of a PATCH into v, a pointer to a struct
// whose fields are pointers, as decodeJSON does. A member that is null
// clears a string field, as "" does (JSON merge patch, RFC 7396); encoding/json
// alone would read it as absent and change nothing. Null for a field of any
// other type is a 400 naming it. A member given twice is refused, as
// decodeJSON refuses it.
func decodePatch(body []byte, v any) error {
	if err := decodeJSON(body, v, true); err != nil {
		return err
	}
	rv := reflect.ValueOf(v).Elem()
	last := map[int]string{} // field index: the last member naming it, if null
	err := eachMember(body, func(name string, raw json.RawMessage) {
		f, ok := jsonField(rv.Type(), name)
		if !ok {
			return // decodeJSON has refused unknown members
		}
		if string(raw) == "null" {
			last[f] = name
		} else {
			delete(last, f)
		}
	})
	if err != nil {
		return err
	}
	for _, f := range slices.Sorted(maps.Keys(last)) {
		name := last[f]
		if rv.Field(f).Type() != reflect.TypeFor[*string]() {
			return invalid(name, "must not be null: leave %s out to keep it as it is", name)
		}
		rv.Field(f).Set(reflect.ValueOf(new(string)))
	}
	return nil
}

// eachMember calls fn with the name and the value of every member of the
// JSON object obj, in order, duplicates included.
func eachMember(obj []byte, fn func(name string, raw json.RawMessage)) error {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return invalid("", "request body must be a JSON object")
	}
	for dec.More() {
		t, err := dec.Token()
		name, ok := t.(string)
		var raw json.RawMessage
		if err == nil && ok {
			err = dec.Decode(&raw)
		}
		if err != nil || !ok {
			return invalid("", "request body must be a JSON object")
		}
		fn(name, raw)
	}
	return nil
}

// jsonField returns the index of the field of the struct type t that
// encoding/json decodes the member name into: the one whose name matches
// exactly, else one that matches ignoring case.
func jsonField(t reflect.Type, name string) (int, bool) {
	folded := -1
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		if tag == name {
			return i, true
		}
		if folded < 0 && strings.EqualFold(tag, name) {
			folded = i
		}
	}
	return folded, folded >= 0
}

// checkQuotaNulls refuses a body whose quota gives a resource a null
// limit, which encoding/json would read as a limit of 0, so that nothing of
// that resource could be used. In a PATCH (patch true) the quota itself may
// not be null either.
func checkQuotaNulls(body []byte, patch bool) error {
	var bad error
	_ = eachMember(body, func(name string, raw json.RawMessage) {
		if bad != nil || !strings.EqualFold(name, "quota") {
			return
		}
		if string(raw) == "null" {
			if patch {
				bad = invalid("quota", "must not be null: send {} to remove every limit, or leave quota out to keep it as it is")
			}
			return
		}
		_ = eachMember(raw, func(res string, limit json.RawMessage) {
			if bad == nil && string(limit) == "null" {
				bad = invalid("quota", "the limit of %s is null: give a number, or leave %s out for no limit", res, res)
			}
		})
	})
	return bad // a malformed body is decodeJSON's to refuse
}
