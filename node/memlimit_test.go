package node

import (
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

func TestParseMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		in    string
		limit int64
		auto  bool
		err   string
	}{
		{in: "auto", auto: true},
		{in: "off"},
		{in: "4GiB", limit: 4 << 30},
		{in: "1536MiB", limit: 1536 << 20},
		{in: "1.5GiB", limit: 3 << 29},
		{in: "1TiB", limit: 1 << 40},
		{in: "67108864", limit: 64 << 20},
		{in: "67108864B", limit: 64 << 20},
		{in: "65536KiB", limit: 64 << 20},
		{in: "", err: `"" is not a size`},
		{in: "0", err: "below the minimum of 64MiB (use off for no limit)"},
		{in: "63MiB", err: "below the minimum"},
		{in: "4GB", err: `"4GB" is not a size`},
		{in: "4 GiB", err: "is not a size"},
		{in: "-1GiB", err: "is not a size"},
		{in: "GiB", err: "is not a size"},
		{in: "1.2.3GiB", err: "is not a size"},
		{in: "Auto", err: "is not a size"},
		{in: "9999999TiB", err: "too large"},
	} {
		limit, auto, err := ParseMemoryLimit(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseMemoryLimit(%q) = %d, %v, %v; want error containing %q", tc.in, limit, auto, err, tc.err)
			}
			continue
		}
		if err != nil || limit != tc.limit || auto != tc.auto {
			t.Errorf("ParseMemoryLimit(%q) = %d, %v, %v; want %d, %v", tc.in, limit, auto, err, tc.limit, tc.auto)
		}
	}
}

// hostFS is a /proc and /sys with MemTotal memKB and the given cgroup
// membership and limit files.
func hostFS(memKB string, cgroup string, files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{
		"proc/meminfo":     {Data: []byte("MemTotal:       " + memKB + " kB\nMemFree:         1000 kB\n")},
		"proc/self/cgroup": {Data: []byte(cgroup)},
	}
	for name, v := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(v + "\n")}
	}
	return fsys
}

func TestHostMemory(t *testing.T) {
	const gib = int64(1) << 30
	for _, tc := range []struct {
		name string
		fsys fstest.MapFS
		want int64
		from string
	}{
		{
			name: "no cgroup limit (v2 max)",
			fsys: hostFS("16777216", "0::/system.slice/moxxied.service\n", map[string]string{
				"sys/fs/cgroup/system.slice/moxxied.service/memory.max": "max",
			}),
			want: 16 * gib, from: "MemTotal",
		},
		{
			name: "v2 limit of the unit",
			fsys: hostFS("16777216", "0::/system.slice/moxxied.service\n", map[string]string{
				"sys/fs/cgroup/system.slice/moxxied.service/memory.max": "4294967296",
			}),
			want: 4 * gib, from: "/sys/fs/cgroup/system.slice/moxxied.service/memory.max",
		},
		{
			name: "v2 lower limit on a parent",
			fsys: hostFS("16777216", "0::/system.slice/moxxied.service\n", map[string]string{
				"sys/fs/cgroup/system.slice/moxxied.service/memory.max": "4294967296",
				"sys/fs/cgroup/system.slice/memory.max":                 "2147483648",
			}),
			want: 2 * gib, from: "/sys/fs/cgroup/system.slice/memory.max",
		},
		{
			name: "v2 in a cgroup namespace: the root is the process's cgroup",
			fsys: hostFS("16777216", "0::/\n", map[string]string{
				"sys/fs/cgroup/memory.max": "3221225472",
			}),
			want: 3 * gib, from: "/sys/fs/cgroup/memory.max",
		},
		{
			name: "v1 unlimited",
			fsys: hostFS("16777216", "4:memory:/process_api/5d26\n1:cpu:/\n0::/\n", map[string]string{
				"sys/fs/cgroup/memory/process_api/5d26/memory.limit_in_bytes": "9223372036854771712",
				"sys/fs/cgroup/memory/memory.limit_in_bytes":                  "9223372036854771712",
			}),
			want: 16 * gib, from: "MemTotal",
		},
		{
			name: "v1 limit, memory shared with another controller",
			fsys: hostFS("16777216", "5:cpuacct,memory:/lxc/a\n", map[string]string{
				"sys/fs/cgroup/memory/lxc/a/memory.limit_in_bytes": "1073741824",
			}),
			want: gib, from: "/sys/fs/cgroup/memory/lxc/a/memory.limit_in_bytes",
		},
		{
			name: "a limit above the host's memory is the host's",
			fsys: hostFS("1048576", "0::/a\n", map[string]string{
				"sys/fs/cgroup/a/memory.max": "4294967296",
			}),
			want: gib, from: "MemTotal",
		},
		{
			name: "no cgroup file, unreadable limits",
			fsys: hostFS("1048576", "0::/a\n", map[string]string{
				"sys/fs/cgroup/a/memory.max": "garbage",
			}),
			want: gib, from: "MemTotal",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, from, err := HostMemory(tc.fsys)
			if err != nil || got != tc.want || !strings.Contains(from, tc.from) {
				t.Errorf("HostMemory = %d, %q, %v; want %d from %q", got, from, err, tc.want, tc.from)
			}
		})
	}
}

func TestHostMemory_NoMemTotal(t *testing.T) {
	for _, meminfo := range []string{"", "MemFree: 10 kB\n", "MemTotal: 10 MB\n", "MemTotal: x kB\n", "MemTotal: 99999999999999999999 kB\n"} {
		fsys := fstest.MapFS{"proc/meminfo": {Data: []byte(meminfo)}}
		if n, _, err := HostMemory(fsys); err == nil {
			t.Errorf("meminfo %q: HostMemory = %d, want an error", meminfo, n)
		}
	}
	if _, _, err := HostMemory(fstest.MapFS{}); err == nil {
		t.Error("no /proc/meminfo: HostMemory succeeded")
	}
}

func TestResolveMemoryLimit(t *testing.T) {
	fsys := hostFS("16777216", "0::/moxxied\n", map[string]string{"sys/fs/cgroup/moxxied/memory.max": "max"})
	for _, tc := range []struct {
		in, how string
		want    int64
	}{
		{in: "auto", want: (16 << 30) / 100 * 70, how: "memory_limit auto: 70% of the host's memory (MemTotal), 16.0GiB"},
		{in: "off", want: 0, how: "memory_limit off"},
		{in: "2GiB", want: 2 << 30, how: "memory_limit 2GiB"},
	} {
		got, how, err := ResolveMemoryLimit(tc.in, fsys)
		if err != nil || got != tc.want || how != tc.how {
			t.Errorf("ResolveMemoryLimit(%q) = %d, %q, %v; want %d, %q", tc.in, got, how, err, tc.want, tc.how)
		}
	}
	// A tiny host still gets the minimum, never a limit that would make
	// the collector run all the time.
	if got, _, _ := ResolveMemoryLimit("auto", hostFS("65536", "", nil)); got != minMemoryLimit {
		t.Errorf("auto on a 64 MiB host = %d, want %d", got, minMemoryLimit)
	}
	if _, _, err := ResolveMemoryLimit("auto", fstest.MapFS{}); err == nil || !strings.Contains(err.Error(), "set a size instead") {
		t.Errorf("auto without /proc/meminfo: %v", err)
	}
	if _, _, err := ResolveMemoryLimit("lots", fsys); err == nil {
		t.Error("ResolveMemoryLimit(lots) succeeded")
	}
}

// TestHostMemory_ThisHost reads the real /proc and /sys: whatever this
// machine is, its memory is found.
func TestHostMemory_ThisHost(t *testing.T) {
	if _, err := os.Stat("/proc/meminfo"); err != nil {
		t.Skipf("no /proc/meminfo here: %v", err)
	}
	n, from, err := HostMemory(os.DirFS("/"))
	if err != nil || n < minMemoryLimit {
		t.Fatalf("HostMemory = %d, %q, %v", n, from, err)
	}
	t.Logf("this host: %s from %s", FormatBytes(n), from)
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 900: "900B", 1 << 10: "1.0KiB", 1536 << 20: "1.5GiB", 16 << 30: "16.0GiB", 3 << 40: "3.0TiB", 5 << 50: "5120.0TiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
