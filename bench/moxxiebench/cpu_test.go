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

func TestCPUUsage(t *testing.T) {
	a := cpuSample{procs: map[int]time.Duration{10: time.Second, 11: 2 * time.Second, 12: 0}, self: time.Second, busy: 10 * time.Second, total: 20 * time.Second}
	b := cpuSample{procs: map[int]time.Duration{10: 3 * time.Second, 11: 3 * time.Second}, self: 3 * time.Second, busy: 16 * time.Second, total: 28 * time.Second}
	u := cpuUsage(a, b, 1000)
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
