package main

import (
	"os"
	"testing"
	"time"
)

func TestProcCPU(t *testing.T) {
	// Burn a little CPU so the reading is plausibly non-zero.
	for end := time.Now().Add(30 * time.Millisecond); time.Now().Before(end); {
	}
	d, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatalf("procCPU: %v", err)
	}
	if d <= 0 {
		t.Errorf("procCPU = %v, want > 0", d)
	}
	busy, total, err := machineCPU()
	if err != nil {
		t.Fatalf("machineCPU: %v", err)
	}
	if busy <= 0 || busy > total {
		t.Errorf("machineCPU = %v busy of %v, want 0 < busy <= total", busy, total)
	}
}

func TestParseProcStat(t *testing.T) {
	// A command name with a space and a parenthesis; minflt (field 10)
	// 4242, utime 150 and stime 50 ticks.
	line := "4805 (moxxied (s1)) S 4800 4800 4800 0 -1 4194560 4242 0 3 0 150 50 0 0 20 0 12 0 1234 0 0\n"
	st, err := parseProcStat([]byte(line))
	if err != nil || st.minorFaults != 4242 || st.cpu != 2*time.Second {
		t.Errorf("parseProcStat = %+v, %v; want 4242 faults, 2s", st, err)
	}
	for _, bad := range []string{"", "4805 moxxied S", "4805 (moxxied) S 1 2 3", "4805 (m) S 4800 4800 4800 0 -1 4194560 x 0 3 0 150 50 0"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) succeeded", bad)
		}
	}
	if st, err := readProcStat(os.Getpid()); err != nil || st.minorFaults <= 0 {
		t.Errorf("readProcStat(self) = %+v, %v; want some minor faults", st, err)
	}
}

func TestCPUUsage(t *testing.T) {
	a := cpuSample{procs: map[int]time.Duration{10: time.Second, 11: 2 * time.Second, 12: 0}, faults: map[int]int64{10: 100, 11: 50, 12: 7},
		self: time.Second, busy: 10 * time.Second, total: 20 * time.Second}
	b := cpuSample{procs: map[int]time.Duration{10: 3 * time.Second, 11: 3 * time.Second}, faults: map[int]int64{10: 2100, 11: 550},
		self: 3 * time.Second, busy: 16 * time.Second, total: 28 * time.Second}
	u := cpuUsage(a, b, 1000)
	if u.MinorFaultsPerWrite != 2.5 {
		t.Errorf("MinorFaultsPerWrite = %v, want 2.5 (2500 faults of the processes that ran to the end)", u.MinorFaultsPerWrite)
	}
	if u.ServersTotalSeconds != 3 || len(u.ServerSeconds) != 2 {
		t.Errorf("servers = %v over %v, want 3s over 2 processes", u.ServersTotalSeconds, u.ServerSeconds)
	}
	if u.MicrosPerWrite != 3000 {
		t.Errorf("MicrosPerWrite = %v, want 3000", u.MicrosPerWrite)
	}
	if u.ServersPercentOfMachine != 37.5 || u.MachineBusyPercent != 75 || u.ClientSeconds != 2 || u.OtherPercent != 12.5 {
		t.Errorf("usage = %+v; want servers 37.5%%, busy 75%%, client 2s, other 12.5%%", u)
	}
}

func TestParsePIDs(t *testing.T) {
	got, err := parsePIDs("12, 34,")
	if err != nil || len(got) != 2 || got[0] != 12 || got[1] != 34 {
		t.Errorf("parsePIDs = %v, %v", got, err)
	}
	if _, err := parsePIDs("12,x"); err == nil {
		t.Error("parsePIDs accepted x")
	}
	if got, err := parsePIDs(""); err != nil || got != nil {
		t.Errorf("parsePIDs(\"\") = %v, %v", got, err)
	}
}
