package fsm

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/ipam"
	"github.com/moxxie/moxxie/sdn"
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
	// applies counts the SDN applies generated, for rollout IDs.
	applies int
	// shadow applies the log as it is generated, so that SDN reports and
	// aborts can name the rollout that is preparing, as agents and the
	// leader do.
	shadow *FSM
}

func newLogGen(t testing.TB, seed uint64) *logGen {
	return &logGen{t: t, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: 1_000_000, shadow: New()}
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
	if g.rnd.IntN(6) == 0 {
		return g.sdnCommand()
	}
	if g.rnd.IntN(2) == 0 {
		return g.ipamCommand()
	}
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

// Small IPAM universes, so that commands collide: prefixes that nest,
// overlap and repeat, addresses that are taken, released and quarantined.
var (
	genPrefixes = []string{
		"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.0/28", "10.1.2.16/28", "10.1.3.0/30",
		"10.1.3.0/31", "192.168.0.0/24", "fd00::/48", "fd00::/64", "fd00:0:0:1::/64", "fd00::/127",
	}
	genAddrs = []string{"10.1.2.1", "10.1.2.5", "10.1.2.17", "10.1.3.1", "192.168.0.7", "fd00::5", "fd00::1:0:0:9", "10.9.9.9"}
)

func (g *logGen) prefixID() string { return fmt.Sprintf("p%d", g.rnd.IntN(16)) }
func (g *logGen) addrID() string   { return fmt.Sprintf("a%d", g.rnd.IntN(30)) }
func (g *logGen) ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = g.addrID()
	}
	return out
}

// ipamCommand returns one random IPAM or DNS zone command.
func (g *logGen) ipamCommand() Command {
	switch n := g.rnd.IntN(100); {
	case n < 18:
		p := Prefix{
			ID: g.prefixID(), Prefix: genPrefixes[g.rnd.IntN(len(genPrefixes))], VRF: g.pick("", "", "global", "red"),
			Status: g.pick("active", "active", "container"), IsPool: g.rnd.IntN(4) == 0, Tenant: g.pick("", "acme"),
		}
		var gw string
		if p.Status == "active" && g.rnd.IntN(3) == 0 {
			p.Gateway, gw = genAddrs[g.rnd.IntN(len(genAddrs))], g.addrID()
		}
		return &PrefixCreateRequest{WriteMeta: g.meta(), Prefix: p, GatewayID: gw}
	case n < 25:
		return &PrefixDeleteRequest{WriteMeta: g.meta(), ID: g.prefixID(), KeepQuarantine: n%2 == 0}
	case n < 28:
		return &PrefixAllocateRequest{WriteMeta: g.meta(), ParentID: g.prefixID(), Bits: 24 + g.rnd.IntN(8),
			Child: Prefix{ID: g.prefixID(), Status: g.pick("active", "container")}}
	case n < 29:
		return &PrefixUpdateRequest{WriteMeta: g.meta(), ID: g.prefixID(), Tenant: str(g.pick("", "acme", "Bad Name"))}
	case n < 30:
		return &VRFCreateRequest{WriteMeta: g.meta(), VRF: VRF{ID: g.pick("red", "global", "blue")}}
	case n < 31:
		return &VRFDeleteRequest{WriteMeta: g.meta(), ID: g.pick("red", "global", "blue")}
	case n < 34:
		return &IPRangeCreateRequest{WriteMeta: g.meta(), Range: IPRange{ID: fmt.Sprintf("r%d", g.rnd.IntN(4)), PrefixID: g.prefixID(),
			Start: g.pick("10.1.2.3", "192.168.0.100", "fd00::10"), End: g.pick("10.1.2.9", "192.168.0.150", "fd00::20")}}
	case n < 36:
		return &IPRangeDeleteRequest{WriteMeta: g.meta(), ID: fmt.Sprintf("r%d", g.rnd.IntN(4))}
	case n < 56:
		c := 1 + g.rnd.IntN(4)
		return &AddressAllocateRequest{WriteMeta: g.meta(), PrefixID: g.prefixID(), Count: c, IDs: g.ids(c),
			DNSName: g.pick("", "web.moxxie.test", "-bad"), Owner: g.pick("", "vm:101/net0")}
	case n < 64:
		return &AddressAllocateRequest{WriteMeta: g.meta(), PrefixID: g.pick("", g.prefixID()), VRF: g.pick("", "red"),
			Address: genAddrs[g.rnd.IntN(len(genAddrs))], Fallback: g.rnd.IntN(2) == 0, Force: g.rnd.IntN(3) == 0, Count: 1, IDs: g.ids(1)}
	case n < 68:
		return &AddressUpdateRequest{WriteMeta: g.meta(), ID: g.addrID(), Status: str(g.pick("reserved", "deprecated", "gone"))}
	case n < 80:
		return &AddressReleaseRequest{WriteMeta: g.meta(), ID: g.addrID(), Force: g.rnd.IntN(4) == 0}
	case n < 82:
		return &SettingUpsertRequest{WriteMeta: g.meta(), Key: quarantineSetKey, Value: g.pick("0s", "2us", "1h", "junk")}
	case n < 84:
		kind := g.pick(PoolVLAN, PoolVNI)
		return &PoolCreateRequest{WriteMeta: g.meta(), Pool: Pool{ID: fmt.Sprintf("g%d", g.rnd.IntN(3)), Kind: kind, Name: g.pick("a", "b"),
			Ranges: []ipam.IDRange{{First: 100, Last: 100 + g.rnd.IntN(5)}}}}
	case n < 85:
		return &PoolDeleteRequest{WriteMeta: g.meta(), Kind: g.pick(PoolVLAN, PoolVNI), ID: fmt.Sprintf("g%d", g.rnd.IntN(3))}
	case n < 93:
		return &IDAllocateRequest{WriteMeta: g.meta(), Kind: g.pick(PoolVLAN, PoolVNI), PoolID: fmt.Sprintf("g%d", g.rnd.IntN(3)),
			Number: g.rnd.IntN(2) * (99 + g.rnd.IntN(4)), Fallback: g.rnd.IntN(2) == 0, Allocation: IDAllocation{ID: fmt.Sprintf("v%d", g.rnd.IntN(10))}}
	case n < 97:
		return &IDReleaseRequest{WriteMeta: g.meta(), Kind: g.pick(PoolVLAN, PoolVNI), ID: fmt.Sprintf("v%d", g.rnd.IntN(10))}
	case n < 98:
		return &QuarantineDrainRequest{WriteMeta: g.meta()}
	case n < 99:
		return &ZoneCreateRequest{WriteMeta: g.meta(), Zone: Zone{ID: g.pick("moxxie.test", "Moxxie.Test.", "x.in-addr.arpa")}}
	default:
		// An update or a delete by the time, which draws nothing more from
		// the generator: the other commands of a seed's log stay as they
		// were.
		m, id := g.meta(), g.pick("moxxie.test", "other.test")
		if m.Now%2 == 0 {
			return &ZoneUpdateRequest{WriteMeta: m, ID: id, TTL: ptr(uint32(1 + m.Now%600)), Description: ptr(strings.Repeat("d", int(m.Now%3)))}
		}
		return &ZoneDeleteRequest{WriteMeta: m, ID: id}
	}
}

// sdnCommand returns one random SDN command over a small universe: two
// or three hosts, zones of each type (the vxlan and vlan ones with the
// generated pools), vnets that move between them, subnets on the
// generated prefixes, applies, reports of guessed versions and aborts.
func (g *logGen) sdnCommand() Command {
	host := func() string { return g.pick("pve1", "pve2", "pve3") }
	vnet := func() string { return g.pick("v1", "v2", "v3", "v4") }
	rollout := func() string { return fmt.Sprintf("r%d", g.rnd.IntN(max(1, g.applies+1))) }
	_, active, err := g.shadow.State().SDNActiveRollout(nil)
	if err != nil {
		g.t.Fatal(err)
	}
	switch n := g.rnd.IntN(100); {
	case n < 10:
		h := host()
		addr := "192.0.2." + h[3:] // mostly its own; sometimes another's, or none
		if g.rnd.IntN(8) == 0 {
			addr = g.pick("192.0.2.1", "bad")
		}
		return &SDNHostPutRequest{WriteMeta: g.meta(), Host: sdn.Host{
			Name: h, Address: addr, Uplink: g.pick("eno1", "eno1", ""), MTU: g.pick2(0, 9000),
		}}
	case n < 12:
		return &SDNHostDeleteRequest{WriteMeta: g.meta(), Name: host()}
	case n < 20:
		z := sdn.Zone{ID: g.pick("z1", "z2", "z3")}
		switch z.ID {
		case "z1":
			z.Type, z.Pool = sdn.ZoneVXLAN, g.pick("", "g0", "g1")
		case "z2":
			z.Type = sdn.ZoneSimple
		default:
			z.Type, z.Pool = sdn.ZoneVLAN, g.pick("", "g0", "g1", "g2")
		}
		z.MTU = g.pick2(0, 1400)
		if g.rnd.IntN(4) == 0 {
			z.Nodes = []string{"pve1", "pve2"}
		}
		return &SDNZonePutRequest{WriteMeta: g.meta(), Zone: z, Create: g.rnd.IntN(2) == 0}
	case n < 22:
		return &SDNZoneDeleteRequest{WriteMeta: g.meta(), ID: g.pick("z1", "z2", "z3")}
	case n < 36:
		return &SDNVnetPutRequest{WriteMeta: g.meta(), Vnet: sdn.Vnet{
			ID: vnet(), Zone: g.pick("z1", "z2", "z3"), Tag: g.pick2(0, 100+g.rnd.IntN(4)), Tenant: g.pick("", "acme", "other"),
		}, Create: g.rnd.IntN(2) == 0, AllocationID: fmt.Sprintf("sv%d", g.rnd.IntN(20))}
	case n < 40:
		return &SDNVnetDeleteRequest{WriteMeta: g.meta(), ID: vnet()}
	case n < 46:
		return &SDNSubnetPutRequest{WriteMeta: g.meta(), Subnet: sdn.Subnet{
			ID: g.pick("s1", "s2"), Vnet: vnet(), PrefixID: g.prefixID(), Gateway: g.pick("", "10.1.2.1", "192.168.0.1"), SNAT: g.rnd.IntN(3) == 0,
		}, Create: g.rnd.IntN(2) == 0}
	case n < 48:
		return &SDNSubnetDeleteRequest{WriteMeta: g.meta(), ID: g.pick("s1", "s2")}
	case n < 51:
		return &SDNAllowPutRequest{WriteMeta: g.meta(), Allow: sdn.Allow{
			ID: g.pick("a1", "a2"), From: g.pick("tenant:acme", "vnet:v1"), To: g.pick("tenant:other", "vnet:v2", "bad"),
		}, Create: g.rnd.IntN(2) == 0}
	case n < 52:
		return &SDNAllowDeleteRequest{WriteMeta: g.meta(), ID: g.pick("a1", "a2")}
	case n < 64:
		g.applies++
		return &SDNApplyRequest{WriteMeta: g.meta(), RolloutID: fmt.Sprintf("r%d", g.applies), Deadline: Timestamp(g.now + 1e9)}
	case n < 94:
		h, v := host(), uint64(g.rnd.IntN(3))
		if active != nil && g.rnd.IntN(5) != 0 {
			h, v = active.Hosts[g.rnd.IntN(len(active.Hosts))], active.Version
		}
		return &SDNReportRequest{WriteMeta: g.meta(), Host: h, Version: v,
			State: g.pick(SDNStateApplied, SDNStateApplied, SDNStateApplied, SDNStateApplied, SDNStateApplied, SDNStateFailed),
			Error: g.pick("", "boom"), Drift: []string{g.pick("", "v1: mtu")}, Actions: g.rnd.IntN(3)}
	default:
		id := rollout()
		if active != nil && g.rnd.IntN(4) != 0 {
			id = active.ID
		}
		return &SDNRolloutAbortRequest{WriteMeta: g.meta(), RolloutID: id, Reason: g.pick("", "deadline passed")}
	}
}

// pick2 returns a or b.
func (g *logGen) pick2(a, b int) int {
	if g.rnd.IntN(2) == 0 {
		return a
	}
	return b
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

// entry returns the next log entry's data, applied to the shadow FSM.
func (g *logGen) entry() []byte {
	g.index++
	e := g.nextEntry()
	g.shadow.Apply(logEntry(g.index, e))
	return e
}

// unknownIgnorable returns a random message type that carries
// IgnoreUnknownTypeFlag and that no command is registered as: what a newer
// server might propose.
func (g *logGen) unknownIgnorable() MessageType {
	for {
		t := IgnoreUnknownTypeFlag | MessageType(g.rnd.IntN(128))
		if _, known := commands[t]; !known {
			return t
		}
	}
}

func (g *logGen) nextEntry() []byte {
	switch n := g.rnd.IntN(100); {
	case n < 8 && len(g.idem) > 0: // an exact retry of an earlier request
		return g.idem[g.rnd.IntN(len(g.idem))]
	case n < 9:
		return []byte{byte(g.unknownIgnorable()), byte(g.rnd.IntN(256))}
	case n < 24:
		b := &BatchRequest{WriteMeta: g.meta()}
		for range 1 + g.rnd.IntN(10) {
			switch m := g.rnd.IntN(40); {
			case m == 0:
				b.Entries = append(b.Entries, mustEncode(g.t, &BatchRequest{Entries: [][]byte{g.encoded()}}))
			case m == 1:
				// No type is registered as 127.
				b.Entries = append(b.Entries, []byte{byte(IgnoreUnknownTypeFlag) | 127})
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
		// IPAM results hold pointers: compare what they point at.
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprintf("%T %v", v, v)
		}
		return fmt.Sprintf("%T %s", v, b)
	}
}
