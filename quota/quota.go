// Package quota holds Moxxie's tenancy arithmetic: quota limits and the
// admission check, overcommit policies, node capacity and placement, the
// capacity forecast, usage metering in hourly buckets and the pricing of
// usage with rate cards. It is pure: no I/O, no clock, no randomness; the
// FSM calls it inside Apply with leader-stamped times.
package quota

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Resource names a quantity a quota limits.
type Resource string

// The resources quotas can limit.
const (
	VCPUs     Resource = "vcpus"
	MemoryMiB Resource = "memory_mib"
	DiskGiB   Resource = "disk_gib"
	Guests    Resource = "guests"
	Snapshots Resource = "snapshots"
	IPv4      Resource = "ipv4_addresses"
	Prefixes  Resource = "prefixes"
	VLANs     Resource = "vlans"
	VNIs      Resource = "vnis"
)

// Resources lists every resource in the order checks and reports use.
var Resources = []Resource{VCPUs, MemoryMiB, DiskGiB, Guests, Snapshots, IPv4, Prefixes, VLANs, VNIs}

// Valid reports whether r is one of Resources.
func (r Resource) Valid() bool { return slices.Contains(Resources, r) }

// MaxLimit bounds a limit; it keeps sums of usage and requests far from
// overflowing an int64.
const MaxLimit = int64(1) << 50

// Limits are a quota: the most of each resource a tenant or project may
// hold. A resource without an entry is unlimited; a limit of 0 forbids it.
type Limits map[Resource]int64

// Amounts are quantities of resources: what is in use, or what a request
// asks for. A missing resource is zero.
type Amounts map[Resource]int64

// ErrInvalid marks malformed input: limits, policies, rate cards, a
// grouping.
var ErrInvalid = errors.New("invalid")

// Validate checks that every resource is known and every limit lies in
// [0, MaxLimit]; the error names the resource.
func (l Limits) Validate() error {
	for _, r := range slices.Sorted(maps.Keys(l)) {
		if !r.Valid() {
			return fmt.Errorf("%w: unknown resource %q (one of %s)", ErrInvalid, r, resourceList())
		}
		if v := l[r]; v < 0 || v > MaxLimit {
			return fmt.Errorf("%w: %s limit %d is outside 0..%d", ErrInvalid, r, v, MaxLimit)
		}
	}
	return nil
}

// Add returns a + b, resource by resource; the result is a new map.
func (a Amounts) Add(b Amounts) Amounts {
	out := make(Amounts, len(a)+len(b))
	for r, v := range a {
		out[r] = v
	}
	for r, v := range b {
		out[r] += v
	}
	return out
}

// Neg returns -a.
func (a Amounts) Neg() Amounts {
	out := make(Amounts, len(a))
	for r, v := range a {
		out[r] = -v
	}
	return out
}

// IsZero reports whether every amount is zero.
func (a Amounts) IsZero() bool {
	for _, v := range a {
		if v != 0 {
			return false
		}
	}
	return true
}

// ExceededError says which quota a request would exceed: the scope
// ("tenant acme" or "project acme/web"), the resource, its limit, the
// usage before the request and what the request asked for.
type ExceededError struct {
	Scope    string
	Resource Resource
	Limit    int64
	Usage    int64
	Request  int64
}

// ErrExceeded is what errors.Is finds in an *ExceededError.
var ErrExceeded = errors.New("quota exceeded")

func (e *ExceededError) Error() string {
	return fmt.Sprintf("quota %s of %s exceeded: limit %d, usage %d, request %d", e.Resource, e.Scope, e.Limit, e.Usage, e.Request)
}

// Is makes errors.Is(err, ErrExceeded) true.
func (e *ExceededError) Is(target error) bool { return target == ErrExceeded }

// Check admits request against limits given usage: it returns nil, or an
// *ExceededError for the first resource in Resources order whose usage
// plus request would pass its limit. Releases (negative requests) and
// resources without a limit always pass; usage already above a lowered
// limit refuses only requests that add to it.
func Check(scope string, limits Limits, usage, request Amounts) error {
	for _, r := range Resources {
		req := request[r]
		lim, ok := limits[r]
		if !ok || req <= 0 {
			continue
		}
		if use := usage[r]; use+req > lim {
			return &ExceededError{Scope: scope, Resource: r, Limit: lim, Usage: use, Request: req}
		}
	}
	return nil
}

func resourceList() string {
	names := make([]string, len(Resources))
	for i, r := range Resources {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}
