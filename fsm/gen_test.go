package fsm

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
)

// logGen generates a random but seeded raft log of mixed commands that
// collide often: few keys, few tokens, reused idempotency keys with
// matching and mismatching request hashes, exact replays, batches
// (sometimes holding a nested batch or an ignorable unknown type) and
// ignorable unknown top-level entries.
type logGen struct {
	t     testing.TB
	rnd   *rand.Rand
	index uint64 // index of the last generated entry
	now   int64
	idem  [][]byte // entries sent with an idempotency key, for replays
}

func newLogGen(t testing.TB, seed uint64) *logGen {
	return &logGen{t: t, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: 1_000_000}
}

func (g *logGen) pick(options ...string) string { return options[g.rnd.IntN(len(options))] }

func (g *logGen) meta() WriteMeta {
	g.now += g.rnd.Int64N(1000)
	m := WriteMeta{
		Now:       g.now,
		Actor:     g.pick("", "alice", "bob", "server:n1"),
		RequestID: fmt.Sprintf("req-%d", g.rnd.IntN(1<<20)),
	}
	if g.rnd.IntN(3) == 0 {
		m.IdempotencyKey = fmt.Sprintf("idem-%d", g.rnd.IntN(40))
		m.RequestHash = g.pick("h1", "h1", "h1", "h2")
	}
	return m
}

func (g *logGen) key() string { return fmt.Sprintf("k%d", g.rnd.IntN(20)) }

func (g *logGen) accessor() string { return fmt.Sprintf("t%d", g.rnd.IntN(12)) }

// command returns one random non-batch command.
func (g *logGen) command() Command {
	switch n := g.rnd.IntN(100); {
	case n < 40:
		c := &SettingUpsertRequest{WriteMeta: g.meta(), Key: g.key(), Value: fmt.Sprintf("v%d", g.rnd.IntN(1000))}
		switch g.rnd.IntN(5) {
		case 0:
			c.CASIndex = u64(0)
		case 1:
			c.CASIndex = u64(g.index - g.rnd.Uint64N(min(g.index, 10)+1))
		}
		return c
	case n < 55:
		return &SettingDeleteRequest{WriteMeta: g.meta(), Key: g.key()}
	case n < 57:
		return &ACLBootstrapRequest{WriteMeta: g.meta(), Token: g.token()}
	case n < 75:
		return &TokenCreateRequest{WriteMeta: g.meta(), Token: g.token()}
	case n < 90:
		return &TokenRevokeRequest{WriteMeta: g.meta(), AccessorID: g.accessor()}
	default:
		return &IdempotencyReapRequest{WriteMeta: g.meta(), Before: g.now - g.rnd.Int64N(50_000)}
	}
}

func (g *logGen) token() Token {
	return Token{
		AccessorID:  g.accessor(),
		SecretHash:  fmt.Sprintf("s%d", g.rnd.IntN(20)),
		Description: g.pick("", "ci", "ops"),
		Role:        g.pick("admin", "operator", "reader"),
		Tenant:      g.pick("", "acme"),
		CreatedAt:   g.now,
		ExpiresAt:   g.now + g.rnd.Int64N(1e9),
	}
}

// encoded encodes a random command, remembering idempotent ones.
func (g *logGen) encoded() []byte {
	c := g.command()
	buf := mustEncode(g.t, c)
	if c.Meta().IdempotencyKey != "" {
		g.idem = append(g.idem, buf)
	}
	return buf
}

// entry returns the next log entry's data.
func (g *logGen) entry() []byte {
	g.index++
	switch n := g.rnd.IntN(100); {
	case n < 8 && len(g.idem) > 0: // an exact retry of an earlier request
		return g.idem[g.rnd.IntN(len(g.idem))]
	case n < 9:
		return []byte{byte(IgnoreUnknownTypeFlag) | byte(g.rnd.IntN(128)), byte(g.rnd.IntN(256))}
	case n < 24:
		b := &BatchRequest{WriteMeta: g.meta()}
		for range 1 + g.rnd.IntN(10) {
			switch m := g.rnd.IntN(40); {
			case m == 0:
				b.Entries = append(b.Entries, mustEncode(g.t, &BatchRequest{Entries: [][]byte{g.encoded()}}))
			case m == 1:
				b.Entries = append(b.Entries, []byte{byte(IgnoreUnknownTypeFlag) | 77})
			case m < 5 && len(g.idem) > 0:
				b.Entries = append(b.Entries, g.idem[g.rnd.IntN(len(g.idem))])
			default:
				b.Entries = append(b.Entries, g.encoded())
			}
		}
		return mustEncode(g.t, b)
	default:
		return g.encoded()
	}
}

// genLog returns n entries; entry i is applied at index i+1.
func genLog(t testing.TB, seed uint64, n int) [][]byte {
	g := newLogGen(t, seed)
	out := make([][]byte, n)
	for i := range out {
		out[i] = g.entry()
	}
	return out
}

// applyLog applies entries at indexes first, first+1, ... and returns a
// printable form of each response.
func applyLog(f *FSM, first uint64, entries [][]byte) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = responseString(f.Apply(logEntry(first+uint64(i), e)))
	}
	return out
}

// responseString renders an Apply response by value, so responses of two
// FSMs can be compared.
func responseString(resp any) string {
	one := func(r *Result) string {
		if r == nil {
			return "<nil result>"
		}
		return fmt.Sprintf("{%+v err=%v replayed=%v}", valueString(r.Value), r.Err, r.Replayed)
	}
	switch v := resp.(type) {
	case nil:
		return "nil"
	case *Result:
		return one(v)
	case []*Result:
		s := "["
		for _, r := range v {
			s += one(r) + " "
		}
		return s + "]"
	default:
		return fmt.Sprintf("unexpected %T", resp)
	}
}

func valueString(v any) string {
	switch v := v.(type) {
	case nil:
		return "<nil>"
	case *Setting:
		return fmt.Sprintf("%+v", *v)
	case *Token:
		return fmt.Sprintf("%+v", *v)
	case json.RawMessage:
		return "raw " + string(v)
	default:
		return fmt.Sprintf("%T %v", v, v)
	}
}
