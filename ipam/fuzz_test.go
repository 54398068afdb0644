package ipam

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

// model is a bitmap of a small space: the allocator's reference.
type model struct {
	base   Key
	usable []bool
	used   []bool
}

// fuzzSpace returns the small space FuzzAllocator picks by its first byte,
// and its model. Each space has at most 32 keys from a 32-aligned base.
func fuzzSpace(b byte) (Space, model) {
	var sp Space
	switch b % 6 {
	case 0:
		sp = AddrSpace(netip.MustParsePrefix("10.0.0.0/27"), false)
	case 1:
		sp = AddrSpace(netip.MustParsePrefix("10.0.0.0/27"), true)
	case 2:
		sp = AddrSpace(netip.MustParsePrefix("2001:db8::/123"), false)
	case 3:
		sp = BlockSpace(netip.MustParsePrefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffe0/123"))
	case 4:
		sp, _ = VLANSpace(IDRange{1, 5}, IDRange{8, 20}, IDRange{22, 30})
	case 5:
		sp = AddrSpace(netip.MustParsePrefix("10.0.0.32/31"), false)
	}
	m := model{base: sp.Ranges[0].Start.and(Key{Hi: ^uint64(0), Lo: ^uint64(31)})}
	for i := 0; i < 32; i++ {
		m.usable = append(m.usable, sp.Contains(m.base.Add64(uint64(i))))
		m.used = append(m.used, false)
	}
	return sp, m
}

func (m *model) in(i int) bool { return i >= 0 && i < len(m.usable) && m.usable[i] }

// check returns the error kind the model predicts for a range operation on
// [i, j] that wants every key used (release) or free (claim).
func (m *model) check(i, j int, release bool) error {
	if j < i {
		return ErrInvalidRange
	}
	for x := i; x <= j; x++ {
		if !m.in(x) {
			return ErrOutside
		}
	}
	for x := i; x <= j; x++ {
		if m.used[x] != release {
			if release {
				return ErrNotAllocated
			}
			return ErrInUse
		}
	}
	for x := i; x <= j; x++ {
		m.used[x] = !release
	}
	return nil
}

func (m *model) free() []int {
	var out []int
	for i := range m.usable {
		if m.usable[i] && !m.used[i] {
			out = append(out, i)
		}
	}
	return out
}

func (m *model) runs() []Run {
	var out []Run
	for i := 0; i < len(m.used); i++ {
		if !m.used[i] {
			continue
		}
		j := i
		for j+1 < len(m.used) && m.used[j+1] {
			j++
		}
		out = append(out, Run{m.base.Add64(uint64(i)), m.base.Add64(uint64(j))})
		i = j
	}
	return out
}

// FuzzAllocator runs a byte-coded sequence of operations against the
// allocator over MemRuns and against a bitmap, and compares results, errors
// and the runs after every step.
func FuzzAllocator(f *testing.F) {
	f.Add([]byte{0, 0, 3, 1, 5, 2, 5, 0, 40})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		sp, m := fuzzSpace(data[0])
		var store MemRuns
		// Indexes run one past the space, unless that would wrap to key 0.
		n := byte(33)
		if m.base.Add64(32).IsZero() {
			n = 32
		}
		idx := func(b byte) int { return int(b % n) }
		k := func(i int) Key { return m.base.Add64(uint64(i)) }
		for p := 1; p+2 < len(data); p += 3 {
			op, a, b := data[p], data[p+1], data[p+2]
			var got, want error
			var gotKeys []Key
			var wantKeys []int
			switch op % 7 {
			case 0:
				count := int(a % 10)
				gotKeys, got = sp.NextFree(&store, count)
				free := m.free()
				switch {
				case count < 1:
					want = ErrInvalidCount
				case len(free) < count:
					want = ErrExhausted
					var ee *ExhaustedError
					if errors.As(got, &ee) && ee.Available != uint64(len(free)) {
						t.Fatalf("NextFree(%d): available %d; model %d", count, ee.Available, len(free))
					}
				default:
					wantKeys = free[:count]
					for _, i := range wantKeys {
						m.used[i] = true
					}
				}
			case 1:
				got = sp.Claim(&store, k(idx(a)))
				want = m.check(idx(a), idx(a), false)
			case 2:
				got = sp.Release(&store, k(idx(a)))
				want = m.check(idx(a), idx(a), true)
			case 3:
				got = sp.ClaimRange(&store, k(idx(a)), k(idx(b)))
				want = m.check(idx(a), idx(b), false)
			case 4:
				got = sp.ReleaseRange(&store, k(idx(a)), k(idx(b)))
				want = m.check(idx(a), idx(b), true)
			case 5:
				shift := uint(a % 5)
				var bk Key
				bk, got = sp.NextFreeBlock(&store, shift)
				want = ErrExhausted
				size := 1 << shift
				for s := 0; s+size <= 32; s += size {
					if m.check(s, s+size-1, false) == nil {
						want, wantKeys = nil, []int{s}
						break
					}
				}
				if got == nil {
					gotKeys = []Key{bk}
				}
			case 6:
				var ck Key
				ck, got = sp.ClaimOrNext(&store, k(idx(a)))
				want = m.check(idx(a), idx(a), false)
				if errors.Is(want, ErrInUse) {
					want = ErrExhausted
					if free := m.free(); len(free) > 0 {
						want = nil
						m.used[free[0]] = true
						wantKeys = []int{free[0]}
					}
				} else if want == nil {
					wantKeys = []int{idx(a)}
				}
				if got == nil {
					gotKeys = []Key{ck}
				}
			}
			if (want == nil) != (got == nil) || want != nil && !errors.Is(got, want) {
				t.Fatalf("step %d op %d(%d,%d): error %v; model %v", p/3, op%7, a, b, got, want)
			}
			wk := make([]Key, len(wantKeys))
			for i, x := range wantKeys {
				wk[i] = k(x)
			}
			if want == nil && !slices.Equal(gotKeys, wk) {
				t.Fatalf("step %d op %d(%d,%d): keys %v; model %v", p/3, op%7, a, b, gotKeys, wk)
			}
			if runs := store.Runs(); !slices.Equal(runs, m.runs()) {
				t.Fatalf("step %d op %d(%d,%d): runs %s; model %s", p/3, op%7, a, b, formatRuns(&sp, runs), formatRuns(&sp, m.runs()))
			}
			checkRuns(t, &sp, &store)
		}
	})
}
