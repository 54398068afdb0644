package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// checkContentType refuses a JSON body declared as something else. A
// missing Content-Type is accepted.
func checkContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" || ct == "application/json" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && mt == "application/json" {
		return nil
	}
	return &apiError{
		status:  http.StatusUnsupportedMediaType,
		code:    CodeUnsupportedMediaType,
		field:   "Content-Type",
		message: "request body must be application/json, not " + strconv.Quote(ct),
	}
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
		return decodeError(err, len(body))
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		rest := body[end:]
		end += int64(len(rest) - len(bytes.TrimLeft(rest, " \t\r\n")))
		return invalid("", "unexpected data after the JSON object at byte offset %d", end)
	}
	return nil
}

// decodeError turns an encoding/json error into a 400 naming the field.
func decodeError(err error, size int) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return invalid("", "malformed JSON at byte offset %d: %s", syn.Offset, syn.Error())
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return invalid("", "malformed JSON: unexpected end of input at byte offset %d", size)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return invalid("", "request body must be a JSON object")
		}
		return invalid(typ.Field, "%s", typeMessage(typ.Type))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if unq, uerr := strconv.Unquote(name); uerr == nil {
			name = unq
		}
		return invalid(name, "unknown field %q", name)
	}
	var inv *json.InvalidUnmarshalError
	if errors.As(err, &inv) {
		return internal(err)
	}
	return invalid("", "malformed JSON: %v", err)
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
