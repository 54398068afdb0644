package schema

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// CheckReturns checks a response's "data" value (decoded with encoding/json
// into any) against the endpoint's "returns" schema: the type, and for
// objects (or arrays of objects, at any depth) that every property NOT
// marked "optional" is present and every present property has the schema
// type and, for strings with an enum, one of its values. A null value
// counts as absent.
//
// Numbers follow Proxmox, whose Perl code cannot tell 1 from "1" and
// sometimes answers with strings where the schema says integer (GET
// /cluster/nextid answers "100", and clients such as go-proxmox decode a
// string there): an integer is a JSON number without a fraction or a
// string of digits, a number is a JSON number or a numeric string, and a
// boolean is a JSON boolean, the number 0 or 1, or the string "0" or "1"
// (Proxmox encodes booleans as integers). A string must be a JSON string.
//
// It returns a list of human-readable problems, empty when fine.
func (e *Endpoint) CheckReturns(data any) []string {
	var probs []string
	checkReturn("data", e.Returns, data, &probs)
	return probs
}

func checkReturn(path string, p *Prop, v any, probs *[]string) {
	if v == nil {
		if p.Type != "null" && !p.Optional {
			*probs = append(*probs, path+": property is missing and it is not optional")
		}
		return
	}
	if !returnTypeOK(p.Type, v) {
		*probs = append(*probs, fmt.Sprintf("%s: type check ('%s') failed - got %s", path, p.Type, describe(v)))
		return
	}
	switch v := v.(type) {
	case []any:
		if p.Items != nil {
			for i, it := range v {
				checkReturn(fmt.Sprintf("%s[%d]", path, i), p.Items, it, probs)
			}
		}
	case map[string]any:
		if p.Properties != nil || p.AdditionalProperties != nil {
			checkReturnObject(path, p, v, probs)
		}
	case string:
		if len(p.Enum) > 0 {
			for _, ev := range p.Enum {
				if ev == v {
					return
				}
			}
			*probs = append(*probs, fmt.Sprintf("%s: value '%s' is not in the enumeration of the schema", path, v))
		}
	}
}

func checkReturnObject(path string, p *Prop, v map[string]any, probs *[]string) {
	for _, k := range sortedKeys(p.Properties) {
		if isIndexedName(k) {
			continue
		}
		sub := p.Properties[k]
		if val := v[k]; val != nil {
			checkReturn(path+"."+k, sub, val, probs)
		} else if sub.Type != "null" && !sub.Optional {
			*probs = append(*probs, path+"."+k+": property is missing and it is not optional")
		}
	}
	for _, k := range sortedKeys(v) {
		if _, exact := p.Properties[k]; exact && !isIndexedName(k) {
			continue
		}
		if sub, ok := p.Property(k); ok {
			if v[k] != nil {
				checkReturn(path+"."+k, sub, v[k], probs)
			}
			continue
		}
		if p.AdditionalProperties != nil && !*p.AdditionalProperties {
			*probs = append(*probs, path+"."+k+": property is not defined in schema and the schema does not allow additional properties")
		}
	}
}

// returnTypeOK reports whether a decoded JSON value has the schema type.
// Unknown types and "any" accept everything.
func returnTypeOK(typ string, v any) bool {
	switch typ {
	case "string":
		_, ok := v.(string)
		return ok
	case "integer":
		if s, ok := v.(string); ok {
			return isInteger(s)
		}
		x, ok := toFloat(v)
		return ok && x == math.Trunc(x) && !math.IsInf(x, 0)
	case "number":
		if s, ok := v.(string); ok {
			return isNumber(s)
		}
		_, ok := toFloat(v)
		return ok
	case "boolean":
		switch b := v.(type) {
		case bool:
			return true
		case string:
			return b == "0" || b == "1"
		}
		x, ok := toFloat(v)
		return ok && (x == 0 || x == 1)
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "null":
		return v == nil
	}
	return true
}

// toFloat returns the value of a JSON number as decoded by encoding/json
// (float64, or json.Number with UseNumber) or of a Go integer.
func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		return f, err == nil
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	}
	return 0, false
}

// describe names a decoded JSON value for a problem report.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return "string " + strconv.Quote(x)
	case bool:
		return "boolean " + strconv.FormatBool(x)
	case []any:
		return fmt.Sprintf("array of %d", len(x))
	case map[string]any:
		keys := sortedKeys(x)
		if len(keys) > 5 {
			keys = append(keys[:5], "...")
		}
		return fmt.Sprintf("object %v", keys)
	}
	if f, ok := toFloat(v); ok {
		return "number " + strconv.FormatFloat(f, 'g', -1, 64)
	}
	return fmt.Sprintf("%T", v)
}
