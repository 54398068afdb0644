package quota

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestMeters(t *testing.T) {
	if len(Meters) != NumMeters {
		t.Fatalf("len(Meters) = %d, NumMeters = %d", len(Meters), NumMeters)
	}
	want := []string{"vcpu_running", "vcpu_stopped", "memory_running", "memory_stopped", "disk", "addresses"}
	for i, m := range Meters {
		b, err := json.Marshal(m)
		if err != nil || string(b) != `"`+want[i]+`"` {
			t.Errorf("json.Marshal(Meters[%d]) = %s, %v; want %q", i, b, err, want[i])
		}
		if !m.Valid() {
			t.Errorf("%q.Valid() = false", m)
		}
	}
	if Meter("cpu").Valid() {
		t.Error(`Meter("cpu").Valid() = true`)
	}
}

func TestQuantities(t *testing.T) {
	a := Quantities{1, 2, 3, 4, 5, 6}
	if got, want := a.Add(Quantities{10, 0, 0, 0, 0, -6}), (Quantities{11, 2, 3, 4, 5, 0}); got != want {
		t.Errorf("Add = %v, want %v", got, want)
	}
	if a.IsZero() || !(Quantities{}).IsZero() {
		t.Error("IsZero is wrong")
	}
}

// accrual is one call of Accrue's add function.
type accrual struct {
	start int64
	q     Quantities
}

func accrueCalls(from, to int64, r Rates) []accrual {
	var calls []accrual
	Accrue(from, to, r, func(start int64, q Quantities) {
		calls = append(calls, accrual{start, q})
	})
	return calls
}

func TestAccrue(t *testing.T) {
	const (
		h      = HourMillis
		m      = 60_000 // a minute
		t0     = 1793491200000
		maxOut = MaxRate * h
	)
	r := Rates{2, 0, 4096, 0, 50, 1}
	// times returns r multiplied by ms.
	times := func(r Rates, ms int64) Quantities {
		var q Quantities
		for i, v := range r {
			q[i] = v * ms
		}
		return q
	}
	cases := []struct {
		name     string
		from, to int64
		r        Rates
		want     []accrual
	}{
		{"within an hour", t0 + 10*m, t0 + 40*m, r, []accrual{{t0, times(r, 30*m)}}},
		{"across a boundary", t0 + 50*m, t0 + h + 10*m, r, []accrual{{t0, times(r, 10*m)}, {t0 + h, times(r, 10*m)}}},
		{"whole hours", t0, t0 + 2*h, r, []accrual{{t0, times(r, h)}, {t0 + h, times(r, h)}}},
		{"three hours", t0 + 30*m, t0 + 2*h + 15*m, r, []accrual{{t0, times(r, 30*m)}, {t0 + h, times(r, h)}, {t0 + 2*h, times(r, 15*m)}}},
		{"one millisecond", t0 + h - 1, t0 + h, r, []accrual{{t0, times(r, 1)}}},
		{"before 1970", -h / 2, h / 2, r, []accrual{{-h, times(r, h/2)}, {0, times(r, h/2)}}},
		{"empty interval", t0, t0, r, nil},
		{"backwards interval", t0 + h, t0, r, nil},
		{"zero rates", t0, t0 + h, Rates{}, nil},
		{"negative rate", t0, t0 + h, Rates{2, 0, -1, 0, 0, 0}, nil},
		{"rate above MaxRate", t0, t0 + h, Rates{MaxRate + 1}, nil},
		{"MaxRate", t0, t0 + h, Rates{MaxRate, MaxRate, MaxRate, MaxRate, MaxRate, MaxRate}, []accrual{{t0, Quantities{maxOut, maxOut, maxOut, maxOut, maxOut, maxOut}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := accrueCalls(tc.from, tc.to, tc.r); !slices.Equal(got, tc.want) {
				t.Fatalf("Accrue(%d, %d, %v) calls\n%v\nwant\n%v", tc.from, tc.to, tc.r, got, tc.want)
			}
		})
	}
}

// accrueSum adds to sums what Accrue accrues to each hour over [from, to).
func accrueSum(sums map[int64]Quantities, from, to int64, r Rates) {
	Accrue(from, to, r, func(start int64, q Quantities) {
		sums[start] = sums[start].Add(q)
	})
}

// checkAdditive fails t unless accruing [a, b) and [b, c) adds the same
// to every hour as accruing [a, c), and the total is r × (c − a).
func checkAdditive(t *testing.T, a, b, c int64, r Rates) {
	t.Helper()
	split := make(map[int64]Quantities)
	accrueSum(split, a, b, r)
	accrueSum(split, b, c, r)
	whole := make(map[int64]Quantities)
	accrueSum(whole, a, c, r)
	if len(split) != len(whole) {
		t.Fatalf("[%d,%d)+[%d,%d) touched %d hours, [%d,%d) %d", a, b, b, c, len(split), a, c, len(whole))
	}
	var total Quantities
	for start, q := range whole {
		if start%HourMillis != 0 {
			t.Fatalf("hour start %d is not a multiple of HourMillis", start)
		}
		if split[start] != q {
			t.Fatalf("hour %d: split %v, whole %v", start, split[start], q)
		}
		total = total.Add(q)
	}
	if len(whole) > 0 {
		for i, v := range r {
			if want := v * (c - a); total[i] != want {
				t.Fatalf("meter %s: total %d, want %d × %d = %d", Meters[i], total[i], v, c-a, want)
			}
		}
	}
}

func TestAccrue_Additive(t *testing.T) {
	const h = HourMillis
	r := Rates{4, 2, 8192, 1024, 100, 3}
	cases := []struct {
		name    string
		a, b, c int64
		r       Rates
	}{
		{"split inside an hour", 1000, 2000, 3000, r},
		{"split at a boundary", h / 2, h, 3 * h / 2, r},
		{"split just after a boundary", h / 2, h + 1, 5 * h, r},
		{"empty first part", h, h, 3 * h, r},
		{"empty second part", h, 3 * h, 3 * h, r},
		{"many hours", 17, 100*h + 5, 200*h - 3, r},
		{"before and after 1970", -5*h - 7, 11, 2*h + 1, r},
		{"negative rate accrues nothing", 0, h, 2 * h, Rates{-1}},
		{"MaxRate", h - 1, h + 1, 3 * h, Rates{MaxRate, 0, MaxRate, 0, 0, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkAdditive(t, tc.a, tc.b, tc.c, tc.r) })
	}
}
