package node

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/moxxie/moxxie/fsm"
)

// TestApply_OneChangeOfAnObjectPerEntry: concurrent writes of one object
// never share a log entry, so each answer's index is that of the state it
// shows, and the last of them is the state read back; writes of different
// objects still share entries.
func TestApply_OneChangeOfAnObjectPerEntry(t *testing.T) {
	s := TestServer(t, nil)
	WaitForLeader(t, s)
	write := func(key, value string) (uint64, *fsm.Setting) {
		cmd := &fsm.SettingUpsertRequest{WriteMeta: fsm.WriteMeta{Now: s.now().UnixNano(), Actor: "test"}, Key: key, Value: value}
		res, idx, err := s.Apply(context.Background(), cmd)
		if err != nil || res.Err != nil {
			t.Errorf("write %s=%s: %v %v", key, value, err, res)
			return 0, nil
		}
		return idx, res.Value.(*fsm.Setting)
	}
	run := func(keys func(i int) string) map[uint64][]*fsm.Setting {
		var mu sync.Mutex
		byIndex := map[uint64][]*fsm.Setting{}
		var wg sync.WaitGroup
		for i := range 48 {
			wg.Go(func() {
				idx, set := write(keys(i), fmt.Sprint("v", i))
				mu.Lock()
				defer mu.Unlock()
				if set != nil {
					if set.ModifyIndex != idx {
						t.Errorf("%s answered with modify_index %d at index %d", set.Key, set.ModifyIndex, idx)
					}
					byIndex[idx] = append(byIndex[idx], set)
				}
			})
		}
		wg.Wait()
		return byIndex
	}

	same := run(func(int) string { return "k" })
	var last uint64
	for idx, sets := range same {
		if len(sets) != 1 {
			t.Fatalf("%d changes of one key answered with index %d", len(sets), idx)
		}
		last = max(last, idx)
	}
	if _, got, err := s.State().Setting(nil, "k"); err != nil || got.Value != same[last][0].Value || got.ModifyIndex != last {
		t.Fatalf("read back %+v (%v), want the answer at index %d: %+v", got, err, last, same[last][0])
	}

	before := s.proposals.Load()
	distinct := run(func(i int) string { return fmt.Sprint("d", i) })
	if entries := s.proposals.Load() - before; entries >= 48 {
		t.Fatalf("48 writes of different keys took %d log entries: not batched", entries)
	}
	if len(distinct) == 48 {
		t.Fatal("no two writes of different keys shared an entry")
	}
}
