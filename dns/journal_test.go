package dns

import (
	"fmt"
	"testing"
)

func TestJournal(t *testing.T) {
	var j Journal
	if changes, v, _, ok := j.Changes(0); !ok || v != 0 || len(changes) != 0 {
		t.Fatalf("zero journal: %v %d %v", changes, v, ok)
	}
	rec := func(i int) Record {
		return Record{Name: fmt.Sprintf("h%d.moxxie.test.", i), Type: TypeA, Value: "10.0.0.1"}
	}
	_, ch := j.Version()
	v1 := j.Append(Change{Serial: 1, Add: []Record{rec(1)}})
	select {
	case <-ch:
	default:
		t.Fatal("Append did not close the version's channel")
	}
	v2 := j.Append(Change{Serial: 2, Remove: []Record{rec(1)}})
	if changes, v, _, ok := j.Changes(v1); !ok || v != v2 || len(changes) != 1 || changes[0].Serial != 2 {
		t.Errorf("Changes(%d) = %v, %d, %v; want the second change, %d", v1, changes, v, ok, v2)
	}
	if changes, _, _, ok := j.Changes(0); !ok || len(changes) != 2 {
		t.Errorf("Changes(0) = %v, %v; want both", changes, ok)
	}
	if _, _, _, ok := j.Changes(v2 + 1); ok {
		t.Error("Changes of a version not made yet: ok")
	}
	// A reset starts over: no change leads to it.
	v3 := j.Reset()
	if _, _, _, ok := j.Changes(v2); ok {
		t.Error("Changes across a reset: ok")
	}
	if changes, v, _, ok := j.Changes(v3); !ok || v != v3 || len(changes) != 0 {
		t.Errorf("Changes(%d) after the reset = %v, %d, %v", v3, changes, v, ok)
	}
	// Beyond its limits the journal forgets the oldest changes, even one
	// change too large to keep.
	for i := range journalChanges + 10 {
		j.Append(Change{Add: []Record{rec(i)}})
	}
	if _, _, _, ok := j.Changes(v3); ok {
		t.Errorf("Changes(%d) ok after %d changes", v3, journalChanges+10)
	}
	last, _ := j.Version()
	if changes, _, _, ok := j.Changes(last - journalChanges); !ok || len(changes) != journalChanges {
		t.Errorf("the last %d changes: %d, %v", journalChanges, len(changes), ok)
	}
	big := make([]Record, journalRecords+1)
	v := j.Append(Change{Add: big})
	if _, _, _, ok := j.Changes(v - 1); ok {
		t.Error("a change of more records than the journal keeps was kept")
	}
	if _, _, _, ok := j.Changes(v); !ok {
		t.Error("the current version after a change too large to keep: not ok")
	}
}
