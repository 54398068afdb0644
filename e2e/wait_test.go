package e2e

import (
	"testing"
	"time"
)

// pollInterval is how often waitUntil checks its condition.
const pollInterval = 20 * time.Millisecond

// waitUntil checks cond until it returns nil, failing the test with the
// last error if that does not happen within timeout.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(pollInterval)
	}
}
