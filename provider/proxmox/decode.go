package proxmox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Proxmox encodes numbers and booleans loosely: a count may come as 4,
// 4.0 or "4", a flag as 1, "1", true or "". The types below read all of
// these, so that one unusual field does not fail a whole answer.

// pveInt is an integer as Proxmox writes it.
type pveInt int64

// UnmarshalJSON reads a number, a numeric string, a boolean or null.
func (n *pveInt) UnmarshalJSON(b []byte) error {
	f, err := looseNumber(b)
	if err != nil {
		return err
	}
	*n = pveInt(math.Round(f))
	return nil
}

// pveUint is a size or counter as Proxmox writes it.
type pveUint uint64

// UnmarshalJSON reads a number, a numeric string, a boolean or null.
func (n *pveUint) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(bytes.TrimSpace(b), `"`))
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		*n = pveUint(u)
		return nil
	}
	f, err := looseNumber(b)
	if err != nil {
		return err
	}
	if f < 0 {
		f = 0
	}
	*n = pveUint(math.Round(f))
	return nil
}

// pveFloat is a fraction as Proxmox writes it.
type pveFloat float64

// UnmarshalJSON reads a number, a numeric string, a boolean or null.
func (n *pveFloat) UnmarshalJSON(b []byte) error {
	f, err := looseNumber(b)
	if err != nil {
		return err
	}
	*n = pveFloat(f)
	return nil
}

// pveBool is a flag as Proxmox writes it.
type pveBool bool

// UnmarshalJSON reads 0/1, "0"/"1", true/false, "" or null.
func (v *pveBool) UnmarshalJSON(b []byte) error {
	f, err := looseNumber(b)
	if err != nil {
		return err
	}
	*v = f != 0
	return nil
}

// looseNumber reads a JSON number, a string holding one, a boolean, an
// empty string or null.
func looseNumber(b []byte) (float64, error) {
	s := string(bytes.TrimSpace(b))
	switch s {
	case "null", `""`, "false":
		return 0, nil
	case "true":
		return 1, nil
	}
	s = strings.Trim(s, `"`)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("not a number: %s", b)
	}
	return f, nil
}

// configValues turns a configuration as Proxmox returns it into strings:
// strings stay as they are, numbers keep their JSON spelling, booleans
// become 1 or 0, and nulls are left out.
func configValues(raw map[string]json.RawMessage) map[string]string {
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		v = bytes.TrimSpace(v)
		switch {
		case len(v) == 0 || string(v) == "null":
		case v[0] == '"':
			var s string
			if json.Unmarshal(v, &s) == nil {
				out[k] = s
			}
		case string(v) == "true":
			out[k] = "1"
		case string(v) == "false":
			out[k] = "0"
		default:
			out[k] = string(v)
		}
	}
	return out
}

// splitList splits a Proxmox list ("a;b", "a,b" or "a b") into its
// non-empty items.
func splitList(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' || r == ' ' })
	if len(f) == 0 {
		return nil
	}
	return f
}
