package ipam

import (
	"testing"
	"time"
)

// benchSpaces are the spaces allocation speed is compared across: the cost
// of an allocation must not grow with prefix size or fill level.
var benchSpaces = []struct {
	name   string
	prefix string
	fill   bool // 90% used, every tenth address free
}{
	{"v4-24-empty", "10.0.0.0/24", false},
	{"v4-16-empty", "10.0.0.0/16", false},
	{"v4-8-empty", "10.0.0.0/8", false},
	{"v4-16-90pct-full", "10.0.0.0/16", true},
	{"v6-64-empty", "2001:db8::/64", false},
}

// benchNextFree times NextFree(count) on sp. Every 200 keys it releases
// what it took, with the timer stopped, so the space stays in the state it
// was built in (an empty /24 has only 254 addresses).
func benchNextFree(b *testing.B, sp *Space, m *MemRuns, count int) {
	const round = 200
	held := make([]Key, 0, round+count)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		keys, err := sp.NextFree(m, count)
		if err != nil {
			b.Fatal(err)
		}
		held = append(held, keys...)
		if len(held) >= round {
			b.StopTimer()
			for _, k := range held {
				if err := sp.Release(m, k); err != nil {
					b.Fatal(err)
				}
			}
			held = held[:0]
			b.StartTimer()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*count), "ns/addr")
}

func BenchmarkNextFree(b *testing.B) {
	for _, bs := range benchSpaces {
		b.Run(bs.name, func(b *testing.B) {
			sp, m := addrSpace(b, bs.prefix, false)
			if bs.fill {
				fillEveryTenth(sp, m)
			}
			benchNextFree(b, sp, m, 1)
		})
	}
}

func BenchmarkNextFreeCount100(b *testing.B) {
	for _, bs := range benchSpaces {
		if bs.prefix == "10.0.0.0/24" {
			continue // 254 addresses hold only two rounds of 100
		}
		b.Run(bs.name, func(b *testing.B) {
			sp, m := addrSpace(b, bs.prefix, false)
			if bs.fill {
				fillEveryTenth(sp, m)
			}
			benchNextFree(b, sp, m, 100)
		})
	}
}

func BenchmarkNextFreePrefix(b *testing.B) {
	// A /8 container whose /24 children are taken in every other /16.
	sp, m := blockSpace(b, "10.0.0.0/8")
	for i := 0; i < 256; i += 2 {
		from := sp.Ranges[0].Start.Add64(uint64(i) << 16)
		if err := sp.ClaimRange(m, from, from.Add64(1<<16-1)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := sp.NextFreePrefix(m, 24)
		if err != nil {
			b.Fatal(err)
		}
		if err := sp.ReleasePrefix(m, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNextFreeInterleaved takes rounds of 200 addresses from each of
// the benchSpaces in turn, so that all of them meet the same machine noise,
// and reports each one's time per address as a multiple of the empty /24's
// ("x-" metrics) and in ns ("ns-" metrics).
func BenchmarkNextFreeInterleaved(b *testing.B) {
	type state struct {
		sp    *Space
		m     *MemRuns
		spent time.Duration
	}
	states := make([]*state, len(benchSpaces))
	for i, bs := range benchSpaces {
		sp, m := addrSpace(b, bs.prefix, false)
		if bs.fill {
			fillEveryTenth(sp, m)
		}
		states[i] = &state{sp: sp, m: m}
	}
	var held [200]Key
	rounds := 0
	for b.Loop() {
		for _, st := range states {
			start := time.Now()
			for j := range held {
				keys, err := st.sp.NextFree(st.m, 1)
				if err != nil {
					b.Fatal(err)
				}
				held[j] = keys[0]
			}
			st.spent += time.Since(start)
			for _, k := range held {
				if err := st.sp.Release(st.m, k); err != nil {
					b.Fatal(err)
				}
			}
		}
		rounds++
	}
	base := float64(states[0].spent)
	for i, st := range states {
		b.ReportMetric(float64(st.spent)/base, "x-"+benchSpaces[i].name)
		b.ReportMetric(float64(st.spent.Nanoseconds())/float64(rounds*len(held)), "ns-"+benchSpaces[i].name)
	}
}
