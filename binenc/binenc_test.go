package binenc

import (
	"encoding/binary"
	"errors"
	"testing"
	"unsafe"
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

func TestReader_SharedString(t *testing.T) {
	long := string(make([]byte, maxInternedLen+1))
	var b []byte
	for _, s := range []string{"actor", "actor", "", long, long, "other", "actor"} {
		b = AppendString(b, s)
	}
	read := func(in *Interner) []string {
		r := NewReader(b, errBad).WithInterner(in)
		var out []string
		for range 7 {
			out = append(out, r.SharedString("s"))
		}
		if err := r.Done(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	same := func(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

	plain := read(nil)
	if plain[0] != "actor" || plain[3] != long || same(plain[0], plain[1]) {
		t.Fatalf("without an interner: %q, shared %v", plain[:2], same(plain[0], plain[1]))
	}
	in := NewInterner(2)
	got := read(in)
	for i, want := range []string{"actor", "actor", "", long, long, "other", "actor"} {
		if got[i] != want {
			t.Fatalf("string %d = %q, want %q", i, got[i], want)
		}
	}
	if !same(got[0], got[1]) {
		t.Error("equal strings do not share memory")
	}
	if same(got[3], got[4]) {
		t.Error("a string over maxInternedLen was interned")
	}
	// "other" filled the interner (actor, other); the third "actor"
	// still finds the first.
	if !same(got[0], got[6]) {
		t.Error("third actor does not share the first's memory")
	}
	// A third distinct string starts the interner over.
	r := NewReader(AppendString(nil, "third"), errBad).WithInterner(in)
	if s := r.SharedString("s"); s != "third" || len(in.m) != 1 {
		t.Fatalf("after a third string: %q, %d kept, want 1", s, len(in.m))
	}
}

func TestReader_More(t *testing.T) {
	r := NewReader(AppendBool(nil, true), errBad)
	if !r.More() || !r.Bool("b") || r.More() {
		t.Fatal("More before and after the last field")
	}
	r = NewReader([]byte{9}, errBad)
	r.Bool("b")
	if r.More() {
		t.Fatal("More after a failed read")
	}
}
