package ipam

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"testing"
)

func TestNextFreeFirst(t *testing.T) {
	tests := []struct {
		prefix string
		pool   bool
		count  int
		want   string
	}{
		{"10.0.0.0/24", false, 1, "10.0.0.1"},
		{"10.0.0.0/24", false, 3, "10.0.0.1,10.0.0.2,10.0.0.3"},
		{"10.0.0.0/24", true, 2, "10.0.0.0,10.0.0.1"},
		{"10.0.0.0/30", false, 2, "10.0.0.1,10.0.0.2"},
		{"10.0.0.4/31", false, 2, "10.0.0.4,10.0.0.5"},
		{"10.0.0.7/32", false, 1, "10.0.0.7"},
		{"10.0.0.0/8", false, 1, "10.0.0.1"},
		{"0.0.0.0/0", false, 1, "0.0.0.1"},
		{"0.0.0.0/0", true, 1, "0.0.0.0"},
		{"2001:db8::/64", false, 2, "2001:db8::1,2001:db8::2"},
		{"2001:db8::/64", true, 1, "2001:db8::"},
		{"2001:db8::/48", false, 1, "2001:db8::1"},
		{"2001:db8::/126", false, 3, "2001:db8::1,2001:db8::2,2001:db8::3"},
		{"2001:db8::2/127", false, 2, "2001:db8::2,2001:db8::3"},
		{"2001:db8::1/128", false, 1, "2001:db8::1"},
		{"::/0", false, 1, "::1"},
		{"::/0", true, 1, "::"},
	}
	for _, tt := range tests {
		sp, m := addrSpace(t, tt.prefix, tt.pool)
		keys, err := sp.NextFree(m, tt.count)
		if err != nil {
			t.Fatalf("%s: NextFree(%d): %v", tt.prefix, tt.count, err)
		}
		if got := formatKeys(sp, keys); got != tt.want {
			t.Errorf("%s pool=%v: NextFree(%d) = %s; want %s", tt.prefix, tt.pool, tt.count, got, tt.want)
		}
		checkRuns(t, sp, m)
		if m.Len() != 1 {
			t.Errorf("%s: %d runs; want one merged run", tt.prefix, m.Len())
		}
	}
}

func TestNextFreeExhausted(t *testing.T) {
	sp, m := addrSpace(t, "10.0.0.0/29", false) // 6 usable
	if err := sp.Claim(m, key(t, sp, "10.0.0.3")); err != nil {
		t.Fatal(err)
	}
	_, err := sp.NextFree(m, 6)
	wantErr(t, err, ErrExhausted, "6 requested, 5 available")
	var ee *ExhaustedError
	if !errors.As(err, &ee) || ee.Requested != 6 || ee.Available != 5 {
		t.Fatalf("ExhaustedError = %+v", ee)
	}
	if got := formatRuns(sp, m.Runs()); got != "10.0.0.3" || sp.Used != IntKey(1) {
		t.Fatalf("a refused NextFree changed the store: %s, used %s", got, sp.Used)
	}
	keys, err := sp.NextFree(m, 5)
	if err != nil {
		t.Fatal(err)
	}
	if got := formatKeys(sp, keys); got != "10.0.0.1,10.0.0.2,10.0.0.4,10.0.0.5,10.0.0.6" {
		t.Fatalf("NextFree(5) = %s", got)
	}
	if got := formatRuns(sp, m.Runs()); got != "10.0.0.1-10.0.0.6" {
		t.Fatalf("runs = %s; want one merged run", got)
	}
	checkRuns(t, sp, m)
	_, err = sp.NextFree(m, 1)
	wantErr(t, err, ErrExhausted, "1 requested, 0 available")
	_, err = sp.NextFree(m, 0)
	wantErr(t, err, ErrInvalidCount, "count 0: at least 1 is needed")
}

func TestNextFreeTrustsStoreOverUsed(t *testing.T) {
	sp, m := addrSpace(t, "10.0.0.0/30", false)
	m.Put(Run{Start: key(t, sp, "10.0.0.1"), End: key(t, sp, "10.0.0.1")})
	// Used says both keys are free; the store says one is.
	_, err := sp.NextFree(m, 2)
	wantErr(t, err, ErrExhausted, "2 requested, 1 available")
	if m.Len() != 1 || !sp.Used.IsZero() {
		t.Fatalf("a refused NextFree changed the store")
	}
}

func TestNextFreeFragmented(t *testing.T) {
	sp, m := addrSpace(t, "10.0.0.0/24", false)
	for _, a := range []string{"10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.9"} {
		if err := sp.Claim(m, key(t, sp, a)); err != nil {
			t.Fatal(err)
		}
	}
	if got := formatRuns(sp, m.Runs()); got != "10.0.0.2,10.0.0.4-10.0.0.5,10.0.0.9" {
		t.Fatalf("runs = %s", got)
	}
	keys, err := sp.NextFree(m, 6)
	if err != nil {
		t.Fatal(err)
	}
	if got := formatKeys(sp, keys); got != "10.0.0.1,10.0.0.3,10.0.0.6,10.0.0.7,10.0.0.8,10.0.0.10" {
		t.Fatalf("NextFree(6) = %s", got)
	}
	if got := formatRuns(sp, m.Runs()); got != "10.0.0.1-10.0.0.10" {
		t.Fatalf("runs = %s; want one merged run", got)
	}
	checkRuns(t, sp, m)
}

func TestClaimRelease(t *testing.T) {
	type op struct {
		do       string // claim, release, claimRange, releaseRange
		from, to string
		err      error
		msg      string
		runs     string
	}
	tests := []struct {
		name   string
		prefix string
		ops    []op
	}{{
		name:   "split and merge",
		prefix: "10.0.0.0/24",
		ops: []op{
			{do: "claimRange", from: "10.0.0.10", to: "10.0.0.20", runs: "10.0.0.10-10.0.0.20"},
			{do: "release", from: "10.0.0.15", runs: "10.0.0.10-10.0.0.14,10.0.0.16-10.0.0.20"},
			{do: "release", from: "10.0.0.10", runs: "10.0.0.11-10.0.0.14,10.0.0.16-10.0.0.20"},
			{do: "release", from: "10.0.0.20", runs: "10.0.0.11-10.0.0.14,10.0.0.16-10.0.0.19"},
			{do: "claim", from: "10.0.0.15", runs: "10.0.0.11-10.0.0.19"},
			{do: "claim", from: "10.0.0.10", runs: "10.0.0.10-10.0.0.19"},
			{do: "claim", from: "10.0.0.20", runs: "10.0.0.10-10.0.0.20"},
			{do: "claim", from: "10.0.0.22", runs: "10.0.0.10-10.0.0.20,10.0.0.22"},
			{do: "claim", from: "10.0.0.21", runs: "10.0.0.10-10.0.0.22"},
			{do: "releaseRange", from: "10.0.0.10", to: "10.0.0.22", runs: ""},
		},
	}, {
		name:   "errors",
		prefix: "10.0.0.0/24",
		ops: []op{
			{do: "claim", from: "10.0.0.5", runs: "10.0.0.5"},
			{do: "claim", from: "10.0.0.5", err: ErrInUse, msg: "10.0.0.5 is in use", runs: "10.0.0.5"},
			{do: "claim", from: "10.0.0.0", err: ErrOutside, msg: "10.0.0.0 is in 10.0.0.0/24 but not usable (usable 10.0.0.1-10.0.0.254)", runs: "10.0.0.5"},
			{do: "claim", from: "10.0.0.255", err: ErrOutside, runs: "10.0.0.5"},
			{do: "claim", from: "10.0.1.1", err: ErrOutside, runs: "10.0.0.5"},
			{do: "release", from: "10.0.0.6", err: ErrNotAllocated, msg: "10.0.0.6 is not allocated", runs: "10.0.0.5"},
			{do: "release", from: "10.0.0.0", err: ErrOutside, runs: "10.0.0.5"},
			{do: "claimRange", from: "10.0.0.1", to: "10.0.0.9", err: ErrInUse, msg: "10.0.0.5 in 10.0.0.1-10.0.0.9 is in use", runs: "10.0.0.5"},
			{do: "claimRange", from: "10.0.0.5", to: "10.0.0.9", err: ErrInUse, msg: "10.0.0.5 in 10.0.0.5-10.0.0.9 is in use", runs: "10.0.0.5"},
			{do: "claimRange", from: "10.0.0.9", to: "10.0.0.1", err: ErrInvalidRange, msg: "range 10.0.0.9-10.0.0.1 ends before it starts", runs: "10.0.0.5"},
			{do: "claimRange", from: "10.0.0.200", to: "10.0.0.255", err: ErrOutside, runs: "10.0.0.5"},
			{do: "releaseRange", from: "10.0.0.4", to: "10.0.0.5", err: ErrNotAllocated, msg: "10.0.0.4 in 10.0.0.4-10.0.0.5 is not allocated", runs: "10.0.0.5"},
			{do: "releaseRange", from: "10.0.0.5", to: "10.0.0.6", err: ErrNotAllocated, msg: "10.0.0.6 in 10.0.0.5-10.0.0.6 is not allocated", runs: "10.0.0.5"},
		},
	}, {
		name:   "excluded DHCP range and gateway",
		prefix: "192.0.2.0/28",
		ops: []op{
			{do: "claim", from: "192.0.2.1", runs: "192.0.2.1"},
			{do: "claimRange", from: "192.0.2.3", to: "192.0.2.12", runs: "192.0.2.1,192.0.2.3-192.0.2.12"},
			{do: "next", runs: "192.0.2.1-192.0.2.12"},
			{do: "next", runs: "192.0.2.1-192.0.2.13"},
			{do: "next", runs: "192.0.2.1-192.0.2.14"},
			{do: "next", err: ErrExhausted, msg: "1 requested, 0 available", runs: "192.0.2.1-192.0.2.14"},
			{do: "releaseRange", from: "192.0.2.3", to: "192.0.2.12", runs: "192.0.2.1-192.0.2.2,192.0.2.13-192.0.2.14"},
		},
	}, {
		name:   "IPv6 at the top of the space",
		prefix: "::/0",
		ops: []op{
			{do: "claim", from: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", runs: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
			{do: "claim", from: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", runs: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
			{do: "claim", from: "::", err: ErrOutside, runs: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
			{do: "claimRange", from: "::1", to: "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", runs: "::1-7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff,ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
			{do: "next", runs: "::1-8000::,ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
			{do: "release", from: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", runs: "::1-8000::,ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, m := addrSpace(t, tt.prefix, false)
			for i, o := range tt.ops {
				from := Key{}
				if o.from != "" {
					from = key(t, sp, o.from)
				}
				var err error
				switch o.do {
				case "claim":
					err = sp.Claim(m, from)
				case "release":
					err = sp.Release(m, from)
				case "claimRange":
					err = sp.ClaimRange(m, from, key(t, sp, o.to))
				case "releaseRange":
					err = sp.ReleaseRange(m, from, key(t, sp, o.to))
				case "next":
					_, err = sp.NextFree(m, 1)
				}
				if o.err != nil {
					wantErr(t, err, o.err, o.msg)
				} else if err != nil {
					t.Fatalf("op %d %s %s: %v", i, o.do, o.from, err)
				}
				if got := formatRuns(sp, m.Runs()); got != o.runs {
					t.Fatalf("op %d %s %s: runs %s; want %s", i, o.do, o.from, got, o.runs)
				}
				checkRuns(t, sp, m)
			}
		})
	}
}

func TestClaimOrNext(t *testing.T) {
	sp, m := addrSpace(t, "10.0.0.0/30", false)
	got, err := sp.ClaimOrNext(m, key(t, sp, "10.0.0.2"))
	if err != nil || sp.Format(got) != "10.0.0.2" {
		t.Fatalf("requested free address: %s, %v", sp.Format(got), err)
	}
	got, err = sp.ClaimOrNext(m, key(t, sp, "10.0.0.2"))
	if err != nil || sp.Format(got) != "10.0.0.1" {
		t.Fatalf("requested used address: %s, %v; want fallback 10.0.0.1", sp.Format(got), err)
	}
	_, err = sp.ClaimOrNext(m, key(t, sp, "10.0.0.2"))
	wantErr(t, err, ErrExhausted, "1 requested, 0 available")
	_, err = sp.ClaimOrNext(m, key(t, sp, "10.0.0.3"))
	wantErr(t, err, ErrOutside, "")
}

func TestSpaceKeyOf(t *testing.T) {
	sp, _ := addrSpace(t, "10.0.0.0/24", false)
	if _, err := sp.KeyOf(netip.MustParseAddr("10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	_, err := sp.KeyOf(netip.MustParseAddr("2001:db8::1"))
	wantErr(t, err, ErrFamily, "2001:db8::1 does not belong in 10.0.0.0/24")
	_, err = sp.KeyOf(netip.MustParseAddr("10.0.0.255"))
	wantErr(t, err, ErrOutside, "10.0.0.255 is in 10.0.0.0/24 but not usable (usable 10.0.0.1-10.0.0.254)")
	v6, _ := addrSpace(t, "2001:db8::/64", false)
	_, err = v6.KeyOf(netip.MustParseAddr("10.0.0.1"))
	wantErr(t, err, ErrFamily, "")
	_, err = v6.KeyOf(netip.MustParseAddr("2001:db8::"))
	wantErr(t, err, ErrOutside, "2001:db8:: is in 2001:db8::/64 but not usable (usable 2001:db8::1-2001:db8::ffff:ffff:ffff:ffff)")
}

func TestSpaceSize(t *testing.T) {
	tests := []struct {
		prefix string
		pool   bool
		want   Key
	}{
		{"10.0.0.0/24", false, IntKey(254)},
		{"10.0.0.0/24", true, IntKey(256)},
		{"10.0.0.0/31", false, IntKey(2)},
		{"0.0.0.0/0", false, IntKey(1<<32 - 2)},
		{"2001:db8::/64", false, IntKey(^uint64(0))},
		{"2001:db8::/64", true, Key{Hi: 1}},
		{"::/0", false, MaxKey},
		{"::/0", true, MaxKey}, // 2^128 saturates
	}
	for _, tt := range tests {
		sp, _ := addrSpace(t, tt.prefix, tt.pool)
		if got := sp.Size(); got != tt.want {
			t.Errorf("Size(%s pool=%v) = %s; want %s", tt.prefix, tt.pool, got, tt.want)
		}
		if got, want := sp.ExactSize(), tt.want.Big(); tt.want != MaxKey && got.Cmp(want) != 0 {
			t.Errorf("ExactSize(%s pool=%v) = %s; want %s", tt.prefix, tt.pool, got, want)
		}
		sp.Used = IntKey(1)
		want := tt.want.Sub64(1)
		if tt.prefix == "::/0" && tt.pool {
			want = MaxKey // 2^128 - 1, exact
		}
		if got := sp.Free(); got != want {
			t.Errorf("Free(%s pool=%v) = %s; want %s", tt.prefix, tt.pool, got, want)
		}
	}
}

// TestWholeSpaceToTheTop fills a ::/0 pool, 2^128 keys, up to its last
// key, which Used (kept modulo 2^128) cannot count.
func TestWholeSpaceToTheTop(t *testing.T) {
	sp, runs := addrSpace(t, "::/0", true)
	if err := sp.ClaimRange(runs, Key{}, MaxKey.Sub64(2)); err != nil {
		t.Fatal(err)
	}
	if got := sp.Free(); got != IntKey(2) {
		t.Fatalf("Free = %s, want 2", got)
	}
	keys, err := sp.NextFree(runs, 2)
	if err != nil || len(keys) != 2 || keys[1] != MaxKey {
		t.Fatalf("NextFree(2) = %v, %v; want the last two keys", keys, err)
	}
	if got, want := sp.UsedExact(runs), sp.ExactSize(); got.Cmp(want) != 0 {
		t.Fatalf("UsedExact of the full space = %s, want %s", got, want)
	}
	if _, err := sp.NextFree(runs, 1); !errors.Is(err, ErrExhausted) {
		t.Fatalf("NextFree on the full space: %v", err)
	}
	empty, emptyRuns := addrSpace(t, "::/0", true)
	if got := empty.UsedExact(emptyRuns); got.Sign() != 0 {
		t.Fatalf("UsedExact of the empty space = %s", got)
	}
}

func TestSpaceExactSize(t *testing.T) {
	for _, tt := range []struct {
		prefix string
		pool   bool
		want   string
	}{
		{"::/0", false, "340282366920938463463374607431768211455"}, // without the subnet-router anycast ::
		{"::/0", true, "340282366920938463463374607431768211456"},  // 2^128
		{"0.0.0.0/0", true, "4294967296"},
	} {
		sp, _ := addrSpace(t, tt.prefix, tt.pool)
		if got := sp.ExactSize().String(); got != tt.want {
			t.Errorf("ExactSize(%s pool=%v) = %s; want %s", tt.prefix, tt.pool, got, tt.want)
		}
	}
}

// TestChildPrefixesOutside: a child that must stay outside a block (the
// IPv4-mapped addresses) is the lowest free one wholly outside it; the
// block's keys stay free for other children, and the search leaves the
// space's ranges as they were.
func TestChildPrefixesOutside(t *testing.T) {
	for _, tt := range []struct {
		space, avoid string
		bits         int
		want         []string // in order; "" for exhausted
	}{
		{"::/0", MappedBlock.String(), 64, []string{"0:0:0:1::/64", "0:0:0:2::/64"}},
		{"::/80", MappedBlock.String(), 96, []string{"::/96", "::1:0:0/96"}},
		{"::fffe:0:0/95", MappedBlock.String(), 96, []string{"::fffe:0:0/96", ""}},
		{"::ffff:0:0/96", MappedBlock.String(), 120, []string{""}},
		{"2001:db8::/32", MappedBlock.String(), 48, []string{"2001:db8::/48"}},
		{"10.0.0.0/8", MappedBlock.String(), 24, []string{"10.0.0.0/24"}},
		{"10.0.0.0/16", "10.0.0.0/24", 24, []string{"10.0.1.0/24", "10.0.2.0/24"}},
		{"10.0.0.0/16", "10.0.0.0/24", 23, []string{"10.0.2.0/23"}},
		{"10.0.0.0/24", "10.0.0.64/26", 26, []string{"10.0.0.0/26", "10.0.0.128/26", "10.0.0.192/26", ""}},
	} {
		sp, m := blockSpace(t, tt.space)
		ranges := slices.Clone(sp.Ranges)
		avoid := netip.MustParsePrefix(tt.avoid)
		for _, want := range tt.want {
			p, err := sp.NextFreePrefixOutside(m, tt.bits, avoid)
			if want == "" {
				wantErr(t, err, ErrExhausted, "1 requested, 0 available: no free /"+strconv.Itoa(tt.bits)+" in "+sp.Prefix.String()+" outside "+avoid.String())
				continue
			}
			if err != nil || p.String() != want {
				t.Fatalf("%s avoiding %s: NextFreePrefixOutside(%d) = %s, %v; want %s", tt.space, tt.avoid, tt.bits, p, err, want)
			}
			if p.Overlaps(avoid) {
				t.Fatalf("%s avoiding %s: got %s, which overlaps it", tt.space, tt.avoid, p)
			}
			checkRuns(t, sp, m)
		}
		if !slices.Equal(sp.Ranges, ranges) {
			t.Fatalf("%s: ranges %v after the search, want %v", tt.space, sp.Ranges, ranges)
		}
	}
	// The block itself is still free for a child that may hold it.
	sp, m := blockSpace(t, "::fffe:0:0/95")
	if _, err := sp.NextFreePrefixOutside(m, 96, MappedBlock); err != nil {
		t.Fatal(err)
	}
	if p, err := sp.NextFreePrefix(m, 96); err != nil || p != MappedBlock {
		t.Fatalf("NextFreePrefix(96) = %s, %v; want %s", p, err, MappedBlock)
	}
}

func TestChildPrefixes(t *testing.T) {
	sp, m := blockSpace(t, "10.0.0.0/16")
	next := func(bits int, want string) {
		t.Helper()
		p, err := sp.NextFreePrefix(m, bits)
		if err != nil || p.String() != want {
			t.Fatalf("NextFreePrefix(%d) = %s, %v; want %s", bits, p, err, want)
		}
		checkRuns(t, sp, m)
	}
	next(24, "10.0.0.0/24")
	next(24, "10.0.1.0/24")
	if err := sp.ClaimPrefix(m, netip.MustParsePrefix("10.0.2.0/23")); err != nil {
		t.Fatal(err)
	}
	next(22, "10.0.4.0/22")
	next(25, "10.0.8.0/25")
	next(24, "10.0.9.0/24")
	next(26, "10.0.8.128/26")
	if got := formatRuns(sp, m.Runs()); got != "10.0.0.0-10.0.8.191,10.0.9.0-10.0.9.255" {
		t.Fatalf("runs = %s", got)
	}
	if err := sp.ReleasePrefix(m, netip.MustParsePrefix("10.0.1.0/24")); err != nil {
		t.Fatal(err)
	}
	next(26, "10.0.1.0/26")
	next(23, "10.0.10.0/23")
	next(17, "10.0.128.0/17")

	_, err := sp.NextFreePrefix(m, 16)
	wantErr(t, err, ErrInvalidLength, "/16 does not fit in 10.0.0.0/16: a child is /17 to /32")
	_, err = sp.NextFreePrefix(m, 33)
	wantErr(t, err, ErrInvalidLength, "")
	_, err = sp.NextFreePrefix(m, 17)
	wantErr(t, err, ErrExhausted, "1 requested, 0 available: no free /17 in 10.0.0.0/16")
	err = sp.ClaimPrefix(m, netip.MustParsePrefix("10.1.0.0/24"))
	wantErr(t, err, ErrOutside, "10.1.0.0/24 is outside 10.0.0.0/16")
	err = sp.ClaimPrefix(m, netip.MustParsePrefix("10.0.8.0/24"))
	wantErr(t, err, ErrInUse, "10.0.8.0/24 overlaps a used block at 10.0.8.0")
	err = sp.ClaimPrefix(m, netip.MustParsePrefix("10.0.8.128/25"))
	wantErr(t, err, ErrInUse, "10.0.8.128/25 overlaps a used block at 10.0.8.128")
	err = sp.ClaimPrefix(m, netip.MustParsePrefix("10.0.8.0/23"))
	wantErr(t, err, ErrInUse, "10.0.8.0/23 overlaps a used block at 10.0.8.0")
	err = sp.ClaimPrefix(m, netip.MustParsePrefix("10.0.8.5/24"))
	wantErr(t, err, ErrNotCanonical, "10.0.8.5/24 is not canonical: did you mean 10.0.8.0/24?")
	err = sp.ClaimPrefix(m, netip.MustParsePrefix("2001:db8::/64"))
	wantErr(t, err, ErrInvalidLength, "")
	err = sp.ReleasePrefix(m, netip.MustParsePrefix("10.0.1.64/26"))
	wantErr(t, err, ErrNotAllocated, "10.0.1.64/26 is not allocated: 10.0.1.64 is free")

	// Addresses inside a child come from the child's own address space.
	child, cm := addrSpace(t, "10.0.0.0/24", false)
	keys, err := child.NextFree(cm, 2)
	if err != nil || formatKeys(child, keys) != "10.0.0.1,10.0.0.2" {
		t.Fatalf("child NextFree = %s, %v", formatKeys(child, keys), err)
	}
}

func TestChildPrefixesIPv6(t *testing.T) {
	sp, m := blockSpace(t, "2001:db8::/48")
	for _, want := range []string{"2001:db8::/64", "2001:db8:0:1::/64"} {
		p, err := sp.NextFreePrefix(m, 64)
		if err != nil || p.String() != want {
			t.Fatalf("NextFreePrefix(64) = %s, %v; want %s", p, err, want)
		}
	}
	p, err := sp.NextFreePrefix(m, 56)
	if err != nil || p.String() != "2001:db8:0:100::/56" {
		t.Fatalf("NextFreePrefix(56) = %s, %v", p, err)
	}
	p, err = sp.NextFreePrefix(m, 128)
	if err != nil || p.String() != "2001:db8:0:2::/128" {
		t.Fatalf("NextFreePrefix(128) = %s, %v", p, err)
	}
	if want := (Key{Hi: 2 + 256}).Add64(1); sp.Used != want {
		t.Fatalf("Used = %s; want %s", sp.Used, want)
	}
	checkRuns(t, sp, m)

	all, am := blockSpace(t, "::/0")
	for _, want := range []string{"::/1", "8000::/1"} {
		p, err := all.NextFreePrefix(am, 1)
		if err != nil || p.String() != want {
			t.Fatalf("::/0 NextFreePrefix(1) = %s, %v; want %s", p, err, want)
		}
	}
	_, err = all.NextFreePrefix(am, 128)
	wantErr(t, err, ErrExhausted, "1 requested, 0 available: no free /128 in ::/0")
}

func TestAlignedBlocks(t *testing.T) {
	sp, m := blockSpace(t, "10.0.0.0/24")
	if err := sp.ClaimPrefix(m, netip.MustParsePrefix("10.0.0.1/32")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		bits int
		want string
	}{
		{30, "10.0.0.4/30"},
		{31, "10.0.0.2/31"},
		{32, "10.0.0.0/32"},
		{29, "10.0.0.8/29"},
		{25, "10.0.0.128/25"},
		{26, "10.0.0.64/26"},
		{32, "10.0.0.16/32"},
		{28, "10.0.0.32/28"},
	} {
		p, err := sp.NextFreePrefix(m, tt.bits)
		if err != nil || p.String() != tt.want {
			t.Fatalf("NextFreePrefix(%d) = %s, %v; want %s", tt.bits, p, err, tt.want)
		}
		checkRuns(t, sp, m)
	}
	// An integer space: blocks of 16 VNIs.
	vni, err := VNISpace(IDRange{5, 100})
	if err != nil {
		t.Fatal(err)
	}
	var vm MemRuns
	for _, want := range []string{"16", "32", "48", "64", "80"} {
		k, err := vni.NextFreeBlock(&vm, 4)
		if err != nil || vni.Format(k) != want {
			t.Fatalf("NextFreeBlock(4) = %s, %v; want %s", vni.Format(k), err, want)
		}
	}
	_, err = vni.NextFreeBlock(&vm, 4)
	wantErr(t, err, ErrExhausted, "no free aligned block of 16 in 5-100")
	_, err = vni.NextFreeBlock(&vm, 128)
	wantErr(t, err, ErrInvalidLength, "")
}

func TestVLANAndVNIPools(t *testing.T) {
	sp, err := VLANSpace(IDRange{200, 201}, IDRange{100, 102})
	if err != nil {
		t.Fatal(err)
	}
	var m MemRuns
	keys, err := sp.NextFree(&m, 4)
	if err != nil || formatKeys(&sp, keys) != "100,101,102,200" {
		t.Fatalf("NextFree(4) = %s, %v", formatKeys(&sp, keys), err)
	}
	_, err = sp.NextFree(&m, 2)
	wantErr(t, err, ErrExhausted, "2 requested, 1 available")
	err = sp.Claim(&m, IntKey(150))
	wantErr(t, err, ErrOutside, "150 is outside 100-102,200-201")
	if err := sp.Release(&m, IntKey(101)); err != nil {
		t.Fatal(err)
	}
	keys, err = sp.NextFree(&m, 2)
	if err != nil || formatKeys(&sp, keys) != "101,201" {
		t.Fatalf("NextFree(2) after release = %s, %v", formatKeys(&sp, keys), err)
	}
	checkRuns(t, &sp, &m)

	all, err := VLANSpace()
	if err != nil {
		t.Fatal(err)
	}
	var am MemRuns
	if err := all.Claim(&am, IntKey(MaxVLAN)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, all.Claim(&am, IntKey(MaxVLAN+1)), ErrOutside, "4095 is outside 1-4094")
	wantErr(t, all.Claim(&am, IntKey(0)), ErrOutside, "")
	if k, err := all.NextFree(&am, 1); err != nil || k[0] != IntKey(1) {
		t.Fatalf("VLAN NextFree = %v, %v", k, err)
	}
	if all.Size() != IntKey(4094) {
		t.Fatalf("VLAN size = %s", all.Size())
	}

	vni, err := VNISpace()
	if err != nil {
		t.Fatal(err)
	}
	var vm MemRuns
	if err := vni.Claim(&vm, IntKey(MaxVNI)); err != nil {
		t.Fatal(err)
	}
	if err := vni.ClaimRange(&vm, IntKey(1), IntKey(MaxVNI-1)); err != nil {
		t.Fatal(err)
	}
	_, err = vni.NextFree(&vm, 1)
	wantErr(t, err, ErrExhausted, "1 requested, 0 available")
	if got := formatRuns(&vni, vm.Runs()); got != "1-16777215" {
		t.Fatalf("VNI runs = %s", got)
	}

	for _, tt := range []struct {
		ranges []IDRange
		err    error
		msg    string
		want   string
	}{
		{ranges: []IDRange{{0, 10}}, err: ErrInvalidVLAN, msg: "VLAN range 0-10: 0 is outside 1-4094"},
		{ranges: []IDRange{{10, 4095}}, err: ErrInvalidVLAN},
		{ranges: []IDRange{{20, 10}}, err: ErrInvalidRange, msg: "VLAN range 20-10 ends before it starts"},
		{ranges: []IDRange{{10, 20}, {15, 30}}, err: ErrInvalidRange, msg: "VLAN ranges 10-20 and 15-30 overlap"},
		{ranges: []IDRange{{11, 20}, {1, 10}, {30, 40}}, want: "1-20,30-40"},
	} {
		sp, err := VLANSpace(tt.ranges...)
		if tt.err != nil {
			wantErr(t, err, tt.err, tt.msg)
			continue
		}
		if err != nil || sp.name() != tt.want {
			t.Fatalf("VLANSpace(%v) = %s, %v; want %s", tt.ranges, sp.name(), err, tt.want)
		}
	}
	_, err = VNISpace(IDRange{1, MaxVNI + 1})
	wantErr(t, err, ErrInvalidVNI, "VNI range 1-16777216: 16777216 is outside 1-16777215")
}

func TestFreeRuns(t *testing.T) {
	sp, m := addrSpace(t, "10.0.0.0/24", false)
	for _, a := range []string{"10.0.0.1", "10.0.0.5", "10.0.0.6", "10.0.0.254"} {
		if err := sp.Claim(m, key(t, sp, a)); err != nil {
			t.Fatal(err)
		}
	}
	if got := formatRuns(sp, sp.FreeRuns(m, 10)); got != "10.0.0.2-10.0.0.4,10.0.0.7-10.0.0.253" {
		t.Fatalf("FreeRuns = %s", got)
	}
	if got := formatRuns(sp, sp.FreeRuns(m, 1)); got != "10.0.0.2-10.0.0.4" {
		t.Fatalf("FreeRuns(1) = %s", got)
	}
	if got := sp.FreeRuns(m, 0); len(got) != 0 {
		t.Fatalf("FreeRuns(0) = %v", got)
	}
	vlan, _ := VLANSpace(IDRange{10, 12}, IDRange{20, 22})
	var vm MemRuns
	if err := vlan.ClaimRange(&vm, IntKey(10), IntKey(12)); err != nil {
		t.Fatal(err)
	}
	if err := vlan.Claim(&vm, IntKey(21)); err != nil {
		t.Fatal(err)
	}
	if got := formatRuns(&vlan, vlan.FreeRuns(&vm, 10)); got != "20,22" {
		t.Fatalf("VLAN FreeRuns = %s", got)
	}
}

// TestNextFreeStoreCalls shows allocation cost does not grow with prefix
// size or fill level: one address takes the same few store calls in an
// empty /24, an empty /8, a /64 and a 90%-full fragmented /16.
func TestNextFreeStoreCalls(t *testing.T) {
	cases := []struct {
		name   string
		prefix string
		fill   bool
	}{
		{"empty /24", "10.0.0.0/24", false},
		{"empty /8", "10.0.0.0/8", false},
		{"90% /16", "10.0.0.0/16", true},
		{"empty /64", "2001:db8::/64", false},
	}
	for _, c := range cases {
		sp, m := addrSpace(t, c.prefix, false)
		if c.fill {
			fillEveryTenth(sp, m)
		}
		if _, err := sp.NextFree(m, 1); err != nil { // reach the steady state
			t.Fatal(err)
		}
		cs := &countingRuns{RunStore: m}
		for i := 0; i < 100; i++ {
			if _, err := sp.NextFree(cs, 1); err != nil {
				t.Fatal(err)
			}
		}
		if cs.reads > 200 || cs.writes > 200 {
			t.Errorf("%s: 100 allocations took %d reads and %d writes; want at most 2 of each per allocation", c.name, cs.reads, cs.writes)
		}
		checkRuns(t, sp, m)
	}
}
