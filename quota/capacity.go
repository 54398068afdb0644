package quota

import (
	"errors"
	"fmt"
	"math"
)

// Policy is an overcommit policy for a group of nodes: how far the
// allocations on a node may exceed its hardware, resource by resource, and
// how much of the hardware is held back for the host itself. A zero ratio
// means 1.0 (no overcommit).
type Policy struct {
	CPURatio         float64 `json:"cpu_ratio"`
	MemoryRatio      float64 `json:"memory_ratio"`
	DiskRatio        float64 `json:"disk_ratio"`
	ReserveVCPUs     int64   `json:"reserve_vcpus"`
	ReserveMemoryMiB int64   `json:"reserve_memory_mib"`
	ReserveDiskGiB   int64   `json:"reserve_disk_gib"`
}

// The bounds of an overcommit ratio other than 0.
const (
	MinRatio = 0.1
	MaxRatio = 100.0
)

// DefaultPolicy returns the policy of a group that has none: ratios of 1
// and no reserves.
func DefaultPolicy() Policy {
	return Policy{CPURatio: 1, MemoryRatio: 1, DiskRatio: 1}
}

// Validate checks that every ratio is 0 or in [MinRatio, MaxRatio] and every
// reserve lies in [0, MaxLimit]; the error names the JSON field.
func (p Policy) Validate() error {
	for _, f := range []struct {
		name  string
		ratio float64
	}{{"cpu_ratio", p.CPURatio}, {"memory_ratio", p.MemoryRatio}, {"disk_ratio", p.DiskRatio}} {
		if f.ratio != 0 && !(f.ratio >= MinRatio && f.ratio <= MaxRatio) {
			return fmt.Errorf("%w: %s: %v is neither 0 nor in [%v, %v]", ErrInvalid, f.name, f.ratio, MinRatio, MaxRatio)
		}
	}
	for _, f := range []struct {
		name    string
		reserve int64
	}{{"reserve_vcpus", p.ReserveVCPUs}, {"reserve_memory_mib", p.ReserveMemoryMiB}, {"reserve_disk_gib", p.ReserveDiskGiB}} {
		if f.reserve < 0 || f.reserve > MaxLimit {
			return fmt.Errorf("%w: %s: %d is outside 0..%d", ErrInvalid, f.name, f.reserve, MaxLimit)
		}
	}
	return nil
}

// Capacity is an amount of the three resources a node offers: vCPUs
// (cores), memory in MiB and local disk in GiB.
type Capacity struct {
	VCPUs     int64 `json:"vcpus"`
	MemoryMiB int64 `json:"memory_mib"`
	DiskGiB   int64 `json:"disk_gib"`
}

// Add returns c + d, resource by resource.
func (c Capacity) Add(d Capacity) Capacity {
	return Capacity{VCPUs: c.VCPUs + d.VCPUs, MemoryMiB: c.MemoryMiB + d.MemoryMiB, DiskGiB: c.DiskGiB + d.DiskGiB}
}

// Sub returns c - d, resource by resource; the result may be negative.
func (c Capacity) Sub(d Capacity) Capacity {
	return Capacity{VCPUs: c.VCPUs - d.VCPUs, MemoryMiB: c.MemoryMiB - d.MemoryMiB, DiskGiB: c.DiskGiB - d.DiskGiB}
}

// get returns the amount of resource i, in the order VCPUs, MemoryMiB,
// DiskGiB of capacityResources.
func (c Capacity) get(i int) int64 {
	return [...]int64{c.VCPUs, c.MemoryMiB, c.DiskGiB}[i]
}

// capacityResources names the fields of a Capacity in the order placement
// breaks ties between failing resources.
var capacityResources = [...]Resource{VCPUs, MemoryMiB, DiskGiB}

// NodeState is what placement knows of a node: its name, the group whose
// policy applies to it, whether it is online, its hardware (cores, MiB,
// GiB of local storage), the sum of what its guests were given plus
// pending reservations, and the measured usage.
type NodeState struct {
	Name      string
	Group     string
	Online    bool
	Physical  Capacity
	Allocated Capacity
	Used      Capacity
}

// Allocatable returns what may be allocated on hardware physical under
// policy p: floor(physical × ratio) − reserve for each resource, never
// below 0 and never above MaxLimit. A product within a relative 1e-12 of
// an integer counts as that integer, so that a ratio of 0.29 on 100 cores
// gives 29 although 0.29 × 100 is 28.999999999999996 in float64. A
// negative or NaN ratio, which Validate refuses, yields 0.
func Allocatable(physical Capacity, p Policy) Capacity {
	return Capacity{
		VCPUs:     allocatable(physical.VCPUs, p.CPURatio, p.ReserveVCPUs),
		MemoryMiB: allocatable(physical.MemoryMiB, p.MemoryRatio, p.ReserveMemoryMiB),
		DiskGiB:   allocatable(physical.DiskGiB, p.DiskRatio, p.ReserveDiskGiB),
	}
}

func allocatable(physical int64, ratio float64, reserve int64) int64 {
	if ratio == 0 {
		ratio = 1
	}
	v := float64(physical) * ratio
	if !(v > 0) {
		return 0
	}
	if r := math.Round(v); math.Abs(v-r) <= v*1e-12 {
		v = r
	}
	v = min(math.Floor(v), float64(MaxLimit))
	return max(int64(v)-max(reserve, 0), 0)
}

// ErrNoCapacity is what errors.Is finds in a *NoCapacityError.
var ErrNoCapacity = errors.New("no capacity")

// NoCapacityError says why Place found no node: the resource that fails on
// the most online nodes ("vcpus", "memory_mib" or "disk_gib"), the amount
// requested and the largest headroom of that resource on any online node
// (0 if none has any).
type NoCapacityError struct {
	Resource string
	Request  int64
	Largest  int64
}

// Error says what did not fit and the most room there was.
func (e *NoCapacityError) Error() string {
	return fmt.Sprintf("no node has room for %d %s (largest headroom %d)", e.Request, e.Resource, e.Largest)
}

// Is makes errors.Is(err, ErrNoCapacity) true.
func (e *NoCapacityError) Is(target error) bool { return target == ErrNoCapacity }

// Place chooses a node for a guest that needs req. A node is a candidate
// if it is online and, for each resource req asks for, its allocations
// plus req stay within what its group's policy makes allocatable (a
// resource req does not ask for never disqualifies a node, even one
// already allocated beyond its policy). Among candidates Place picks the
// one with the largest minimum remaining fraction (headroom after
// placement divided by allocatable, over the three resources, skipping a
// resource with nothing allocatable, which only a request for none of it
// can pass), breaking ties by
// name ascending. A nil policy means DefaultPolicy for every group.
//
// A negative request is an ErrInvalid error naming the field; no candidate
// is a *NoCapacityError.
func Place(nodes []NodeState, req Capacity, policy func(group string) Policy) (string, error) {
	for i, r := range capacityResources {
		if req.get(i) < 0 {
			return "", fmt.Errorf("%w: %s: request %d is negative", ErrInvalid, r, req.get(i))
		}
	}
	var (
		best      string
		bestScore float64
		found     bool
		fails     [len(capacityResources)]int
		largest   [len(capacityResources)]int64
	)
	for _, n := range nodes {
		if !n.Online {
			continue
		}
		alloc := Allocatable(n.Physical, policyFor(policy, n.Group))
		after := alloc.Sub(n.Allocated).Sub(req)
		fits := true
		score := 1.0
		for i := range capacityResources {
			a, rq, left := alloc.get(i), req.get(i), after.get(i)
			largest[i] = max(largest[i], left+rq)
			if rq > 0 && left < 0 {
				fits = false
				fails[i]++
			}
			if a > 0 {
				score = min(score, float64(left)/float64(a))
			}
		}
		if fits && (!found || score > bestScore || score == bestScore && n.Name < best) {
			best, bestScore, found = n.Name, score, true
		}
	}
	if found {
		return best, nil
	}
	// Name the resource that failed on the most nodes. Only a request for
	// nothing fails on no resource (every node would fit it, so none is
	// online): the first resource is named then.
	worst, named := 0, false
	for i := range capacityResources {
		if req.get(i) > 0 && (!named || fails[i] > fails[worst]) {
			worst, named = i, true
		}
	}
	return "", &NoCapacityError{Resource: string(capacityResources[worst]), Request: req.get(worst), Largest: largest[worst]}
}

// Headroom sums the capacity of a node or a cluster: what may be
// allocated under its policy, what is allocated, what is measured in use,
// and Free = Allocatable − Allocated, which is negative where allocations
// exceed the policy.
type Headroom struct {
	Allocatable Capacity `json:"allocatable"`
	Allocated   Capacity `json:"allocated"`
	Used        Capacity `json:"used"`
	Free        Capacity `json:"free"`
}

// Summarize returns the headroom of each node, by name, and of the whole
// cluster. An offline node has nothing allocatable, but its allocations
// and usage still count. A nil policy means DefaultPolicy for every group.
func Summarize(nodes []NodeState, policy func(group string) Policy) (perNode map[string]Headroom, cluster Headroom) {
	perNode = make(map[string]Headroom, len(nodes))
	for _, n := range nodes {
		var h Headroom
		if n.Online {
			h.Allocatable = Allocatable(n.Physical, policyFor(policy, n.Group))
		}
		h.Allocated = n.Allocated
		h.Used = n.Used
		h.Free = h.Allocatable.Sub(h.Allocated)
		perNode[n.Name] = h
		cluster.Allocatable = cluster.Allocatable.Add(h.Allocatable)
		cluster.Allocated = cluster.Allocated.Add(h.Allocated)
		cluster.Used = cluster.Used.Add(h.Used)
		cluster.Free = cluster.Free.Add(h.Free)
	}
	return perNode, cluster
}

func policyFor(policy func(string) Policy, group string) Policy {
	if policy == nil {
		return DefaultPolicy()
	}
	return policy(group)
}
