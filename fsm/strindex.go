package fsm

import (
	"fmt"
	"strings"
)

// strIndex indexes a string field of *T the way memdb.StringFieldIndex
// does (the value and a NUL; an empty value is missing), without
// reflection. The tables that every allocation writes use it: there the
// reflective lookup of the field and its two copies of the key were a
// tenth of Apply's heap allocations.
type strIndex[T any] struct {
	field func(*T) string
	lower bool
}

// fieldIndex returns an indexer of the string field of *T that field
// returns.
func fieldIndex[T any](field func(*T) string) strIndex[T] {
	return strIndex[T]{field: field}
}

// lowerIndex is fieldIndex with the value lowercased, as
// memdb.StringFieldIndex with Lowercase.
func lowerIndex[T any](field func(*T) string) strIndex[T] {
	return strIndex[T]{field: field, lower: true}
}

func (x strIndex[T]) key(v string, nul bool) []byte {
	if x.lower {
		v = strings.ToLower(v)
	}
	n := len(v)
	if nul {
		n++
	}
	b := make([]byte, n)
	copy(b, v)
	return b
}

// FromObject implements memdb.SingleIndexer.
func (x strIndex[T]) FromObject(obj any) (bool, []byte, error) {
	o, ok := obj.(*T)
	if !ok {
		return false, nil, fmt.Errorf("fsm: index of %T: unexpected %T", o, obj)
	}
	v := x.field(o)
	if v == "" {
		return false, nil, nil
	}
	return true, x.key(v, true), nil
}

func (x strIndex[T]) arg(args []any) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("fsm: must provide only a single argument, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return "", fmt.Errorf("fsm: argument must be a string: %#v", args[0])
	}
	return s, nil
}

// FromArgs implements memdb.Indexer. A second argument, the primary
// key (an ID) to seek to among the objects of one value in an index that
// is not unique, is appended as it is: LowerBound(table, index, value,
// id) iterates the value's objects from that ID on (and then the next
// values').
func (x strIndex[T]) FromArgs(args ...any) ([]byte, error) {
	var id string
	if len(args) == 2 {
		s, ok := args[1].(string)
		if !ok {
			return nil, fmt.Errorf("fsm: second argument must be a string: %#v", args[1])
		}
		id, args = s, args[:1]
	}
	s, err := x.arg(args)
	if err != nil {
		return nil, err
	}
	return append(x.key(s, true), id...), nil
}

// PrefixFromArgs implements memdb.PrefixIndexer: the keys that start
// with the argument.
func (x strIndex[T]) PrefixFromArgs(args ...any) ([]byte, error) {
	s, err := x.arg(args)
	if err != nil {
		return nil, err
	}
	return x.key(s, false), nil
}
