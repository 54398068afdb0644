package client

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// listOf decodes a list answer, {"<field>": [...]}, or a bare array.
type listOf[T any] struct {
	field string
	items []T
}

// UnmarshalJSON decodes the list from either shape.
func (l *listOf[T]) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		return json.Unmarshal(b, &l.items)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	raw, ok := obj[l.field]
	if !ok {
		return fmt.Errorf("the answer has no %q list", l.field)
	}
	return json.Unmarshal(raw, &l.items)
}
