package quota

import (
	"slices"
	"strings"
)

// Meter names a kind of metered usage. Each meter counts units held over
// time: vCPUs, MiB of memory, GiB of disk or addresses.
type Meter string

// The meters. Running and stopped guests are metered apart so that a rate
// card can price a stopped guest's reservation below a running one.
const (
	VCPURunning   Meter = "vcpu_running"   // vCPUs of running guests
	VCPUStopped   Meter = "vcpu_stopped"   // vCPUs of stopped guests
	MemoryRunning Meter = "memory_running" // MiB of memory of running guests
	MemoryStopped Meter = "memory_stopped" // MiB of memory of stopped guests
	Disk          Meter = "disk"           // GiB of disk
	Addresses     Meter = "addresses"      // allocated IP addresses
)

// NumMeters is the number of meters.
const NumMeters = 6

// Meters lists every meter in the order of Quantities and Rates, which is
// also the order of report rows. Entries are only ever appended, since
// quantities are stored by position.
var Meters = []Meter{VCPURunning, VCPUStopped, MemoryRunning, MemoryStopped, Disk, Addresses}

// Valid reports whether m is one of Meters.
func (m Meter) Valid() bool { return slices.Contains(Meters, m) }

// Quantities hold accrued usage per meter, in the order of Meters, in
// unit-milliseconds: 2 vCPUs held for one hour are 2 × HourMillis.
type Quantities [NumMeters]int64

// Add returns q + o, meter by meter.
func (q Quantities) Add(o Quantities) Quantities {
	for i := range q {
		q[i] += o[i]
	}
	return q
}

// IsZero reports whether every quantity is zero.
func (q Quantities) IsZero() bool { return q == Quantities{} }

// Rates hold how many units of each meter, in the order of Meters, are
// held at a moment: for example the vCPUs of a tenant's running guests.
type Rates [NumMeters]int64

// MaxRate bounds a rate Accrue accepts: MaxRate units over one hour are
// below 2^53 unit-milliseconds, so an hour's quantity fits an int64 with
// room to sum over a thousand such hours.
const MaxRate = int64(1) << 31

// HourMillis is one hour in milliseconds, the span of a metering bucket.
const HourMillis = 3_600_000

// Accrue meters rates r held over [from, to), times in unix milliseconds:
// it splits the interval at hour boundaries and calls add once for each
// hour it touches, in time order, with the start of that hour and r
// multiplied by the milliseconds of the interval within it. It calls
// nothing when to <= from, when every rate is zero, or when a rate lies
// outside [0, MaxRate]; callers validate rates before they reach the
// meter. Accrual is exactly additive: accruing [a, b) and then [b, c)
// adds the same quantities to each hour as accruing [a, c).
func Accrue(from, to int64, r Rates, add func(hourStart int64, q Quantities)) {
	if to <= from || r == (Rates{}) {
		return
	}
	for _, v := range r {
		if v < 0 || v > MaxRate {
			return
		}
	}
	for start := floorHour(from); from < to; start += HourMillis {
		end := min(start+HourMillis, to)
		var q Quantities
		for i, v := range r {
			q[i] = v * (end - from)
		}
		add(start, q)
		from = end
	}
}

// floorHour returns the start of the hour that holds t, also before 1970.
func floorHour(t int64) int64 {
	start := t - t%HourMillis
	if start > t {
		start -= HourMillis
	}
	return start
}

func meterList() string {
	names := make([]string, len(Meters))
	for i, m := range Meters {
		names[i] = string(m)
	}
	return strings.Join(names, ", ")
}
