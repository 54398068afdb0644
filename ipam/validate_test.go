package ipam

import (
	"strings"
	"testing"
)

func TestValidHostname(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	name253 := strings.Repeat(long63+".", 3) + strings.Repeat("b", 61) // 3*64 + 61
	tests := []struct {
		in  string
		msg string // "" means valid
	}{
		{in: "web"},
		{in: "web-01.prod.example.com"},
		{in: "web.example.com."},
		{in: "Web01.Example.COM"},
		{in: "1st.example"},
		{in: "123"},
		{in: long63},
		{in: name253},
		{in: name253 + "."},
		{in: "", msg: `hostname "" is empty`},
		{in: ".", msg: `hostname "." is empty`},
		{in: name253 + "b", msg: `hostname "` + name253 + `b" is 254 characters long; at most 253 are allowed`},
		{in: long63 + "a.com", msg: `hostname "` + long63 + `a.com": label "` + long63 + `a" is 64 characters long; at most 63 are allowed`},
		{in: "a..b", msg: `hostname "a..b" has an empty label`},
		{in: ".a", msg: `hostname ".a" has an empty label`},
		{in: "a.b..", msg: `hostname "a.b.." has an empty label`},
		{in: "-web.example", msg: `hostname "-web.example": label "-web" starts with a hyphen`},
		{in: "web-.example", msg: `hostname "web-.example": label "web-" ends with a hyphen`},
		{in: "web_01", msg: `hostname "web_01": label "web_01" contains '_'; only letters, digits and hyphens are allowed`},
		{in: "wéb", msg: `hostname "wéb": label "wéb" contains 'é'; only letters, digits and hyphens are allowed`},
		{in: "a b", msg: `hostname "a b": label "a b" contains ' '; only letters, digits and hyphens are allowed`},
		{in: "*.example", msg: `hostname "*.example": label "*" contains '*'; only letters, digits and hyphens are allowed`},
		{in: "10.0.0.1", msg: `hostname "10.0.0.1" reads as an IPv4 address`},
	}
	for _, tt := range tests {
		err := ValidHostname(tt.in)
		if tt.msg == "" {
			if err != nil {
				t.Errorf("ValidHostname(%q) = %v", tt.in, err)
			}
			continue
		}
		wantErr(t, err, ErrInvalidHostname, tt.msg)
	}
}

func TestValidOwner(t *testing.T) {
	tests := []struct {
		in  string
		msg string
	}{
		{in: "vm:101/net0"},
		{in: "vm:101"},
		{in: "ct:105/eth0.100"},
		{in: "host:pve-1"},
		{in: "gateway:core_r1"},
		{in: "", msg: `owner "" has no ':': want kind:id[/iface], e.g. vm:101/net0`},
		{in: "vm101", msg: `owner "vm101" has no ':': want kind:id[/iface], e.g. vm:101/net0`},
		{in: ":101", msg: `owner ":101" has no kind before ':': want kind:id[/iface], e.g. vm:101/net0`},
		{in: "VM:101", msg: `owner "VM:101": kind "VM" must be lower-case letters`},
		{in: "vm2:101", msg: `owner "vm2:101": kind "vm2" must be lower-case letters`},
		{in: "vm:", msg: `owner "vm:" has no id after ':': want kind:id[/iface], e.g. vm:101/net0`},
		{in: "vm:/net0", msg: `owner "vm:/net0" has no id after ':': want kind:id[/iface], e.g. vm:101/net0`},
		{in: "vm:101/", msg: `owner "vm:101/" has no interface after '/': want kind:id[/iface], e.g. vm:101/net0`},
		{in: "vm:10 1", msg: `owner "vm:10 1": id "10 1" contains ' '`},
		{in: "vm:101/net0/x", msg: `owner "vm:101/net0/x": interface "net0/x" contains '/'`},
		{in: "vm:1:2", msg: `owner "vm:1:2": id "1:2" contains ':'`},
		{in: "vm:ü", msg: `owner "vm:ü": id "ü" contains 'ü'`},
		{in: "vmü:1", msg: `owner "vmü:1": kind "vmü" must be lower-case letters`},
		{in: "vm:" + strings.Repeat("1", 253), msg: `owner "vm:11111111111111111"... is 256 characters long; at most 255 are allowed`},
	}
	for _, tt := range tests {
		err := ValidOwner(tt.in)
		if tt.msg == "" {
			if err != nil {
				t.Errorf("ValidOwner(%q) = %v", tt.in, err)
			}
			continue
		}
		wantErr(t, err, ErrInvalidOwner, tt.msg)
	}
}

func TestValidIDs(t *testing.T) {
	for _, tt := range []struct {
		id        int
		vlan, vni bool
	}{
		{-1, false, false},
		{0, false, false},
		{1, true, true},
		{4094, true, true},
		{4095, false, true},
		{1<<24 - 1, false, true},
		{1 << 24, false, false},
	} {
		if got := ValidVLAN(tt.id) == nil; got != tt.vlan {
			t.Errorf("ValidVLAN(%d) ok = %v", tt.id, got)
		}
		if got := ValidVNI(tt.id) == nil; got != tt.vni {
			t.Errorf("ValidVNI(%d) ok = %v", tt.id, got)
		}
	}
	wantErr(t, ValidVLAN(4095), ErrInvalidVLAN, "VLAN ID 4095 is outside 1-4094")
	wantErr(t, ValidVNI(0), ErrInvalidVNI, "VNI 0 is outside 1-16777215")
	if err := ValidVLANRange(IDRange{100, 199}); err != nil {
		t.Error(err)
	}
	wantErr(t, ValidVLANRange(IDRange{200, 100}), ErrInvalidRange, "VLAN range 200-100 ends before it starts")
	wantErr(t, ValidVNIRange(IDRange{0, 100}), ErrInvalidVNI, "VNI range 0-100: 0 is outside 1-16777215")
}

func TestNumericTopLabel(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"1", true},
		{"127.1", true},
		{"1.2.3", true},
		{"web.1.", true},
		{"0x7f.1", true},
		{"host.0x7f", true},
		{"host.0XFF", true},
		{"0x", false},
		{"host.0xg1", false},
		{"web.moxxie.test", false},
		{"1.moxxie.test", false},
		{"web.1a", false},
		{"moxxie", false},
		{"x.123abc", false},
	} {
		if got := NumericTopLabel(tc.in); got != tc.want {
			t.Errorf("NumericTopLabel(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestBadPunycode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"web.moxxie.test", ""},
		{"xn--bcher-kva.example", ""},
		{"shop.XN--BCHER-KVA.example.", ""},
		{"xn--zz.example.test", "xn--zz"},
		{"db.xn--v11", "xn--v11"},
		{"xn--.test", "xn--"},
		{"xn--a.test", "xn--a"},
		{"a.xn--abc-.test", "xn--abc-"},
		{"xn-bad.test", ""},
	} {
		if got := BadPunycode(tc.in); got != tc.want {
			t.Errorf("BadPunycode(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
