package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/moxxie/moxxie/provider"
	"github.com/moxxie/moxxie/sdn"
)

// The Proxmox SDN mirror.
//
// syncProxmoxSDN writes the intent's zones and vnets into Proxmox's own SDN
// configuration, so that they show in the Proxmox UI and guests can be
// attached to them there. The agents stay the ones that build the links:
// Proxmox names its devices the way the plans do (bridge = vnet ID,
// vxlan_<vnet>), and the mirror gives Proxmox the same MTU, peers, port
// and tags, so that a network reload on a node rebuilds what the agent
// holds rather than something else.
//
// What is Moxxie's. Moxxie never changes or deletes what an operator made
// in Proxmox:
//
//   - A vnet is Moxxie's when its alias starts with sdn.AliasPrefix. The
//     mirror writes "moxxie:<vnet>", the mark the agent puts on its links,
//     followed by the vnet's own alias when it has one. Proxmox writes a
//     vnet's alias into the bridge's ifupdown2 stanza, so a reload sets
//     the agent's mark (or a longer alias starting with it) on the bridge.
//     The mark lives in Proxmox, so it survives restarts and leader
//     changes. An unmarked vnet with an intent vnet's ID is a conflict: it
//     is left alone and reported.
//   - Proxmox zones have no field to mark them. A zone the intent names is
//     written whoever made it (naming it hands it to Moxxie). A zone the
//     intent no longer names is deleted only when the caller's owned says
//     it is Moxxie's, or when it holds vnets and all of them are marked.
//     Any other zone, an empty one included, is left in place.
//
// Which hosts. A zone goes to the intent's hosts that are in its Nodes (all
// of them when Nodes is empty) and Proxmox's nodes list names exactly
// those, so that Proxmox deploys nothing where no agent runs; a zone
// without such hosts is not written (and deleted if it was). A vlan zone
// needs one bridge for all its nodes: the hosts' common uplink, which must
// be a Linux bridge for Proxmox (vmbr0). When the hosts' uplinks differ the
// zone and its vnets are left as they are and reported.

// sdnPlatform is what syncProxmoxSDN needs of a provider.
type sdnPlatform interface {
	provider.SDN
	WaitTask(ctx context.Context, task provider.Task, progress func(provider.TaskStatus)) (provider.TaskStatus, error)
}

// proxmoxAliasMax is the longest vnet alias Proxmox takes.
const proxmoxAliasMax = 256

// proxmoxSDN is what Proxmox should hold for an intent.
type proxmoxSDN struct {
	zones map[string]provider.SDNZone
	vnets map[string]provider.SDNVnet
	// heldZones are intent zones that cannot be written now, and
	// heldVnets their vnets: Proxmox keeps what it has of them.
	heldZones map[string]bool
	heldVnets map[string]bool
}

// proxmoxSDNFor returns the zones and vnets Proxmox should hold for in,
// and why some zones are held back.
func proxmoxSDNFor(in sdn.Intent) (proxmoxSDN, []error) {
	want := proxmoxSDN{
		zones: map[string]provider.SDNZone{}, vnets: map[string]provider.SDNVnet{},
		heldZones: map[string]bool{}, heldVnets: map[string]bool{},
	}
	var errs []error
	types := map[string]sdn.ZoneType{}
	for _, z := range in.Zones {
		hosts := zoneHosts(z, in.Hosts)
		if len(hosts) == 0 {
			continue
		}
		pz := provider.SDNZone{ID: z.ID, Type: string(z.Type), MTU: proxmoxZoneMTU(z, hosts)}
		for _, h := range hosts {
			pz.Nodes = append(pz.Nodes, h.Name)
		}
		switch z.Type {
		case sdn.ZoneVLAN:
			uplinks := map[string]bool{}
			for _, h := range hosts {
				if h.Uplink != "" {
					uplinks[h.Uplink] = true
				}
			}
			if len(uplinks) != 1 {
				want.heldZones[z.ID] = true
				errs = append(errs, fmt.Errorf("zone %s: a Proxmox vlan zone has one bridge for all its nodes, and its hosts' uplinks are %q", z.ID, slices.Sorted(maps.Keys(uplinks))))
				continue
			}
			for u := range uplinks {
				pz.Bridge = u
			}
		case sdn.ZoneVXLAN:
			for _, h := range hosts {
				pz.Peers = append(pz.Peers, h.Address)
			}
			if z.Port != sdn.DefaultVXLANPort {
				pz.Port = z.Port
			}
		}
		slices.Sort(pz.Nodes)
		slices.Sort(pz.Peers)
		pz.Peers = slices.Compact(pz.Peers)
		want.zones[z.ID] = pz
		types[z.ID] = z.Type
	}
	for _, v := range in.Vnets {
		if want.heldZones[v.Zone] {
			want.heldVnets[v.ID] = true
			continue
		}
		zt, ok := types[v.Zone]
		if !ok {
			continue
		}
		pv := provider.SDNVnet{ID: v.ID, Zone: v.Zone, Tag: v.Tag, Alias: proxmoxVnetAlias(v)}
		if zt == sdn.ZoneSimple {
			pv.Tag = 0
		}
		want.vnets[v.ID] = pv
	}
	return want, errs
}

// zoneHosts returns the hosts of in a zone spans, in intent order.
func zoneHosts(z sdn.Zone, hosts []sdn.Host) []sdn.Host {
	if len(z.Nodes) == 0 {
		return hosts
	}
	var out []sdn.Host
	for _, h := range hosts {
		if slices.Contains(z.Nodes, h.Name) {
			out = append(out, h)
		}
	}
	return out
}

// proxmoxZoneMTU is the MTU of a zone's vnets as sdn.Compile derives it:
// the zone's own, else 1500 for simple zones, else the smallest uplink
// MTU of the zone's hosts, less the VXLAN overhead for vxlan zones (over
// IPv6 when the hosts' underlay is IPv6; Compile refuses a mix).
func proxmoxZoneMTU(z sdn.Zone, hosts []sdn.Host) int {
	if z.MTU != 0 {
		return z.MTU
	}
	if z.Type == sdn.ZoneSimple {
		return sdn.DefaultMTU
	}
	mtu, v6 := 0, false
	for _, h := range hosts {
		m := cmp.Or(h.MTU, sdn.DefaultMTU)
		if mtu == 0 || m < mtu {
			mtu = m
		}
		if a, err := netip.ParseAddr(h.Address); err == nil && a.Unmap().Is6() {
			v6 = true
		}
	}
	mtu = cmp.Or(mtu, sdn.DefaultMTU)
	switch {
	case z.Type != sdn.ZoneVXLAN:
		return mtu
	case v6:
		return mtu - sdn.VXLANOverhead6
	default:
		return mtu - sdn.VXLANOverhead4
	}
}

// proxmoxVnetAlias is the alias the mirror gives a vnet in Proxmox: the
// mark sdn.AliasPrefix + ID, then the vnet's own alias with the characters
// Proxmox's alias pattern refuses replaced by "_", at most 256 in all.
func proxmoxVnetAlias(v sdn.Vnet) string {
	a := sdn.AliasPrefix + v.ID
	if v.Alias != "" {
		a += " " + strings.Map(aliasRune, v.Alias)
	}
	if len(a) > proxmoxAliasMax {
		a = a[:proxmoxAliasMax]
	}
	return a
}

// aliasRune keeps a rune Proxmox's vnet alias pattern, [\(\)-_.\w\d\s],
// allows and replaces others by "_": the range from ")" to "_" holds the
// digits, the capitals and most punctuation, \w adds the small letters;
// of the spaces only " " is kept, as a line break is refused.
func aliasRune(r rune) rune {
	if r == '(' || r >= ')' && r <= '_' || r >= 'a' && r <= 'z' || r == ' ' {
		return r
	}
	return '_'
}

// moxxieVnet reports whether a Proxmox vnet carries Moxxie's mark.
func moxxieVnet(v provider.SDNVnet) bool { return strings.HasPrefix(v.Alias, sdn.AliasPrefix) }

// syncProxmoxSDN makes Proxmox's SDN configuration hold the zones and
// vnets of in, as described at the top of this file: it creates what is
// missing, updates what differs (a zone whose type changed is deleted and
// created again, with its vnets), deletes Moxxie's vnets and zones that in
// no longer has, and applies the configuration once, waiting for the
// reload task, when it changed anything or when some of Moxxie's objects
// were still pending from an earlier run. When nothing differs it makes no
// change and does not apply. owned (nil: none) tells which zones Moxxie
// created, beyond those holding only its vnets.
//
// It returns what it did ("create zone z1 (vxlan)", "update vnet v1: tag
// 10 -> 20", "apply"), and an error joining every failure: a failed
// change does not stop the others, and what succeeded is applied.
func syncProxmoxSDN(ctx context.Context, p sdnPlatform, in sdn.Intent, owned func(zoneID string) bool) ([]string, error) {
	if owned == nil {
		owned = func(string) bool { return false }
	}
	want, errs := proxmoxSDNFor(in)
	zoneList, err := p.SDNZones(ctx)
	if err != nil {
		return nil, fmt.Errorf("proxmox sdn: %w", err)
	}
	vnetList, err := p.SDNVnets(ctx)
	if err != nil {
		return nil, fmt.Errorf("proxmox sdn: %w", err)
	}
	s := &sdnSync{ctx: ctx, errs: errs, zones: map[string]provider.SDNZone{}, vnets: map[string]provider.SDNVnet{}}
	for _, z := range zoneList {
		if z.Pending != "deleted" {
			s.zones[z.ID] = z
		}
	}
	for _, v := range vnetList {
		if v.Pending != "deleted" {
			s.vnets[v.ID] = v
		}
	}

	// Which zones are Moxxie's to delete, judged on what Proxmox held
	// before this run.
	ours := map[string]bool{}
	marked, foreign := map[string]int{}, map[string]int{}
	for _, v := range s.vnets {
		if moxxieVnet(v) {
			marked[v.Zone]++
		} else {
			foreign[v.Zone]++
		}
	}
	for id := range s.zones {
		ours[id] = owned(id) || marked[id] > 0 && foreign[id] == 0
	}
	// Moxxie's objects with changes an earlier run made but did not
	// apply.
	pending := false
	for _, z := range zoneList {
		_, wanted := want.zones[z.ID]
		pending = pending || z.Pending != "" && (wanted || want.heldZones[z.ID] || owned(z.ID) || ours[z.ID])
	}
	for _, v := range vnetList {
		pending = pending || v.Pending != "" && moxxieVnet(v)
	}

	// Zones of another type are deleted and created again, which needs
	// their vnets out of the way; an operator's vnet blocks it.
	recreate, blocked := map[string]bool{}, maps.Clone(want.heldZones)
	for _, id := range slices.Sorted(maps.Keys(want.zones)) {
		cz, ok := s.zones[id]
		if !ok || cz.Type == want.zones[id].Type {
			continue
		}
		if users := s.zoneVnets(id, false); len(users) > 0 {
			blocked[id] = true
			s.errs = append(s.errs, fmt.Errorf("zone %s: cannot change its type from %s to %s in Proxmox: vnets %s are not Moxxie's", id, cz.Type, want.zones[id].Type, strings.Join(users, ", ")))
			continue
		}
		recreate[id] = true
	}

	// 1. Moxxie's vnets that go, or whose zone is recreated.
	for _, id := range slices.Sorted(maps.Keys(s.vnets)) {
		cv := s.vnets[id]
		wv, wanted := want.vnets[id]
		switch {
		case !moxxieVnet(cv), want.heldVnets[id], wanted && blocked[wv.Zone]:
			continue
		case wanted && !recreate[cv.Zone]:
			continue
		}
		if s.do("delete vnet "+id, func() error { return p.DeleteSDNVnet(ctx, id) }) {
			delete(s.vnets, id)
		}
	}
	// 2. Zones whose type changed.
	for _, id := range slices.Sorted(maps.Keys(recreate)) {
		cz := s.zones[id]
		if len(s.zoneVnets(id, true)) > 0 {
			blocked[id] = true // a vnet could not be deleted
			continue
		}
		if s.do(fmt.Sprintf("delete zone %s (type %s -> %s)", id, cz.Type, want.zones[id].Type), func() error { return p.DeleteSDNZone(ctx, id) }) {
			delete(s.zones, id)
		} else {
			blocked[id] = true
		}
	}
	// 3. Zones to create or update.
	for _, id := range slices.Sorted(maps.Keys(want.zones)) {
		wz := want.zones[id]
		cz, ok := s.zones[id]
		switch {
		case blocked[id]:
		case !ok:
			if s.do(fmt.Sprintf("create zone %s (%s)", id, wz.Type), func() error { return p.CreateSDNZone(ctx, wz) }) {
				s.zones[id] = wz
			} else {
				blocked[id] = true
			}
		default:
			if d := zoneDiff(cz, wz); len(d) > 0 {
				if s.do("update zone "+id+": "+strings.Join(d, ", "), func() error { return p.UpdateSDNZone(ctx, wz) }) {
					s.zones[id] = wz
				}
			}
		}
	}
	// 4. Vnets to create or update, in passes while some succeed: a tag
	// moving from one vnet to another succeeds once the other has let it
	// go.
	var todo []string
	for _, id := range slices.Sorted(maps.Keys(want.vnets)) {
		wv := want.vnets[id]
		cv, ok := s.vnets[id]
		switch {
		case blocked[wv.Zone]:
		case ok && !moxxieVnet(cv):
			s.errs = append(s.errs, fmt.Errorf("vnet %s: Proxmox has a vnet of that name that is not Moxxie's (its alias does not start with %q); left alone", id, sdn.AliasPrefix))
		case !ok || len(vnetDiff(cv, wv)) > 0:
			todo = append(todo, id)
		}
	}
	for len(todo) > 0 {
		var failed []string
		var failures []error
		for _, id := range todo {
			wv := want.vnets[id]
			cv, ok := s.vnets[id]
			var err error
			action := fmt.Sprintf("create vnet %s in %s", id, wv.Zone)
			if ok {
				action = "update vnet " + id + ": " + strings.Join(vnetDiff(cv, wv), ", ")
				err = s.try(func() error { return p.UpdateSDNVnet(ctx, wv) })
			} else {
				err = s.try(func() error { return p.CreateSDNVnet(ctx, wv) })
			}
			if err != nil {
				failed = append(failed, id)
				failures = append(failures, fmt.Errorf("%s: %w", action, err))
				continue
			}
			s.actions = append(s.actions, action)
			s.vnets[id] = wv
		}
		if len(failed) == len(todo) || ctx.Err() != nil {
			s.errs = append(s.errs, failures...)
			break
		}
		todo = failed
	}
	// 5. Moxxie's zones that go, now that their vnets have gone or moved.
	for _, id := range slices.Sorted(maps.Keys(s.zones)) {
		if _, wanted := want.zones[id]; wanted || want.heldZones[id] || !ours[id] {
			continue
		}
		if users := s.zoneVnets(id, true); len(users) > 0 {
			s.errs = append(s.errs, fmt.Errorf("zone %s: not deleted from Proxmox: vnets %s use it", id, strings.Join(users, ", ")))
			continue
		}
		if s.do("delete zone "+id, func() error { return p.DeleteSDNZone(ctx, id) }) {
			delete(s.zones, id)
		}
	}
	// 6. Apply once.
	if (s.changed || pending) && ctx.Err() == nil {
		task, err := p.ApplySDN(ctx)
		if err == nil {
			s.actions = append(s.actions, "apply")
			_, err = p.WaitTask(ctx, task, nil)
		}
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("apply: %w", err))
		}
	}
	if err := ctx.Err(); err != nil {
		s.errs = append(s.errs, err)
	}
	if err := errors.Join(s.errs...); err != nil {
		return s.actions, fmt.Errorf("proxmox sdn: %w", err)
	}
	return s.actions, nil
}

// sdnSync is the state of one syncProxmoxSDN run.
type sdnSync struct {
	ctx     context.Context
	zones   map[string]provider.SDNZone // Proxmox's edited configuration, kept current
	vnets   map[string]provider.SDNVnet
	actions []string
	errs    []error
	changed bool
}

// try runs one change unless the context is done.
func (s *sdnSync) try(f func() error) error {
	if err := s.ctx.Err(); err != nil {
		return err
	}
	if err := f(); err != nil {
		return err
	}
	s.changed = true
	return nil
}

// do runs one change and records it as action, or its failure; it reports
// whether the change was made.
func (s *sdnSync) do(action string, f func() error) bool {
	if err := s.try(f); err != nil {
		if s.ctx.Err() == nil {
			s.errs = append(s.errs, fmt.Errorf("%s: %w", action, err))
		}
		return false
	}
	s.actions = append(s.actions, action)
	return true
}

// zoneVnets lists the vnets in zone id: all of them, or only those
// without Moxxie's mark.
func (s *sdnSync) zoneVnets(id string, all bool) []string {
	var out []string
	for _, vid := range slices.Sorted(maps.Keys(s.vnets)) {
		if v := s.vnets[vid]; v.Zone == id && (all || !moxxieVnet(v)) {
			out = append(out, vid)
		}
	}
	return out
}

// zoneDiff describes how zone cur differs from want in what the mirror
// writes.
func zoneDiff(cur, want provider.SDNZone) []string {
	var d []string
	if cur.MTU != want.MTU {
		d = append(d, fmt.Sprintf("mtu %d -> %d", cur.MTU, want.MTU))
	}
	if !slices.Equal(sortedSet(cur.Nodes), sortedSet(want.Nodes)) {
		d = append(d, fmt.Sprintf("nodes %v -> %v", cur.Nodes, want.Nodes))
	}
	if cur.Bridge != want.Bridge {
		d = append(d, fmt.Sprintf("bridge %q -> %q", cur.Bridge, want.Bridge))
	}
	if !slices.Equal(sortedSet(cur.Peers), sortedSet(want.Peers)) {
		d = append(d, fmt.Sprintf("peers %v -> %v", cur.Peers, want.Peers))
	}
	if port := func(p int) int {
		if p == sdn.DefaultVXLANPort {
			return 0
		}
		return p
	}; port(cur.Port) != port(want.Port) {
		d = append(d, fmt.Sprintf("port %d -> %d", cur.Port, want.Port))
	}
	return d
}

// vnetDiff describes how vnet cur differs from want.
func vnetDiff(cur, want provider.SDNVnet) []string {
	var d []string
	if cur.Zone != want.Zone {
		d = append(d, fmt.Sprintf("zone %s -> %s", cur.Zone, want.Zone))
	}
	if cur.Tag != want.Tag {
		d = append(d, fmt.Sprintf("tag %d -> %d", cur.Tag, want.Tag))
	}
	if cur.Alias != want.Alias {
		d = append(d, fmt.Sprintf("alias %q -> %q", cur.Alias, want.Alias))
	}
	return d
}

// sortedSet returns s sorted without duplicates.
func sortedSet(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// The lazy provider forwards the SDN methods like the others.

// sdnCall runs f on the provider.
func (l *lazyProvider) sdnCall(f func(provider.Provider) error) error {
	p, err := l.get()
	if err != nil {
		return err
	}
	return f(p)
}

// SDNZones implements provider.SDN.
func (l *lazyProvider) SDNZones(ctx context.Context) ([]provider.SDNZone, error) {
	p, err := l.get()
	if err != nil {
		return nil, err
	}
	return p.SDNZones(ctx)
}

// CreateSDNZone implements provider.SDN.
func (l *lazyProvider) CreateSDNZone(ctx context.Context, zone provider.SDNZone) error {
	return l.sdnCall(func(p provider.Provider) error { return p.CreateSDNZone(ctx, zone) })
}

// UpdateSDNZone implements provider.SDN.
func (l *lazyProvider) UpdateSDNZone(ctx context.Context, zone provider.SDNZone) error {
	return l.sdnCall(func(p provider.Provider) error { return p.UpdateSDNZone(ctx, zone) })
}

// DeleteSDNZone implements provider.SDN.
func (l *lazyProvider) DeleteSDNZone(ctx context.Context, id string) error {
	return l.sdnCall(func(p provider.Provider) error { return p.DeleteSDNZone(ctx, id) })
}

// SDNVnets implements provider.SDN.
func (l *lazyProvider) SDNVnets(ctx context.Context) ([]provider.SDNVnet, error) {
	p, err := l.get()
	if err != nil {
		return nil, err
	}
	return p.SDNVnets(ctx)
}

// CreateSDNVnet implements provider.SDN.
func (l *lazyProvider) CreateSDNVnet(ctx context.Context, vnet provider.SDNVnet) error {
	return l.sdnCall(func(p provider.Provider) error { return p.CreateSDNVnet(ctx, vnet) })
}

// UpdateSDNVnet implements provider.SDN.
func (l *lazyProvider) UpdateSDNVnet(ctx context.Context, vnet provider.SDNVnet) error {
	return l.sdnCall(func(p provider.Provider) error { return p.UpdateSDNVnet(ctx, vnet) })
}

// DeleteSDNVnet implements provider.SDN.
func (l *lazyProvider) DeleteSDNVnet(ctx context.Context, id string) error {
	return l.sdnCall(func(p provider.Provider) error { return p.DeleteSDNVnet(ctx, id) })
}

// ApplySDN implements provider.SDN.
func (l *lazyProvider) ApplySDN(ctx context.Context) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.ApplySDN(ctx) })
}
