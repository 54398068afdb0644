package ipam

import (
	"errors"
	"math/big"
	"net/netip"
	"testing"
)

func TestParsePrefix(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		err     error
		message string
	}{
		{in: "10.0.0.0/24", want: "10.0.0.0/24"},
		{in: "0.0.0.0/0", want: "0.0.0.0/0"},
		{in: "10.0.0.0/8", want: "10.0.0.0/8"},
		{in: "192.0.2.4/31", want: "192.0.2.4/31"},
		{in: "192.0.2.5/32", want: "192.0.2.5/32"},
		{in: "::/0", want: "::/0"},
		{in: "2001:db8::/32", want: "2001:db8::/32"},
		{in: "2001:DB8:0:1::/64", want: "2001:db8:0:1::/64"},
		{in: "2001:db8::2/127", want: "2001:db8::2/127"},
		{in: "2001:db8::1/128", want: "2001:db8::1/128"},
		{in: "10.0.0.5/24", err: ErrNotCanonical, message: "10.0.0.5/24 is not canonical: did you mean 10.0.0.0/24?"},
		{in: "192.0.2.5/31", err: ErrNotCanonical, message: "192.0.2.5/31 is not canonical: did you mean 192.0.2.4/31?"},
		{in: "10.1.2.3/0", err: ErrNotCanonical, message: "10.1.2.3/0 is not canonical: did you mean 0.0.0.0/0?"},
		{in: "2001:db8::1/64", err: ErrNotCanonical, message: "2001:db8::1/64 is not canonical: did you mean 2001:db8::/64?"},
		{in: "2001:db8::3/127", err: ErrNotCanonical, message: "2001:db8::3/127 is not canonical: did you mean 2001:db8::2/127?"},
		{in: "fe80::%eth0/64", err: ErrZone, message: "fe80::%eth0/64 has an IPv6 zone: a prefix cannot carry one"},
		{in: "::ffff:10.0.0.0/104", err: ErrMapped, message: "::ffff:10.0.0.0/104 is IPv4-mapped IPv6: write it as 10.0.0.0/8"},
		{in: "::ffff:10.0.0.5/128", err: ErrMapped, message: "::ffff:10.0.0.5/128 is IPv4-mapped IPv6: write it as 10.0.0.5/32"},
		{in: "::ffff:10.0.0.5/120", err: ErrMapped, message: "::ffff:10.0.0.5/120 is IPv4-mapped IPv6: write it as 10.0.0.0/24"},
		{in: "", err: ErrInvalidPrefix},
		{in: "10.0.0.0", err: ErrInvalidPrefix, message: `"10.0.0.0" is not a CIDR prefix: no '/'`},
		{in: "10.0.0.0/33", err: ErrInvalidPrefix},
		{in: "2001:db8::/129", err: ErrInvalidPrefix},
		{in: "10.0.0.0/-1", err: ErrInvalidPrefix},
		{in: "10.0.0.0/08", err: ErrInvalidPrefix},
		{in: "010.0.0.0/8", err: ErrInvalidPrefix},
		{in: " 10.0.0.0/8", err: ErrInvalidPrefix},
		{in: "10.0.0/24", err: ErrInvalidPrefix},
		{in: "host/24", err: ErrInvalidPrefix},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParsePrefix(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ParsePrefix(%q) = %v, %v; want error %v", tt.in, p, err, tt.err)
				}
				if tt.message != "" && err.Error() != tt.message {
					t.Fatalf("ParsePrefix(%q) error %q; want %q", tt.in, err, tt.message)
				}
				return
			}
			if err != nil || p.String() != tt.want {
				t.Fatalf("ParsePrefix(%q) = %v, %v; want %s", tt.in, p, err, tt.want)
			}
		})
	}
}

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  error
	}{
		{in: "10.0.0.1", want: "10.0.0.1"},
		{in: "2001:DB8::1", want: "2001:db8::1"},
		{in: "::", want: "::"},
		{in: "fe80::1%eth0", err: ErrZone},
		{in: "::ffff:10.0.0.1", err: ErrMapped},
		{in: "10.0.0.1/32", err: ErrInvalidAddr},
		{in: "10.0.0.256", err: ErrInvalidAddr},
		{in: "", err: ErrInvalidAddr},
	}
	for _, tt := range tests {
		a, err := ParseAddr(tt.in)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("ParseAddr(%q) = %v, %v; want error %v", tt.in, a, err, tt.err)
			}
			continue
		}
		if err != nil || a.String() != tt.want {
			t.Errorf("ParseAddr(%q) = %v, %v; want %s", tt.in, a, err, tt.want)
		}
	}
	if _, err := ParseAddr("::ffff:10.0.0.1"); err.Error() != "::ffff:10.0.0.1 is IPv4-mapped IPv6: write it as 10.0.0.1" {
		t.Errorf("mapped message: %v", err)
	}
	if _, err := ParseAddr(""); err.Error() != "an IP address is required" {
		t.Errorf("empty message: %v", err)
	}
}

func TestUsableRange(t *testing.T) {
	tests := []struct {
		prefix      string
		pool        bool
		first, last string
		size        string
	}{
		{"0.0.0.0/0", false, "0.0.0.1", "255.255.255.254", "4294967296"},
		{"0.0.0.0/0", true, "0.0.0.0", "255.255.255.255", "4294967296"},
		{"10.0.0.0/8", false, "10.0.0.1", "10.255.255.254", "16777216"},
		{"10.0.0.0/24", false, "10.0.0.1", "10.0.0.254", "256"},
		{"10.0.0.0/24", true, "10.0.0.0", "10.0.0.255", "256"},
		{"10.0.0.0/30", false, "10.0.0.1", "10.0.0.2", "4"},
		{"10.0.0.4/31", false, "10.0.0.4", "10.0.0.5", "2"},
		{"10.0.0.4/31", true, "10.0.0.4", "10.0.0.5", "2"},
		{"10.0.0.7/32", false, "10.0.0.7", "10.0.0.7", "1"},
		{"::/0", false, "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "340282366920938463463374607431768211456"},
		{"::/0", true, "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "340282366920938463463374607431768211456"},
		{"2001:db8::/48", false, "2001:db8::1", "2001:db8:0:ffff:ffff:ffff:ffff:ffff", "1208925819614629174706176"},
		{"2001:db8::/64", false, "2001:db8::1", "2001:db8::ffff:ffff:ffff:ffff", "18446744073709551616"},
		{"2001:db8::/64", true, "2001:db8::", "2001:db8::ffff:ffff:ffff:ffff", "18446744073709551616"},
		{"2001:db8::/126", false, "2001:db8::1", "2001:db8::3", "4"},
		{"2001:db8::2/127", false, "2001:db8::2", "2001:db8::3", "2"},
		{"2001:db8::1/128", false, "2001:db8::1", "2001:db8::1", "1"},
	}
	for _, tt := range tests {
		p := netip.MustParsePrefix(tt.prefix)
		first, last := UsableRange(p, tt.pool)
		if first.String() != tt.first || last.String() != tt.last {
			t.Errorf("UsableRange(%s, pool=%v) = %s, %s; want %s, %s", p, tt.pool, first, last, tt.first, tt.last)
		}
		if got := Size(p).String(); got != tt.size {
			t.Errorf("Size(%s) = %s; want %s", p, got, tt.size)
		}
	}
}

func TestContainsOverlaps(t *testing.T) {
	tests := []struct {
		outer, inner       string
		contains, overlaps bool
	}{
		{"10.0.0.0/8", "10.1.0.0/16", true, true},
		{"10.0.0.0/8", "10.0.0.0/8", true, true},
		{"10.1.0.0/16", "10.0.0.0/8", false, true},
		{"10.0.0.0/24", "10.0.1.0/24", false, false},
		{"0.0.0.0/0", "192.0.2.1/32", true, true},
		{"::/0", "10.0.0.0/8", false, false},
		{"0.0.0.0/0", "::/0", false, false},
		{"2001:db8::/32", "2001:db8:1::/48", true, true},
		{"2001:db8::/127", "2001:db8::1/128", true, true},
		{"2001:db8::/128", "2001:db8::1/128", false, false},
	}
	for _, tt := range tests {
		o, i := netip.MustParsePrefix(tt.outer), netip.MustParsePrefix(tt.inner)
		if got := Contains(o, i); got != tt.contains {
			t.Errorf("Contains(%s, %s) = %v", o, i, got)
		}
		if got := Overlaps(o, i); got != tt.overlaps {
			t.Errorf("Overlaps(%s, %s) = %v", o, i, got)
		}
	}
}

func TestAddDistance(t *testing.T) {
	tests := []struct {
		a    string
		n    uint64
		want string // "" means out of family
	}{
		{"10.0.0.255", 1, "10.0.1.0"},
		{"255.255.255.254", 1, "255.255.255.255"},
		{"255.255.255.255", 1, ""},
		{"0.0.0.0", 1<<32 - 1, "255.255.255.255"},
		{"0.0.0.0", 1 << 32, ""},
		{"2001:db8::ffff:ffff:ffff:ffff", 1, "2001:db8:0:1::"},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 1, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1, ""},
		{"::", 1 << 63, "::8000:0:0:0"},
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.a)
		got, ok := Add(a, tt.n)
		if tt.want == "" {
			if ok {
				t.Errorf("Add(%s, %d) = %s; want out of family", a, tt.n, got)
			}
			continue
		}
		if !ok || got.String() != tt.want {
			t.Errorf("Add(%s, %d) = %s, %v; want %s", a, tt.n, got, ok, tt.want)
		}
		if d, ok := Distance(got, a); !ok || d != IntKey(tt.n) {
			t.Errorf("Distance(%s, %s) = %s, %v; want %d", got, a, d, ok, tt.n)
		}
	}
	if d, ok := Distance(netip.MustParseAddr("::"), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")); !ok || d != MaxKey {
		t.Errorf("Distance over all of IPv6 = %s, %v", d, ok)
	}
	if _, ok := Distance(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("::1")); ok {
		t.Errorf("Distance across families is ok")
	}
	if testing.AllocsPerRun(100, func() {
		a, _ := Add(netip.MustParseAddr("2001:db8::1"), 12345)
		_, _ = Distance(a, netip.MustParseAddr("2001:db8::1"))
	}) != 0 {
		t.Errorf("Add and Distance allocate")
	}
}

func TestAddrKeyOrder(t *testing.T) {
	// In ascending order.
	addrs := []string{
		"0.0.0.0", "0.0.0.1", "10.0.0.1", "10.0.1.0", "255.255.255.255",
		"::", "::1", "2001:db8::1", "2001:db8::2", "fe80::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	}
	for i := 1; i < len(addrs); i++ {
		a, b := netip.MustParseAddr(addrs[i-1]), netip.MustParseAddr(addrs[i])
		ka, kb := AddrKey(a), AddrKey(b)
		if string(ka[:]) >= string(kb[:]) {
			t.Errorf("AddrKey(%s) >= AddrKey(%s)", a, b)
		}
		if a.Is4() == b.Is4() {
			ba, bb := Addr16(a), Addr16(b)
			if string(ba[:]) >= string(bb[:]) {
				t.Errorf("Addr16(%s) >= Addr16(%s)", a, b)
			}
		}
		if got := AddrOf(KeyFromBytes(Addr16(b)), b.Is4()); got != b {
			t.Errorf("Addr16 round trip of %s = %s", b, got)
		}
	}
	// IPv4 sorts before IPv6 outside ::/96.
	v4, v6 := Addr16(netip.MustParseAddr("255.255.255.255")), Addr16(netip.MustParseAddr("::1:0:0"))
	if string(v4[:]) >= string(v6[:]) {
		t.Errorf("Addr16 does not sort IPv4 first")
	}
}

func TestKeyArithmetic(t *testing.T) {
	max := MaxKey
	if got := max.Add64(1); !got.IsZero() {
		t.Errorf("MaxKey+1 = %s", got)
	}
	if got := (Key{}).Sub64(1); got != max {
		t.Errorf("0-1 = %s", got)
	}
	if got := IntKey(^uint64(0)).Add64(1); got != (Key{Hi: 1}) {
		t.Errorf("carry: %v", got)
	}
	if got := (Key{Hi: 1}).Sub(IntKey(1)); got != IntKey(^uint64(0)) {
		t.Errorf("borrow: %v", got)
	}
	if got, want := max.String(), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1)).String(); got != want {
		t.Errorf("MaxKey = %s; want %s", got, want)
	}
	if got := max.addSat(IntKey(5)); got != max {
		t.Errorf("addSat overflow = %s", got)
	}
	if got := IntKey(3).subSat(IntKey(5)); !got.IsZero() {
		t.Errorf("subSat underflow = %s", got)
	}
	for _, tt := range []struct {
		k     Key
		shift uint
		want  Key
		ok    bool
	}{
		{IntKey(0), 8, IntKey(0), true},
		{IntKey(1), 8, IntKey(256), true},
		{IntKey(256), 8, IntKey(256), true},
		{IntKey(257), 0, IntKey(257), true},
		{IntKey(5), 64, Key{Hi: 1}, true},
		{max, 1, Key{}, false},
		{Key{Hi: 1 << 63, Lo: 1}, 127, Key{}, false},
	} {
		got, ok := alignUp(tt.k, tt.shift)
		if got != tt.want || ok != tt.ok {
			t.Errorf("alignUp(%s, %d) = %s, %v; want %s, %v", tt.k, tt.shift, got, ok, tt.want, tt.ok)
		}
	}
	k := Key{Hi: 0x0102030405060708, Lo: 0x090a0b0c0d0e0f10}
	b := k.Bytes()
	for i := 0; i < 16; i++ {
		if b[i] != byte(i+1) {
			t.Errorf("Bytes()[%d] = %d", i, b[i])
		}
		if h := k.head(i); h.withDigit(i, b[i]) != k.head(i+1) {
			t.Errorf("head(%d) and withDigit disagree", i)
		}
	}
	if KeyFromBytes(b) != k {
		t.Errorf("KeyFromBytes(Bytes()) = %v", KeyFromBytes(b))
	}
}
