package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
	mdns "github.com/miekg/dns"
	"github.com/moxxie/moxxie/dns"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/telemetry/promtest"
	"github.com/prometheus/client_golang/prometheus"
)

func TestDNSRecords_Mapping(t *testing.T) {
	d := &fsm.DNSData{
		Index: 42,
		Zones: []*fsm.Zone{
			{ID: "moxxie.test", TTL: 60},
			{ID: "prod.moxxie.test", TTL: 30},
		},
		Prefixes: []*fsm.Prefix{
			{ID: "p1", Prefix: "10.0.0.0/24", VRF: "default", Status: fsm.PrefixActive},
			{ID: "p2", Prefix: "10.0.0.0/24", VRF: "blue", Status: fsm.PrefixActive}, // same reverse zone
			{ID: "p3", Prefix: "2001:db8::/64", VRF: "default", Status: fsm.PrefixActive},
			{ID: "p4", Prefix: "10.1.0.0/23", VRF: "default", Status: fsm.PrefixActive},
			// Aggregates give no reverse zones: in-addr.arpa. would
			// answer for far.moxxie.test's address below.
			{ID: "p5", Prefix: "0.0.0.0/0", VRF: "all", Status: fsm.PrefixContainer},
			{ID: "p6", Prefix: "2000::/3", VRF: "all", Status: fsm.PrefixContainer},
		},
		Addresses: []*fsm.Address{
			{ID: "a1", Address: "10.0.0.5", DNSName: "web.moxxie.test"},
			{ID: "a2", Address: "10.0.0.6", DNSName: "db.prod.moxxie.test"},
			{ID: "a3", Address: "10.0.0.7", DNSName: "moxxie.test"},
			{ID: "a4", Address: "2001:db8::5", DNSName: "web.moxxie.test"},
			{ID: "a5", Address: "10.1.1.9", DNSName: "Lb.Prod.Moxxie.Test."},
			{ID: "a6", Address: "10.0.0.8", DNSName: "outside.example"},
			{ID: "a7", Address: "10.0.0.9", DNSName: "xmoxxie.test"},     // not under moxxie.test
			{ID: "a8", Address: "192.0.2.1", DNSName: "far.moxxie.test"}, // no reverse zone
		},
	}
	recs := dnsRecords(d)

	var zones []string
	for _, z := range recs.Zones {
		zones = append(zones, fmt.Sprintf("%s %s serial=%d ttl=%d ns=%v mbox=%s", z.Name, z.Kind, z.Serial, z.TTL, z.NS, z.Mbox))
	}
	wantZones := []string{
		"0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. reverse serial=42 ttl=0 ns=[ns1.moxxie.test.] mbox=hostmaster.moxxie.test.",
		"0.0.10.in-addr.arpa. reverse serial=42 ttl=0 ns=[ns1.moxxie.test.] mbox=hostmaster.moxxie.test.",
		"0.1.10.in-addr.arpa. reverse serial=42 ttl=0 ns=[ns1.moxxie.test.] mbox=hostmaster.moxxie.test.",
		"1.1.10.in-addr.arpa. reverse serial=42 ttl=0 ns=[ns1.moxxie.test.] mbox=hostmaster.moxxie.test.",
		"moxxie.test. forward serial=42 ttl=60 ns=[] mbox=",
		"prod.moxxie.test. forward serial=42 ttl=30 ns=[] mbox=",
	}
	if !slices.Equal(zones, wantZones) {
		t.Errorf("zones:\n%s\nwant:\n%s", strings.Join(zones, "\n"), strings.Join(wantZones, "\n"))
	}

	var got []string
	for _, r := range recs.Records {
		got = append(got, fmt.Sprintf("%s %d %d %s", r.Name, r.TTL, r.Type, r.Value))
	}
	slices.Sort(got)
	want := []string{
		fmt.Sprintf("5.0.0.10.in-addr.arpa. 60 %d web.moxxie.test.", dns.TypePTR),
		fmt.Sprintf("6.0.0.10.in-addr.arpa. 30 %d db.prod.moxxie.test.", dns.TypePTR),
		fmt.Sprintf("7.0.0.10.in-addr.arpa. 60 %d moxxie.test.", dns.TypePTR),
		fmt.Sprintf("9.1.1.10.in-addr.arpa. 30 %d lb.prod.moxxie.test.", dns.TypePTR),
		fmt.Sprintf("db.prod.moxxie.test. 30 %d 10.0.0.6", dns.TypeA),
		fmt.Sprintf("far.moxxie.test. 60 %d 192.0.2.1", dns.TypeA),
		fmt.Sprintf("lb.prod.moxxie.test. 30 %d 10.1.1.9", dns.TypeA),
		fmt.Sprintf("moxxie.test. 60 %d 10.0.0.7", dns.TypeA),
		fmt.Sprintf("web.moxxie.test. 60 %d 10.0.0.5", dns.TypeA),
		fmt.Sprintf("web.moxxie.test. 60 %d 2001:db8::5", dns.TypeAAAA),
		fmt.Sprintf("%s 60 %d web.moxxie.test.", dns.ReverseName(netip.MustParseAddr("2001:db8::5")), dns.TypePTR),
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A zone created later, whatever its name, leaves the reverse zones'
	// name server and mailbox those of the oldest zone.
	d.Zones[0].CreateIndex, d.Zones[1].CreateIndex = 5, 6
	d.Zones = append(d.Zones, &fsm.Zone{ID: "a-first-by-name.test", CreateIndex: 40})
	for _, z := range dnsRecords(d).Zones {
		if z.Kind == dns.ZoneReverse && (!slices.Equal(z.NS, []string{"ns1.moxxie.test."}) || z.Mbox != "hostmaster.moxxie.test.") {
			t.Errorf("after a later zone: %s ns=%v mbox=%s", z.Name, z.NS, z.Mbox)
		}
	}
	d.Zones = d.Zones[:2]

	// A tenant's domain names only the reverse zones of its own prefixes;
	// others name the oldest zone of no tenant, or, without one, the
	// oldest zone.
	tz := &fsm.DNSData{
		Zones: []*fsm.Zone{
			{ID: "moxxie.test", CreateIndex: 5},
			{ID: "acme.test", Tenant: "acme", CreateIndex: 3},
			{ID: "globex.test", Tenant: "globex", CreateIndex: 4},
		},
		Prefixes: []*fsm.Prefix{
			{ID: "a", Prefix: "10.2.0.0/24", Tenant: "acme", Status: fsm.PrefixActive},
			{ID: "g", Prefix: "10.3.0.0/24", Tenant: "globex", Status: fsm.PrefixActive},
			{ID: "m1", Prefix: "10.4.0.0/25", Tenant: "acme", Status: fsm.PrefixActive},
			{ID: "m2", Prefix: "10.4.0.128/25", Tenant: "globex", Status: fsm.PrefixActive},
			{ID: "s", Prefix: "10.5.0.0/24", Status: fsm.PrefixActive},
			{ID: "i", Prefix: "10.6.0.0/24", Tenant: "initech", Status: fsm.PrefixActive},
		},
	}
	named := func(d *fsm.DNSData) map[string]string {
		out := map[string]string{}
		for _, z := range dnsRecords(d).Zones {
			if z.Kind == dns.ZoneReverse {
				out[z.Name] = z.NS[0] + " " + z.Mbox
			}
		}
		return out
	}
	wantNS := map[string]string{
		"0.2.10.in-addr.arpa.": "ns1.acme.test. hostmaster.acme.test.",
		"0.3.10.in-addr.arpa.": "ns1.globex.test. hostmaster.globex.test.",
		"0.4.10.in-addr.arpa.": "ns1.moxxie.test. hostmaster.moxxie.test.",
		"0.5.10.in-addr.arpa.": "ns1.moxxie.test. hostmaster.moxxie.test.",
		"0.6.10.in-addr.arpa.": "ns1.moxxie.test. hostmaster.moxxie.test.",
	}
	if got := named(tz); !maps.Equal(got, wantNS) {
		t.Errorf("reverse zones of tenants' prefixes: %v, want %v", got, wantNS)
	}
	tz.Zones = tz.Zones[1:]
	wantNS["0.4.10.in-addr.arpa."] = "ns1.acme.test. hostmaster.acme.test."
	wantNS["0.5.10.in-addr.arpa."] = "ns1.acme.test. hostmaster.acme.test."
	wantNS["0.6.10.in-addr.arpa."] = "ns1.acme.test. hostmaster.acme.test."
	if got := named(tz); !maps.Equal(got, wantNS) {
		t.Errorf("reverse zones without a zone of no tenant: %v, want %v", got, wantNS)
	}

	// Without forward zones nothing is served: the reverse zones would
	// hold no PTR and could name no server but one under themselves.
	recs = dnsRecords(&fsm.DNSData{Prefixes: d.Prefixes[:1], Addresses: d.Addresses})
	if len(recs.Records) != 0 || len(recs.Zones) != 0 {
		t.Errorf("without zones: %+v", recs)
	}
}

// testFSM applies commands to an FSM as raft would.
type testFSM struct {
	f     *fsm.FSM
	index uint64
}

func (tf *testFSM) apply(t testing.TB, cmd fsm.Command) any {
	t.Helper()
	cmd.Meta().Now = time.Now().UnixNano()
	if v, ok := cmd.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
	}
	buf, err := fsm.Encode(cmd)
	if err != nil {
		t.Fatal(err)
	}
	tf.index++
	res := tf.f.Apply(&raft.Log{Type: raft.LogCommand, Index: tf.index, Data: buf}).(*fsm.Result)
	if res.Err != nil {
		t.Fatalf("%T: %v", cmd, res.Err)
	}
	return res.Value
}

// try applies cmd as apply does, and returns its error instead of failing.
func (tf *testFSM) try(cmd fsm.Command) error {
	cmd.Meta().Now = time.Now().UnixNano()
	if v, ok := cmd.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	buf, err := fsm.Encode(cmd)
	if err != nil {
		return err
	}
	tf.index++
	return tf.f.Apply(&raft.Log{Type: raft.LogCommand, Index: tf.index, Data: buf}).(*fsm.Result).Err
}

// readsEveryCommand returns a DNS source over tf that reads the store
// after each command's transaction, as a DNS read could come, also
// between the transactions of one entry. Set tf.f.OnApply to nil to stop.
func readsEveryCommand(t *testing.T, tf *testFSM) *dnsSource {
	t.Helper()
	src := newDNSSource(tf.f, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	tf.f.OnApply = func(fsm.MessageType, *fsm.Result) {
		if err := src.refresh(memdb.NewWatchSet()); err != nil {
			t.Error(err)
		}
	}
	return src
}

// applyBatch applies cmds as one batch entry, as a leader's group commit
// proposes them.
func (tf *testFSM) applyBatch(t testing.TB, cmds ...fsm.Command) {
	t.Helper()
	var entries [][]byte
	for _, c := range cmds {
		c.Meta().Now = time.Now().UnixNano()
		buf, err := fsm.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, buf)
	}
	buf, err := fsm.Encode(&fsm.BatchRequest{Entries: entries})
	if err != nil {
		t.Fatal(err)
	}
	tf.index++
	tf.f.Apply(&raft.Log{Type: raft.LogCommand, Index: tf.index, Data: buf})
}

// allocate allocates one address named name from prefix pid.
func (tf *testFSM) allocate(t testing.TB, pid, id, name string) string {
	t.Helper()
	v := tf.apply(t, &fsm.AddressAllocateRequest{PrefixID: pid, IDs: []string{id}, DNSName: name})
	return v.(*fsm.AddressList).Addresses[0].Address
}

func newTestFSM(t testing.TB, zone, prefix string) *testFSM {
	t.Helper()
	tf := &testFSM{f: fsm.New()}
	tf.apply(t, &fsm.DNSSerialMarkRequest{}) // as a leader does first
	tf.apply(t, &fsm.ZoneCreateRequest{Zone: fsm.Zone{ID: zone}})
	tf.apply(t, &fsm.PrefixCreateRequest{Prefix: fsm.Prefix{ID: "p-" + zone, Prefix: prefix}})
	return tf
}

// lookup returns the values of the records of name and type in recs.
func lookup(recs *dns.Records, name string, typ uint16) []string {
	var out []string
	if recs == nil {
		return nil
	}
	for _, r := range recs.Records {
		if r.Name == name && r.Type == typ {
			out = append(out, r.Value)
		}
	}
	return out
}

// startDNSSource runs a source over f until the test ends, open from the
// start: f holds everything there is.
func startDNSSource(t *testing.T, f *fsm.FSM) *dnsSource {
	src := newDNSSource(f, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	src.open()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		src.run(stop)
	}()
	t.Cleanup(func() {
		close(stop)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("DNS source did not stop")
		}
	})
	// Wait for the version open makes, so that tests see their own changes.
	for {
		_, changed := src.journal.Version()
		if src.isCurrent() {
			return src
		}
		select {
		case <-changed:
		case <-time.After(5 * time.Second):
			t.Fatal("DNS source not current after open")
		}
	}
}

// waitRecords waits until the source's records satisfy ok, following the
// watch channel as the DNS plugin does.
func waitRecords(t *testing.T, src *dnsSource, what string, ok func(*dns.Records) bool) time.Duration {
	t.Helper()
	start := time.Now()
	timeout := time.After(5 * time.Second)
	for {
		recs, ch := src.Snapshot()
		if ok(recs) {
			return time.Since(start)
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("%s: not seen after 5s", what)
		}
	}
}

func TestDNSSource_WatchesChanges(t *testing.T) {
	tf := newTestFSM(t, "moxxie.test", "10.0.0.0/24")
	tf.allocate(t, "p-moxxie.test", "a1", "web.moxxie.test")
	src := startDNSSource(t, tf.f)
	if got := lookup(mustRecords(src), "web.moxxie.test.", dns.TypeA); !slices.Equal(got, []string{"10.0.0.1"}) {
		t.Fatalf("initial records: web A = %v", got)
	}
	addr := tf.allocate(t, "p-moxxie.test", "a2", "db.moxxie.test")
	took := waitRecords(t, src, "db.moxxie.test", func(r *dns.Records) bool {
		return slices.Equal(lookup(r, "db.moxxie.test.", dns.TypeA), []string{addr})
	})
	t.Logf("a change was visible in the source after %s", took)
	if took > 500*time.Millisecond {
		t.Errorf("a single change took %s to show", took)
	}
	// An address without a name changes nothing DNS serves: no rebuild.
	src.mu.Lock()
	builds := src.builds
	src.mu.Unlock()
	tf.allocate(t, "p-moxxie.test", "a3", "")
	time.Sleep(100 * time.Millisecond)
	src.mu.Lock()
	if src.builds != builds {
		t.Errorf("an unnamed address caused %d rebuilds", src.builds-builds)
	}
	src.mu.Unlock()
	// Deleting the zone stops serving its names, and, the last forward
	// zone gone, the reverse zone.
	tf.apply(t, &fsm.ZoneDeleteRequest{ID: "moxxie.test"})
	waitRecords(t, src, "zone deleted", func(r *dns.Records) bool {
		return len(lookup(r, "web.moxxie.test.", dns.TypeA)) == 0 && len(r.Zones) == 0
	})
}

func mustRecords(src *dnsSource) *dns.Records {
	recs, _ := src.Snapshot()
	return recs
}

// TestDNSSource_FollowsRestore checks that the source reads the new store
// after a snapshot restore replaces the old one, and keeps watching it.
func TestDNSSource_FollowsRestore(t *testing.T) {
	other := newTestFSM(t, "restored.test", "10.9.0.0/24")
	other.allocate(t, "p-restored.test", "r1", "host.restored.test")
	var snap bytes.Buffer
	if err := other.f.State().Dump(&snap); err != nil {
		t.Fatal(err)
	}

	tf := newTestFSM(t, "moxxie.test", "10.0.0.0/24")
	tf.allocate(t, "p-moxxie.test", "a1", "web.moxxie.test")
	src := startDNSSource(t, tf.f)
	if err := tf.f.Restore(io.NopCloser(&snap)); err != nil {
		t.Fatal(err)
	}
	waitRecords(t, src, "restored records", func(r *dns.Records) bool {
		return slices.Equal(lookup(r, "host.restored.test.", dns.TypeA), []string{"10.9.0.1"}) &&
			len(lookup(r, "web.moxxie.test.", dns.TypeA)) == 0
	})
	// The source watches the new store.
	tf.index = other.index
	tf.allocate(t, "p-restored.test", "r2", "two.restored.test")
	waitRecords(t, src, "a change after the restore", func(r *dns.Records) bool {
		return slices.Equal(lookup(r, "two.restored.test.", dns.TypeA), []string{"10.9.0.2"})
	})
}

// TestDNSSource_CoalescesBursts applies thousands of single-address
// entries as fast as the FSM takes them and checks that the source
// rebuilds far fewer times, yet ends with every name.
func TestDNSSource_CoalescesBursts(t *testing.T) {
	const n = 5000
	tf := newTestFSM(t, "moxxie.test", "10.0.0.0/16")
	src := startDNSSource(t, tf.f)
	start := time.Now()
	for i := range n {
		tf.allocate(t, "p-moxxie.test", fmt.Sprintf("a%d", i), fmt.Sprintf("h%d.moxxie.test", i))
	}
	applied := time.Since(start)
	took := waitRecords(t, src, "all names", func(r *dns.Records) bool {
		return r != nil && len(r.Records) == 2*n
	})
	src.mu.Lock()
	builds, reads := src.builds, src.reads
	src.mu.Unlock()
	t.Logf("%d entries applied in %s; %d rebuilds; all visible %s after the last", n, applied, builds, took)
	if builds > n/10 {
		t.Errorf("%d rebuilds for %d entries: bursts are not coalesced", builds, n)
	}
	if reads != 1 {
		t.Errorf("every named address read %d times, want once (at the start): the source did not follow the store's changes", reads)
	}
}

// TestDiffNamed_WholeRead checks the change a whole read of the same store
// makes (as after the source fell behind the store's feed): the addresses
// it holds as they were give no records, changed, new and gone ones do.
func TestDiffNamed_WholeRead(t *testing.T) {
	d := &fsm.DNSData{
		Zones:    []*fsm.Zone{{ID: "moxxie.test"}},
		Prefixes: []*fsm.Prefix{{ID: "p", Prefix: "10.0.0.0/24", Status: fsm.PrefixActive}},
	}
	view := newDNSView(d)
	same := &fsm.Address{ID: "a1", Address: "10.0.0.1", DNSName: "same.moxxie.test"}
	renamed := &fsm.Address{ID: "a2", Address: "10.0.0.2", DNSName: "old.moxxie.test"}
	gone := &fsm.Address{ID: "a3", Address: "10.0.0.3", DNSName: "gone.moxxie.test"}
	described := &fsm.Address{ID: "a4", Address: "10.0.0.4", DNSName: "described.moxxie.test"}
	named := newNamedSet([]*fsm.Address{same, renamed, gone, described})

	renamedNow := &fsm.Address{ID: "a2", Address: "10.0.0.2", DNSName: "new.moxxie.test"}
	describedNow := &fsm.Address{ID: "a4", Address: "10.0.0.4", DNSName: "described.moxxie.test", Description: "x"}
	added := &fsm.Address{ID: "a5", Address: "10.0.0.5", DNSName: "added.moxxie.test"}
	d.Addresses = []*fsm.Address{added, describedNow, renamedNow, same}
	var c dns.Change
	diffNamed(&c, view, view, named, namedUpdates(d, true, named))
	var removed, add []string
	for _, r := range c.Remove {
		removed = append(removed, r.Name+" "+r.Value)
	}
	for _, r := range c.Add {
		add = append(add, r.Name+" "+r.Value)
	}
	wantRemoved := []string{"gone.moxxie.test. 10.0.0.3", "3.0.0.10.in-addr.arpa. gone.moxxie.test.", "old.moxxie.test. 10.0.0.2", "2.0.0.10.in-addr.arpa. old.moxxie.test."}
	wantAdded := []string{"added.moxxie.test. 10.0.0.5", "5.0.0.10.in-addr.arpa. added.moxxie.test.", "new.moxxie.test. 10.0.0.2", "2.0.0.10.in-addr.arpa. new.moxxie.test."}
	if !slices.Equal(removed, wantRemoved) || !slices.Equal(add, wantAdded) {
		t.Errorf("removed %q, added %q; want %q, %q", removed, add, wantRemoved, wantAdded)
	}
	want := map[string]*fsm.Address{"a1": same, "a2": renamedNow, "a4": describedNow, "a5": added}
	if !maps.Equal(named.byID, want) || named.byName.Len() != len(want) || named.byAddr.Len() != len(want) {
		t.Errorf("named after the diff: %v (%d by name, %d by address), want %v", named.byID, named.byName.Len(), named.byAddr.Len(), want)
	}
}

// TestDNSSource_TellsChanges checks that the source tells the DNS servers
// the records that changed (an address added, renamed, released), that a
// change of a prefix that leaves the zones as they were is one too, and
// that zones that come and go are told with the records they take along.
func TestDNSSource_TellsChanges(t *testing.T) {
	tf := newTestFSM(t, "moxxie.test", "10.0.0.0/24")
	tf.allocate(t, "p-moxxie.test", "a1", "web.moxxie.test")
	src := startDNSSource(t, tf.f)
	recs, _ := src.Snapshot()
	version := recs.Version
	// next waits for the change after version and returns it, its records
	// as "name value", sorted.
	next := func(what string) (c dns.Change, removed, added []string) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			changes, v, ch, ok := src.Changes(version)
			if !ok {
				t.Fatalf("%s: Changes(%d) not ok", what, version)
			}
			if v > version {
				if len(changes) != 1 {
					t.Fatalf("%s: %d changes, want 1", what, len(changes))
				}
				version = v
				for _, r := range changes[0].Remove {
					removed = append(removed, r.Name+" "+r.Value)
				}
				for _, r := range changes[0].Add {
					added = append(added, r.Name+" "+r.Value)
				}
				slices.Sort(removed)
				slices.Sort(added)
				return changes[0], removed, added
			}
			select {
			case <-ch:
			case <-deadline:
				t.Fatalf("%s: no change after 5 s", what)
			}
		}
	}
	check := func(what string, removed, added []string, wantRemoved, wantAdded []string) {
		t.Helper()
		if !slices.Equal(removed, wantRemoved) || !slices.Equal(added, wantAdded) {
			t.Errorf("%s: removed %q, added %q; want removed %q, added %q", what, removed, added, wantRemoved, wantAdded)
		}
	}
	zones := func(c dns.Change) string {
		var added []string
		for _, z := range c.Zones {
			added = append(added, z.Name)
		}
		return fmt.Sprintf("-%v +%v", c.RemoveZones, added)
	}

	tf.allocate(t, "p-moxxie.test", "a2", "db.moxxie.test")
	c, r, a := next("allocate")
	check("allocate", r, a, nil, []string{"2.0.0.10.in-addr.arpa. db.moxxie.test.", "db.moxxie.test. 10.0.0.2"})
	if c.Serial == 0 || len(c.Zones)+len(c.RemoveZones) != 0 {
		t.Errorf("allocate: serial %d, zones %s", c.Serial, zones(c))
	}

	name := "www.moxxie.test"
	tf.apply(t, &fsm.AddressUpdateRequest{ID: "a1", DNSName: &name})
	_, r, a = next("rename")
	check("rename", r, a, []string{"1.0.0.10.in-addr.arpa. web.moxxie.test.", "web.moxxie.test. 10.0.0.1"},
		[]string{"1.0.0.10.in-addr.arpa. www.moxxie.test.", "www.moxxie.test. 10.0.0.1"})

	desc := "only the description"
	tf.apply(t, &fsm.AddressUpdateRequest{ID: "a1", Description: &desc})
	_, r, a = next("description")
	check("description", r, a, nil, nil)

	tf.apply(t, &fsm.AddressReleaseRequest{ID: "a2", Force: true})
	_, r, a = next("release")
	check("release", r, a, []string{"2.0.0.10.in-addr.arpa. db.moxxie.test.", "db.moxxie.test. 10.0.0.2"}, nil)

	tf.apply(t, &fsm.PrefixUpdateRequest{ID: "p-moxxie.test", Description: &desc})
	_, r, a = next("prefix description")
	check("prefix description", r, a, nil, nil)

	// Zones come: a forward zone, and a prefix's reverse zone.
	tf.apply(t, &fsm.ZoneCreateRequest{Zone: fsm.Zone{ID: "other.test"}})
	c, r, a = next("new zone")
	check("new zone", r, a, nil, nil)
	if got := zones(c); got != "-[] +[other.test.]" {
		t.Errorf("new zone: zones %s", got)
	}
	tf.apply(t, &fsm.PrefixCreateRequest{Prefix: fsm.Prefix{ID: "p2", Prefix: "10.0.1.0/24"}})
	c, _, _ = next("new prefix")
	if got := zones(c); got != "-[] +[1.0.10.in-addr.arpa.]" {
		t.Errorf("new prefix: zones %s", got)
	}
	tf.allocate(t, "p2", "a3", "app.other.test")
	_, r, a = next("allocate in the new zones")
	check("allocate in the new zones", r, a, nil, []string{"1.1.0.10.in-addr.arpa. app.other.test.", "app.other.test. 10.0.1.1"})

	// A zone goes, and takes its names' records along. The reverse zones
	// took their name server from it, the oldest forward zone, so they
	// change too: the records of the names left in them go with them
	// and come back.
	tf.apply(t, &fsm.ZoneDeleteRequest{ID: "moxxie.test"})
	c, r, a = next("zone deleted")
	check("zone deleted", r, a,
		[]string{"1.0.0.10.in-addr.arpa. www.moxxie.test.", "1.1.0.10.in-addr.arpa. app.other.test.", "app.other.test. 10.0.1.1", "www.moxxie.test. 10.0.0.1"},
		[]string{"1.1.0.10.in-addr.arpa. app.other.test.", "app.other.test. 10.0.1.1"})
	if got := zones(c); got != "-[0.0.10.in-addr.arpa. 1.0.10.in-addr.arpa. moxxie.test.] +[0.0.10.in-addr.arpa. 1.0.10.in-addr.arpa.]" {
		t.Errorf("zone deleted: zones %s", got)
	}
	recs, _ = src.Snapshot()
	if got := lookup(recs, "app.other.test.", dns.TypeA); !slices.Equal(got, []string{"10.0.1.1"}) || len(recs.Zones) != 3 {
		t.Errorf("after the zone's deletion: app A = %v, zones %v", got, recs.Zones)
	}
}

// TestDNSSource_ChangesReplayToSnapshot makes random changes to the state
// (named addresses allocated, renamed and released; zones and prefixes
// created and deleted) and checks after each that the source's records
// taken at the start with every change it told since applied give what
// it would hand a new server whole: the changes tell everything.
func TestDNSSource_ChangesReplayToSnapshot(t *testing.T) {
	for seed := range uint64(5) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 3))
			tf := newTestFSM(t, "moxxie.test", "10.0.0.0/24")
			src := newDNSSource(tf.f, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
			ws := memdb.NewWatchSet()
			if err := src.refresh(ws); err != nil {
				t.Fatal(err)
			}
			start, _ := src.Snapshot()
			mirror := dns.NewStaticSource(start)
			version := start.Version
			zones := []string{"moxxie.test", "lab.moxxie.test", "other.test"}
			prefixes := []string{"10.0.1.0/24", "10.0.2.0/23", "2001:db8::/64"}
			var ids []string
			for step := range 150 {
				var cmd fsm.Command
				switch op := r.IntN(10); {
				case op < 4: // allocate an address in some prefix, most named
					id := fmt.Sprintf("a%d", step)
					pid := []string{"p-moxxie.test", "p1", "p2", "p3"}[r.IntN(4)]
					name := randomDNSName(r, zones)
					if r.IntN(4) == 0 {
						name = ""
					}
					cmd = &fsm.AddressAllocateRequest{PrefixID: pid, IDs: []string{id}, DNSName: name}
					ids = append(ids, id)
				case op < 6 && len(ids) > 0: // rename
					name := randomDNSName(r, zones)
					cmd = &fsm.AddressUpdateRequest{ID: ids[r.IntN(len(ids))], DNSName: &name}
				case op < 7 && len(ids) > 0: // release
					i := r.IntN(len(ids))
					cmd = &fsm.AddressReleaseRequest{ID: ids[i], Force: true}
					ids = slices.Delete(ids, i, i+1)
				case op < 8:
					cmd = &fsm.ZoneCreateRequest{Zone: fsm.Zone{ID: zones[r.IntN(len(zones))], TTL: uint32(r.IntN(2) * 300)}}
				case op < 9:
					cmd = &fsm.ZoneDeleteRequest{ID: zones[r.IntN(len(zones))]}
				default:
					i := r.IntN(len(prefixes))
					if r.IntN(2) == 0 {
						cmd = &fsm.PrefixCreateRequest{Prefix: fsm.Prefix{ID: fmt.Sprintf("p%d", i+1), Prefix: prefixes[i]}}
					} else {
						cmd = &fsm.PrefixDeleteRequest{ID: fmt.Sprintf("p%d", i+1)}
					}
				}
				if cmd == nil {
					continue
				}
				tf.try(cmd) // many fail (a zone that exists, a prefix in use): as they may
				if fired(ws) {
					// As run does: it reads again when woken.
					ws = memdb.NewWatchSet()
					if err := src.refresh(ws); err != nil {
						t.Fatal(err)
					}
				}
				changes, v, _, ok := src.Changes(version)
				if !ok {
					t.Fatalf("step %d: Changes(%d) not ok", step, version)
				}
				for _, c := range changes {
					before, _ := mirror.Snapshot()
					checkChangeRules(t, fmt.Sprintf("step %d (%T)", step, cmd), before, c)
					mirror.Update(c)
				}
				version = v
				want, _ := src.Snapshot()
				got, _ := mirror.Snapshot()
				if g, w := recordsString(got), recordsString(want); g != w {
					t.Fatalf("step %d (%T): replayed:\n%s\nwhole:\n%s", step, cmd, g, w)
				}
				// A server that starts now (reads the store whole) serves
				// the same, serials included.
				fresh, _ := newDNSSource(tf.f, src.logger).Snapshot()
				if g, w := recordsString(fresh), recordsString(want); g != w {
					t.Fatalf("step %d (%T): read by a new source:\n%s\nfollowed:\n%s", step, cmd, g, w)
				}
			}
		})
	}
}

// fired reports whether a channel of ws was closed.
func fired(ws memdb.WatchSet) bool {
	for ch := range ws {
		select {
		case <-ch:
			return true
		default:
		}
	}
	return false
}

// checkChangeRules checks that c, applied to before, keeps dns.Change's
// rules for zones, which let the DNS servers change their answers instead
// of rebuilding them: once c's records are removed, a zone that goes holds
// none, and no record of the zone around a zone that comes lies under it.
func checkChangeRules(t *testing.T, what string, before *dns.Records, c dns.Change) {
	t.Helper()
	if len(c.RemoveZones)+len(c.Zones) == 0 {
		return
	}
	recs := slices.Clone(before.Records)
	for _, r := range c.Remove {
		if i := slices.Index(recs, r); i >= 0 {
			recs = slices.Delete(recs, i, i+1)
		}
	}
	zones := map[string]bool{}
	for _, z := range before.Zones {
		zones[z.Name] = true
	}
	for _, r := range recs {
		if z := closestOf(r.Name, zones); slices.Contains(c.RemoveZones, z) {
			t.Errorf("%s: zone %s goes while it holds %s %s", what, z, r.Name, r.Value)
		}
		for _, z := range c.Zones {
			with := maps.Clone(zones)
			with[z.Name] = true
			if closestOf(r.Name, with) == z.Name {
				t.Errorf("%s: zone %s comes while %s %s, of the zone around it, lies under it", what, z.Name, r.Name, r.Value)
			}
		}
	}
}

// randomDNSName returns a name in one of zones, or in none.
func randomDNSName(r *rand.Rand, zones []string) string {
	if r.IntN(8) == 0 {
		return fmt.Sprintf("h%d.nowhere.test", r.IntN(3))
	}
	return fmt.Sprintf("h%d.%s", r.IntN(5), zones[r.IntN(len(zones))])
}

// recordsString lists the zones and records of recs, sorted, for
// comparing two views that list them in other orders.
func recordsString(recs *dns.Records) string {
	var lines []string
	for _, z := range recs.Zones {
		lines = append(lines, fmt.Sprintf("zone %s %s serial=%d ttl=%d ns=%v mbox=%s", z.Name, z.Kind, z.Serial, z.TTL, z.NS, z.Mbox))
	}
	for _, r := range recs.Records {
		lines = append(lines, fmt.Sprintf("%s %d %s ttl=%d", r.Name, r.Type, r.Value, r.TTL))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestDNSSource_ZonesChangeAnswersInPlace checks through a real DNS
// server that zones coming and going (a prefix's reverse zone, a forward
// zone created and deleted) reach the answers as changes, without a
// rebuild of every answer.
func TestDNSSource_ZonesChangeAnswersInPlace(t *testing.T) {
	tf := newTestFSM(t, "moxxie.test", "10.0.0.0/24")
	for i := range 50 {
		tf.allocate(t, "p-moxxie.test", fmt.Sprintf("a%d", i), fmt.Sprintf("h%d.moxxie.test", i))
	}
	src := startDNSSource(t, tf.f)
	srv, err := dns.Serve(context.Background(), dns.ServerConfig{Listen: "127.0.0.1:0", Source: src})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	updates := func(kind string) float64 {
		return promtest.Value(t, prometheus.DefaultGatherer, "coredns_moxxie_updates_total", "kind="+kind+",server=dns://"+srv.Addr())
	}
	answers := func(what, name string, qtype uint16, want int) {
		t.Helper()
		waitDNS(t, what, srv.Addr(), new(mdns.Msg).SetQuestion(name, qtype), time.Now(), 5*time.Second,
			func(r *mdns.Msg) bool { return len(r.Answer) == want })
	}
	rebuilds := updates("rebuild")

	tf.apply(t, &fsm.PrefixCreateRequest{Prefix: fsm.Prefix{ID: "p2", Prefix: "10.0.1.0/24"}})
	tf.allocate(t, "p2", "b1", "web.moxxie.test")
	answers("new prefix", "1.1.0.10.in-addr.arpa.", mdns.TypePTR, 1)
	tf.apply(t, &fsm.ZoneCreateRequest{Zone: fsm.Zone{ID: "other.test"}})
	tf.allocate(t, "p2", "b2", "app.other.test")
	answers("new zone", "app.other.test.", mdns.TypeA, 1)
	answers("new zone", "other.test.", mdns.TypeSOA, 1)
	tf.apply(t, &fsm.ZoneDeleteRequest{ID: "other.test"})
	answers("zone deleted", "2.1.0.10.in-addr.arpa.", mdns.TypePTR, 0)
	answers("zone deleted", "h7.moxxie.test.", mdns.TypeA, 1)

	if got := updates("rebuild"); got != rebuilds {
		t.Errorf("%v rebuilds of every answer for zones that came and went, want none", got-rebuilds)
	}
	if got := updates("change"); got == 0 {
		t.Error("no changes counted")
	}
}

// waitDNS asks the DNS server at addr q until ok accepts the answer, and
// returns the time since start then. It fails tb after timeout.
func waitDNS(tb testing.TB, what, addr string, q *mdns.Msg, start time.Time, timeout time.Duration, ok func(*mdns.Msg) bool) time.Duration {
	tb.Helper()
	c := &mdns.Client{Timeout: time.Second}
	for {
		r, _, err := c.Exchange(q, addr)
		if err == nil && ok(r) {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			tb.Fatalf("%s: %s not answered as wanted after %s: %v %v", what, q.Question[0].String(), timeout, r, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDNSSource_ChangesOfOneEntry: one log entry may commit several
// transactions (a batch cut into chunks, or applied one command at a time
// once one is refused), all at the entry's index. A read between two of
// them sees the index it read before; the changes after it still count.
func TestDNSSource_ChangesOfOneEntry(t *testing.T) {
	tf := newTestFSM(t, "moxxie.test", "10.0.0.0/24")
	src := readsEveryCommand(t, tf)
	tf.applyBatch(t,
		&fsm.AddressAllocateRequest{PrefixID: "p-moxxie.test", IDs: []string{"a"}, DNSName: "a.moxxie.test"},
		&fsm.ZoneCreateRequest{Zone: fsm.Zone{ID: "other.test"}},
		&fsm.AddressAllocateRequest{PrefixID: "p-moxxie.test", IDs: []string{"b"}, DNSName: "b.other.test"},
		&fsm.AddressAllocateRequest{PrefixID: "nosuch", IDs: []string{"c"}, DNSName: "c.moxxie.test"}, // refused
	)
	tf.f.OnApply = nil
	if err := src.refresh(memdb.NewWatchSet()); err != nil {
		t.Fatal(err)
	}
	got, _ := src.Snapshot()
	if len(lookup(got, "a.moxxie.test.", dns.TypeA)) != 1 || len(lookup(got, "b.other.test.", dns.TypeA)) != 1 {
		t.Errorf("after the entry: a %v, b %v", lookup(got, "a.moxxie.test.", dns.TypeA), lookup(got, "b.other.test.", dns.TypeA))
	}
	fresh, _ := newDNSSource(tf.f, src.logger).Snapshot()
	if g, w := recordsString(got), recordsString(fresh); g != w {
		t.Errorf("followed:\n%s\nread whole:\n%s", g, w)
	}
}

// TestDNSSource_ServesAnEntryWhole: a read between the transactions of
// one log entry holds only part of it, so a write of that entry waiting
// for DNS (WaitDNS) waits until a read after the whole entry, also when
// the rest of the entry changes nothing DNS serves and wakes no watch.
func TestDNSSource_ServesAnEntryWhole(t *testing.T) {
	tf := newTestFSM(t, "moxxie.test", "10.0.0.0/24")
	src := readsEveryCommand(t, tf)
	tf.applyBatch(t,
		&fsm.AddressAllocateRequest{PrefixID: "p-moxxie.test", IDs: []string{"a"}, DNSName: "a.moxxie.test"},
		&fsm.AddressAllocateRequest{PrefixID: "p-moxxie.test", IDs: []string{"b"}},
	)
	tf.f.OnApply = nil
	wait := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		return src.waitServes(ctx, tf.index)
	}
	recs, _ := src.Snapshot()
	src.Served(recs.Version)
	if !src.partial() {
		t.Fatal("a read inside the entry is not partial")
	}
	if err := wait(); err == nil {
		t.Fatal("WaitDNS returned for an entry read in part")
	}
	// The look again that run makes after a partial read.
	if err := src.refresh(memdb.NewWatchSet()); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil || src.partial() {
		t.Fatalf("after a read of the whole entry: %v, partial %v", err, src.partial())
	}
}
