// Package e2e holds process tests: they build the real moxxied,
// moxxiectl and moxxie-agent binaries and run them as an operator would,
// killing, stopping and restarting processes.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "moxxie-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	// One go build for the three: their packages compile once, and they
	// link in parallel. Without moxxied's profile (cmd/moxxied/default.pgo),
	// which would compile moxxied's packages a second time, optimized
	// differently but doing the same.
	build := exec.Command("go", "build", "-pgo=off", "-o", dir+string(os.PathSeparator), "../cmd/moxxied", "../cmd/moxxiectl", "../cmd/moxxie-agent")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build the commands: %v\n", err)
		return 1
	}
	return m.Run()
}

func bin(name string) string { return filepath.Join(binDir, name) }
