package node

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
)

// MemoryLimitAuto is the memory_limit that sizes the limit from the host:
// autoLimitPercent of the memory the server may use.
const MemoryLimitAuto = "auto"

// autoLimitPercent is the share of the host's (or the cgroup's) memory that
// memory_limit auto gives the Go heap: room for the rest of the process
// (stacks, the raft log's file mapping) and for the host.
const autoLimitPercent = 70

// ParseMemoryLimit parses a memory_limit value: "auto", "off", or a size
// as GOMEMLIMIT writes it, a number of bytes with an optional unit B, KiB,
// MiB, GiB or TiB ("4GiB", "1536MiB"). It returns the size in bytes, 0 for
// off, and auto true for auto.
func ParseMemoryLimit(s string) (limit int64, auto bool, err error) {
	switch s {
	case MemoryLimitAuto:
		return 0, true, nil
	case "off":
		return 0, false, nil
	}
	notSize := fmt.Errorf("%q is not a size: use auto, off, or a number with B, KiB, MiB, GiB or TiB, e.g. 4GiB", s)
	num, unit := s, ""
	if i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' }); i >= 0 {
		num, unit = s[:i], s[i:]
	}
	var shift uint
	switch unit {
	case "", "B":
	case "KiB":
		shift = 10
	case "MiB":
		shift = 20
	case "GiB":
		shift = 30
	case "TiB":
		shift = 40
	default:
		return 0, false, notSize
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, false, notSize
	}
	b := v * float64(uint64(1)<<shift)
	if b >= math.MaxInt64 {
		return 0, false, fmt.Errorf("%q is too large", s)
	}
	if b < minMemoryLimit {
		return 0, false, fmt.Errorf("%s is below the minimum of 64MiB (use off for no limit)", s)
	}
	return int64(b), false, nil
}

// minMemoryLimit is the smallest memory_limit accepted: below it a server
// would collect garbage all the time.
const minMemoryLimit = 64 << 20

// HostMemory returns the memory a process of this host may use, read from
// sys (the root of /proc and /sys): the smaller of MemTotal in
// /proc/meminfo and the memory limit of the process's cgroup (cgroup v2
// memory.max, or v1 memory.limit_in_bytes), with a word on where it came
// from.
func HostMemory(sys fs.FS) (int64, string, error) {
	total, err := memTotal(sys)
	if err != nil {
		return 0, "", err
	}
	if lim, file := cgroupLimit(sys); lim > 0 && lim < total {
		return lim, "the limit of its cgroup (" + file + ")", nil
	}
	return total, "the host's memory (MemTotal)", nil
}

// ResolveMemoryLimit turns a valid memory_limit into the limit the Go
// runtime gets (0: none) and a description of how it was chosen, reading
// the host's memory from sys for auto.
func ResolveMemoryLimit(value string, sys fs.FS) (int64, string, error) {
	limit, auto, err := ParseMemoryLimit(value)
	if err != nil {
		return 0, "", err
	}
	if !auto {
		if limit == 0 {
			return 0, "memory_limit off", nil
		}
		return limit, "memory_limit " + value, nil
	}
	host, from, err := HostMemory(sys)
	if err != nil {
		return 0, "", fmt.Errorf("memory_limit auto: %w (set a size instead)", err)
	}
	limit = host / 100 * autoLimitPercent
	return max(limit, minMemoryLimit), fmt.Sprintf("memory_limit auto: %d%% of %s, %s", autoLimitPercent, from, FormatBytes(host)), nil
}

// memTotal reads MemTotal from proc/meminfo, in bytes.
func memTotal(sys fs.FS) (int64, error) {
	b, err := fs.ReadFile(sys, "proc/meminfo")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb <= 0 || kb > math.MaxInt64>>10 {
			break
		}
		return kb << 10, nil
	}
	return 0, errors.New("/proc/meminfo has no MemTotal in kB")
}

// cgroupLimit returns the memory limit of the process's cgroup and the file
// it came from, or 0 when there is none or it cannot be read: the lowest
// limit of its cgroup and the cgroups above it, as the kernel enforces
// them. Inside a cgroup namespace the process's cgroup is the root of the
// mount, which is read too.
func cgroupLimit(sys fs.FS) (int64, string) {
	b, err := fs.ReadFile(sys, "proc/self/cgroup")
	if err != nil {
		return 0, ""
	}
	var limit int64
	var from string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		var dir, name string
		switch {
		case f[0] == "0" && f[1] == "":
			dir, name = "sys/fs/cgroup", "memory.max"
		case slices.Contains(strings.Split(f[1], ","), "memory"):
			dir, name = "sys/fs/cgroup/memory", "memory.limit_in_bytes"
		default:
			continue
		}
		for p := path.Clean("/" + f[2]); ; p = path.Dir(p) {
			file := path.Join(dir, p, name)
			if n := readLimit(sys, file); n > 0 && (limit == 0 || n < limit) {
				limit, from = n, "/"+file
			}
			if p == "/" {
				break
			}
		}
	}
	return limit, from
}

// readLimit reads a cgroup memory limit file: 0 for "max", a missing file
// or anything that is not a positive number.
func readLimit(sys fs.FS, file string) int64 {
	v, err := fs.ReadFile(sys, file)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// FormatBytes writes n with the largest binary unit under which it is at
// least 1, to one decimal, in the syntax memory_limit reads: "16.5GiB",
// "512.0MiB", "900B".
func FormatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatInt(n, 10) + "B"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + units[i]
}
