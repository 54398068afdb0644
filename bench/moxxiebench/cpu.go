package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of the CPU times in /proc (USER_HZ), which is 100 on
// every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// cpuSample is the CPU time of some processes and of the whole machine at
// one moment.
type cpuSample struct {
	at    time.Time
	procs map[int]time.Duration
	// faults maps each process to the minor page faults it has taken.
	faults map[int]int64
	// self is the CPU time of this benchmark process.
	self time.Duration
	// busy and total are the machine's non-idle and total CPU time over all
	// CPUs since boot.
	busy, total time.Duration
}

// takeCPUSample reads the CPU time of pids and of the machine. A process
// that has exited is left out.
func takeCPUSample(pids []int) cpuSample {
	s := cpuSample{at: time.Now(), procs: map[int]time.Duration{}, faults: map[int]int64{}}
	for _, pid := range pids {
		if st, err := readProcStat(pid); err == nil {
			s.procs[pid], s.faults[pid] = st.cpu, st.minorFaults
		}
	}
	s.self, _ = procCPU(os.Getpid())
	s.busy, s.total, _ = machineCPU()
	return s
}

// procStat is what /proc/PID/stat says of a process's use of the machine.
type procStat struct {
	// cpu is its user plus system CPU time.
	cpu time.Duration
	// minorFaults counts the page faults it took that needed no disk
	// read: on a fresh heap, one per page first touched.
	minorFaults int64
}

// procCPU returns the user plus system CPU time pid has used, from
// /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	st, err := readProcStat(pid)
	return st.cpu, err
}

// readProcStat reads /proc/PID/stat.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(b)
}

// parseProcStat parses the contents of a /proc/PID/stat file.
func parseProcStat(b []byte) (procStat, error) {
	// The command name (field 2) may hold spaces and parentheses; the
	// fields after the last ")" start at field 3, the state.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return procStat{}, errors.New("malformed /proc stat")
	}
	minflt, err0 := strconv.ParseInt(f[7], 10, 64) // field 10
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err0 != nil || err1 != nil || err2 != nil {
		return procStat{}, errors.New("malformed /proc stat")
	}
	return procStat{cpu: time.Duration(utime+stime) * clockTick, minorFaults: minflt}, nil
}

// machineCPU returns the non-idle and total CPU time of all CPUs since boot,
// from the first line of /proc/stat.
func machineCPU() (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, errors.New("malformed /proc/stat")
	}
	// user nice system idle iowait irq softirq steal [guest guest_nice,
	// already counted in user and nice].
	var idle, all int64
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, errors.New("malformed /proc/stat")
		}
		all += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return time.Duration(all-idle) * clockTick, time.Duration(all) * clockTick, nil
}

// CPUUsage is the CPU time used during a measured window.
type CPUUsage struct {
	// ServerSeconds maps each process given with --cpu-pids to the CPU
	// seconds it used.
	ServerSeconds map[string]float64 `json:"server_seconds"`
	// ServersTotalSeconds sums ServerSeconds.
	ServersTotalSeconds float64 `json:"servers_total_seconds"`
	// MicrosPerWrite is ServersTotalSeconds per successful write.
	MicrosPerWrite float64 `json:"micros_per_write"`
	// MinorFaultsPerWrite is the minor page faults the servers took
	// between them per successful write: memory touched for the first
	// time, costly on some virtual machines.
	MinorFaultsPerWrite float64 `json:"minor_faults_per_write"`
	// ServersPercentOfMachine is ServersTotalSeconds over all the CPU time
	// of the machine in the window.
	ServersPercentOfMachine float64 `json:"servers_percent_of_machine"`
	// ClientSeconds is the CPU time of moxxiebench itself, the load
	// generator, which shares the machine with the servers.
	ClientSeconds float64 `json:"client_seconds"`
	// MachineBusyPercent is the share of the machine's CPU time that was
	// not idle in the window, whoever used it (this benchmark, the servers,
	// anything else running).
	MachineBusyPercent float64 `json:"machine_busy_percent"`
	// OtherPercent is the share of the machine's CPU time used by neither
	// the servers nor moxxiebench: other load that makes the run noisy.
	OtherPercent float64 `json:"other_percent"`
}

// cpuUsage compares two samples taken at the start and end of a window in
// which ok writes succeeded.
func cpuUsage(a, b cpuSample, ok int) *CPUUsage {
	u := &CPUUsage{ServerSeconds: map[string]float64{}}
	var faults int64
	for pid, d0 := range a.procs {
		d1, found := b.procs[pid]
		if !found {
			continue
		}
		u.ServerSeconds[strconv.Itoa(pid)] = (d1 - d0).Seconds()
		u.ServersTotalSeconds += (d1 - d0).Seconds()
		faults += b.faults[pid] - a.faults[pid]
	}
	u.ClientSeconds = (b.self - a.self).Seconds()
	if ok > 0 {
		u.MicrosPerWrite = u.ServersTotalSeconds * 1e6 / float64(ok)
		u.MinorFaultsPerWrite = float64(faults) / float64(ok)
	}
	if total := (b.total - a.total).Seconds(); total > 0 {
		u.ServersPercentOfMachine = 100 * u.ServersTotalSeconds / total
		u.MachineBusyPercent = 100 * (b.busy - a.busy).Seconds() / total
		u.OtherPercent = max(0, u.MachineBusyPercent-u.ServersPercentOfMachine-100*u.ClientSeconds/total)
	}
	return u
}

// parsePIDs parses a comma-separated list of process IDs.
func parsePIDs(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad pid %q", p)
		}
		out = append(out, n)
	}
	return out, nil
}
