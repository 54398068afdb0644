package ipam

import (
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

// Bounds of VLAN IDs (IEEE 802.1Q; 0 and 4095 are reserved) and VXLAN
// network identifiers (24 bits; 0 is reserved).
const (
	MinVLAN = 1
	MaxVLAN = 4094
	MinVNI  = 1
	MaxVNI  = 1<<24 - 1
)

// Limits of names.
const (
	maxHostname = 253
	maxLabel    = 63
	maxOwner    = 255
)

// ValidHostname checks s as an RFC 1123 host name: dot-separated labels of
// letters, digits and hyphens, each 1 to 63 characters and neither starting
// nor ending with a hyphen, at most 253 characters in all, with an optional
// trailing dot. A name that reads as an IPv4 address is refused. The error
// says what is wrong.
func ValidHostname(s string) error {
	name := strings.TrimSuffix(s, ".")
	if name == "" {
		return errorf(ErrInvalidHostname, "hostname %q is empty", s)
	}
	if len(name) > maxHostname {
		return errorf(ErrInvalidHostname, "hostname %q is %d characters long; at most %d are allowed", s, len(name), maxHostname)
	}
	for label := range strings.SplitSeq(name, ".") {
		if err := validLabel(s, label); err != nil {
			return err
		}
	}
	if a, err := netip.ParseAddr(name); err == nil && a.Is4() {
		return errorf(ErrInvalidHostname, "hostname %q reads as an IPv4 address", s)
	}
	return nil
}

// NumericTopLabel reports whether the host name s (which ValidHostname
// accepts) ends in a label of digits only, or of hexadecimal digits after
// "0x": no top-level domain has such a label (RFC 3696, section 2), and
// the C library reads such a name as an IPv4 address (127.1 and 0x7f.1
// are 127.0.0.1 to getaddrinfo), so clients never look it up in DNS.
func NumericTopLabel(s string) bool {
	name := strings.TrimSuffix(s, ".")
	top := name[strings.LastIndexByte(name, '.')+1:]
	digits := "0123456789"
	if len(top) > 2 && (top[:2] == "0x" || top[:2] == "0X") {
		top, digits = top[2:], "0123456789abcdefABCDEF"
	}
	return top != "" && strings.Trim(top, digits) == ""
}

// BadPunycode returns the first label of the host name s that is an
// internationalized label (xn--...) without valid punycode, or "": one
// that decodes to nothing or to what IDNA does not allow, or that does
// not encode back to itself. A resolver that decodes it shows another
// name, or none.
func BadPunycode(s string) string {
	for label := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if len(label) < 4 || !strings.EqualFold(label[:4], "xn--") {
			continue
		}
		u, err := idna.Lookup.ToUnicode(label)
		if err != nil || u == "" {
			return label
		}
		if back, err := idna.Lookup.ToASCII(u); err != nil || !strings.EqualFold(back, label) {
			return label
		}
	}
	return ""
}

func validLabel(s, label string) error {
	switch {
	case label == "":
		return errorf(ErrInvalidHostname, "hostname %q has an empty label", s)
	case len(label) > maxLabel:
		return errorf(ErrInvalidHostname, "hostname %q: label %q is %d characters long; at most %d are allowed", s, label, len(label), maxLabel)
	case label[0] == '-':
		return errorf(ErrInvalidHostname, "hostname %q: label %q starts with a hyphen", s, label)
	case label[len(label)-1] == '-':
		return errorf(ErrInvalidHostname, "hostname %q: label %q ends with a hyphen", s, label)
	}
	for _, c := range label {
		if c >= 0x80 || !isAlnum(byte(c)) && c != '-' {
			return errorf(ErrInvalidHostname, "hostname %q: label %q contains %q; only letters, digits and hyphens are allowed", s, label, c)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isLower(c byte) bool { return 'a' <= c && c <= 'z' }

// isIDChar reports whether c may appear in an owner's id or interface.
func isIDChar(c byte) bool { return isAlnum(c) || c == '-' || c == '_' || c == '.' }

// ValidOwner checks an owner reference of the form kind:id[/iface], such as
// vm:101/net0 or ct:105: kind is lower-case letters, id and iface are
// non-empty letters, digits, '-', '_' and '.', at most 255 characters in
// all.
func ValidOwner(s string) error {
	const want = "want kind:id[/iface], e.g. vm:101/net0"
	if len(s) > maxOwner {
		return errorf(ErrInvalidOwner, "owner %.20q... is %d characters long; at most %d are allowed", s, len(s), maxOwner)
	}
	kind, rest, ok := strings.Cut(s, ":")
	if !ok {
		return errorf(ErrInvalidOwner, "owner %q has no ':': %s", s, want)
	}
	if kind == "" {
		return errorf(ErrInvalidOwner, "owner %q has no kind before ':': %s", s, want)
	}
	for _, c := range kind {
		if c >= 0x80 || !isLower(byte(c)) {
			return errorf(ErrInvalidOwner, "owner %q: kind %q must be lower-case letters", s, kind)
		}
	}
	id, iface, hasIface := strings.Cut(rest, "/")
	if id == "" {
		return errorf(ErrInvalidOwner, "owner %q has no id after ':': %s", s, want)
	}
	if hasIface && iface == "" {
		return errorf(ErrInvalidOwner, "owner %q has no interface after '/': %s", s, want)
	}
	for _, part := range [...]struct{ what, v string }{{"id", id}, {"interface", iface}} {
		for _, c := range part.v {
			if c >= 0x80 || !isIDChar(byte(c)) {
				return errorf(ErrInvalidOwner, "owner %q: %s %q contains %q", s, part.what, part.v, c)
			}
		}
	}
	return nil
}

// ValidVLAN checks that id is a usable VLAN ID, 1..4094.
func ValidVLAN(id int) error {
	if id < MinVLAN || id > MaxVLAN {
		return errorf(ErrInvalidVLAN, "VLAN ID %d is outside %d-%d", id, MinVLAN, MaxVLAN)
	}
	return nil
}

// ValidVNI checks that id is a usable VXLAN network identifier,
// 1..16777215.
func ValidVNI(id int) error {
	if id < MinVNI || id > MaxVNI {
		return errorf(ErrInvalidVNI, "VNI %d is outside %d-%d", id, MinVNI, MaxVNI)
	}
	return nil
}

// ValidVLANRange checks a range of VLAN IDs: both ends usable, in order.
func ValidVLANRange(r IDRange) error {
	return checkIDRange(ErrInvalidVLAN, "VLAN", MinVLAN, MaxVLAN, r)
}

// ValidVNIRange checks a range of VNIs: both ends usable, in order.
func ValidVNIRange(r IDRange) error {
	return checkIDRange(ErrInvalidVNI, "VNI", MinVNI, MaxVNI, r)
}

func checkIDRange(kind error, what string, lo, hi int, r IDRange) error {
	for _, id := range [...]int{r.First, r.Last} {
		if id < lo || id > hi {
			return errorf(kind, "%s range %d-%d: %d is outside %d-%d", what, r.First, r.Last, id, lo, hi)
		}
	}
	if r.Last < r.First {
		return errorf(ErrInvalidRange, "%s range %d-%d ends before it starts", what, r.First, r.Last)
	}
	return nil
}
