//go:build !race

package site

// timingScale stretches the cluster tests' timers; see timing_race_test.go.
const timingScale = 1
