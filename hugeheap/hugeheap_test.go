package hugeheap

import (
	"slices"
	"testing"
)

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{
		"always [madvise] never\n":       "madvise",
		"[always] madvise never\n":       "always",
		"always madvise [never]\n":       "never",
		"always inherit madvise [never]": "never",
		"":                               "",
		"always madvise never\n":         "",
		"[]":                             "",
	} {
		if got := ParseMode([]byte(in)); got != want {
			t.Errorf("ParseMode(%q) = %q, want %q", in, got, want)
		}
	}
}

// maps is /proc/self/maps of a Go program: its binary, the heap's arenas
// (reserved, partly mapped readable and writable in two pieces, the second
// advised apart), the runtime's other mappings, a file mapping right after
// another anonymous run, the stack and the vDSO.
const maps = `00400000-004ac000 r-xp 00000000 fe:00 9977917                            /usr/bin/moxxied
0058f000-0059a000 rw-p 0018f000 fe:00 9977917                            /usr/bin/moxxied
0059a000-005d0000 rw-p 00000000 00:00 0 
27df20000000-27df22c00000 ---p 00000000 00:00 0 
27df22c00000-27df29800000 rw-p 00000000 00:00 0 
27df29800000-27df29c00000 rw-p 00000000 00:00 0 
27df29c00000-27df2c000000 ---p 00000000 00:00 0 
7f4f82c00000-7f4f84c00000 rw-p 00000000 00:00 0 
7f4f84c00000-7f4f99bbe000 ---p 00000000 00:00 0 
7f4f99bbe000-7f4f99bbf000 rw-p 00000000 00:00 0 
7f4f99bbf000-7f4f99cbf000 rw-s 00000000 fe:00 1234                       /var/lib/moxxie/raft/raft.db
7fffdbde0000-7fffdbe01000 rw-p 00000000 00:00 0                          [stack]
7f4fc9688000-7f4fc968a000 r-xp 00000000 00:00 0                          [vdso]
`

func TestHeapSpans(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr uintptr
		want []Span
	}{
		{"heap object", 0x27df23000000, []Span{{0x27df22c00000, 0x27df29c00000}}},
		{"in the reservation", 0x27df20000010, []Span{{0x27df22c00000, 0x27df29c00000}}},
		{"a run before a file mapping", 0x7f4f82c00100, []Span{{0x7f4f82c00000, 0x7f4f84c00000}, {0x7f4f99bbe000, 0x7f4f99bbf000}}},
		{"the binary's data", 0x0058f010, nil},
		{"the stack", 0x7fffdbde0100, nil},
		{"nothing mapped", 0x1000, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := HeapSpans([]byte(maps), tc.addr); !slices.Equal(got, tc.want) {
				t.Errorf("HeapSpans(%#x) = %x, want %x", tc.addr, got, tc.want)
			}
		})
	}
	if got := HeapSpans([]byte("garbage\n1-0 rw-p 0 00:00 0\nzz-10 rw-p 0 00:00 0\n"), 5); got != nil {
		t.Errorf("HeapSpans of malformed lines = %x", got)
	}
}

func TestUncoveredAndMerge(t *testing.T) {
	s := func(a, b uintptr) Span { return Span{a, b} }
	for _, tc := range []struct {
		name           string
		spans, covered []Span
		want           []Span
	}{
		{"nothing covered", []Span{s(10, 20)}, nil, []Span{s(10, 20)}},
		{"all covered", []Span{s(10, 20)}, []Span{s(0, 30)}, nil},
		{"grown at the end", []Span{s(10, 30)}, []Span{s(10, 20)}, []Span{s(20, 30)}},
		{"grown at both ends", []Span{s(0, 30)}, []Span{s(10, 20)}, []Span{s(0, 10), s(20, 30)}},
		{"holes", []Span{s(0, 50)}, []Span{s(10, 20), s(30, 40)}, []Span{s(0, 10), s(20, 30), s(40, 50)}},
		{"a new span", []Span{s(10, 20), s(40, 50)}, []Span{s(10, 20)}, []Span{s(40, 50)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Uncovered(tc.spans, tc.covered); !slices.Equal(got, tc.want) {
				t.Errorf("Uncovered = %v, want %v", got, tc.want)
			}
		})
	}
	got := Merge([]Span{s(40, 50), s(10, 20), s(20, 30), s(25, 35), s(60, 70)})
	if want := []Span{s(10, 35), s(40, 50), s(60, 70)}; !slices.Equal(got, want) {
		t.Errorf("Merge = %v, want %v", got, want)
	}
}
