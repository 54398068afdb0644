package api

import (
	"regexp"
	"testing"
	"time"
)

var uuidV7 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestIDGen_OrderedAndUnique(t *testing.T) {
	var g idGen
	base := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	prev := ""
	// Many IDs in one millisecond, a step back of the clock, then later.
	times := []time.Time{base, base, base, base.Add(-time.Second), base.Add(time.Millisecond), base.Add(time.Hour)}
	for _, now := range times {
		for range 1000 {
			id := g.next(now)
			if !uuidV7.MatchString(id) {
				t.Fatalf("%q is not a UUIDv7", id)
			}
			if seen[id] || id <= prev {
				t.Fatalf("%q after %q: not unique and increasing", id, prev)
			}
			seen[id], prev = true, id
		}
	}
	if got := g.next(base.Add(2 * time.Hour)); got[:8] == prev[:8] {
		t.Fatalf("two hours later the timestamp did not move: %s after %s", got, prev)
	}
}

func TestIDGen_CarriesIntoRandA(t *testing.T) {
	g := idGen{lastMS: 5, hi: 3, lo: 1<<62 - 1}
	id := g.next(time.UnixMilli(5))
	if g.hi != 4 || g.lo != 0 || !uuidV7.MatchString(id) {
		t.Fatalf("after overflow hi=%d lo=%d id=%s", g.hi, g.lo, id)
	}
}

func TestLooksLikeID(t *testing.T) {
	for s, want := range map[string]bool{
		"01a2232f-9def-764d-abc6-88d22bf8ae7c": true,
		"01A2232F-9DEF-764D-ABC6-88D22BF8AE7C": true,
		"01a2232f-9def-764d-abc6-88d22bf8ae7":  false,
		"01a2232f-9def-764d-abc6-88d22bf8ae7g": false,
		"01a2232f09def-764d-abc6-88d22bf8ae7c": false,
		"lab":                                  false,
		"":                                     false,
	} {
		if got := looksLikeID(s); got != want {
			t.Errorf("looksLikeID(%q) = %v", s, got)
		}
	}
}
