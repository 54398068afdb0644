package fsm

import (
	"iter"
	"net/netip"
	"strings"

	"github.com/hashicorp/go-memdb"
)

// The naming rules keep one tenant's addresses out of the DNS names of
// another. An address of tenant T may take a dns_name only
//
//   - outside the zones of other tenants (the most specific zone holding
//     the name has no tenant, or tenant T);
//   - not at the apex of a zone of no tenant, nor at the name server name
//     (ns1.ZONE) that zone advertises;
//   - not while an address that is not T's holds the same name (addresses
//     of one tenant may share a name, for round robin).
//
// Addresses of no tenant, which only administrators and operators make,
// are not restricted. The rules apply to commands whose proposer knew them
// (NameRules): a log written by an earlier version applies as it did.

// nsHost is the name server name every zone advertises (see the DNS
// source in package node).
const nsHost = "ns1."

// checkNameRules returns an error naming field when an address of tenant,
// with ID self (empty for a new one), may not take name.
func checkNameRules(txn *memdb.Txn, field, tenant, name, self string) error {
	if tenant == "" || name == "" {
		return nil
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if z := zoneOf(txn, name); z != nil && zoneBars(z, name, tenant) {
		if z.Tenant != "" {
			return fieldErrf(field, ErrInvalid, "%s lies in a DNS zone of another tenant; name the address in a zone of tenant %s or of no tenant", name, tenant)
		}
		return fieldErrf(field, ErrInvalid, "%s is the apex or the name server of the shared zone %s, which only an address of no tenant may take", name, z.ID)
	}
	it, err := txn.Get(tableAddresses, "dns_name", name)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if a := raw.(*Address); a.ID != self && a.Tenant != tenant {
			return fieldErrf(field, ErrConflict, "%s is the name of an address that is not tenant %s's", name, tenant)
		}
	}
	return nil
}

// checkReverseName returns an error naming field when an address of
// tenant, with ID self, at ip, may not take a DNS name because an address
// that is not the tenant's has a name at the same IP in another VRF. DNS
// serves one reverse tree for every VRF, so both would answer for the IP's
// reverse name, and the later would add its name to the earlier's. It
// looks the IP up in each of vrfs, which allVRFs returns.
func checkReverseName(txn *memdb.Txn, vrfs []string, field, tenant string, ip netip.Addr, self string) error {
	if tenant == "" {
		return nil
	}
	for _, vrf := range vrfs {
		raw, err := txn.First(tableAddresses, "addr", vrf, ip)
		must(err)
		if raw == nil {
			continue
		}
		if a := raw.(*Address); a.ID != self && a.DNSName != "" && a.Tenant != tenant {
			return fieldErrf(field, ErrConflict, "%s has a reverse name already, from an address that is not tenant %s's in another VRF; DNS serves one reverse tree for all VRFs, so this address cannot be named", ip, tenant)
		}
	}
	return nil
}

// allVRFs returns the IDs of every VRF, the default one first.
func allVRFs(txn *memdb.Txn) []string {
	vrfs := []string{DefaultVRF}
	it, err := txn.Get(tableVRFs, "id")
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		vrfs = append(vrfs, raw.(*VRF).ID)
	}
	return vrfs
}

// zoneBars reports whether zone z, serving name, may not serve it for an
// address of tenant (not empty): z is another tenant's, or z has no tenant
// and name is its apex or name server name.
func zoneBars(z *Zone, name, tenant string) bool {
	if z.Tenant != "" {
		return z.Tenant != tenant
	}
	return name == z.ID || name == nsHost+z.ID
}

// checkZoneNames returns an error when new zone z would serve a name the
// naming rules keep out of it: the name of an address of a tenant, in no
// zone more specific than z, that zoneBars refuses. It reads every named
// address, as creating a zone is rare.
func checkZoneNames(txn *memdb.Txn, z *Zone) error {
	for a, name := range namedUnder(txn, z.ID) {
		if a.Tenant == "" {
			continue
		}
		if held := zoneOf(txn, name); held != nil && len(held.ID) > len(z.ID) {
			continue // a zone below z serves it
		}
		if zoneBars(z, name, a.Tenant) {
			return fieldErrf("name", ErrConflict, "zone %s would serve %s, the name of address %s (id %s) of tenant %s, which the naming rules keep out of this zone; rename or release that address first", z.ID, name, a.Address, a.ID, a.Tenant)
		}
	}
	return nil
}

// namedUnder yields the addresses whose DNS name is domain or lies below
// it, with the name in lower case without the final dot. It reads every
// named address.
func namedUnder(txn *memdb.Txn, domain string) iter.Seq2[*Address, string] {
	return func(yield func(*Address, string) bool) {
		it, err := txn.Get(tableAddresses, "dns_name")
		must(err)
		for raw := it.Next(); raw != nil; raw = it.Next() {
			a := raw.(*Address)
			name := strings.ToLower(strings.TrimSuffix(a.DNSName, "."))
			if name != "" && (name == domain || strings.HasSuffix(name, "."+domain)) && !yield(a, name) {
				return
			}
		}
	}
}

// zoneOf returns the most specific zone that holds name, or nil.
func zoneOf(txn *memdb.Txn, name string) *Zone {
	for n := name; n != ""; {
		raw, err := txn.First(tableZones, "id", n)
		must(err)
		if raw != nil {
			return raw.(*Zone)
		}
		i := strings.IndexByte(n, '.')
		if i < 0 {
			break
		}
		n = n[i+1:]
	}
	return nil
}
