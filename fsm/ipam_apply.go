package fsm

import (
	"errors"
	"fmt"
	"iter"
	"math/big"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/ipam"
	"github.com/moxxie/moxxie/sdn"
)

// AddressList is the result of an address allocation: the addresses in
// the order they were handed out.
type AddressList struct {
	Addresses []*Address `json:"addresses"`
}

// AddressReleased is the result of an address release.
type AddressReleased struct {
	Address *Address `json:"address"`
	// QuarantinedUntil is when the address may be handed out again; absent
	// when it was released with force or the quarantine is off.
	QuarantinedUntil *Timestamp `json:"quarantined_until,omitempty"`
}

// validator is implemented by the commands that check their own input.
type validator interface{ Validate() error }

// validated runs cmd's Validate, if it has one, before apply.
func validated(apply applyFunc) applyFunc {
	return func(txn *memdb.Txn, index uint64, cmd Command) (any, error) {
		if v, ok := cmd.(validator); ok {
			if err := v.Validate(); err != nil {
				return nil, err
			}
		}
		return apply(txn, index, cmd)
	}
}

// --- shared helpers ---------------------------------------------------

func loadSpace(txn *memdb.Txn, id string, sp ipam.Space) ipam.Space {
	raw, err := txn.First(tableSpaces, "id", id)
	must(err)
	if raw != nil {
		sp.Used = raw.(*spaceUsage).Used
	}
	return sp
}

// saveSpace stores sp's usage under id. A row that txn itself made is
// changed in place (see spaceUsage).
func saveSpace(txn *memdb.Txn, index uint64, id string, sp ipam.Space) error {
	raw, err := txn.First(tableSpaces, "id", id)
	must(err)
	if sp.Used.IsZero() {
		if raw == nil {
			return nil
		}
		return remove(txn, tableSpaces, index, raw)
	}
	if raw != nil {
		if u := raw.(*spaceUsage); u.txn == txn {
			u.Used = sp.Used
			return nil
		}
	}
	return insert(txn, tableSpaces, index, &spaceUsage{ID: id, Used: sp.Used, txn: txn})
}

// dropSpace deletes a space's runs and usage.
func dropSpace(txn *memdb.Txn, index uint64, id string) error {
	if _, err := txn.DeleteAll(tableRuns, "id_prefix", id); err != nil {
		return err
	}
	return saveSpace(txn, index, id, ipam.Space{})
}

func prefixNet(p *Prefix) netip.Prefix { return netip.MustParsePrefix(p.Prefix) }

func rootSpace(txn *memdb.Txn, vrf string, is4 bool) (string, ipam.Space) {
	all := netip.MustParsePrefix("::/0")
	if is4 {
		all = netip.MustParsePrefix("0.0.0.0/0")
	}
	id := rootSpaceID(vrf, is4)
	return id, loadSpace(txn, id, ipam.BlockSpace(all))
}

func addrSpace(txn *memdb.Txn, p *Prefix) ipam.Space {
	return loadSpace(txn, addrSpaceID(p.ID), ipam.AddrSpace(prefixNet(p), p.IsPool))
}

func blockSpace(txn *memdb.Txn, p *Prefix) ipam.Space {
	return loadSpace(txn, blockSpaceID(p.ID), ipam.BlockSpace(prefixNet(p)))
}

// parentSpace returns the space p is claimed in: its container's block
// space, or its VRF's root space.
func parentSpace(txn *memdb.Txn, p *Prefix) (string, ipam.Space, error) {
	if p.ParentID == "" {
		id, sp := rootSpace(txn, p.VRF, prefixNet(p).Addr().Is4())
		return id, sp, nil
	}
	parent, err := getPrefix(txn, p.ParentID)
	if err != nil {
		return "", ipam.Space{}, err
	}
	return blockSpaceID(parent.ID), blockSpace(txn, parent), nil
}

func blockRange(p netip.Prefix) (ipam.Key, ipam.Key) {
	return ipam.KeyOf(p.Addr()), ipam.KeyOf(ipam.LastAddr(p))
}

func getPrefix(txn *memdb.Txn, id string) (*Prefix, error) {
	return lookup[Prefix](txn, tablePrefixes, "prefix", id)
}

// enclosing returns the longest prefix of vrf that contains a/bits, with a
// length of at most maxBits, or nil. It costs one lookup per length.
func enclosing(txn *memdb.Txn, vrf string, a netip.Addr, maxBits int) *Prefix {
	for b := maxBits; b >= 0; b-- {
		raw, err := txn.First(tablePrefixes, "cidr", vrf, netip.PrefixFrom(a, b).Masked())
		must(err)
		if raw != nil {
			return raw.(*Prefix)
		}
	}
	return nil
}

func vrfExists(txn *memdb.Txn, vrf string) bool {
	if vrf == DefaultVRF {
		return true
	}
	raw, err := txn.First(tableVRFs, "id", vrf)
	must(err)
	return raw != nil
}

// clockGranularity is how far the leader's time must move before the IPAM
// clock is written again. Allocations come thousands a second; writing
// the clock for each would cost them a row update, and quarantine, the
// only thing the clock protects, is measured in minutes.
const clockGranularity = int64(time.Second)

// ipamNow returns the greatest leader time seen by IPAM commands, now
// included, and records it when it has moved by clockGranularity. So a new
// leader whose clock lags sees a time at most that much below the greatest
// ever seen.
func ipamNow(txn *memdb.Txn, index uint64, now int64) (int64, error) {
	raw, err := txn.First(tableIPAMClock, "id", ipamClockID)
	must(err)
	if raw != nil {
		last := raw.(*ipamClock).Now
		if last >= now {
			return last, nil
		}
		if now-last < clockGranularity {
			return now, nil
		}
	}
	// Nothing blocks on the clock: it needs no table index entry.
	return now, txn.Insert(tableIPAMClock, &ipamClock{ID: ipamClockID, Now: now})
}

// checkNoQuarantine refuses to delete prefix p while addresses released
// from it are in quarantine at now.
func checkNoQuarantine(txn *memdb.Txn, p *Prefix, now int64) error {
	n, _, until := quarantined(txn, p, now)
	if n == 0 {
		return nil
	}
	what := fmt.Sprintf("%d released addresses of %s are", n, p.Prefix)
	if n == 1 {
		what = fmt.Sprintf("a released address of %s is", p.Prefix)
	}
	return fieldErrf("id", ErrConflict, "%s in quarantine until %s; deleting the prefix would drop the quarantine: wait, or delete with force (?force=true, moxxiectl --force)",
		what, time.Unix(0, until).UTC().Format(time.RFC3339))
}

// quarantined counts the released addresses of p whose quarantine lasts
// beyond now, with the earliest and the latest end of it.
func quarantined(txn *memdb.Txn, p *Prefix, now int64) (n int, first, last int64) {
	it, err := txn.Get(tableHolds, "id_prefix", addrSpaceID(p.ID))
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		h := raw.(*storedHold)
		if h.Until <= now {
			continue
		}
		if n == 0 || h.Until < first {
			first = h.Until
		}
		n, last = n+1, max(last, h.Until)
	}
	return n, first, last
}

// exhaustedIn names prefix p in an exhaustion of its addresses and says
// where the addresses that are neither allocated nor free are: kept out by
// IP ranges, or in quarantine and until when. Other errors pass unchanged.
func exhaustedIn(txn *memdb.Txn, p *Prefix, now int64, err error) error {
	var ex *ipam.ExhaustedError
	if !errors.As(err, &ex) {
		return err
	}
	msg := fmt.Sprintf("%s in %s", ex, p.Prefix)
	if n := ipRangesSize(txn, p.ID); n.Sign() > 0 {
		msg += fmt.Sprintf("; IP ranges keep %s out of allocation", n)
	}
	switch n, first, _ := quarantined(txn, p, now); {
	case n == 1:
		msg += fmt.Sprintf("; 1 released address is in quarantine until %s", time.Unix(0, first).UTC().Format(time.RFC3339))
	case n > 1:
		msg += fmt.Sprintf("; %d released addresses are in quarantine, the first until %s", n, time.Unix(0, first).UTC().Format(time.RFC3339))
	}
	return &kindError{kind: ex, msg: msg}
}

// ipRangesSize returns how many addresses the IP ranges of a prefix hold.
func ipRangesSize(txn *memdb.Txn, prefixID string) *big.Int {
	sum := new(big.Int)
	it, err := txn.Get(tableIPRanges, "prefix", prefixID)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		g := raw.(*IPRange)
		lo, hi := netip.MustParseAddr(g.Start).As16(), netip.MustParseAddr(g.End).As16()
		n := new(big.Int).SetBytes(hi[:])
		n.Sub(n, new(big.Int).SetBytes(lo[:]))
		sum.Add(sum, n.Add(n, big.NewInt(1)))
	}
	return sum
}

// drainQuarantine releases every quarantined address whose hold expired
// and returns how many.
func drainQuarantine(txn *memdb.Txn, index uint64, now int64) (int, error) {
	expired := ipam.Expired(txnHolds{txn}, now)
	for _, h := range expired {
		pid, ok := prefixIDOfAddrSpace(h.Space)
		if !ok {
			continue
		}
		raw, err := txn.First(tablePrefixes, "id", pid)
		must(err)
		if raw == nil {
			continue
		}
		sp := addrSpace(txn, raw.(*Prefix))
		if err := sp.Release(txnRuns{txn, h.Space}, h.Key); err != nil {
			return 0, fmt.Errorf("fsm: quarantine of %s: %w", h.Space, err)
		}
		if err := saveSpace(txn, index, h.Space, sp); err != nil {
			return 0, err
		}
	}
	return len(expired), nil
}

// quarantine returns the configured quarantine: the ipam.quarantine
// setting when it parses as a duration of at least zero, else the default.
func quarantine(txn *memdb.Txn) time.Duration {
	raw, err := txn.First(tableSettings, "id", quarantineSetKey)
	must(err)
	if raw != nil {
		if d, err := time.ParseDuration(raw.(*Setting).Value); err == nil && d >= 0 {
			return d
		}
	}
	return ipam.DefaultQuarantine
}

// allocErr names field in an allocator error; errors that are not about
// the request pass through.
func allocErr(field string, err error) error {
	if err == nil {
		return nil
	}
	return fieldErr(field, err)
}

// --- VRFs -------------------------------------------------------------

func applyVRFCreate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*VRFCreateRequest)
	v := req.VRF
	if v.ID == DefaultVRF || vrfExists(txn, v.ID) {
		return nil, fieldErrf("id", ErrConflict, "VRF %s already exists", v.ID)
	}
	v.CreateIndex, v.ModifyIndex, v.CreatedAt = index, index, Timestamp(req.Now)
	if err := insert(txn, tableVRFs, index, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

func applyVRFDelete(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*VRFDeleteRequest)
	if req.ID == DefaultVRF {
		return nil, fieldErrf("id", ErrConflict, "VRF %s always exists and cannot be deleted", DefaultVRF)
	}
	raw, err := txn.First(tableVRFs, "id", req.ID)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, notFound("VRF", req.ID)
	}
	if p, err := txn.First(tablePrefixes, "cidr_prefix", req.ID); err != nil {
		return nil, err
	} else if p != nil {
		return nil, fieldErrf("id", ErrConflict, "VRF %s still holds prefixes, such as %s; delete them first", req.ID, p.(*Prefix).Prefix)
	}
	if err := remove(txn, tableVRFs, index, raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// --- prefixes ---------------------------------------------------------

func applyPrefixCreate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*PrefixCreateRequest)
	p := req.Prefix
	pfx := prefixNet(&p)
	if !vrfExists(txn, p.VRF) {
		return nil, fieldErrf("vrf", ErrInvalid, "VRF %s does not exist", p.VRF)
	}
	if raw, err := txn.First(tablePrefixes, "id", p.ID); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fieldErrf("id", ErrConflict, "prefix %s already exists", p.ID)
	}
	if raw, err := txn.First(tablePrefixes, "cidr", p.VRF, pfx); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fieldErrf("prefix", ErrConflict, "%s already exists in VRF %s (id %s)", pfx, p.VRF, raw.(*Prefix).ID)
	}
	p.ParentID = ""
	if parent := enclosing(txn, p.VRF, pfx.Addr(), pfx.Bits()-1); parent != nil {
		if parent.Status != PrefixContainer {
			return nil, fieldErrf("prefix", ErrConflict, "%s lies inside active prefix %s (id %s); only a container holds child prefixes", pfx, parent.Prefix, parent.ID)
		}
		p.ParentID = parent.ID
	}
	spID, sp, err := parentSpace(txn, &p)
	if err != nil {
		return nil, err
	}
	first, last := blockRange(pfx)
	runs := txnRuns{txn, spID}
	if err := sp.ClaimRange(runs, first, last); err != nil {
		if !errors.Is(err, ipam.ErrInUse) {
			return nil, fieldErr("prefix", err)
		}
		// Prefixes inside the new one, at the same level, occupy it. A
		// container adopts them; anything else overlaps.
		kids := childrenWithin(txn, p.VRF, p.ParentID, pfx)
		if p.Status != PrefixContainer {
			return nil, fieldErrf("prefix", ErrConflict, "%s overlaps %s (id %s); create it as a container to hold it", pfx, kids[0].Prefix, kids[0].ID)
		}
		if err := adopt(txn, index, &p, &sp, runs, kids); err != nil {
			return nil, err
		}
		if err := sp.ClaimRange(runs, first, last); err != nil {
			return nil, fmt.Errorf("fsm: claim %s after adopting its children: %w", pfx, err)
		}
	}
	if err := saveSpace(txn, index, spID, sp); err != nil {
		return nil, err
	}
	if err := checkProject(txn, p.Tenant, p.Project); err != nil {
		return nil, err
	}
	if err := charge(txn, index, p.holding(), true); err != nil {
		return nil, err
	}
	p.CreateIndex, p.ModifyIndex = index, index
	p.CreatedAt, p.UpdatedAt = Timestamp(req.Now), Timestamp(req.Now)
	if err := insert(txn, tablePrefixes, index, &p); err != nil {
		return nil, err
	}
	if p.Gateway != "" && !linkLocalGateway(pfx, netip.MustParseAddr(p.Gateway)) {
		if err := reserveGateway(txn, index, req, &p); err != nil {
			return nil, err
		}
	}
	return prefixView(txn, &p), nil
}

// childrenWithin returns the prefixes of vrf inside pfx whose parent is
// parentID, in address order.
func childrenWithin(txn *memdb.Txn, vrf, parentID string, pfx netip.Prefix) []*Prefix {
	it, err := txn.LowerBound(tablePrefixes, "cidr", vrf, pfx)
	must(err)
	var out []*Prefix
	for raw := it.Next(); raw != nil; raw = it.Next() {
		q := raw.(*Prefix)
		qn := prefixNet(q)
		if q.VRF != vrf || !ipam.Contains(pfx, qn) {
			break
		}
		if q.ParentID == parentID {
			out = append(out, q)
		}
	}
	return out
}

// adopt moves kids from the space they are claimed in (sp, runs) into the
// block space of the new container p.
func adopt(txn *memdb.Txn, index uint64, p *Prefix, sp *ipam.Space, runs txnRuns, kids []*Prefix) error {
	own := ipam.BlockSpace(prefixNet(p))
	ownRuns := txnRuns{txn, blockSpaceID(p.ID)}
	for _, k := range kids {
		first, last := blockRange(prefixNet(k))
		if err := sp.ReleaseRange(runs, first, last); err != nil {
			return fmt.Errorf("fsm: move %s: %w", k.Prefix, err)
		}
		if err := own.ClaimRange(ownRuns, first, last); err != nil {
			return fmt.Errorf("fsm: move %s: %w", k.Prefix, err)
		}
		moved := *k
		moved.ParentID, moved.ModifyIndex = p.ID, index
		if err := insert(txn, tablePrefixes, index, &moved); err != nil {
			return err
		}
	}
	return saveSpace(txn, index, blockSpaceID(p.ID), own)
}

func reserveGateway(txn *memdb.Txn, index uint64, req *PrefixCreateRequest, p *Prefix) error {
	sp := addrSpace(txn, p)
	gw := netip.MustParseAddr(p.Gateway)
	k, err := sp.KeyOf(gw)
	if err != nil {
		return fieldErr("gateway", err)
	}
	if err := sp.Claim(txnRuns{txn, addrSpaceID(p.ID)}, k); err != nil {
		return fieldErr("gateway", err)
	}
	a := &Address{
		ID: req.GatewayID, Address: gw.String(), PrefixID: p.ID, VRF: p.VRF,
		Status: AddressReserved, Tenant: p.Tenant, Project: p.Project, Description: "gateway",
		CreateIndex: index, ModifyIndex: index, CreatedAt: Timestamp(req.Now), UpdatedAt: Timestamp(req.Now),
	}
	if err := charge(txn, index, a.holding(), true); err != nil {
		return err
	}
	if err := insertAddress(txn, a); err != nil {
		return err
	}
	if err := touchTable(txn, tableAddresses, index); err != nil {
		return err
	}
	return saveSpace(txn, index, addrSpaceID(p.ID), sp)
}

func applyPrefixUpdate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*PrefixUpdateRequest)
	old, err := getPrefix(txn, req.ID)
	if err != nil {
		return nil, err
	}
	p := *old
	if req.Tenant != nil {
		p.Tenant = *req.Tenant
	}
	if req.Project != nil {
		p.Project = *req.Project
	}
	if p.Tenant == "" {
		if req.projectRule() {
			return nil, fieldErrf("project", ErrInvalid, "a project needs its tenant, and prefix %s has none: give tenant too", p.Prefix)
		}
		p.Project = ""
	}
	if req.IsPool != nil && *req.IsPool != p.IsPool {
		if err := checkPoolChange(txn, old, *req.IsPool); err != nil {
			return nil, err
		}
		p.IsPool = *req.IsPool
	}
	if err := moveHolding(txn, index, "prefix", p.Prefix, old.holding(), p.holding(), req.Project != nil); err != nil {
		return nil, err
	}
	if req.Description != nil {
		p.Description = *req.Description
	}
	p.ModifyIndex, p.UpdatedAt = index, Timestamp(req.Now)
	if err := insert(txn, tablePrefixes, index, &p); err != nil {
		return nil, err
	}
	return prefixView(txn, &p), nil
}

// checkPoolChange checks that prefix p may become a pool (isPool) or stop
// being one: only an active prefix is a pool, and the addresses that stop
// being usable (network and broadcast, or IPv6's subnet-router anycast)
// must not be taken by an address, an IP range or a quarantine. The
// space's usage counts the same keys either way, since they are free.
func checkPoolChange(txn *memdb.Txn, p *Prefix, isPool bool) error {
	if p.Status != PrefixActive {
		return fieldErrf("is_pool", ErrConflict, "%s is a container; only an active prefix is a pool", p.Prefix)
	}
	if isPool {
		return nil
	}
	pfx := prefixNet(p)
	was := addrSpace(txn, p)
	will := ipam.AddrSpace(pfx, false)
	runs := txnRuns{txn, addrSpaceID(p.ID)}
	for _, a := range []netip.Addr{pfx.Addr(), ipam.LastAddr(pfx)} {
		k := ipam.KeyOf(a)
		if !will.Contains(k) && was.IsUsed(runs, k) {
			return fieldErrf("is_pool", ErrConflict, "%s is taken (by an address, an IP range or a quarantine) and would not be usable in %s as a prefix that is not a pool: free it first", a, p.Prefix)
		}
	}
	return nil
}

func applyPrefixDelete(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*PrefixDeleteRequest)
	p, err := getPrefix(txn, req.ID)
	if err != nil {
		return nil, err
	}
	var kids []*Prefix
	if p.Status == PrefixContainer {
		if sp := blockSpace(txn, p); !sp.Used.IsZero() || req.WholeRule && sp.UsedExact(txnRuns{txn, blockSpaceID(p.ID)}).Sign() != 0 {
			kids = childrenWithin(txn, p.VRF, p.ID, prefixNet(p))
			if len(kids) == 0 {
				return nil, fmt.Errorf("fsm: container %s has used blocks but no children", p.Prefix)
			}
			if !req.Reparent {
				holds, them := fmt.Sprintf("child prefix %s", kids[0].Prefix), "it"
				if len(kids) > 1 {
					holds, them = fmt.Sprintf("%d child prefixes, such as %s", len(kids), kids[0].Prefix), "them"
				}
				return nil, fieldErrf("id", ErrConflict, "container %s still holds %s; delete %s first, or delete the container with reparent to hand %s to its parent", p.Prefix, holds, them, them)
			}
		}
	}
	if raw, err := txn.First(tableSDNSubnets, "prefix", p.ID); err != nil {
		return nil, err
	} else if raw != nil {
		sn := raw.(*SDNSubnet)
		return nil, fieldErrf("id", ErrConflict, "prefix %s is subnet %s of vnet %s; delete the subnet first", p.Prefix, sn.ID, sn.Vnet)
	}
	// Addresses other than the gateway reserved with the prefix block it;
	// that comes first, since force cannot help with it.
	var gateway, held *Address
	n := 0
	for a := range prefixAddresses(txn, p) {
		if a.Address == p.Gateway && a.Status == AddressReserved && gateway == nil {
			gateway = a
			continue
		}
		if n++; held == nil {
			held = a
		}
	}
	switch {
	case n == 1:
		return nil, fieldErrf("id", ErrConflict, "prefix %s still holds address %s; release it first", p.Prefix, held.Address)
	case n > 1:
		return nil, fieldErrf("id", ErrConflict, "prefix %s still holds %d addresses, such as %s; release them first", p.Prefix, n, held.Address)
	}
	if req.KeepQuarantine {
		now, err := ipamNow(txn, index, req.Now)
		if err != nil {
			return nil, err
		}
		if err := checkNoQuarantine(txn, p, now); err != nil {
			return nil, err
		}
	}
	if gateway != nil {
		if err := charge(txn, index, gateway.holding().negate(), false); err != nil {
			return nil, err
		}
		if err := remove(txn, tableAddresses, index, gateway); err != nil {
			return nil, err
		}
	}
	if _, err := txn.DeleteAll(tableIPRanges, "prefix", p.ID); err != nil {
		return nil, err
	}
	if _, err := txn.DeleteAll(tableHolds, "id_prefix", addrSpaceID(p.ID)); err != nil {
		return nil, err
	}
	for _, id := range []string{addrSpaceID(p.ID), blockSpaceID(p.ID)} {
		if err := dropSpace(txn, index, id); err != nil {
			return nil, err
		}
	}
	spID, sp, err := parentSpace(txn, p)
	if err != nil {
		return nil, err
	}
	first, last := blockRange(prefixNet(p))
	if err := sp.ReleaseRange(txnRuns{txn, spID}, first, last); err != nil {
		return nil, fmt.Errorf("fsm: release %s in its parent: %w", p.Prefix, err)
	}
	for _, k := range kids {
		// Inside p, so free in p's parent now that p's block is released.
		first, last := blockRange(prefixNet(k))
		if err := sp.ClaimRange(txnRuns{txn, spID}, first, last); err != nil {
			return nil, fmt.Errorf("fsm: hand %s to the parent of %s: %w", k.Prefix, p.Prefix, err)
		}
		moved := *k
		moved.ParentID, moved.ModifyIndex, moved.UpdatedAt = p.ParentID, index, Timestamp(req.Now)
		if err := insert(txn, tablePrefixes, index, &moved); err != nil {
			return nil, err
		}
	}
	if err := saveSpace(txn, index, spID, sp); err != nil {
		return nil, err
	}
	if err := charge(txn, index, p.holding().negate(), false); err != nil {
		return nil, err
	}
	if err := remove(txn, tablePrefixes, index, p); err != nil {
		return nil, err
	}
	return p, nil
}

func applyPrefixAllocate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*PrefixAllocateRequest)
	parent, err := getPrefix(txn, req.ParentID)
	if err != nil {
		return nil, err
	}
	if parent.Status != PrefixContainer {
		return nil, fieldErrf("prefix_id", ErrConflict, "%s is an active prefix; child prefixes come from containers", parent.Prefix)
	}
	if raw, err := txn.First(tablePrefixes, "id", req.Child.ID); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fieldErrf("id", ErrConflict, "prefix %s already exists", req.Child.ID)
	}
	sp := blockSpace(txn, parent)
	spID := blockSpaceID(parent.ID)
	var child netip.Prefix
	if req.outsideMapped() {
		child, err = sp.NextFreePrefixOutside(txnRuns{txn, spID}, req.Bits, ipam.MappedBlock)
	} else {
		child, err = sp.NextFreePrefix(txnRuns{txn, spID}, req.Bits)
	}
	if err != nil {
		return nil, fieldErr("prefix_length", err)
	}
	if err := saveSpace(txn, index, spID, sp); err != nil {
		return nil, err
	}
	p := req.Child
	p.Prefix, p.VRF, p.ParentID, p.Gateway = child.String(), parent.VRF, parent.ID, ""
	if err := checkProject(txn, p.Tenant, p.Project); err != nil {
		return nil, err
	}
	if err := charge(txn, index, p.holding(), true); err != nil {
		return nil, err
	}
	p.CreateIndex, p.ModifyIndex = index, index
	p.CreatedAt, p.UpdatedAt = Timestamp(req.Now), Timestamp(req.Now)
	if err := insert(txn, tablePrefixes, index, &p); err != nil {
		return nil, err
	}
	return prefixView(txn, &p), nil
}

// activePrefix returns prefix id, which must hold addresses; field names
// the request field that chose it.
func activePrefix(txn *memdb.Txn, id, field string) (*Prefix, error) {
	return confinedActivePrefix(txn, id, field, "")
}

// confinedActivePrefix is activePrefix for a command confined to tenant
// confine (see confined): another tenant's prefix is not found.
func confinedActivePrefix(txn *memdb.Txn, id, field, confine string) (*Prefix, error) {
	p, err := getPrefix(txn, id)
	if err != nil {
		return nil, err
	}
	if !confined(confine, p.Tenant) {
		return nil, notFound("prefix", id)
	}
	if p.Status != PrefixActive {
		return nil, fieldErrf(field, ErrConflict, "%s is a container: addresses come from its active child prefixes (or allocate a child prefix with allocate-prefix)", p.Prefix)
	}
	return p, nil
}

// --- IP ranges --------------------------------------------------------

// holderOf says what holds the used key k of prefix p's address space: an
// address, a quarantine or an IP range.
func holderOf(txn *memdb.Txn, p *Prefix, sp *ipam.Space, k ipam.Key) string {
	a := sp.Addr(k)
	if raw, _ := txn.First(tableAddresses, "addr", p.VRF, a); raw != nil {
		return "allocated as address " + raw.(*Address).ID
	}
	if h, ok := (txnHolds{txn}).Get(addrSpaceID(p.ID), k); ok {
		return "in quarantine until " + time.Unix(0, h.Until).UTC().Format(time.RFC3339)
	}
	if g := ipRangeOf(txn, p.ID, a); g != nil {
		return "in IP range " + g.ID + " (" + g.Start + "-" + g.End + ")"
	}
	return "used"
}

// ipRangeOf returns the IP range of prefix prefixID that holds a, or nil.
func ipRangeOf(txn *memdb.Txn, prefixID string, a netip.Addr) *IPRange {
	it, err := txn.Get(tableIPRanges, "prefix", prefixID)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		g := raw.(*IPRange)
		if lo, hi := netip.MustParseAddr(g.Start), netip.MustParseAddr(g.End); lo.Compare(a) <= 0 && a.Compare(hi) <= 0 {
			return g
		}
	}
	return nil
}

func applyIPRangeCreate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*IPRangeCreateRequest)
	g := req.Range
	p, err := activePrefix(txn, g.PrefixID, "prefix_id")
	if err != nil {
		return nil, err
	}
	if raw, err := txn.First(tableIPRanges, "id", g.ID); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fieldErrf("id", ErrConflict, "IP range %s already exists", g.ID)
	}
	if req.DrainRule {
		now, err := ipamNow(txn, index, req.Now)
		if err != nil {
			return nil, err
		}
		if _, err := drainQuarantine(txn, index, now); err != nil {
			return nil, err
		}
	}
	sp := addrSpace(txn, p)
	first, err := sp.KeyOf(netip.MustParseAddr(g.Start))
	if err != nil {
		return nil, fieldErr("start_address", err)
	}
	last, err := sp.KeyOf(netip.MustParseAddr(g.End))
	if err != nil {
		return nil, fieldErr("end_address", err)
	}
	if err := sp.ClaimRange(txnRuns{txn, addrSpaceID(p.ID)}, first, last); err != nil {
		var iu *ipam.InUseError
		if errors.As(err, &iu) {
			return nil, fieldErrf("start_address", ipam.ErrInUse, "%s: %s", err, holderOf(txn, p, &sp, iu.Key))
		}
		return nil, fieldErr("start_address", err)
	}
	if err := saveSpace(txn, index, addrSpaceID(p.ID), sp); err != nil {
		return nil, err
	}
	g.CreateIndex, g.CreatedAt = index, Timestamp(req.Now)
	if err := insert(txn, tableIPRanges, index, &g); err != nil {
		return nil, err
	}
	return &g, nil
}

func applyIPRangeDelete(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*IPRangeDeleteRequest)
	raw, err := txn.First(tableIPRanges, "id", req.ID)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, notFound("IP range", req.ID)
	}
	g := raw.(*IPRange)
	p, err := getPrefix(txn, g.PrefixID)
	if err != nil {
		return nil, err
	}
	sp := addrSpace(txn, p)
	first, _ := sp.KeyOf(netip.MustParseAddr(g.Start))
	last, _ := sp.KeyOf(netip.MustParseAddr(g.End))
	if err := sp.ReleaseRange(txnRuns{txn, addrSpaceID(p.ID)}, first, last); err != nil {
		return nil, fmt.Errorf("fsm: release IP range %s: %w", g.ID, err)
	}
	if err := saveSpace(txn, index, addrSpaceID(p.ID), sp); err != nil {
		return nil, err
	}
	if err := remove(txn, tableIPRanges, index, g); err != nil {
		return nil, err
	}
	return g, nil
}

// --- addresses --------------------------------------------------------

// insertAddress stores a new address; the caller records the table's
// index once per command (touchTable), not once per address.
func insertAddress(txn *memdb.Txn, a *Address) error {
	return insertAddresses(txn, []*Address{a}, false)
}

// insertAddresses inserts new addresses, refusing an ID that exists
// unless free says a lookahead found none does. It looks every ID up
// before it inserts any: a lookup between two inserts would drop the
// transaction's cache of copied radix nodes (see lookahead).
func insertAddresses(txn *memdb.Txn, as []*Address, free bool) error {
	if !free {
		ids := make([]string, len(as))
		for i, a := range as {
			ids[i] = a.ID
		}
		free = addressIDsFree(txn, ids)
	}
	for i := 0; i < len(as) && !free; i++ {
		if raw, err := txn.First(tableAddresses, "id", as[i].ID); err != nil {
			return err
		} else if raw != nil {
			return fieldErrf("id", ErrConflict, "address %s already exists", as[i].ID)
		}
	}
	for _, a := range as {
		if err := txn.Insert(tableAddresses, a); err != nil {
			return fmt.Errorf("fsm: insert address: %w", err)
		}
	}
	return nil
}

// prefixAddresses yields the addresses of an active prefix in address
// order: the range of the addr index that the prefix covers.
func prefixAddresses(txn *memdb.Txn, p *Prefix) iter.Seq[*Address] {
	return func(yield func(*Address) bool) {
		pfx := prefixNet(p)
		it, err := txn.LowerBound(tableAddresses, "addr", p.VRF, pfx.Addr())
		must(err)
		for raw := it.Next(); raw != nil; raw = it.Next() {
			a := raw.(*Address)
			if a.VRF != p.VRF || a.PrefixID != p.ID {
				return
			}
			if !yield(a) {
				return
			}
		}
	}
}

func applyAddressAllocate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*AddressAllocateRequest)
	now, err := ipamNow(txn, index, req.Now)
	if err != nil {
		return nil, err
	}
	if _, err := drainQuarantine(txn, index, now); err != nil {
		return nil, err
	}
	var p *Prefix
	if req.PrefixID != "" {
		if p, err = confinedActivePrefix(txn, req.PrefixID, "prefix_id", req.Confine); err != nil {
			return nil, err
		}
	} else {
		a := netip.MustParseAddr(req.Address)
		if !vrfExists(txn, req.VRF) {
			return nil, fieldErrf("vrf", ErrInvalid, "VRF %s does not exist", req.VRF)
		}
		if p = enclosing(txn, req.VRF, a, a.BitLen()); p == nil {
			return nil, fieldErrf("address", ErrInvalid, "%s is in no prefix of VRF %s; create the prefix first", a, req.VRF)
		}
		if !confined(req.Confine, p.Tenant) {
			return nil, fieldErrf("address", ErrNotFound, "%s is in no prefix of tenant %s in VRF %s", a, req.Confine, req.VRF)
		}
		if p.Status != PrefixActive {
			return nil, fieldErrf("address", ErrConflict, "%s lies in container %s, not in an active prefix", a, p.Prefix)
		}
	}
	if req.NameRules {
		if err := checkNameRules(txn, "dns_name", req.Tenant, req.DNSName, ""); err != nil {
			return nil, err
		}
	}
	spID := addrSpaceID(p.ID)
	sp := addrSpace(txn, p)
	runs := txnRuns{txn, spID}
	var keys []ipam.Key
	if req.Address != "" {
		k, err := claimAddress(txn, req, p, now, &sp, runs, spID)
		if err != nil {
			return nil, err
		}
		keys = []ipam.Key{k}
	} else if keys, err = sp.NextFree(runs, req.Count); err != nil {
		return nil, fieldErr("count", exhaustedIn(txn, p, now, err))
	}
	if req.Tenant != "" {
		if err := checkProject(txn, req.Tenant, req.Project); err != nil {
			return nil, err
		}
		if err := charge(txn, index, addressHolding(req.Tenant, req.Project, prefixNet(p).Addr().Is4(), len(keys)), true); err != nil {
			return nil, err
		}
	}
	if req.ReverseRule && req.DNSName != "" && req.Tenant != "" {
		vrfs := allVRFs(txn)
		for _, k := range keys {
			if err := checkReverseName(txn, vrfs, "dns_name", req.Tenant, sp.Addr(k), ""); err != nil {
				return nil, err
			}
		}
	}
	out := &AddressList{Addresses: make([]*Address, len(keys))}
	for i, k := range keys {
		out.Addresses[i] = &Address{
			ID: req.IDs[i], Address: sp.Addr(k).String(), PrefixID: p.ID, VRF: p.VRF,
			Status: req.Status, DNSName: req.DNSName, Tenant: req.Tenant, Project: req.Project, Owner: req.Owner, Description: req.Description,
			CreateIndex: index, ModifyIndex: index, CreatedAt: Timestamp(req.Now), UpdatedAt: Timestamp(req.Now),
		}
	}
	if err := insertAddresses(txn, out.Addresses, req.idsFree); err != nil {
		return nil, err
	}
	if err := touchTable(txn, tableAddresses, index); err != nil {
		return nil, err
	}
	if err := saveSpace(txn, index, spID, sp); err != nil {
		return nil, err
	}
	return out, nil
}

// claimAddress claims the requested address of req, lifting its
// quarantine with Force and falling back to the next free one with
// Fallback.
func claimAddress(txn *memdb.Txn, req *AddressAllocateRequest, p *Prefix, now int64, sp *ipam.Space, runs txnRuns, spID string) (ipam.Key, error) {
	a := netip.MustParseAddr(req.Address)
	k, err := sp.KeyOf(a)
	if err != nil {
		return k, fieldErr("address", err)
	}
	holds := txnHolds{txn}
	if req.Force {
		if _, ok := ipam.Lift(holds, spID, k); ok {
			if err := sp.Release(runs, k); err != nil {
				return k, fmt.Errorf("fsm: lift quarantine of %s: %w", a, err)
			}
		}
	}
	if req.Fallback {
		k, err = sp.ClaimOrNext(runs, k)
		return k, allocErr("address", exhaustedIn(txn, p, now, err))
	}
	if err := sp.Claim(runs, k); err != nil {
		if h, ok := holds.Get(spID, k); ok {
			until := time.Unix(0, h.Until).UTC().Format(time.RFC3339)
			return k, fieldErrf("address", ipam.ErrInUse, "%s is in quarantine until %s; ask with force to reuse it now", a, until)
		}
		if raw, _ := txn.First(tableAddresses, "addr", p.VRF, a); raw != nil {
			if holder := raw.(*Address); confined(req.Confine, holder.Tenant) {
				return k, fieldErrf("address", ipam.ErrInUse, "%s is already allocated (id %s)", a, holder.ID)
			}
			// Another tenant's: its ID is not the caller's to see.
			return k, fieldErrf("address", ipam.ErrInUse, "%s is already allocated", a)
		}
		if pid, ok := prefixIDOfAddrSpace(spID); ok {
			if g := ipRangeOf(txn, pid, a); g != nil {
				return k, fieldErrf("address", ipam.ErrInUse, "%s is in IP range %s (%s-%s), which is kept out of allocation", a, g.ID, g.Start, g.End)
			}
		}
		return k, fieldErr("address", err)
	}
	return k, nil
}

func applyAddressUpdate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*AddressUpdateRequest)
	raw, err := txn.First(tableAddresses, "id", req.ID)
	if err != nil {
		return nil, err
	}
	if raw == nil || !confined(req.Confine, raw.(*Address).Tenant) {
		return nil, notFound("address", req.ID)
	}
	old := raw.(*Address)
	a := *old
	for _, f := range []struct {
		dst *string
		src *string
	}{{&a.Status, req.Status}, {&a.DNSName, req.DNSName}, {&a.Tenant, req.Tenant}, {&a.Project, req.Project}, {&a.Owner, req.Owner}, {&a.Description, req.Description}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	if a.Tenant == "" {
		if req.projectRule() {
			return nil, fieldErrf("project", ErrInvalid, "a project needs its tenant, and address %s has none: give tenant too", a.Address)
		}
		a.Project = ""
	}
	if req.NameRules && (a.DNSName != old.DNSName || a.Tenant != old.Tenant) {
		if err := checkNameRules(txn, "dns_name", a.Tenant, a.DNSName, a.ID); err != nil {
			return nil, err
		}
	}
	if req.ReverseRule && a.DNSName != "" && (a.DNSName != old.DNSName || a.Tenant != old.Tenant) {
		if err := checkReverseName(txn, allVRFs(txn), "dns_name", a.Tenant, netip.MustParseAddr(a.Address), a.ID); err != nil {
			return nil, err
		}
	}
	if err := moveHolding(txn, index, "address", a.Address, old.holding(), a.holding(), req.Project != nil); err != nil {
		return nil, err
	}
	a.ModifyIndex, a.UpdatedAt = index, Timestamp(req.Now)
	if err := insert(txn, tableAddresses, index, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

func applyAddressRelease(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*AddressReleaseRequest)
	raw, err := txn.First(tableAddresses, "id", req.ID)
	if err != nil {
		return nil, err
	}
	if raw == nil || !confined(req.Confine, raw.(*Address).Tenant) {
		return nil, notFound("address", req.ID)
	}
	a := raw.(*Address)
	now, err := ipamNow(txn, index, req.Now)
	if err != nil {
		return nil, err
	}
	p, err := getPrefix(txn, a.PrefixID)
	if err != nil {
		return nil, err
	}
	spID := addrSpaceID(p.ID)
	sp := addrSpace(txn, p)
	k, err := sp.KeyOf(netip.MustParseAddr(a.Address))
	if err != nil {
		return nil, fmt.Errorf("fsm: address %s: %w", a.ID, err)
	}
	if err := charge(txn, index, a.holding().negate(), false); err != nil {
		return nil, err
	}
	out := &AddressReleased{Address: a}
	if d := quarantine(txn); req.Force || d == 0 {
		if err := sp.Release(txnRuns{txn, spID}, k); err != nil {
			return nil, fmt.Errorf("fsm: release %s: %w", a.Address, err)
		}
		if err := saveSpace(txn, index, spID, sp); err != nil {
			return nil, err
		}
	} else {
		h, err := ipam.Quarantine(txnHolds{txn}, spID, k, now, d)
		if err != nil {
			return nil, fmt.Errorf("fsm: quarantine %s: %w", a.Address, err)
		}
		until := Timestamp(h.Until)
		out.QuarantinedUntil = &until
	}
	if err := remove(txn, tableAddresses, index, a); err != nil {
		return nil, err
	}
	return out, nil
}

// --- pools ------------------------------------------------------------

func getPool(txn *memdb.Txn, kind, id string) (*Pool, error) {
	raw, err := txn.First(tablePools, "id", id)
	if err != nil {
		return nil, err
	}
	if raw == nil || raw.(*Pool).Kind != kind {
		return nil, notFound(poolNoun(kind), id)
	}
	return raw.(*Pool), nil
}

// zoneOfPool returns the first SDN zone, by ID, whose vnets take their tags
// from pool p, or nil.
func zoneOfPool(txn *memdb.Txn, p *Pool) (*SDNZone, error) {
	it, err := txn.Get(tableSDNZones, "id")
	if err != nil {
		return nil, err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if z := raw.(*SDNZone); z.Pool == p.ID && zonePoolKind(z.Type) == p.Kind {
			return z, nil
		}
	}
	return nil, nil
}

func poolNoun(kind string) string {
	if kind == PoolVNI {
		return "VNI pool"
	}
	return "VLAN group"
}

func itemNoun(kind string) string {
	if kind == PoolVNI {
		return "VNI"
	}
	return "VLAN"
}

func numberField(kind string) string {
	if kind == PoolVNI {
		return "vni"
	}
	return "vid"
}

func applyPoolCreate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*PoolCreateRequest)
	p := req.Pool
	if raw, err := txn.First(tablePools, "id", p.ID); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fieldErrf("id", ErrConflict, "%s %s already exists", poolNoun(p.Kind), p.ID)
	}
	if raw, err := txn.First(tablePools, "name", p.Kind, p.Name); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fieldErrf("name", ErrConflict, "%s %s already exists (id %s)", poolNoun(p.Kind), p.Name, raw.(*Pool).ID)
	}
	if req.TagRule && p.Kind == PoolVNI {
		if v, err := vnetOutsidePool(txn, &p); err != nil {
			return nil, err
		} else if v != nil {
			return nil, fieldErrf("ranges", ErrConflict, "VNI %d is the tag of vnet %s (zone %s), which takes no VNI from this pool: the pool would hand it out again; keep it out of the ranges", v.Tag, v.ID, v.Zone)
		}
	}
	if req.Exclusive && p.Kind == PoolVNI {
		it, err := txn.Get(tablePools, "id")
		if err != nil {
			return nil, err
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			o := raw.(*Pool)
			if o.Kind != PoolVNI {
				continue
			}
			if a, b, ok := ipam.IDRangesOverlap(p.Ranges, o.Ranges, ipam.MinVNI, ipam.MaxVNI); ok {
				return nil, fieldErrf("ranges", ErrConflict, "VNIs %d-%d overlap VNI pool %s (%d-%d): a VNI names one overlay network in every zone, so VNI pools may not share numbers; give this pool other ranges",
					a.First, a.Last, o.Name, b.First, b.Last)
			}
		}
	}
	p.CreateIndex, p.ModifyIndex, p.CreatedAt = index, index, Timestamp(req.Now)
	if err := insert(txn, tablePools, index, &p); err != nil {
		return nil, err
	}
	return poolView(txn, &p), nil
}

func applyPoolUpdate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*PoolUpdateRequest)
	old, err := getPool(txn, req.Kind, req.ID)
	if err != nil {
		return nil, err
	}
	p := *old
	if req.Ranges != nil {
		p.Ranges = slices.Clone(*req.Ranges)
		if _, err := poolSpace(&p); err != nil {
			return nil, err
		}
		if err := checkPoolRanges(txn, &p); err != nil {
			return nil, err
		}
	}
	if req.Name != nil && *req.Name != p.Name {
		if raw, err := txn.First(tablePools, "name", p.Kind, *req.Name); err != nil {
			return nil, err
		} else if raw != nil {
			return nil, fieldErrf("name", ErrConflict, "%s %s already exists (id %s)", poolNoun(p.Kind), *req.Name, raw.(*Pool).ID)
		}
		p.Name = *req.Name
	}
	if req.Description != nil {
		p.Description = *req.Description
	}
	if req.Tenant != nil {
		p.Tenant = *req.Tenant
	}
	p.ModifyIndex = index
	if err := insert(txn, tablePools, index, &p); err != nil {
		return nil, err
	}
	return poolView(txn, &p), nil
}

// checkPoolRanges refuses ranges of pool p that leave out an ID the pool
// has handed out, or, for a VNI pool, that share numbers with another VNI
// pool or take in the tag of a vnet the pool did not hand out.
func checkPoolRanges(txn *memdb.Txn, p *Pool) error {
	it, err := txn.Get(tableIDAllocs, "number_prefix", p.ID)
	if err != nil {
		return err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		a := raw.(*IDAllocation)
		if inIDRanges(p.Ranges, a.Number) {
			continue
		}
		if vnet, ok := strings.CutPrefix(a.Owner, "sdn:vnet/"); ok {
			return fieldErrf("ranges", ErrConflict, "%s %d of %s %s is the tag of vnet %s, outside the new ranges: keep it in a range, or give the vnet another tag first", itemNoun(p.Kind), a.Number, poolNoun(p.Kind), p.Name, vnet)
		}
		return fieldErrf("ranges", ErrConflict, "%s %d (id %s) of %s %s is outside the new ranges: release it first or keep it in a range", itemNoun(p.Kind), a.Number, a.ID, poolNoun(p.Kind), p.Name)
	}
	if p.Kind != PoolVNI {
		return nil
	}
	if v, err := vnetOutsidePool(txn, p); err != nil {
		return err
	} else if v != nil {
		return fieldErrf("ranges", ErrConflict, "VNI %d is the tag of vnet %s (zone %s), which %s %s did not hand out: the pool would hand it out again; keep it out of the ranges", v.Tag, v.ID, v.Zone, poolNoun(p.Kind), p.Name)
	}
	pools, err := txn.Get(tablePools, "id")
	if err != nil {
		return err
	}
	for raw := pools.Next(); raw != nil; raw = pools.Next() {
		o := raw.(*Pool)
		if o.Kind != PoolVNI || o.ID == p.ID {
			continue
		}
		if a, b, ok := ipam.IDRangesOverlap(p.Ranges, o.Ranges, ipam.MinVNI, ipam.MaxVNI); ok {
			return fieldErrf("ranges", ErrConflict, "VNIs %d-%d overlap VNI pool %s (%d-%d): a VNI names one overlay network in every zone, so VNI pools may not share numbers",
				a.First, a.Last, o.Name, b.First, b.Last)
		}
	}
	return nil
}

// inIDRanges reports whether n lies in ranges; no ranges stand for every
// ID, as for a pool created without any.
func inIDRanges(ranges []ipam.IDRange, n int) bool {
	return len(ranges) == 0 || slices.ContainsFunc(ranges, func(r ipam.IDRange) bool { return r.First <= n && n <= r.Last })
}

// vnetOutsidePool returns the first vnet, by ID, of a vxlan zone whose tag
// lies in the ranges of VNI pool p but is not an allocation of p, or nil:
// a VNI names one overlay network in every zone, and p would hand it out
// again.
func vnetOutsidePool(txn *memdb.Txn, p *Pool) (*SDNVnet, error) {
	it, err := txn.Get(tableSDNVnets, "id")
	if err != nil {
		return nil, err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		v := raw.(*SDNVnet)
		if v.Tag == 0 || !inIDRanges(p.Ranges, v.Tag) {
			continue
		}
		z, err := first[SDNZone](txn, tableSDNZones, v.Zone)
		if err != nil {
			return nil, err
		}
		if z == nil || z.Type != sdn.ZoneVXLAN {
			continue
		}
		if v.AllocationID != "" {
			a, err := first[IDAllocation](txn, tableIDAllocs, v.AllocationID)
			if err != nil {
				return nil, err
			}
			if a != nil && a.PoolID == p.ID {
				continue
			}
		}
		return v, nil
	}
	return nil, nil
}

func applyPoolDelete(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*PoolDeleteRequest)
	p, err := getPool(txn, req.Kind, req.ID)
	if err != nil {
		return nil, err
	}
	if raw, err := txn.First(tableIDAllocs, "number_prefix", p.ID); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fieldErrf("id", ErrConflict, "%s %s still has allocations, such as %d; release them first", poolNoun(p.Kind), p.Name, raw.(*IDAllocation).Number)
	}
	if req.ZoneRule {
		if z, err := zoneOfPool(txn, p); err != nil {
			return nil, err
		} else if z != nil {
			return nil, fieldErrf("id", ErrConflict, "%s %s is the pool of SDN zone %s; give the zone another pool or delete the zone first", poolNoun(p.Kind), p.Name, z.ID)
		}
	}
	if err := dropSpace(txn, index, poolSpaceID(p.ID)); err != nil {
		return nil, err
	}
	if err := remove(txn, tablePools, index, p); err != nil {
		return nil, err
	}
	return p, nil
}

func applyIDAllocate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*IDAllocateRequest)
	p, err := getPool(txn, req.Kind, req.PoolID)
	if err != nil {
		return nil, err
	}
	if !confined(req.Confine, p.Tenant) {
		return nil, notFound(poolNoun(p.Kind), req.PoolID)
	}
	if raw, err := txn.First(tableIDAllocs, "id", req.Allocation.ID); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fieldErrf("id", ErrConflict, "allocation %s already exists", req.Allocation.ID)
	}
	if name := req.Allocation.Name; name != "" && req.UniqueName {
		if raw, err := txn.First(tableIDAllocs, "name", p.ID, name); err != nil {
			return nil, err
		} else if raw != nil {
			a := raw.(*IDAllocation)
			if !confined(req.Confine, a.Tenant) {
				// Another tenant's: its number and ID are not the caller's to see.
				return nil, fieldErrf("name", ErrConflict, "another %s of %s %s is named %s already", itemNoun(p.Kind), poolNoun(p.Kind), p.Name, name)
			}
			return nil, fieldErrf("name", ErrConflict, "%s %d of %s %s is named %s already (id %s)", itemNoun(p.Kind), a.Number, poolNoun(p.Kind), p.Name, name, a.ID)
		}
	}
	spID := poolSpaceID(p.ID)
	base, err := poolSpace(p)
	if err != nil {
		return nil, err
	}
	sp := loadSpace(txn, spID, base)
	runs := txnRuns{txn, spID}
	var k ipam.Key
	field := numberField(p.Kind)
	switch {
	case req.Number != 0 && req.Fallback:
		k, err = sp.ClaimOrNext(runs, ipam.IntKey(uint64(req.Number)))
	case req.Number != 0:
		k = ipam.IntKey(uint64(req.Number))
		err = sp.Claim(runs, k)
	default:
		var keys []ipam.Key
		if keys, err = sp.NextFree(runs, 1); err == nil {
			k = keys[0]
		}
	}
	var ex *ipam.ExhaustedError
	if errors.As(err, &ex) {
		err = &kindError{kind: ex, msg: fmt.Sprintf("%s in %s %s", ex, poolNoun(p.Kind), p.Name)}
	}
	if errors.Is(err, ipam.ErrInUse) {
		err = inUseBy(txn, p, req.Number, req.Confine, err)
	}
	if err != nil {
		return nil, fieldErr(field, err)
	}
	if err := saveSpace(txn, index, spID, sp); err != nil {
		return nil, err
	}
	n, _ := k.Uint64()
	a := req.Allocation
	a.Kind, a.PoolID, a.Number = p.Kind, p.ID, int(n)
	if err := checkProject(txn, a.Tenant, a.Project); err != nil {
		return nil, err
	}
	if err := charge(txn, index, a.holding(), true); err != nil {
		return nil, err
	}
	a.CreateIndex, a.CreatedAt = index, Timestamp(req.Now)
	if err := insert(txn, tableIDAllocs, index, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

func applyIDUpdate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*IDUpdateRequest)
	raw, err := txn.First(tableIDAllocs, "id", req.ID)
	if err != nil {
		return nil, err
	}
	if raw == nil || raw.(*IDAllocation).Kind != req.Kind || !confined(req.Confine, raw.(*IDAllocation).Tenant) {
		return nil, notFound(map[string]string{PoolVLAN: "VLAN", PoolVNI: "VNI"}[req.Kind], req.ID)
	}
	old := raw.(*IDAllocation)
	a := *old
	for _, f := range []struct {
		dst *string
		src *string
	}{{&a.Name, req.Name}, {&a.Tenant, req.Tenant}, {&a.Project, req.Project}, {&a.Owner, req.Owner}, {&a.Description, req.Description}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	if a.Tenant == "" {
		if req.Project != nil && *req.Project != "" {
			return nil, fieldErrf("project", ErrInvalid, "a project needs its tenant, and %s %d has none: give tenant too", itemNoun(a.Kind), a.Number)
		}
		a.Project = ""
	}
	if a.Owner != old.Owner || a.Tenant != old.Tenant || a.Project != old.Project {
		field := "owner"
		switch {
		case a.Owner != old.Owner:
		case a.Tenant != old.Tenant:
			field = "tenant"
		default:
			field = "project"
		}
		if err := sdnHoldsTag(txn, old); err != nil {
			return nil, fieldErrf(field, ErrConflict, "%s %d is the tag of vnet %s: it keeps the vnet as its owner and the vnet's tenant", itemNoun(a.Kind), a.Number, strings.TrimPrefix(old.Owner, "sdn:vnet/"))
		}
	}
	if a.Name != old.Name && a.Name != "" {
		if raw, err := txn.First(tableIDAllocs, "name", a.PoolID, a.Name); err != nil {
			return nil, err
		} else if raw != nil {
			o := raw.(*IDAllocation)
			p, err := getPool(txn, a.Kind, a.PoolID)
			if err != nil {
				return nil, err
			}
			if !confined(req.Confine, o.Tenant) {
				// Which one has it is not the confined caller's to see.
				return nil, fieldErrf("name", ErrConflict, "another %s of %s %s is named %s already", itemNoun(a.Kind), poolNoun(a.Kind), p.Name, a.Name)
			}
			return nil, fieldErrf("name", ErrConflict, "%s %d of %s %s is named %s already (id %s)", itemNoun(a.Kind), o.Number, poolNoun(a.Kind), p.Name, a.Name, o.ID)
		}
	}
	if err := moveHolding(txn, index, itemNoun(a.Kind), strconv.Itoa(a.Number), old.holding(), a.holding(), req.Project != nil); err != nil {
		return nil, err
	}
	a.ModifyIndex, a.UpdatedAt = index, Timestamp(req.Now)
	if err := insert(txn, tableIDAllocs, index, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// confined reports whether an object of tenant may be changed by a command
// confined to tenant confine ("": not confined). To a confined caller
// another tenant's object, or one of no tenant, does not exist.
func confined(confine, tenant string) bool {
	return confine == "" || confine == tenant
}

// inUseBy says which allocation holds number n of pool p, for err, that
// it is in use: to a caller confined to tenant confine, only when the
// allocation is that tenant's.
func inUseBy(txn *memdb.Txn, p *Pool, n int, confine string, err error) error {
	raw, ferr := txn.First(tableIDAllocs, "number", p.ID, n)
	if ferr != nil || raw == nil {
		return err
	}
	a := raw.(*IDAllocation)
	if !confined(confine, a.Tenant) {
		return &kindError{kind: ipam.ErrInUse, msg: fmt.Sprintf("%s %d of %s %s is taken", itemNoun(p.Kind), n, poolNoun(p.Kind), p.Name)}
	}
	msg := fmt.Sprintf("%s %d of %s %s is taken (id %s", itemNoun(p.Kind), n, poolNoun(p.Kind), p.Name, a.ID)
	if a.Name != "" {
		msg += ", name " + a.Name
	}
	if a.Owner != "" {
		msg += ", owner " + a.Owner
	}
	return &kindError{kind: ipam.ErrInUse, msg: msg + ")"}
}

func applyIDRelease(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*IDReleaseRequest)
	raw, err := txn.First(tableIDAllocs, "id", req.ID)
	if err != nil {
		return nil, err
	}
	if raw == nil || raw.(*IDAllocation).Kind != req.Kind || !confined(req.Confine, raw.(*IDAllocation).Tenant) {
		return nil, notFound(map[string]string{PoolVLAN: "VLAN", PoolVNI: "VNI"}[req.Kind], req.ID)
	}
	a := raw.(*IDAllocation)
	if err := sdnHoldsTag(txn, a); err != nil {
		return nil, err
	}
	return releaseID(txn, index, a)
}

// releaseID gives a's number back to its pool and uncharges its holder.
func releaseID(txn *memdb.Txn, index uint64, a *IDAllocation) (*IDAllocation, error) {
	p, err := getPool(txn, a.Kind, a.PoolID)
	if err != nil {
		return nil, err
	}
	spID := poolSpaceID(p.ID)
	base, err := poolSpace(p)
	if err != nil {
		return nil, err
	}
	sp := loadSpace(txn, spID, base)
	if err := sp.Release(txnRuns{txn, spID}, ipam.IntKey(uint64(a.Number))); err != nil {
		return nil, fmt.Errorf("fsm: release %d: %w", a.Number, err)
	}
	if err := saveSpace(txn, index, spID, sp); err != nil {
		return nil, err
	}
	if err := charge(txn, index, a.holding().negate(), false); err != nil {
		return nil, err
	}
	if err := remove(txn, tableIDAllocs, index, a); err != nil {
		return nil, err
	}
	return a, nil
}

func applyQuarantineDrain(txn *memdb.Txn, index uint64, c Command) (any, error) {
	now, err := ipamNow(txn, index, c.Meta().Now)
	if err != nil {
		return nil, err
	}
	n, err := drainQuarantine(txn, index, now)
	if err != nil {
		return nil, err
	}
	return map[string]int{"released": n}, nil
}

// --- DNS zones --------------------------------------------------------

func applyZoneCreate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*ZoneCreateRequest)
	z := req.Zone
	if raw, err := txn.First(tableZones, "id", z.ID); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fieldErrf("name", ErrConflict, "zone %s already exists", z.ID)
	}
	if req.NameRules {
		if err := checkZoneNames(txn, &z); err != nil {
			return nil, err
		}
	}
	z.CreateIndex, z.CreatedAt = index, Timestamp(req.Now)
	if err := insert(txn, tableZones, index, &z); err != nil {
		return nil, err
	}
	return &z, nil
}

func applyZoneUpdate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*ZoneUpdateRequest)
	raw, err := txn.First(tableZones, "id", strings.ToLower(strings.TrimSuffix(req.ID, ".")))
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, notFound("zone", req.ID)
	}
	z := *raw.(*Zone)
	if req.TTL != nil {
		z.TTL = *req.TTL
	}
	if req.Description != nil {
		z.Description = *req.Description
	}
	z.ModifyIndex, z.UpdatedAt = index, Timestamp(req.Now)
	if err := insert(txn, tableZones, index, &z); err != nil {
		return nil, err
	}
	return &z, nil
}

func applyZoneDelete(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*ZoneDeleteRequest)
	raw, err := txn.First(tableZones, "id", strings.ToLower(strings.TrimSuffix(req.ID, ".")))
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, notFound("zone", req.ID)
	}
	if err := remove(txn, tableZones, index, raw); err != nil {
		return nil, err
	}
	return raw, nil
}
