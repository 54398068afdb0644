package dns

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/moxxie/moxxie/telemetry/promtest"
	"github.com/prometheus/client_golang/prometheus"
)

// changeZones are the zones of the change tests: a forward zone with a
// child zone, and nested reverse zones.
func changeZones() []Zone {
	return []Zone{
		{Name: "moxxie.test.", Serial: 1},
		{Name: "lab.moxxie.test.", Serial: 1, TTL: 300},
		{Name: "10.in-addr.arpa.", Kind: ZoneReverse, Serial: 1},
		{Name: "0.0.10.in-addr.arpa.", Kind: ZoneReverse, Serial: 1},
	}
}

// changeNames are the owner names the change tests use: in both forward
// zones, at several depths, and in both reverse zones.
var changeNames = []string{
	"a.moxxie.test.", "b.c.moxxie.test.", "c.moxxie.test.", "d.e.f.moxxie.test.", "e.f.moxxie.test.",
	"x.lab.moxxie.test.", "y.x.lab.moxxie.test.", "lab.moxxie.test.",
	"1.0.0.10.in-addr.arpa.", "2.0.0.10.in-addr.arpa.", "1.1.10.in-addr.arpa.", "3.2.1.10.in-addr.arpa.",
	"outside.example.", "",
}

// randomRecord returns one of a small set of records, some of them
// invalid (wrong type for the zone, bad value, outside every zone), with
// a TTL that depends on the record alone.
func randomRecord(r *rand.Rand) Record {
	name := changeNames[r.IntN(len(changeNames))]
	switch r.IntN(4) {
	case 0:
		return Record{Name: name, Type: TypeA, Value: fmt.Sprintf("10.0.0.%d", r.IntN(3)+1), TTL: uint32(len(name) % 3 * 10)}
	case 1:
		return Record{Name: strings.ToUpper(name), Type: TypeAAAA, Value: fmt.Sprintf("2001:db8::%d", r.IntN(2)+1)}
	case 2:
		return Record{Name: name, Type: TypePTR, Value: []string{"a.moxxie.test.", "B.moxxie.test", "bad..name"}[r.IntN(3)]}
	}
	return Record{Name: name, Type: TypeA, Value: "not-an-address"}
}

// optionalZones are zones the change tests add and remove: nested in a
// forward zone, one served from the start, nested in a reverse zone, and
// one with no names.
var optionalZones = []Zone{
	{Name: "c.moxxie.test.", TTL: 120},
	{Name: "lab.moxxie.test.", Serial: 1, TTL: 300},
	{Name: "1.10.in-addr.arpa.", Kind: ZoneReverse},
	{Name: "other.test."},
}

// closestZone returns the name of the zone of zones that holds name, or "".
func closestZone(name string, zones []Zone) string {
	n, ok := canonical(name)
	if !ok {
		return ""
	}
	for {
		for _, z := range zones {
			if zn, _ := canonical(z.Name); zn == n {
				return zn
			}
		}
		if n == "." {
			return ""
		}
		n = parent(n)
	}
}

// TestBuilderApplyMatchesRebuild changes records and zones at random, step
// by step, as a source keeping to Change's rules does, and checks after
// every step that the index changed by the steps answers every query as an
// index built afresh from the records does: answers, NODATA and NXDOMAIN,
// SOA serials, the record count. A step the builder cannot make (apply
// false) is rebuilt from the records, as the watcher does.
func TestBuilderApplyMatchesRebuild(t *testing.T) {
	var zoneSteps, rebuilds int
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			src := NewStaticSource(&Records{Zones: changeZones()})
			recs, _ := src.Snapshot()
			b := newBuilder(recs)
			var present []Record
			for step := range 200 {
				var c Change
				for range r.IntN(4) {
					if len(present) > 0 && r.IntN(5) > 0 {
						i := r.IntN(len(present))
						c.Remove = append(c.Remove, present[i])
						present = slices.Delete(present, i, i+1)
					} else {
						c.Remove = append(c.Remove, randomRecord(r)) // perhaps never added
					}
				}
				// A record never added is not removed from the source
				// either, so both sides see the same removals.
				full, _ := src.Snapshot()
				c.Remove = slices.DeleteFunc(c.Remove, func(rec Record) bool {
					return !slices.ContainsFunc(full.Records, func(have Record) bool { return sameRecord(have, rec) })
				})
				if r.IntN(6) == 0 {
					zoneSteps++
					changeZone(&c, &present, full.Zones, optionalZones[r.IntN(len(optionalZones))])
				}
				for range r.IntN(4) {
					rec := randomRecord(r)
					c.Add = append(c.Add, rec)
					present = append(present, rec)
				}
				if r.IntN(3) == 0 {
					c.Serial = uint32(step + 2)
				}
				src.Update(c)
				full, _ = src.Snapshot()
				got, ok := b.apply([]Change{c})
				if !ok {
					rebuilds++
					b = newBuilder(full)
					got = b.ix
				}
				compareIndexes(t, fmt.Sprintf("step %d", step), got, buildIndex(full))
				if t.Failed() {
					t.Fatalf("step %d: change %+v", step, c)
				}
			}
		})
	}
	t.Logf("%d steps changed a zone; %d needed a rebuild", zoneSteps, rebuilds)
	if rebuilds == 0 || rebuilds > zoneSteps*3/4 {
		t.Errorf("%d of %d zone changes rebuilt: the test does not cover both ways", rebuilds, zoneSteps)
	}
}

// changeZone adds z to c, or removes it if it is among zones, as a source
// keeping to Change's rules does: the records it holds among present are
// removed first, and added again if another zone holds them then.
func changeZone(c *Change, present *[]Record, zones []Zone, z Zone) {
	name, _ := canonical(z.Name)
	if closestZone(name, zones) != name {
		c.Zones = append(c.Zones, z)
		return
	}
	after := slices.DeleteFunc(slices.Clone(zones), func(have Zone) bool { return sameName(have.Name, name) })
	kept := (*present)[:0]
	for _, rec := range *present {
		if closestZone(rec.Name, zones) != name {
			kept = append(kept, rec)
			continue
		}
		c.Remove = append(c.Remove, rec)
		if closestZone(rec.Name, after) != "" {
			c.Add = append(c.Add, rec)
			kept = append(kept, rec)
		}
	}
	*present = kept
	c.RemoveZones = append(c.RemoveZones, z.Name)
}

// TestBuilderApplyFolds applies changes large enough to fold the overlay
// into the base, and checks the answers before and after.
func TestBuilderApplyFolds(t *testing.T) {
	src := NewStaticSource(&Records{Zones: changeZones()})
	recs, _ := src.Snapshot()
	b := newBuilder(recs)
	var all []Record
	for i := range 3000 {
		all = append(all, Record{Name: fmt.Sprintf("h%d.moxxie.test.", i), Type: TypeA, Value: "10.0.0.1"})
	}
	steps := []Change{{Add: all}, {Remove: all[:2000]}, {Add: all[:10]}}
	for i, c := range steps {
		src.Update(c)
		got, ok := b.apply([]Change{c})
		if !ok {
			t.Fatalf("step %d: not applied", i)
		}
		full, _ := src.Snapshot()
		compareIndexes(t, fmt.Sprintf("step %d", i), got, buildIndex(full))
		if i == 0 && len(got.over.answers) != 0 {
			t.Errorf("after 3000 new names the overlay holds %d answers: not folded", len(got.over.answers))
		}
	}
}

// compareIndexes checks that got answers every query of the test names,
// their ancestors and a few others as want does.
func compareIndexes(t *testing.T, what string, got, want *index) {
	t.Helper()
	names := map[string]bool{"nope.moxxie.test.": true, "moxxie.test.": true, "example.": true}
	for _, n := range changeNames {
		for n = strings.ToLower(n); n != "" && n != "."; n = parent(n) {
			names[n] = true
		}
	}
	for n := range names {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypePTR, dns.TypeSOA, dns.TypeNS, dns.TypeMX} {
			ga, gz, gok := got.lookup(n, qt)
			wa, wz, wok := want.lookup(n, qt)
			if g, w := answerString(ga), answerString(wa); g != w || zoneString(gz) != zoneString(wz) || gok != wok {
				t.Errorf("%s: %s %s: got %q %s %v, want %q %s %v", what, n, dns.TypeToString[qt], g, zoneString(gz), gok, w, zoneString(wz), wok)
			}
		}
		if g, w := rrsString(got.rrsets(n)), rrsString(want.rrsets(n)); g != w {
			t.Errorf("%s: %s ANY: got %q, want %q", what, n, g, w)
		}
	}
	if got.records != want.records {
		t.Errorf("%s: %d records, want %d", what, got.records, want.records)
	}
}

// answerString is an answer's records, sorted, and its packed bytes'
// length, for comparing answers.
func answerString(a *answer) string {
	if a == nil {
		return ""
	}
	if len(a.wire) == 0 || int(a.count) != len(a.rrs) {
		return "unpacked"
	}
	return rrsString(a.rrs)
}

func zoneString(z *zone) string {
	if z == nil {
		return "-"
	}
	return rrsString(z.neg)
}

func rrsString(rrs []dns.RR) string {
	s := make([]string, len(rrs))
	for i, rr := range rrs {
		s[i] = rr.String()
	}
	slices.Sort(s)
	return strings.Join(s, " | ")
}

// TestWatchUpdatesFromChanges checks that a watcher over a ChangeSource
// serves a change without asking for a Snapshot, and takes one when the
// source was replaced whole.
func TestWatchUpdatesFromChanges(t *testing.T) {
	src := &countingSource{StaticSource: NewStaticSource(testRecords())}
	m := watchSource(t, src)
	req := new(dns.Msg).SetQuestion("new.moxxie.test.", dns.TypeA)
	answers := func(n int) func(int, *dns.Msg) bool {
		return func(_ int, resp *dns.Msg) bool { return len(resp.Answer) == n }
	}
	add := Change{Serial: 8, Add: []Record{{Name: "new.moxxie.test.", Type: TypeA, Value: "10.0.0.9"}}}
	src.Update(add)
	t.Logf("an added record was served after %s", waitServed(t, m, req, 5*time.Second, answers(1)))
	src.Update(Change{Serial: 9, Remove: add.Add})
	waitServed(t, m, req, 5*time.Second, answers(0))
	if n := src.calls.Load(); n != 1 {
		t.Errorf("Snapshot called %d times for changes, want once, at start", n)
	}
	if _, resp := serve(t, m, new(dns.Msg).SetQuestion("moxxie.test.", dns.TypeSOA), false); resp.Answer[0].(*dns.SOA).Serial != 9 {
		t.Errorf("SOA after the changes: %v, want serial 9", resp.Answer[0])
	}
	recs := testRecords()
	recs.Records = append(recs.Records, add.Add...)
	src.Set(recs)
	waitServed(t, m, req, 5*time.Second, answers(1))
	if n := src.calls.Load(); n != 2 {
		t.Errorf("Snapshot called %d times after Set, want 2", n)
	}
	server := "server=dns://test-" + t.Name()
	for kind, want := range map[string]float64{"rebuild": 2, "change": 2} {
		if got := promtest.Value(t, prometheus.DefaultGatherer, "coredns_moxxie_updates_total", "kind="+kind+","+server); got != want {
			t.Errorf("updates of kind %s: %v, want %v", kind, got, want)
		}
	}
}

// FuzzApplyChanges reads changes from the input, two bytes an operation
// (add one of a fixed set of records, remove one added, remove one never
// added, end the change with a new serial), and checks after each change
// that the changed index answers as one built afresh. Seeds:
// testdata/fuzz/FuzzApplyChanges.
func FuzzApplyChanges(f *testing.F) {
	f.Add([]byte{0, 1, 0, 2, 3, 0, 1, 0, 3, 1})
	f.Add([]byte{0, 40, 0, 41, 0, 40, 3, 0, 1, 0, 3, 0, 1, 0, 3, 0})
	r := rand.New(rand.NewPCG(1, 2))
	pool := make([]Record, 64)
	for i := range pool {
		pool[i] = randomRecord(r)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 400 {
			return
		}
		src := NewStaticSource(&Records{Zones: changeZones()})
		recs, _ := src.Snapshot()
		b := newBuilder(recs)
		var present []Record
		var c Change
		for i := 0; i+1 < len(in); i += 2 {
			op, arg := in[i]%4, int(in[i+1])
			switch op {
			case 0:
				c.Add = append(c.Add, pool[arg%len(pool)])
				present = append(present, pool[arg%len(pool)])
			case 1:
				if len(present) > 0 {
					j := arg % len(present)
					c.Remove = append(c.Remove, present[j])
					present = slices.Delete(present, j, j+1)
				}
			case 2:
				c.Remove = append(c.Remove, Record{Name: "never.moxxie.test.", Type: TypeA, Value: "10.0.0.1"})
			}
			if op == 3 || i+3 >= len(in) {
				c.Serial = uint32(i + 2)
				// The source removes a record only after adding it, and
				// adds before it removes within a change; the index removes
				// first. Split the change so both see the same order.
				for _, step := range []Change{{Serial: c.Serial, Remove: c.Remove}, {Add: c.Add}} {
					step.Remove = slices.DeleteFunc(step.Remove, func(rec Record) bool {
						full, _ := src.Snapshot()
						return !slices.ContainsFunc(full.Records, func(have Record) bool { return sameRecord(have, rec) })
					})
					src.Update(step)
					got, ok := b.apply([]Change{step})
					full, _ := src.Snapshot()
					if !ok {
						b = newBuilder(full)
						got = b.ix
					}
					compareIndexes(t, fmt.Sprintf("at %d", i), got, buildIndex(full))
				}
				c = Change{}
			}
		}
	})
}

// TestBuilderApplyZones checks the zone changes the builder makes itself
// and those it leaves to a rebuild.
func TestBuilderApplyZones(t *testing.T) {
	x := Record{Name: "x.lab.moxxie.test.", Type: TypeA, Value: "10.0.0.1"}
	deep := Record{Name: "a.b.c.moxxie.test.", Type: TypeA, Value: "10.0.0.2"}
	tests := []struct {
		name   string
		change Change
		ok     bool
		// after the change: a name, its type, and whether it answers
		qname   string
		qtype   uint16
		answers bool
	}{
		{"add an empty zone", Change{Zones: []Zone{{Name: "other.test."}}}, true, "other.test.", dns.TypeSOA, true},
		{"add a zone with records", Change{Zones: []Zone{{Name: "other.test."}}, Add: []Record{{Name: "h.other.test.", Type: TypeA, Value: "10.0.0.3"}}}, true, "h.other.test.", dns.TypeA, true},
		{"add a zone over names of the zone around it", Change{Zones: []Zone{{Name: "b.c.moxxie.test."}}}, false, "", 0, false},
		{"add a zone served already", Change{Zones: []Zone{{Name: "LAB.moxxie.test"}}}, false, "", 0, false},
		{"remove a zone holding records", Change{RemoveZones: []string{"lab.moxxie.test."}}, false, "", 0, false},
		{"remove a zone with its records", Change{Remove: []Record{x}, RemoveZones: []string{"lab.moxxie.test"}}, true, "lab.moxxie.test.", dns.TypeSOA, false},
		{"move records to the zone around", Change{Remove: []Record{x}, RemoveZones: []string{"lab.moxxie.test."}, Add: []Record{x}}, true, "x.lab.moxxie.test.", dns.TypeA, true},
		{"remove a zone not served", Change{RemoveZones: []string{"none.test."}}, true, "x.lab.moxxie.test.", dns.TypeA, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := NewStaticSource(&Records{Zones: changeZones(), Records: []Record{x, deep}})
			recs, _ := src.Snapshot()
			b := newBuilder(recs)
			before := b.ix
			src.Update(tt.change)
			got, ok := b.apply([]Change{tt.change})
			if ok != tt.ok {
				t.Fatalf("apply ok = %v, want %v", ok, tt.ok)
			}
			if b.ix != before && !ok {
				t.Error("a change not made replaced the builder's index")
			}
			if !ok {
				return
			}
			full, _ := src.Snapshot()
			compareIndexes(t, tt.name, got, buildIndex(full))
			if a, _, _ := got.lookup(tt.qname, tt.qtype); (a != nil) != tt.answers {
				t.Errorf("%s %s: answer %v, want one: %v", tt.qname, dns.TypeToString[tt.qtype], a, tt.answers)
			}
		})
	}
}

// TestBuilderApplyZonesAbove checks that a name with a zone below it
// exists in the zone around it (NODATA) once a change adds that zone, and
// no longer once one removes it.
func TestBuilderApplyZonesAbove(t *testing.T) {
	b := newBuilder(&Records{Zones: []Zone{{Name: "moxxie.test."}}})
	exists := func(ix *index) bool {
		_, z, ok := ix.lookup("eu.moxxie.test.", dns.TypeA)
		return z != nil && z.name == "moxxie.test." && ok
	}
	if exists(b.ix) {
		t.Fatal("eu.moxxie.test. exists before a zone below it")
	}
	ix, ok := b.apply([]Change{{Zones: []Zone{{Name: "prod.eu.moxxie.test."}}}})
	if !ok || !exists(ix) {
		t.Fatalf("after adding prod.eu.moxxie.test. (ok %v): eu.moxxie.test. does not exist", ok)
	}
	ix, ok = b.apply([]Change{{RemoveZones: []string{"prod.eu.moxxie.test."}}})
	if !ok || exists(ix) {
		t.Fatalf("after removing prod.eu.moxxie.test. (ok %v): eu.moxxie.test. still exists", ok)
	}
}

// TestRRsetOrder checks that an RRset's records are served in one order
// whatever order they came in, from a snapshot or by changes: every
// server gives the same answer.
func TestRRsetOrder(t *testing.T) {
	a := func(v string) Record { return Record{Name: "a.moxxie.test.", Type: TypeA, Value: v} }
	ptr := func(v string) Record { return Record{Name: "1.0.0.10.in-addr.arpa.", Type: TypePTR, Value: v} }
	in := []Record{a("10.0.0.3"), a("10.0.0.10"), a("10.0.0.1"), ptr("z.moxxie.test."), ptr("b.moxxie.test."), a("10.0.0.2")}
	forward := buildIndex(&Records{Zones: changeZones(), Records: in})
	reversed := slices.Clone(in)
	slices.Reverse(reversed)
	backward := buildIndex(&Records{Zones: changeZones(), Records: reversed})
	b := newBuilder(&Records{Zones: changeZones(), Records: in[3:5]})
	changed, ok := b.apply([]Change{{Add: []Record{in[0], in[5], in[1]}}, {Add: []Record{in[2]}}})
	if !ok {
		t.Fatal("apply refused")
	}
	for _, q := range []struct {
		name  string
		qtype uint16
		want  []string
	}{
		{"a.moxxie.test.", dns.TypeA, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.10"}},
		{"1.0.0.10.in-addr.arpa.", dns.TypePTR, []string{"b.moxxie.test.", "z.moxxie.test."}},
	} {
		want, _, _ := forward.lookup(q.name, q.qtype)
		var values []string
		for _, rr := range want.rrs {
			values = append(values, strings.Fields(rr.String())[4])
		}
		if !slices.Equal(values, q.want) {
			t.Errorf("%s: records in the order %v, want %v", q.name, values, q.want)
		}
		for what, ix := range map[string]*index{"from the reversed records": backward, "by changes": changed} {
			got, _, _ := ix.lookup(q.name, q.qtype)
			if string(got.wire) != string(want.wire) {
				t.Errorf("%s %s: the answer differs from the one built from the records in order", q.name, what)
			}
		}
	}
}

// TestRRsetSettle adds records out of order and more than once, with
// other TTLs, and takes some out before and after they are put in order.
func TestRRsetSettle(t *testing.T) {
	a := func(ip string, ttl uint32) dns.RR {
		rr, err := dns.NewRR(fmt.Sprintf("a.moxxie.test. %d IN A %s", ttl, ip))
		if err != nil {
			t.Fatal(err)
		}
		return rr
	}
	ptr := func(target string) dns.RR {
		return &dns.PTR{Hdr: dns.RR_Header{Name: "1.0.0.10.in-addr.arpa.", Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 60}, Ptr: target}
	}
	show := func(s *rrset) string {
		s.settle()
		var out []string
		for i, rr := range s.rrs {
			out = append(out, fmt.Sprintf("%s/%d/%d", rr.(*dns.A).A, s.ttl(i), s.ref(i)))
		}
		return strings.Join(out, " ")
	}
	var s rrset
	for _, rr := range []dns.RR{a("10.0.0.3", 60), a("10.0.0.1", 60), a("10.0.0.3", 30), a("10.0.0.2", 60)} {
		s.add(rr)
	}
	if got, want := show(&s), "10.0.0.1/60/1 10.0.0.2/60/1 10.0.0.3/60/2"; got != want {
		t.Fatalf("settled %s, want %s", got, want)
	}
	// Added to a settled set, a record held already counts again.
	s.add(a("10.0.0.1", 10))
	s.add(a("10.0.0.0", 10))
	if !s.remove(a("10.0.0.3", 60)) || !s.remove(a("10.0.0.0", 60)) || s.remove(a("10.0.0.9", 60)) {
		t.Fatal("remove found the wrong records")
	}
	if got, want := show(&s), "10.0.0.1/60/2 10.0.0.2/60/1 10.0.0.3/60/1"; got != want {
		t.Fatalf("after the changes %s, want %s", got, want)
	}
	// A new record with its own TTL keeps it.
	s.add(a("10.0.0.4", 5))
	if got, want := show(&s), "10.0.0.1/60/2 10.0.0.2/60/1 10.0.0.3/60/1 10.0.0.4/5/1"; got != want {
		t.Fatalf("with a TTL of its own %s, want %s", got, want)
	}
	// PTR targets that differ in case only are the same record.
	var p rrset
	p.add(ptr("web.moxxie.test."))
	p.add(ptr("Web.Moxxie.Test."))
	p.add(ptr("db.moxxie.test."))
	if p.settle(); len(p.rrs) != 2 || p.ref(1) != 2 || !p.remove(ptr("WEB.moxxie.test.")) || !p.remove(ptr("web.moxxie.test.")) || len(p.rrs) != 1 {
		t.Fatalf("PTR set %v", p.rrs)
	}
}

// TestRRsetKeepsOwnTTLs serves two PTR records of one address with the
// least of their TTLs, and the other's own TTL once the first is gone,
// after a change as after a rebuild.
func TestRRsetKeepsOwnTTLs(t *testing.T) {
	a := Record{Name: "20.0.0.10.in-addr.arpa.", Type: TypePTR, Value: "a.moxxie.test.", TTL: 120}
	b := Record{Name: "20.0.0.10.in-addr.arpa.", Type: TypePTR, Value: "b.lab.moxxie.test.", TTL: 300}
	ttls := func(ix *index) []uint32 {
		ans, _, _ := ix.lookup(a.Name, dns.TypePTR)
		var out []uint32
		if ans != nil {
			for _, rr := range ans.rrs {
				out = append(out, rr.Header().Ttl)
			}
		}
		return out
	}
	for _, order := range [][]Record{{a, b}, {b, a}} {
		bd := newBuilder(&Records{Zones: changeZones(), Records: order})
		if got := ttls(bd.ix); !slices.Equal(got, []uint32{120, 120}) {
			t.Fatalf("both: TTLs %v, want the least for both", got)
		}
		// Changed twice, so that the set is made from a served answer.
		bd.apply([]Change{{Add: []Record{{Name: "x.moxxie.test.", Type: TypeA, Value: "10.0.0.99"}}}})
		changed, ok := bd.apply([]Change{{Remove: []Record{a}}})
		if !ok {
			t.Fatal("apply refused")
		}
		rebuilt := buildIndex(&Records{Zones: changeZones(), Records: []Record{b}})
		if got, want := ttls(changed), ttls(rebuilt); !slices.Equal(got, []uint32{300}) || !slices.Equal(want, got) {
			t.Fatalf("after the change: TTLs %v; rebuilt %v; want [300]", got, want)
		}
	}
}
