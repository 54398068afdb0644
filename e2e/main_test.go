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
	for _, cmd := range []string{"moxxied", "moxxiectl", "moxxie-agent"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, cmd), "../cmd/"+cmd)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", cmd, err)
			return 1
		}
	}
	return m.Run()
}

func bin(name string) string { return filepath.Join(binDir, name) }
