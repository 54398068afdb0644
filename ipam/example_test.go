package ipam_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/moxxie/moxxie/ipam"
)

func Example() {
	// What the FSM does for POST /v1/ipam/prefixes/{id}/allocate.
	p, err := ipam.ParsePrefix("10.0.0.0/29")
	if err != nil {
		panic(err)
	}
	sp := ipam.AddrSpace(p, false) // sp.Used comes from the stored prefix
	var runs ipam.MemRuns          // the FSM passes its memdb-backed store
	var holds ipam.MemHolds

	gw, _ := sp.KeyOf(netip.MustParseAddr("10.0.0.1"))
	_ = sp.Claim(&runs, gw) // reserve the gateway

	keys, _ := sp.NextFree(&runs, 2)
	for _, k := range keys {
		fmt.Println("allocated", sp.Addr(k))
	}

	// Release the first one at leader time t0: it stays used for 10 minutes.
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	_, _ = ipam.Quarantine(&holds, "prefix-1", keys[0], t0, ipam.DefaultQuarantine)

	_, err = sp.NextFree(&runs, 5)
	fmt.Println(err)

	// A later command drains what has expired and frees it.
	for _, h := range ipam.Expired(&holds, t0+int64(ipam.DefaultQuarantine)) {
		_ = sp.Release(&runs, h.Key)
	}
	keys, _ = sp.NextFree(&runs, 1)
	fmt.Println("allocated", sp.Addr(keys[0]), "used", sp.Used, "of", sp.Size())

	// Output:
	// allocated 10.0.0.2
	// allocated 10.0.0.3
	// 5 requested, 3 available
	// allocated 10.0.0.2 used 3 of 6
}

func ExampleParsePrefix() {
	_, err := ipam.ParsePrefix("10.0.0.5/24")
	fmt.Println(err)
	// Output: 10.0.0.5/24 is not canonical: did you mean 10.0.0.0/24?
}

func ExampleSpace_NextFreePrefix() {
	sp := ipam.BlockSpace(netip.MustParsePrefix("2001:db8::/48"))
	var runs ipam.MemRuns
	for _, bits := range []int{64, 64, 56} {
		p, _ := sp.NextFreePrefix(&runs, bits)
		fmt.Println(p)
	}
	// Output:
	// 2001:db8::/64
	// 2001:db8:0:1::/64
	// 2001:db8:0:100::/56
}
