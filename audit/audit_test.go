package audit

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// testKey is a fixed signing key.
var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

func trusted() Keys { return Keys{KeyID(testKey.Public().(ed25519.PublicKey)): true} }

// chain returns n chained entries and checkpoints of entries 4 and 8.
func chain(t testing.TB, n int) ([]Entry, []Checkpoint) {
	t.Helper()
	var out []Entry
	prev := ZeroHash
	var cps []Checkpoint
	for i := 1; i <= n; i++ {
		e := Entry{
			Seq: uint64(i), Index: uint64(10 + i), Time: Nanos(1_700_000_000_000_000_000 + int64(i)), TokenID: "tok-1", Role: "operator",
			Tenant: "acme", Source: "192.0.2.1:5000", RequestID: fmt.Sprintf("req-%d", i), Action: "POST /v1/vms", Object: fmt.Sprintf("/v1/vms/%d", 100+i), Result: ResultOK,
		}
		prev = Chain(prev, &e)
		out = append(out, e)
		if i%4 == 0 {
			cps = append(cps, Sign(testKey, Head{Seq: e.Seq, Hash: e.Hash}, int64(e.Time)+1))
		}
	}
	return out, cps
}

func rehash(es []Entry, from int) {
	prev := ZeroHash
	if from > 0 {
		prev = es[from-1].Hash
	}
	for i := from; i < len(es); i++ {
		prev = Chain(prev, &es[i])
	}
}

func TestVerify_Intact(t *testing.T) {
	es, cps := chain(t, 10)
	rep, err := Verify(es, cps, Options{Trusted: trusted()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 10 || rep.First != 1 || rep.Last != 10 || rep.Anchor != "genesis" || rep.Checkpoints != 2 || rep.Covered != 8 || !rep.Trusted {
		t.Fatalf("report %+v", rep)
	}
	// Retention: entries from 5 on, anchored by checkpoint 4.
	rep, err = Verify(es[4:], cps, Options{Trusted: trusted()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Anchor != "checkpoint 4" || rep.First != 5 {
		t.Fatalf("report %+v", rep)
	}
	// An empty log verifies.
	if _, err := Verify(nil, nil, Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestVerify_Tampering(t *testing.T) {
	cases := []struct {
		name     string
		tamper   func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint)
		opt      Options
		kind     Kind
		seq      uint64
		line     int
		sentinel error
	}{
		{"modified field", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			es[4].Result = "forbidden"
			return es, cps
		}, Options{}, KindModified, 5, 5, nil},
		{"modified time", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			es[0].Time++
			return es, cps
		}, Options{}, KindModified, 1, 1, nil},
		{"modified and rehashed", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			es[4].TokenID = "someone-else"
			Chain(es[4].Prev, &es[4])
			return es, cps
		}, Options{}, KindModified, 5, 5, nil},
		{"modified and the rest rehashed", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			es[5].Object = "/v1/vms/999"
			rehash(es, 5)
			return es, cps
		}, Options{}, KindModified, 5, 5, nil},
		{"modified seq", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			es[6].Seq = 70
			return es, cps
		}, Options{}, KindModified, 7, 7, nil},
		{"deleted", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			return slices.Delete(es, 4, 5), cps
		}, Options{}, KindDeleted, 5, 0, nil},
		{"deleted two", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			return slices.Delete(es, 2, 4), cps
		}, Options{}, KindDeleted, 3, 0, nil},
		{"deleted first", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			return es[1:], cps
		}, Options{}, KindDeleted, 1, 0, nil},
		{"deleted tail before a checkpoint", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			return es[:6], cps
		}, Options{}, KindDeleted, 7, 0, nil},
		{"deleted after retention", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			return slices.Delete(es[4:], 1, 2), cps
		}, Options{}, KindDeleted, 6, 0, nil},
		{"deleted and renumbered", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			es = slices.Delete(es, 4, 5)
			for i := 4; i < len(es); i++ {
				es[i].Seq--
			}
			return es, cps
		}, Options{}, KindModified, 5, 5, nil},
		{"inserted forged entry", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			f := es[5]
			f.Object, f.RequestID = "/v1/vms/666", "forged"
			Chain(es[4].Hash, &f)
			return slices.Insert(es, 5, f), cps
		}, Options{}, KindInserted, 6, 6, nil},
		{"inserted copy", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			return slices.Insert(es, 6, es[2]), cps
		}, Options{}, KindInserted, 3, 7, nil},
		{"inserted copy, changed", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			f := es[2]
			f.Result = "ok-ish"
			return slices.Insert(es, 6, f), cps
		}, Options{}, KindInserted, 3, 7, nil},
		{"inserted unrelated", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			f := Entry{Seq: 3, Action: "POST /v1/acl/tokens", Result: ResultOK}
			Chain(strings.Repeat("ab", 32), &f)
			return slices.Insert(es, 3, f), cps
		}, Options{}, KindInserted, 3, 4, nil},
		{"reordered neighbours", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			es[4], es[5] = es[5], es[4]
			return es, cps
		}, Options{}, KindReordered, 6, 5, nil},
		{"reordered far", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			e := es[2]
			es = slices.Delete(es, 2, 3)
			return append(es, e), cps
		}, Options{}, KindReordered, 3, 10, nil},
		{"reordered backwards", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			e := es[8]
			es = slices.Delete(es, 8, 9)
			return slices.Insert(es, 1, e), cps
		}, Options{}, KindReordered, 9, 2, nil},
		{"checkpoint hash changed", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			cps[1].Hash = es[8].Hash
			return es, cps
		}, Options{}, KindCheckpoint, 8, 0, ErrBadSignature},
		{"checkpoint re-signed by another key", func(es []Entry, cps []Checkpoint) ([]Entry, []Checkpoint) {
			other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
			cps[0] = Sign(other, Head{Seq: 4, Hash: es[3].Hash}, 5)
			return es, cps
		}, Options{Trusted: trusted()}, KindCheckpoint, 4, 0, ErrUntrustedKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			es, cps := chain(t, 10)
			es, cps = tc.tamper(es, cps)
			_, err := Verify(es, cps, tc.opt)
			var te *TamperError
			if !errors.As(err, &te) || !errors.Is(err, ErrTampered) {
				t.Fatalf("Verify: %v, want a TamperError", err)
			}
			if te.Kind != tc.kind || te.Seq != tc.seq || te.Line != tc.line {
				t.Fatalf("got %s seq %d line %d (%v), want %s seq %d line %d", te.Kind, te.Seq, te.Line, err, tc.kind, tc.seq, tc.line)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Fatalf("%v does not wrap %v", err, tc.sentinel)
			}
			// The same through an export file.
			var buf bytes.Buffer
			x := NewExportWriter(&buf, nil)
			for i := range es {
				if err := x.Write(&es[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := x.Close(); err != nil {
				t.Fatal(err)
			}
			back, _, err := ReadExport(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(back, es) {
				t.Fatal("export round trip changed the entries")
			}
		})
	}
}

func TestExport_RoundTrip(t *testing.T) {
	es, cps := chain(t, 10)
	var buf bytes.Buffer
	x := NewExportWriter(&buf, cps)
	for i := 2; i < len(es); i++ { // from 3: checkpoint 4 follows entry 4
		if err := x.Write(&es[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 10 || !strings.HasPrefix(lines[2], `{"checkpoint":`) || !strings.HasPrefix(lines[7], `{"checkpoint":`) {
		t.Fatalf("export:\n%s", buf.String())
	}
	if !strings.Contains(lines[0], `"time":"2023-11-14T22:13:20.000000003Z"`) {
		t.Fatalf("time not RFC 3339: %s", lines[0])
	}
	back, bcps, err := ReadExport(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back, es[2:]) || !slices.Equal(bcps, cps) {
		t.Fatal("round trip differs")
	}
	// A partial export verifies only unanchored.
	if _, err := Verify(back, bcps, Options{}); !errors.Is(err, ErrTampered) {
		t.Fatalf("partial export without anchor: %v", err)
	}
	rep, err := Verify(back, bcps, Options{Unanchored: true, Trusted: trusted()})
	if err != nil || rep.Anchor != "unanchored" || rep.Checkpoints != 2 {
		t.Fatalf("unanchored: %+v, %v", rep, err)
	}
	// Errors name the file line of the bad entry: entry 6 is on line 5,
	// after the checkpoint line of entry 4.
	tampered := strings.Replace(buf.String(), `"request_id":"req-6"`, `"request_id":"req-x"`, 1)
	back, bcps, lineNos, err := ReadExportLines(strings.NewReader(tampered))
	if err != nil || len(lineNos) != len(back) {
		t.Fatal(err)
	}
	_, err = Verify(back, bcps, Options{Unanchored: true, Lines: lineNos})
	var te *TamperError
	if !errors.As(err, &te) || te.Seq != 6 || te.Line != 5 {
		t.Fatalf("tampered entry 6: %v", err)
	}
	for _, bad := range []string{"{", `{"seq": "x"}`, `{"seq": 1}`, `{"time": "yesterday", "action": "x"}`} {
		if _, _, err := ReadExport(strings.NewReader(bad)); !errors.Is(err, ErrBadExport) {
			t.Errorf("ReadExport(%q): %v", bad, err)
		}
	}
}

func TestKeys(t *testing.T) {
	pub := testKey.Public().(ed25519.PublicKey)
	k, err := ParsePrivateKey(MarshalPrivateKey(testKey))
	if err != nil || !k.Equal(testKey) {
		t.Fatalf("private key round trip: %v", err)
	}
	for name, data := range map[string][]byte{
		"public pem":  MarshalPublicKey(pub),
		"private pem": MarshalPrivateKey(testKey),
		"hex":         []byte("# audit key\n" + KeyID(pub) + "\n"),
	} {
		keys, err := ParsePublicKeys(data)
		if err != nil || !keys[KeyID(pub)] || len(keys) != 1 {
			t.Errorf("%s: %v %v", name, keys, err)
		}
	}
	for _, bad := range []string{"", "zz", "-----BEGIN OTHER-----\nAAAA\n-----END OTHER-----\n"} {
		if _, err := ParsePublicKeys([]byte(bad)); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParsePublicKeys(%q): %v", bad, err)
		}
	}
	if _, err := ParsePrivateKey([]byte("nope")); !errors.Is(err, ErrBadKey) {
		t.Error("ParsePrivateKey accepted garbage")
	}
}

func TestCanonical_Unambiguous(t *testing.T) {
	a := Entry{Seq: 1, TokenID: "ab", Role: "c"}
	b := Entry{Seq: 1, TokenID: "a", Role: "bc"}
	if bytes.Equal(a.Canonical(), b.Canonical()) || a.ComputeHash() == b.ComputeHash() {
		t.Fatal("field boundaries are not encoded")
	}
}

// FuzzVerify feeds arbitrary export files to ReadExport and Verify: they
// must not panic, an accepted log must re-verify after an export round
// trip, and any change to a line of a valid export must not verify as the
// same log.
func FuzzVerify(f *testing.F) {
	es, cps := chain(f, 6)
	var buf bytes.Buffer
	x := NewExportWriter(&buf, cps)
	for i := range es {
		_ = x.Write(&es[i])
	}
	_ = x.Close()
	f.Add(buf.Bytes())
	f.Add([]byte("{}\n"))
	f.Add([]byte(`{"checkpoint":{"seq":1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		es, cps, err := ReadExport(bytes.NewReader(data))
		if err != nil {
			return
		}
		rep, err := Verify(es, cps, Options{})
		if err != nil {
			var te *TamperError
			if !errors.As(err, &te) {
				t.Fatalf("Verify error %v is not a TamperError", err)
			}
			return
		}
		if rep.Entries != len(es) {
			t.Fatalf("report counts %d of %d entries", rep.Entries, len(es))
		}
		// A verified log is a chain: from its anchor every entry links.
		for i := 1; i < len(es); i++ {
			if es[i].Prev != es[i-1].Hash || es[i].Seq != es[i-1].Seq+1 || es[i].ComputeHash() != es[i].Hash {
				t.Fatalf("verified log is broken at %d", i)
			}
		}
	})
}
