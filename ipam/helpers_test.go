package ipam

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// addrSpace returns the address space of prefix s and an empty store.
func addrSpace(t testing.TB, s string, pool bool) (*Space, *MemRuns) {
	t.Helper()
	sp := AddrSpace(netip.MustParsePrefix(s), pool)
	return &sp, new(MemRuns)
}

// blockSpace returns the block space of prefix s and an empty store.
func blockSpace(t testing.TB, s string) (*Space, *MemRuns) {
	t.Helper()
	sp := BlockSpace(netip.MustParsePrefix(s))
	return &sp, new(MemRuns)
}

// key returns the key of an address or a decimal ID in sp.
func key(t testing.TB, sp *Space, s string) Key {
	t.Helper()
	if sp.Kind == KindInt {
		var n uint64
		for _, c := range s {
			n = n*10 + uint64(c-'0')
		}
		return IntKey(n)
	}
	return KeyOf(netip.MustParseAddr(s))
}

// formatKeys renders keys as sp shows them, comma-separated.
func formatKeys(sp *Space, keys []Key) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = sp.Format(k)
	}
	return strings.Join(parts, ",")
}

// formatRuns renders runs as "a-b,c".
func formatRuns(sp *Space, runs []Run) string {
	parts := make([]string, len(runs))
	for i, r := range runs {
		parts[i] = sp.formatRun(r)
	}
	return strings.Join(parts, ",")
}

// checkRuns fails unless m's runs are disjoint, merged, inside sp's ranges
// and add up to sp.Used.
func checkRuns(t testing.TB, sp *Space, m *MemRuns) {
	t.Helper()
	var total Key
	runs := m.Runs()
	for i, r := range runs {
		if r.End.Less(r.Start) {
			t.Fatalf("run %s is reversed", sp.formatRun(r))
		}
		if i > 0 && !runs[i-1].End.Add64(1).Less(r.Start) {
			t.Fatalf("runs %s and %s touch or overlap", sp.formatRun(runs[i-1]), sp.formatRun(r))
		}
		if i := sp.rangeOf(r.Start); i < 0 || sp.Ranges[i].End.Less(r.End) {
			t.Fatalf("run %s leaves the space %s", sp.formatRun(r), sp.name())
		}
		total = total.Add(r.End.Sub(r.Start).Add64(1))
	}
	if total != sp.Used {
		t.Fatalf("runs hold %s keys; Used is %s", total, sp.Used)
	}
}

// wantErr fails unless err is of kind want and, if msg is set, reads msg.
func wantErr(t testing.TB, err, want error, msg string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v; want %v", err, want)
	}
	if msg != "" && err.Error() != msg {
		t.Fatalf("error %q; want %q", err, msg)
	}
}

// countingRuns counts the calls made to a RunStore.
type countingRuns struct {
	RunStore
	reads, writes int
}

func (c *countingRuns) Floor(a Key) (Run, bool) { c.reads++; return c.RunStore.Floor(a) }
func (c *countingRuns) Ceil(a Key) (Run, bool)  { c.reads++; return c.RunStore.Ceil(a) }
func (c *countingRuns) Put(r Run)               { c.writes++; c.RunStore.Put(r) }
func (c *countingRuns) Delete(k Key)            { c.writes++; c.RunStore.Delete(k) }

// fillEveryTenth claims all of sp's single range except every tenth key,
// writing the runs directly: 90% used, maximally fragmented.
func fillEveryTenth(sp *Space, m *MemRuns) {
	rg := sp.Ranges[0]
	for start := rg.Start; ; {
		end := start.Add64(8)
		if rg.End.Less(end) {
			end = rg.End
		}
		m.Put(Run{Start: start, End: end})
		sp.Used = sp.Used.Add(end.Sub(start).Add64(1))
		if !end.Add64(2).Less(rg.End) {
			return
		}
		start = end.Add64(2)
	}
}
