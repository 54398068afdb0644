package fsm

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/hashicorp/go-memdb"
)

// namedFollower follows a store's named addresses as the DNS server does:
// one whole read, then the changes from the feed.
type namedFollower struct {
	t      *testing.T
	named  map[string]*Address
	cursor uint64
	index  uint64
}

func followNamed(t *testing.T, st *Store) *namedFollower {
	t.Helper()
	d, err := st.DNS(memdb.NewWatchSet())
	if err != nil {
		t.Fatal(err)
	}
	n := &namedFollower{t: t, named: map[string]*Address{}, cursor: d.Cursor, index: d.Index}
	for _, a := range d.Addresses {
		n.named[a.ID] = a
	}
	return n
}

// catchUp applies the changes since the last read and reports whether the
// store still held them all.
func (n *namedFollower) catchUp(st *Store) bool {
	n.t.Helper()
	ws := memdb.NewWatchSet()
	d, ok, err := st.DNSChanges(ws, n.cursor)
	if err != nil {
		n.t.Fatal(err)
	}
	if !ok {
		return false
	}
	for _, c := range d.Changes {
		if c.After == nil || c.After.DNSName == "" {
			delete(n.named, c.ID)
		} else {
			n.named[c.ID] = c.After
		}
	}
	if d.Index < n.index {
		n.t.Fatalf("index went back from %d to %d", n.index, d.Index)
	}
	n.cursor, n.index = d.Cursor, d.Index
	return true
}

// requireWhole fails unless the followed addresses are the store's named
// addresses, the same objects.
func (n *namedFollower) requireWhole(st *Store, step string) {
	n.t.Helper()
	d, err := st.DNS(memdb.NewWatchSet())
	if err != nil {
		n.t.Fatal(err)
	}
	want := map[string]*Address{}
	for _, a := range d.Addresses {
		want[a.ID] = a
	}
	if !maps.Equal(n.named, want) {
		n.t.Fatalf("%s: followed %d named addresses, the store holds %d (or other versions of them)", step, len(n.named), len(want))
	}
	if n.index != d.Index {
		n.t.Fatalf("%s: followed index %d, store index %d", step, n.index, d.Index)
	}
	if i := st.DNSIndex(); i != d.Index {
		n.t.Fatalf("%s: DNSIndex %d, DNS data's index %d", step, i, d.Index)
	}
}

// TestNamedFeed_FollowsEveryChange applies a random mix of the commands
// that write addresses (named and unnamed allocations, single and in
// batches, a batch with a refused command, renames, names removed and
// given, releases, an idempotent replay, a prefix deleted with its named
// gateway) and checks after each that the feed's changes, applied to one
// whole read, give the store's named addresses.
func TestNamedFeed_FollowsEveryChange(t *testing.T) {
	for seed := range uint64(5) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			x := newIPAM(t)
			x.ok(&ZoneCreateRequest{Zone: Zone{ID: "moxxie.test"}})
			x.ok(&PrefixCreateRequest{Prefix: Prefix{ID: "p", Prefix: "10.0.0.0/24", Gateway: "10.0.0.1"}, GatewayID: "gw"})
			st := x.f.State()
			follow := followNamed(t, st)
			var ids []string
			nextID := 0
			newID := func() string {
				nextID++
				id := fmt.Sprintf("a%d", nextID)
				ids = append(ids, id)
				return id
			}
			alloc := func(named bool) *AddressAllocateRequest {
				req := &AddressAllocateRequest{PrefixID: "p", IDs: []string{newID()}}
				if named {
					req.DNSName = fmt.Sprintf("h%d.moxxie.test", nextID)
				}
				return req
			}
			pick := func() string { return ids[rng.IntN(len(ids))] }
			exists := func(id string) bool {
				_, a, err := st.Address(nil, id)
				return err == nil && a != nil
			}
			for step := range 300 {
				var what string
				switch op := rng.IntN(9); {
				case op < 2 || len(ids) == 0:
					what = "allocate"
					x.ok(alloc(rng.IntN(2) == 0))
				case op == 2:
					what = "batch"
					var entries [][]byte
					for range 1 + rng.IntN(5) {
						req := alloc(rng.IntN(2) == 0)
						req.Now = x.now
						entries = append(entries, mustEncode(t, req))
					}
					if rng.IntN(3) == 0 {
						// An ID that exists: the batch falls back to one
						// transaction per command.
						dup := &AddressAllocateRequest{PrefixID: "p", IDs: []string{ids[0]}, DNSName: "dup.moxxie.test", WriteMeta: WriteMeta{Now: x.now}}
						entries = append(entries, mustEncode(t, dup))
					}
					x.index++
					applyBatch(t, x.f, x.index, entries...)
				case op == 3:
					what = "idempotent replay"
					req := alloc(true)
					req.IdempotencyKey, req.RequestHash = fmt.Sprint("k", step), "h"
					x.ok(req)
					again := *req
					x.ok(&again)
				case op <= 5:
					id := pick()
					if !exists(id) {
						continue
					}
					name := []string{"", fmt.Sprintf("renamed%d.moxxie.test", step), "outside.example"}[rng.IntN(3)]
					what = fmt.Sprintf("rename %s to %q", id, name)
					desc := fmt.Sprint("step ", step)
					req := &AddressUpdateRequest{ID: id, Description: &desc}
					if rng.IntN(3) > 0 {
						req.DNSName = &name
					}
					x.ok(req)
				case op <= 7:
					id := pick()
					if !exists(id) {
						continue
					}
					what = "release " + id
					x.ok(&AddressReleaseRequest{ID: id, Force: true})
				default:
					what = "gateway named"
					name := fmt.Sprintf("gw%d.moxxie.test", step)
					x.ok(&AddressUpdateRequest{ID: "gw", DNSName: &name})
				}
				if !follow.catchUp(st) {
					t.Fatalf("step %d (%s): the feed lost changes", step, what)
				}
				follow.requireWhole(st, fmt.Sprintf("step %d (%s)", step, what))
			}
			// The prefix goes with its gateway, named.
			for _, id := range ids {
				if exists(id) {
					x.ok(&AddressReleaseRequest{ID: id, Force: true})
				}
			}
			x.ok(&PrefixDeleteRequest{ID: "p"})
			follow.catchUp(st)
			follow.requireWhole(st, "prefix deleted")
			if len(follow.named) != 0 {
				t.Fatalf("%d named addresses left after the prefix went", len(follow.named))
			}
		})
	}
}

// TestNamedFeed_Bounded checks that a reader further behind than the feed
// holds is told to read everything again, and that the feed wakes its
// readers only for named changes.
func TestNamedFeed_Bounded(t *testing.T) {
	x := newIPAM(t)
	x.f.State().named = newNamedFeed(4)
	x.ok(&ZoneCreateRequest{Zone: Zone{ID: "moxxie.test"}})
	x.ok(&PrefixCreateRequest{Prefix: Prefix{ID: "p", Prefix: "10.0.0.0/24"}})
	st := x.f.State()
	// Unmarked (DNSSerialMarkRequest), any address moves the serial, and
	// wakes the reader; marked, only named ones do.
	ws := memdb.NewWatchSet()
	if _, err := st.DNS(ws); err != nil {
		t.Fatal(err)
	}
	x.ok(&AddressAllocateRequest{PrefixID: "p", IDs: []string{"u0"}})
	if !fired(ws) {
		t.Fatal("unmarked, an unnamed allocation did not wake the DNS reader")
	}
	x.ok(&DNSSerialMarkRequest{})
	ws = memdb.NewWatchSet()
	d, err := st.DNS(ws)
	if err != nil {
		t.Fatal(err)
	}
	x.ok(&AddressAllocateRequest{PrefixID: "p", IDs: []string{"u1"}})
	if fired(ws) {
		t.Fatal("an unnamed allocation woke the DNS reader")
	}
	for i := range 4 {
		x.ok(&AddressAllocateRequest{PrefixID: "p", IDs: []string{fmt.Sprint("n", i)}, DNSName: fmt.Sprintf("n%d.moxxie.test", i)})
	}
	if !fired(ws) {
		t.Fatal("named allocations did not wake the DNS reader")
	}
	got, ok, err := st.DNSChanges(memdb.NewWatchSet(), d.Cursor)
	if err != nil || !ok || len(got.Changes) != 4 {
		t.Fatalf("4 changes behind, as many as the feed holds: ok %v, %d changes, err %v", ok, len(got.Changes), err)
	}
	x.ok(&AddressAllocateRequest{PrefixID: "p", IDs: []string{"n4"}, DNSName: "n4.moxxie.test"})
	if _, ok, err := st.DNSChanges(memdb.NewWatchSet(), d.Cursor); err != nil || ok {
		t.Fatalf("5 changes behind a feed of 4: ok %v, err %v; want a whole read asked for", ok, err)
	}
	if _, ok, _ := st.DNSChanges(memdb.NewWatchSet(), got.Cursor); !ok {
		t.Fatal("1 change behind: not ok")
	}
	if _, ok, _ := st.DNSChanges(memdb.NewWatchSet(), got.Cursor+100); ok {
		t.Fatal("a cursor ahead of the feed was taken")
	}
}

// TestDNSWakesOnRestoreMark: the mark that follows a restore wakes the DNS
// reader and moves the DNS index, which SOA serials are, to its own.
func TestDNSWakesOnRestoreMark(t *testing.T) {
	x := newIPAM(t)
	x.ok(&ZoneCreateRequest{Zone: Zone{ID: "moxxie.test"}})
	st := x.f.State()
	ws := memdb.NewWatchSet()
	if _, err := st.DNS(ws); err != nil {
		t.Fatal(err)
	}
	x.ok(&RestoreMarkRequest{SnapshotIndex: 1})
	if !fired(ws) {
		t.Fatal("the restore mark did not wake the DNS reader")
	}
	if d, err := st.DNS(nil); err != nil || d.Index != x.index {
		t.Fatalf("DNS index %d (err %v), want the mark's %d", d.Index, err, x.index)
	}
}

func TestTracksNamed(t *testing.T) {
	unnamed := &AddressAllocateRequest{PrefixID: "p"}
	named := &AddressAllocateRequest{PrefixID: "p", DNSName: "a.moxxie.test"}
	for _, tc := range []struct {
		name string
		cmds []Command
		want bool
	}{
		{"unnamed allocations", []Command{unnamed, nil, unnamed}, false},
		{"a named allocation", []Command{unnamed, named}, true},
		{"an update", []Command{unnamed, &AddressUpdateRequest{ID: "a"}}, true},
		{"a release", []Command{&AddressReleaseRequest{ID: "a"}}, true},
		{"another command", []Command{&SettingUpsertRequest{Key: "k"}}, true},
	} {
		if got := tracksNamed(tc.cmds...); got != tc.want {
			t.Errorf("%s: tracksNamed = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestDNSSerialMark: before the mark, DNS's index is that of any change of
// zones, prefixes or addresses, as in earlier versions; the mark starts it
// at its own index, from which only changes of named addresses (and of
// zones and prefixes) move it, alike in a store restored from a snapshot.
func TestDNSSerialMark(t *testing.T) {
	x := newIPAM(t)
	x.ok(&ZoneCreateRequest{Zone: Zone{ID: "moxxie.test"}})
	p := x.prefix("10.0.0.0/24", PrefixActive)
	index := func(st *Store) uint64 {
		t.Helper()
		d, err := st.DNS(memdb.NewWatchSet())
		if err != nil {
			t.Fatal(err)
		}
		if i := st.DNSIndex(); i != d.Index {
			t.Fatalf("DNSIndex %d, DNS data's index %d", i, d.Index)
		}
		return d.Index
	}
	x.ok(&AddressAllocateRequest{PrefixID: p.ID, Count: 1, IDs: []string{x.id()}})
	if got := index(x.f.State()); got != x.index || x.f.State().DNSSerialsMarked() {
		t.Fatalf("unmarked: index %d, want %d (any address change)", got, x.index)
	}
	x.ok(&AddressAllocateRequest{PrefixID: p.ID, Count: 1, IDs: []string{x.id()}, DNSName: "a.moxxie.test"})
	if x.f.State().DNSSerialsMarked() {
		t.Fatal("a named change marked the state")
	}

	x.ok(&DNSSerialMarkRequest{})
	mark := x.index
	if got := index(x.f.State()); got != mark || !x.f.State().DNSSerialsMarked() {
		t.Fatalf("marked: index %d, want %d", got, mark)
	}
	x.ok(&AddressAllocateRequest{PrefixID: p.ID, Count: 3, IDs: []string{x.id(), x.id(), x.id()}})
	if got := index(x.f.State()); got != mark {
		t.Fatalf("after unnamed addresses: index %d, want %d", got, mark)
	}
	x.ok(&AddressAllocateRequest{PrefixID: p.ID, Count: 1, IDs: []string{x.id()}, DNSName: "b.moxxie.test"})
	named := x.index
	x.ok(&AddressAllocateRequest{PrefixID: p.ID, Count: 1, IDs: []string{x.id()}})
	if got := index(x.f.State()); got != named {
		t.Fatalf("after a named address: index %d, want %d", got, named)
	}
	// A store restored from a snapshot serves the same.
	restored := New()
	if err := restored.Restore(io.NopCloser(bytes.NewReader(dump(t, x.f)))); err != nil {
		t.Fatal(err)
	}
	if got := index(restored.State()); got != named {
		t.Fatalf("restored: index %d, want %d", got, named)
	}
}
