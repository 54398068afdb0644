package fsm

import (
	"fmt"
	"testing"

	"github.com/moxxie/moxxie/quota"
)

func BenchmarkApplySettingUpsert(b *testing.B) {
	// 1024 keys, so the store has a realistic size and upserts modify.
	entries := make([][]byte, 1024)
	for i := range entries {
		entries[i] = mustEncode(b, &SettingUpsertRequest{
			WriteMeta: WriteMeta{Now: int64(i), Actor: "bench", RequestID: "req"},
			Key:       fmt.Sprintf("settings/key-%04d", i),
			Value:     "a value of some length, like a URL or a duration",
		})
	}
	f := New()
	b.ReportAllocs()
	var index uint64
	for b.Loop() {
		index++
		r := f.Apply(logEntry(index, entries[index%uint64(len(entries))])).(*Result)
		if r.Err != nil {
			b.Fatal(r.Err)
		}
	}
}

func BenchmarkApplyBatch64(b *testing.B) {
	batches := make([][]byte, 16)
	for n := range batches {
		entries := make([][]byte, 64)
		for i := range entries {
			entries[i] = mustEncode(b, &SettingUpsertRequest{
				WriteMeta: WriteMeta{Now: int64(i), Actor: "bench", RequestID: "req"},
				Key:       fmt.Sprintf("settings/key-%02d-%02d", n, i),
				Value:     "a value of some length, like a URL or a duration",
			})
		}
		batches[n] = mustEncode(b, &BatchRequest{Entries: entries})
	}
	f := New()
	b.ReportAllocs()
	var index uint64
	for b.Loop() {
		index++
		rs := f.Apply(logEntry(index, batches[index%uint64(len(batches))])).([]*Result)
		if len(rs) != 64 || rs[63].Err != nil {
			b.Fatalf("results: %d", len(rs))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/command")
}

func BenchmarkEncode(b *testing.B) {
	cmds := []Command{
		&SettingUpsertRequest{
			WriteMeta: WriteMeta{Now: 1, Actor: "bench", RequestID: "req-123", IdempotencyKey: "key", RequestHash: "hash"},
			Key:       "settings/key", Value: "a value of some length, like a URL or a duration", CASIndex: u64(42),
		},
		&TokenCreateRequest{Token: Token{AccessorID: "0b6f3a52-4c1e-4d3a-9a7c-1d2e3f4a5b6c", SecretHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Role: "admin"}},
	}
	for _, c := range cmds {
		b.Run(c.Type().String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Encode(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkApplyAllocate measures one address allocation through Apply
// (memdb runs, usage, address record and indexes), by prefix size and
// fill level: the cost must not grow with either.
func BenchmarkApplyAllocate(b *testing.B) {
	cases := []struct {
		name, cidr string
		fill       func(x *benchIPAM) // leaves the prefix partly used
	}{
		{"24", "10.0.0.0/24", nil},
		{"16", "10.0.0.0/16", nil},
		{"8", "10.0.0.0/8", nil},
		{"16-90pct-full", "10.0.0.0/16", fillNinetyPercent},
		{"64", "2001:db8::/64", nil},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			x := &benchIPAM{b: b, f: New()}
			x.apply(&PrefixCreateRequest{Prefix: Prefix{ID: "p", Prefix: tc.cidr}})
			if tc.fill != nil {
				tc.fill(x)
			} else {
				// The same number of addresses elsewhere, so that every
				// case has tables of the same size and only the prefix's
				// size and fill differ.
				x.apply(&PrefixCreateRequest{Prefix: Prefix{ID: "ballast", Prefix: "172.16.0.0/16"}})
				fillAddresses(x, "ballast", 65534-6554)
			}
			// Allocate and release in turn so that a /24 never fills up
			// and every case does the same work.
			b.ReportAllocs()
			for b.Loop() {
				r := x.apply(&AddressAllocateRequest{PrefixID: "p", Count: 1, IDs: []string{"bench"}})
				x.apply(&AddressReleaseRequest{ID: "bench", Force: true})
				_ = r
			}
		})
	}
}

// fillAddresses allocates n addresses from prefix, with IDs f-0, f-1, ...
func fillAddresses(x *benchIPAM, prefix string, n int) {
	for i := 0; i < n; i += MaxAllocateCount {
		c := min(MaxAllocateCount, n-i)
		ids := make([]string, c)
		for j := range ids {
			ids[j] = fmt.Sprintf("f-%d", i+j)
		}
		x.apply(&AddressAllocateRequest{PrefixID: prefix, Count: c, IDs: ids})
	}
}

type benchIPAM struct {
	b     *testing.B
	f     *FSM
	index uint64
}

func (x *benchIPAM) apply(cmd Command) any {
	x.index++
	buf, err := Encode(cmd)
	if err != nil {
		x.b.Fatal(err)
	}
	r := x.f.Apply(logEntry(x.index, buf)).(*Result)
	if r.Err != nil {
		x.b.Fatalf("%T: %v", cmd, r.Err)
	}
	return r.Value
}

// fillNinetyPercent allocates a /16 and frees every tenth address, so the
// used space is fragmented into thousands of runs.
func fillNinetyPercent(x *benchIPAM) {
	const n = 65534
	fillAddresses(x, "p", n)
	for i := 0; i < n; i += 10 {
		x.apply(&AddressReleaseRequest{ID: fmt.Sprintf("f-%d", i), Force: true})
	}
}

// BenchmarkApplyAllocateCount measures an allocation of 100 addresses
// through Apply, reported per address, in a /8 that keeps filling: bare,
// and keyed, with an idempotency key and an audit entry as the API
// proposes it, so that Apply also stores the JSON of the 100 addresses.
func BenchmarkApplyAllocateCount(b *testing.B) {
	for _, keyed := range []bool{false, true} {
		name := "bare"
		if keyed {
			name = "keyed"
		}
		b.Run(name, func(b *testing.B) {
			x := &benchIPAM{b: b, f: New()}
			x.apply(&PrefixCreateRequest{Prefix: Prefix{ID: "p", Prefix: "10.0.0.0/8"}})
			const n = 100
			b.ReportAllocs()
			seq := 0
			for b.Loop() {
				ids := make([]string, n)
				for j := range ids {
					seq++
					// Consecutive UUIDv7s, as the API makes them.
					ids[j] = fmt.Sprintf("019ab9a5-9e00-7000-8000-%012x", seq)
				}
				req := &AddressAllocateRequest{PrefixID: "p", Count: n, IDs: ids, Owner: "vm:101/net0"}
				if keyed {
					req.WriteMeta = WriteMeta{Now: 1_795_000_000_123_456_789 + int64(seq), Actor: "bench-token", IdempotencyKey: fmt.Sprintf("k-%d", seq), RequestHash: "h", RequestID: fmt.Sprintf("req-%d", seq),
						Audit: &AuditInfo{Role: "admin", Source: "127.0.0.1:40000", Action: "POST /v1/ipam/prefixes/{id}/allocate", Object: "/v1/ipam/prefixes/p/allocate"}}
					req.Owner = fmt.Sprintf("vm:%d/net0", seq%64)
				}
				x.apply(req)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/address")
		})
	}
}

// BenchmarkApplyAllocateBatch64 applies batches of 64 single-address
// allocations with idempotency keys and audit entries, as group commit
// proposes them under load, reported per allocation: without a tenant, and
// for a tenant with a quota (admission and usage counters in each Apply).
func BenchmarkApplyAllocateBatch64(b *testing.B) {
	for _, tenant := range []string{"", "acme"} {
		name := "no-tenant"
		if tenant != "" {
			name = "tenant-quota"
		}
		b.Run(name, func(b *testing.B) {
			x := &benchIPAM{b: b, f: New()}
			x.apply(&TenantCreateRequest{Tenant: Tenant{ID: "acme", Quota: quota.Limits{quota.IPv4: 1 << 40}}})
			x.apply(&PrefixCreateRequest{Prefix: Prefix{ID: "p", Prefix: "10.0.0.0/8"}})
			seq := 0
			next := func() []byte {
				entries := make([][]byte, 64)
				for i := range entries {
					seq++
					entries[i] = mustEncode(b, &AddressAllocateRequest{
						WriteMeta: WriteMeta{Now: int64(seq), Actor: "bench-token", IdempotencyKey: fmt.Sprintf("c%d-%d", seq%64, seq), RequestHash: "h", RequestID: fmt.Sprintf("req-%d", seq),
							Audit: &AuditInfo{Role: "admin", Source: "127.0.0.1:40000", Action: "POST /v1/ipam/prefixes/{id}/allocate", Object: "/v1/ipam/prefixes/p/allocate"}},
						PrefixID: "p", Count: 1, IDs: []string{fmt.Sprintf("019ab9a5-9e00-7000-8000-%012x", seq)}, Owner: fmt.Sprintf("vm:%d/net0", seq), Tenant: tenant,
					})
				}
				return mustEncode(b, &BatchRequest{Entries: entries})
			}
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				batch := next()
				b.StartTimer()
				x.index++
				rs := x.f.Apply(logEntry(x.index, batch)).([]*Result)
				if rs[63].Err != nil {
					b.Fatal(rs[63].Err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/allocation")
		})
	}
}

// BenchmarkApplyAllocateLoadShapes applies what Apply gets from
// scripts/bench-ipam.sh's single-address run through all servers, reported
// per allocation: batches of 30 (the average entry of that run), IDs made
// as the API makes them (consecutive), idempotency keys "RUN-SEQ", and the
// owners moxxiebench sends, vm:C/netI for client C of 64, which land in 64
// places of the owner index. It starts with 51,000 addresses allocated.
func BenchmarkApplyAllocateLoadShapes(b *testing.B) {
	const perBatch, clients = 30, 64
	x := &benchIPAM{b: b, f: New()}
	x.apply(&PrefixCreateRequest{Prefix: Prefix{ID: "p", Prefix: "10.0.0.0/8"}})
	seq := 0
	sent := make([]int, clients)
	batch := func() []byte {
		entries := make([][]byte, perBatch)
		for i := range entries {
			seq++
			c := seq % clients
			entries[i] = mustEncode(b, &AddressAllocateRequest{
				WriteMeta: WriteMeta{Now: int64(seq), Actor: "bench-token", IdempotencyKey: fmt.Sprintf("ca206272-%d", seq), RequestHash: "h", RequestID: fmt.Sprintf("req-%d", seq),
					Audit: &AuditInfo{Role: "admin", Source: "127.0.0.1:40000", Action: "POST /v1/ipam/prefixes/{id}/allocate", Object: "/v1/ipam/prefixes/p/allocate"}},
				PrefixID: "p", Count: 1, IDs: []string{fmt.Sprintf("019ab9a5-9e00-7000-8000-%012x", seq)}, Owner: fmt.Sprintf("vm:%d/net%d", c, sent[c]),
			})
			sent[c]++
		}
		return mustEncode(b, &BatchRequest{Entries: entries})
	}
	for range 1700 {
		x.index++
		x.f.Apply(logEntry(x.index, batch()))
	}
	var batches [][]byte
	b.ReportAllocs()
	for b.Loop() {
		if len(batches) == 0 {
			// Encoded ahead, outside the measurement.
			b.StopTimer()
			for range 500 {
				batches = append(batches, batch())
			}
			b.StartTimer()
		}
		x.index++
		rs := x.f.Apply(logEntry(x.index, batches[0])).([]*Result)
		batches = batches[1:]
		if last := rs[perBatch-1]; last.Err != nil || last.Replayed {
			b.Fatalf("allocation failed or replayed: %v", last.Err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perBatch), "ns/allocation")
}

// BenchmarkMeterTick1000Tenants measures one metering tick a minute after
// the last for 1,000 tenants that each hold guests and addresses: every
// tick accrues into each tenant's hourly bucket and daily rollup.
func BenchmarkMeterTick1000Tenants(b *testing.B) {
	x := &benchIPAM{b: b, f: New()}
	var guests []InvGuest
	for i := range 1000 {
		guests = append(guests, InvGuest{VMID: 1000 + i, Kind: GuestKindVM, Node: "pve1", Status: "running",
			Tenant: fmt.Sprintf("t%04d", i), MaxCPU: 2, MaxMem: 4 << 30, MaxDisk: 32 << 30})
	}
	x.apply(&InventorySyncRequest{Nodes: []InvNode{{Name: "pve1", Status: "online"}}, Guests: guests})
	now := int64(1_795_000_000) * 1e9
	x.apply(&MeterTickRequest{WriteMeta: WriteMeta{Now: now}})
	b.ReportAllocs()
	for b.Loop() {
		now += 60e9
		x.apply(&MeterTickRequest{WriteMeta: WriteMeta{Now: now}})
	}
}

// BenchmarkApplyAllocateQuota measures an allocation and its release
// through Apply without a tenant, for a tenant without a quota (usage is
// counted) and for a tenant and project with quotas (admission checks
// both): what quota admission adds to an allocation's Apply.
func BenchmarkApplyAllocateQuota(b *testing.B) {
	cases := []struct{ name, tenant, project string }{
		{"no-tenant", "", ""},
		{"tenant-without-quota", "free", ""},
		{"tenant-quota", "acme", ""},
		{"project-quota", "acme", "web"},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			x := &benchIPAM{b: b, f: New()}
			x.apply(&TenantCreateRequest{Tenant: Tenant{ID: "acme", Quota: quota.Limits{quota.IPv4: 1 << 40, quota.Guests: 10}}})
			x.apply(&ProjectCreateRequest{Project: Project{ID: "acme/web", Tenant: "acme", Name: "web", Quota: quota.Limits{quota.IPv4: 1 << 40}}})
			x.apply(&PrefixCreateRequest{Prefix: Prefix{ID: "p", Prefix: "10.0.0.0/16"}})
			fillAddresses(x, "p", 10000)
			b.ReportAllocs()
			for b.Loop() {
				x.apply(&AddressAllocateRequest{PrefixID: "p", Count: 1, IDs: []string{"bench"}, Tenant: tc.tenant, Project: tc.project})
				x.apply(&AddressReleaseRequest{ID: "bench", Force: true})
			}
		})
	}
}

// BenchmarkAddressPage reads all of 100,000 addresses at once, and a page
// of 1,000 of them with the cursor of the page before, at the start and
// near the end of the listing, in (VRF, address) order and in ID order
// (one tenant's addresses): the cost of a page does not depend on where
// it starts.
func BenchmarkAddressPage(b *testing.B) {
	x := &benchIPAM{b: b, f: New()}
	x.apply(&TenantCreateRequest{Tenant: Tenant{ID: "acme", Quota: quota.Limits{quota.IPv4: 1 << 40}}})
	x.apply(&PrefixCreateRequest{Prefix: Prefix{ID: "p", Prefix: "10.0.0.0/8"}})
	const n, page = 100_000, 1_000
	for i := 0; i < n; i += MaxAllocateCount {
		c := min(MaxAllocateCount, n-i)
		ids := make([]string, c)
		for j := range ids {
			ids[j] = fmt.Sprintf("019ab9a5-9e00-7000-8000-%012x", i+j)
		}
		x.apply(&AddressAllocateRequest{PrefixID: "p", Count: c, IDs: ids, Tenant: "acme"})
	}
	st := x.f.State()
	b.Run("whole", func(b *testing.B) {
		for b.Loop() {
			if _, l, _ := st.Addresses(nil, AddressFilter{}); len(l) != n {
				b.Fatalf("%d addresses", len(l))
			}
		}
	})
	for _, f := range []AddressFilter{{}, {PrefixID: "p"}, {Tenant: "acme"}} {
		_, all, err := st.Addresses(nil, f)
		if err != nil || len(all) != n {
			b.Fatalf("%+v: %d addresses, %v", f, len(all), err)
		}
		for _, at := range []int{0, n - 2*page} {
			name := fmt.Sprintf("by-%s/at-%d", map[bool]string{true: "id", false: "address"}[f.Tenant != ""], at)
			if f.PrefixID != "" {
				name = fmt.Sprintf("prefix/at-%d", at)
			}
			b.Run(name, func(b *testing.B) {
				f := f
				f.Limit = page
				if at > 0 {
					f.After = AddressCursorOf(all[at-1])
				}
				for b.Loop() {
					if _, l, _ := st.Addresses(nil, f); len(l) != page || l[0] != all[at] {
						b.Fatalf("page at %d starts with %v", at, l[0])
					}
				}
			})
		}
	}
}

// BenchmarkIdempotencyReap measures a reap among 500,000 idempotency
// records (the keyed allocations of a busy hour, 64 per entry): one that
// finds nothing due, and one that deletes the 4,096 oldest, as the leader
// bounds a reap.
func BenchmarkIdempotencyReap(b *testing.B) {
	const n, perEntry = 500_000, 64
	x := &benchIPAM{b: b, f: New()}
	x.apply(&PrefixCreateRequest{Prefix: Prefix{ID: "p", Prefix: "10.0.0.0/8"}})
	for i := 0; i < n; i += perEntry {
		entries := make([][]byte, perEntry)
		for j := range entries {
			s := i + j
			entries[j] = mustEncode(b, &AddressAllocateRequest{
				WriteMeta: WriteMeta{Now: int64(s), Actor: "bench-token", IdempotencyKey: fmt.Sprintf("k-%d", s), RequestHash: "h"},
				PrefixID:  "p", Count: 1, IDs: []string{fmt.Sprintf("a-%d", s)},
			})
		}
		x.index++
		x.f.Apply(logEntry(x.index, mustEncode(b, &BatchRequest{Entries: entries})))
	}
	b.Run("nothing-due", func(b *testing.B) {
		for b.Loop() {
			x.apply(&IdempotencyReapRequest{Before: 0})
		}
	})
	old := int64(-1 << 40)
	for _, due := range []int{1024, 2048, 4096} {
		b.Run(fmt.Sprintf("%d-due", due), func(b *testing.B) {
			// Each round creates due records older than all others and
			// reaps them.
			for b.Loop() {
				b.StopTimer()
				for i := 0; i < due; i += perEntry {
					entries := make([][]byte, perEntry)
					for j := range entries {
						old++
						entries[j] = mustEncode(b, &SettingUpsertRequest{
							WriteMeta: WriteMeta{Now: old, Actor: "bench-token", IdempotencyKey: fmt.Sprintf("old-%d", old), RequestHash: "h"},
							Key:       "k", Value: "v",
						})
					}
					x.index++
					x.f.Apply(logEntry(x.index, mustEncode(b, &BatchRequest{Entries: entries})))
				}
				b.StartTimer()
				if r := x.apply(&IdempotencyReapRequest{Before: 0}).(map[string]int); r["reaped"] != due {
					b.Fatalf("reaped %d, want %d", r["reaped"], due)
				}
			}
		})
	}
}
