package ipam

import (
	"encoding/binary"
	"math/big"
	"math/bits"
	"strconv"
)

// Key is an unsigned 128-bit integer: a position in an allocation space (an
// address, a VLAN ID, a VNI) and also a count of positions. The zero value is
// 0. Arithmetic wraps modulo 2^128 and never allocates; Keys compare with ==.
type Key struct {
	Hi, Lo uint64
}

// MaxKey is the largest Key, 2^128-1.
var MaxKey = Key{Hi: ^uint64(0), Lo: ^uint64(0)}

// IntKey returns n as a Key.
func IntKey(n uint64) Key { return Key{Lo: n} }

// KeyFromBytes decodes the big-endian form written by Key.Bytes.
func KeyFromBytes(b [16]byte) Key {
	return Key{Hi: binary.BigEndian.Uint64(b[:8]), Lo: binary.BigEndian.Uint64(b[8:])}
}

// Bytes returns k as 16 big-endian bytes. Byte-wise order of the result is
// numeric order of the keys, so it serves as an ordered index key.
func (k Key) Bytes() [16]byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.Hi)
	binary.BigEndian.PutUint64(b[8:], k.Lo)
	return b
}

// Cmp returns -1, 0 or +1 as k is less than, equal to or greater than o.
func (k Key) Cmp(o Key) int {
	switch {
	case k.Hi < o.Hi:
		return -1
	case k.Hi > o.Hi:
		return 1
	case k.Lo < o.Lo:
		return -1
	case k.Lo > o.Lo:
		return 1
	}
	return 0
}

// Less reports whether k < o.
func (k Key) Less(o Key) bool {
	return k.Hi < o.Hi || k.Hi == o.Hi && k.Lo < o.Lo
}

// IsZero reports whether k is 0.
func (k Key) IsZero() bool { return k.Hi == 0 && k.Lo == 0 }

// Add returns k+o, wrapping.
func (k Key) Add(o Key) Key {
	lo, c := bits.Add64(k.Lo, o.Lo, 0)
	hi, _ := bits.Add64(k.Hi, o.Hi, c)
	return Key{Hi: hi, Lo: lo}
}

// Sub returns k-o, wrapping.
func (k Key) Sub(o Key) Key {
	lo, b := bits.Sub64(k.Lo, o.Lo, 0)
	hi, _ := bits.Sub64(k.Hi, o.Hi, b)
	return Key{Hi: hi, Lo: lo}
}

// Add64 returns k+n, wrapping.
func (k Key) Add64(n uint64) Key {
	lo, c := bits.Add64(k.Lo, n, 0)
	return Key{Hi: k.Hi + c, Lo: lo}
}

// Sub64 returns k-n, wrapping.
func (k Key) Sub64(n uint64) Key {
	lo, b := bits.Sub64(k.Lo, n, 0)
	return Key{Hi: k.Hi - b, Lo: lo}
}

// Uint64 returns k as a uint64 and whether it fits.
func (k Key) Uint64() (uint64, bool) { return k.Lo, k.Hi == 0 }

// Big returns k as a new big.Int.
func (k Key) Big() *big.Int {
	b := k.Bytes()
	return new(big.Int).SetBytes(b[:])
}

// String returns k in decimal.
func (k Key) String() string {
	if k.Hi == 0 {
		return strconv.FormatUint(k.Lo, 10)
	}
	return k.Big().String()
}

// addSat returns k+o, or MaxKey if that overflows.
func (k Key) addSat(o Key) Key {
	s := k.Add(o)
	if s.Less(k) {
		return MaxKey
	}
	return s
}

// subSat returns k-o, or 0 if o > k.
func (k Key) subSat(o Key) Key {
	if k.Less(o) {
		return Key{}
	}
	return k.Sub(o)
}

// pow2 returns 2^shift for shift < 128.
func pow2(shift uint) Key {
	if shift < 64 {
		return Key{Lo: 1 << shift}
	}
	return Key{Hi: 1 << (shift - 64)}
}

// lowMask returns 2^shift-1 for shift <= 128.
func lowMask(shift uint) Key {
	switch {
	case shift >= 128:
		return MaxKey
	case shift >= 64:
		return Key{Hi: 1<<(shift-64) - 1, Lo: ^uint64(0)}
	}
	return Key{Lo: 1<<shift - 1}
}

// or returns the bitwise or of k and o.
func (k Key) or(o Key) Key { return Key{Hi: k.Hi | o.Hi, Lo: k.Lo | o.Lo} }

// and returns the bitwise and of k and o.
func (k Key) and(o Key) Key { return Key{Hi: k.Hi & o.Hi, Lo: k.Lo & o.Lo} }

// alignUp returns the smallest multiple of 2^shift that is >= k, and false if
// that exceeds MaxKey.
func alignUp(k Key, shift uint) (Key, bool) {
	m := lowMask(shift)
	if k.and(m).IsZero() {
		return k, true
	}
	top := k.or(m)
	if top == MaxKey {
		return Key{}, false
	}
	return top.Add64(1), true
}

// withDigit returns k with byte i set to d; the byte must be zero in k.
func (k Key) withDigit(i int, d byte) Key {
	if i < 8 {
		k.Hi |= uint64(d) << (56 - 8*uint(i))
	} else {
		k.Lo |= uint64(d) << (56 - 8*uint(i-8))
	}
	return k
}

// head returns k with all bytes from i on cleared.
func (k Key) head(i int) Key {
	switch {
	case i <= 0:
		return Key{}
	case i < 8:
		return Key{Hi: k.Hi &^ (^uint64(0) >> (8 * uint(i)))}
	case i == 8:
		return Key{Hi: k.Hi}
	case i < 16:
		return Key{Hi: k.Hi, Lo: k.Lo &^ (^uint64(0) >> (8 * uint(i-8)))}
	}
	return k
}
