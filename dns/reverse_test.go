package dns

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestReverseZones(t *testing.T) {
	tests := []struct {
		prefix string
		want   []string
	}{
		{"10.0.0.0/24", []string{"0.0.10.in-addr.arpa."}},
		{"10.1.0.0/16", []string{"1.10.in-addr.arpa."}},
		{"10.0.0.0/8", []string{"10.in-addr.arpa."}},
		{"0.0.0.0/0", []string{"in-addr.arpa."}},
		{"10.0.0.5/24", []string{"0.0.10.in-addr.arpa."}}, // masked
		{"10.0.4.0/22", []string{"4.0.10.in-addr.arpa.", "5.0.10.in-addr.arpa.", "6.0.10.in-addr.arpa.", "7.0.10.in-addr.arpa."}},
		{"192.168.255.254/31", []string{"255.168.192.in-addr.arpa."}},
		{"192.168.1.7/32", []string{"1.168.192.in-addr.arpa."}},
		{"172.16.0.0/12", func() []string {
			var z []string
			for i := 16; i < 32; i++ {
				z = append(z, strconv.Itoa(i)+".172.in-addr.arpa.")
			}
			return z
		}()},
		{"255.255.254.0/23", []string{"254.255.255.in-addr.arpa.", "255.255.255.in-addr.arpa."}},
		{"::ffff:10.0.0.0/120", []string{"0.0.10.in-addr.arpa."}},
		{"2001:db8::/32", []string{"8.b.d.0.1.0.0.2.ip6.arpa."}},
		{"2001:db8:1::/48", []string{"1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."}},
		{"2001:db8:1:2::/64", []string{"2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."}},
		{"2001:db8::/30", []string{"8.b.d.0.1.0.0.2.ip6.arpa.", "9.b.d.0.1.0.0.2.ip6.arpa.", "a.b.d.0.1.0.0.2.ip6.arpa.", "b.b.d.0.1.0.0.2.ip6.arpa."}},
		{"::/0", []string{"ip6.arpa."}},
		{"2001:db8::1/128", []string{strings.Repeat("0.", 23) + "8.b.d.0.1.0.0.2.ip6.arpa."}},
	}
	for _, tt := range tests {
		got := ReverseZones(netip.MustParsePrefix(tt.prefix))
		if !slices.Equal(got, tt.want) {
			t.Errorf("ReverseZones(%s) = %v, want %v", tt.prefix, got, tt.want)
		}
	}
	if got := ReverseZones(netip.Prefix{}); got != nil {
		t.Errorf("ReverseZones(invalid) = %v, want nil", got)
	}
}

func TestAggregate(t *testing.T) {
	for p, want := range map[string]bool{
		"0.0.0.0/0": true, "10.0.0.0/7": true, "10.0.0.0/8": false, "192.168.0.0/16": false,
		"::/0": true, "2000::/3": true, "fc00::/7": true, "2001::/16": false, "2001:db8::/32": false,
		"::ffff:0.0.0.0/96": true, "::ffff:10.0.0.0/104": false,
	} {
		if got := Aggregate(netip.MustParsePrefix(p)); got != want {
			t.Errorf("Aggregate(%s) = %v, want %v", p, got, want)
		}
	}
}

func TestReverseName(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"10.0.0.5", "5.0.0.10.in-addr.arpa."},
		{"::ffff:10.0.0.5", "5.0.0.10.in-addr.arpa."},
		{"2001:db8::5", "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."},
		{"2001:db8::abcd", "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."},
	}
	for _, tt := range tests {
		if got := ReverseName(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("ReverseName(%s) = %s, want %s", tt.addr, got, tt.want)
		}
	}
	// Every address's reverse name lies in a zone of a prefix holding it.
	for _, p := range []string{"10.0.4.0/22", "2001:db8::/30", "192.168.1.0/30"} {
		prefix := netip.MustParsePrefix(p)
		zones := ReverseZones(prefix)
		for _, a := range []netip.Addr{prefix.Addr(), lastAddr(prefix)} {
			name := ReverseName(a)
			if !slices.ContainsFunc(zones, func(z string) bool { return len(name) >= len(z) && name[len(name)-len(z):] == z }) {
				t.Errorf("%s: %s is in none of %v", p, name, zones)
			}
		}
	}
}

func TestHostRecords(t *testing.T) {
	got := HostRecords("web.moxxie.test.", netip.MustParseAddr("::ffff:10.0.0.5"), 30)
	want := []Record{
		{Name: "web.moxxie.test.", Type: TypeA, Value: "10.0.0.5", TTL: 30},
		{Name: "5.0.0.10.in-addr.arpa.", Type: TypePTR, Value: "web.moxxie.test.", TTL: 30},
	}
	if !slices.Equal(got, want) {
		t.Errorf("HostRecords = %v, want %v", got, want)
	}
	if got := HostRecords("v6.moxxie.test.", netip.MustParseAddr("2001:db8::1"), 0); got[0].Type != TypeAAAA {
		t.Errorf("HostRecords(v6) = %v, want AAAA first", got)
	}
}

// lastAddr returns the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestReverseZonePrefix(t *testing.T) {
	for _, p := range []string{"10.0.0.0/8", "10.1.0.0/16", "10.0.1.0/24", "192.168.4.0/22", "10.9.8.7/32", "0.0.0.0/0",
		"2001:db8::/32", "2001:db8:1:2::/64", "2001:db8::/29", "::/0", "2001:db8::1/128"} {
		pfx := netip.MustParsePrefix(p)
		for _, z := range ReverseZones(pfx) {
			got, ok := ReverseZonePrefix(z)
			if !ok || !got.Overlaps(pfx) || got.Bits()%4 != 0 {
				t.Errorf("%s: zone %s gives %v, %v", p, z, got, ok)
			}
			if back := ReverseZones(got); len(back) != 1 || back[0] != z {
				t.Errorf("%s: zone %s gives %v, whose zones are %v", p, z, got, back)
			}
		}
	}
	for zone, want := range map[string]string{
		"1.10.IN-ADDR.ARPA":         "10.1.0.0/16",
		"in-addr.arpa.":             "0.0.0.0/0",
		"8.b.d.0.1.0.0.2.ip6.arpa.": "2001:db8::/32",
		"ip6.arpa":                  "::/0",
		"example.org.":              "",
		"256.in-addr.arpa.":         "",
		"01.in-addr.arpa.":          "",
		"1.2.3.4.5.in-addr.arpa.":   "",
		"g.ip6.arpa.":               "",
		"10.ip6.arpa.":              "",
		"x.1.10.in-addr.arpa.":      "",
	} {
		got, ok := ReverseZonePrefix(zone)
		if ok != (want != "") || ok && got.String() != want {
			t.Errorf("%s: %v, %v; want %q", zone, got, ok, want)
		}
	}
}
