package binenc

import (
	"encoding/binary"
	"errors"
	"testing"
)

var errBad = errors.New("bad payload")

func TestReader_RoundTrip(t *testing.T) {
	b := AppendString(nil, "héllo")
	b = AppendBytes(b, []byte{0, 1, 2})
	b = AppendBool(b, true)
	b = AppendBool(b, false)
	b = binary.AppendVarint(b, -42)
	b = binary.AppendUvarint(b, 3)
	b = append(b, 7, 8, 9)
	r := NewReader(b, errBad)
	if s := r.String("s"); s != "héllo" {
		t.Fatalf("string %q", s)
	}
	if p := r.Bytes("p"); string(p) != "\x00\x01\x02" || cap(p) != 3 {
		t.Fatalf("bytes % x (cap %d)", p, cap(p))
	}
	if !r.Bool("t") || r.Bool("f") {
		t.Fatal("bools")
	}
	if v := r.Varint("v"); v != -42 {
		t.Fatalf("varint %d", v)
	}
	if n := r.Count("n", 1); n != 3 {
		t.Fatalf("count %d", n)
	}
	r.b = r.b[3:]
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
}

func TestReader_Errors(t *testing.T) {
	cases := map[string]func(r *Reader){
		"empty uvarint":       func(r *Reader) { r.Uvarint("u") },
		"string past the end": func(r *Reader) { r.String("s") },
		"bool of 2":           func(r *Reader) { r.Bool("b") },
		"count past the end":  func(r *Reader) { r.Count("c", 4) },
	}
	payloads := map[string][]byte{
		"empty uvarint":       nil,
		"string past the end": {5, 'a'},
		"bool of 2":           {2},
		"count past the end":  {3, 0, 0, 0, 0},
	}
	for name, read := range cases {
		r := NewReader(payloads[name], errBad)
		read(r)
		// Once failed, every read is a zero value.
		if r.Uvarint("after") != 0 || r.String("after") != "" {
			t.Errorf("%s: a read after the error returned a value", name)
		}
		if err := r.Done(); !errors.Is(err, errBad) {
			t.Errorf("%s: Done = %v, want the sentinel", name, err)
		}
	}
	if err := NewReader([]byte{1}, errBad).Done(); !errors.Is(err, errBad) {
		t.Errorf("a byte left over: Done = %v, want the sentinel", err)
	}
	// A huge varint overflows.
	r := NewReader([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, errBad)
	if r.Varint("v"); !errors.Is(r.Err(), errBad) {
		t.Fatalf("overflow: %v", r.Err())
	}
}
