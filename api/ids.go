package api

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync"
	"time"
)

// idGen makes object IDs: UUIDv7 (RFC 9562) with a monotonic random tail
// (its method 2). IDs made one after the other sort in creation order and
// share their leading bytes, which keeps insertion into the FSM's radix
// indexes cheap: an allocation of 100 addresses writes 100 neighbouring
// keys instead of 100 random ones (about half the cost per address).
type idGen struct {
	mu     sync.Mutex
	lastMS uint64
	// hi and lo hold the 74 bits after the timestamp: rand_a (12 bits)
	// and rand_b (62 bits), as one counter.
	hi uint16 // 12 bits used
	lo uint64 // 62 bits used
}

var objectIDs idGen

// newID returns the ID of a new object, made on the leader and carried in
// the command, like the time.
func newID() string { return objectIDs.next(time.Now()) }

// NewID returns the ID of a new object for commands the server proposes
// itself, made like the API's.
func NewID() string { return newID() }

func (g *idGen) next(now time.Time) string {
	g.mu.Lock()
	ms := uint64(now.UnixMilli())
	if ms > g.lastMS {
		g.lastMS = ms
		var r [10]byte
		_, _ = rand.Read(r[:])
		// A fresh random tail with its top bit clear, so that the
		// increments of one millisecond cannot overflow it.
		g.hi = binary.BigEndian.Uint16(r[:2]) & 0x07ff
		g.lo = binary.BigEndian.Uint64(r[2:]) & (1<<62 - 1)
	} else {
		// Same millisecond (or the clock stepped back): count on from the
		// last ID, carrying into rand_a and then the timestamp.
		g.lo++
		if g.lo == 1<<62 {
			g.lo = 0
			g.hi++
			if g.hi == 1<<12 {
				g.hi = 0
				g.lastMS++
			}
		}
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:8], g.lastMS<<16|0x7000|uint64(g.hi))
	binary.BigEndian.PutUint64(b[8:16], 0x8000000000000000|g.lo)
	g.mu.Unlock()

	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// looksLikeID reports whether s has the form of an object ID (a UUID, in
// any case), which a name must not have where an object is found by ID or
// name.
func looksLikeID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F') {
				return false
			}
		}
	}
	return true
}
