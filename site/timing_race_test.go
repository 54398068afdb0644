//go:build race

package site

// timingScale stretches the cluster tests' timers under the race
// detector, which slows the servers' code several times over. At the
// plain timings (50 ms probe timeouts) a slow two-core machine suspected
// live servers again and again, and a pool healed from a partition took
// from 5 to more than 30 s to settle, in 6 of 8 runs of
// TestPool_ForgetCutOffSiteComesBack; at twice the timings, 8 of 8 settled
// in 4-6 s.
const timingScale = 2
