package proxmox

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/moxxie/moxxie/provider"
)

// The SDN configuration of Proxmox VE lives in /etc/pve/sdn in two forms:
// the edited files, which the API's zone and vnet routes change, and the
// running configuration, which PUT /cluster/sdn makes of them before it
// starts a reloadnetworkall task that deploys it on every node. A list
// with ?pending=1 shows the running values and how the edited ones differ.
//
// go-proxmox v0.8.2 cannot be used for these routes: its SDNZone has no
// bridge or vxlan-port, its updates send "type" (which the PUT refuses)
// and cannot clear a property, and its lists drop the pending state. The
// requests below go through its generic Get, Post, Put and Delete.

const sdnPath = "/cluster/sdn"

// Properties the SDN types carry; others are left as they are.
var (
	zoneKeys = []string{"mtu", "nodes", "bridge", "peers", "vxlan-port"}
	vnetKeys = []string{"zone", "tag", "alias"}
)

// sdnIntKeys are the properties that are integers; sdnListKeys are
// comma-separated lists, compared as sets.
var (
	sdnIntKeys  = map[string]bool{"mtu": true, "vxlan-port": true, "tag": true}
	sdnListKeys = map[string]bool{"nodes": true, "peers": true}
)

// sdnEntry is one zone or vnet: its properties as strings and its pending
// state.
type sdnEntry struct {
	values  map[string]string
	pending string
}

// sdnList reads the zones or vnets (kind) of the edited configuration and
// their pending states, adding the objects that are deleted but still
// running, sorted by ID (the property idKey).
func (p *Provider) sdnList(ctx context.Context, kind, idKey string) ([]sdnEntry, error) {
	var edited, pending []map[string]json.RawMessage
	if err := p.client.Get(ctx, sdnPath+"/"+kind, &edited); err != nil {
		return nil, err
	}
	if err := p.client.Get(ctx, sdnPath+"/"+kind+"?pending=1", &pending); err != nil {
		return nil, err
	}
	states := map[string]string{}
	var out []sdnEntry
	for _, raw := range pending {
		v := configValues(raw)
		states[v[idKey]] = v["state"]
		if v["state"] == "deleted" {
			// The top-level values of the pending view are the running
			// ones.
			delete(v, "pending")
			out = append(out, sdnEntry{values: v, pending: "deleted"})
		}
	}
	for _, raw := range edited {
		v := configValues(raw)
		if v[idKey] == "" {
			return nil, errors.New("GET " + sdnPath + "/" + kind + ": an entry has no " + idKey)
		}
		if states[v[idKey]] == "deleted" {
			// Changed between the two reads; the edited list is newer.
			out = slices.DeleteFunc(out, func(e sdnEntry) bool { return e.values[idKey] == v[idKey] })
		}
		out = append(out, sdnEntry{values: v, pending: states[v[idKey]]})
	}
	slices.SortFunc(out, func(a, b sdnEntry) int { return strings.Compare(a.values[idKey], b.values[idKey]) })
	return out, nil
}

// SDNZones lists the SDN zones of the edited configuration and those
// deleted from it but still running, sorted by ID.
func (p *Provider) SDNZones(ctx context.Context) ([]provider.SDNZone, error) {
	es, err := p.sdnList(ctx, "zones", "zone")
	if err != nil {
		return nil, p.fail("list SDN zones", err)
	}
	out := make([]provider.SDNZone, 0, len(es))
	for _, e := range es {
		v := e.values
		out = append(out, provider.SDNZone{
			ID: v["zone"], Type: v["type"], MTU: looseInt(v["mtu"]),
			Nodes: sortedList(v["nodes"]), Bridge: v["bridge"], Peers: sortedList(v["peers"]),
			Port: looseInt(v["vxlan-port"]), Pending: e.pending,
		})
	}
	return out, nil
}

// SDNVnets lists the SDN vnets of the edited configuration and those
// deleted from it but still running, sorted by ID.
func (p *Provider) SDNVnets(ctx context.Context) ([]provider.SDNVnet, error) {
	es, err := p.sdnList(ctx, "vnets", "vnet")
	if err != nil {
		return nil, p.fail("list SDN vnets", err)
	}
	out := make([]provider.SDNVnet, 0, len(es))
	for _, e := range es {
		v := e.values
		out = append(out, provider.SDNVnet{
			ID: v["vnet"], Zone: v["zone"], Tag: looseInt(v["tag"]), Alias: v["alias"], Pending: e.pending,
		})
	}
	return out, nil
}

// checkZone refuses a zone Proxmox would refuse for missing or misplaced
// properties, before any request.
func checkZone(op string, z provider.SDNZone) error {
	switch {
	case z.ID == "":
		return reject(op, "zone has no ID")
	case z.Type == "":
		return reject(op, "zone has no type")
	case z.Type == "vlan" && z.Bridge == "":
		return reject(op, "a vlan zone needs a bridge")
	case z.Type == "vxlan" && len(z.Peers) == 0:
		return reject(op, "a vxlan zone needs peers")
	case z.Bridge != "" && z.Type != "vlan" && z.Type != "qinq":
		return reject(op, "only vlan and qinq zones have a bridge")
	case (len(z.Peers) > 0 || z.Port != 0) && z.Type != "vxlan":
		return reject(op, "only vxlan zones have peers and a port")
	case z.MTU < 0 || z.Port < 0 || z.Port > 65535:
		return reject(op, "invalid mtu or port")
	}
	return nil
}

// zoneValues returns z's properties in canonical form, without the empty
// ones.
func zoneValues(z provider.SDNZone) map[string]string {
	v := map[string]string{}
	if z.MTU != 0 {
		v["mtu"] = strconv.Itoa(z.MTU)
	}
	if len(z.Nodes) > 0 {
		v["nodes"] = canonicalList(z.Nodes)
	}
	if z.Bridge != "" {
		v["bridge"] = z.Bridge
	}
	if len(z.Peers) > 0 {
		v["peers"] = canonicalList(z.Peers)
	}
	if z.Port != 0 {
		v["vxlan-port"] = strconv.Itoa(z.Port)
	}
	return v
}

// checkVnet refuses a vnet without ID or zone.
func checkVnet(op string, v provider.SDNVnet) error {
	switch {
	case v.ID == "":
		return reject(op, "vnet has no ID")
	case v.Zone == "":
		return reject(op, "vnet has no zone")
	case v.Tag < 0:
		return reject(op, "negative tag")
	case strings.ContainsAny(v.Alias, "\r\n"):
		return reject(op, "alias has a line break")
	}
	return nil
}

// vnetValues returns v's properties in canonical form, without the empty
// ones.
func vnetValues(v provider.SDNVnet) map[string]string {
	m := map[string]string{"zone": v.Zone}
	if v.Tag != 0 {
		m["tag"] = strconv.Itoa(v.Tag)
	}
	if v.Alias != "" {
		m["alias"] = v.Alias
	}
	return m
}

// CreateSDNZone adds a zone to the edited SDN configuration.
func (p *Provider) CreateSDNZone(ctx context.Context, z provider.SDNZone) error {
	op := "create SDN zone " + z.ID
	if err := checkZone(op, z); err != nil {
		return err
	}
	body := sdnBody(zoneValues(z))
	body["zone"], body["type"] = z.ID, z.Type
	return p.fail(op, p.client.Post(ctx, sdnPath+"/zones", body, nil))
}

// UpdateSDNZone makes zone z.ID of the edited SDN configuration hold z's
// MTU, nodes, bridge, peers and port, deleting those z leaves empty. It
// reads the zone first and sends only what differs, with the digest of
// what it read, so that a concurrent change is refused rather than
// overwritten. A zone's type cannot change: delete it and create it anew.
func (p *Provider) UpdateSDNZone(ctx context.Context, z provider.SDNZone) error {
	op := "update SDN zone " + z.ID
	if err := checkZone(op, z); err != nil {
		return err
	}
	cur, err := p.sdnObject(ctx, "zones", z.ID)
	if err != nil {
		return p.fail(op, err)
	}
	if cur["type"] != z.Type {
		return reject(op, "the zone is of type %s, not %s; its type cannot change", cur["type"], z.Type)
	}
	return p.sdnUpdate(ctx, op, sdnPath+"/zones/"+url.PathEscape(z.ID), cur, zoneValues(z), zoneKeys)
}

// DeleteSDNZone removes a zone from the edited SDN configuration; Proxmox
// refuses while a vnet uses it.
func (p *Provider) DeleteSDNZone(ctx context.Context, id string) error {
	op := "delete SDN zone " + id
	if id == "" {
		return reject(op, "no zone ID")
	}
	return p.fail(op, p.client.Delete(ctx, sdnPath+"/zones/"+url.PathEscape(id), nil))
}

// CreateSDNVnet adds a vnet to the edited SDN configuration.
func (p *Provider) CreateSDNVnet(ctx context.Context, v provider.SDNVnet) error {
	op := "create SDN vnet " + v.ID
	if err := checkVnet(op, v); err != nil {
		return err
	}
	body := sdnBody(vnetValues(v))
	body["vnet"], body["type"] = v.ID, "vnet"
	return p.fail(op, p.client.Post(ctx, sdnPath+"/vnets", body, nil))
}

// UpdateSDNVnet makes vnet v.ID of the edited SDN configuration hold v's
// zone, tag and alias, deleting those v leaves empty, like UpdateSDNZone.
func (p *Provider) UpdateSDNVnet(ctx context.Context, v provider.SDNVnet) error {
	op := "update SDN vnet " + v.ID
	if err := checkVnet(op, v); err != nil {
		return err
	}
	cur, err := p.sdnObject(ctx, "vnets", v.ID)
	if err != nil {
		return p.fail(op, err)
	}
	return p.sdnUpdate(ctx, op, sdnPath+"/vnets/"+url.PathEscape(v.ID), cur, vnetValues(v), vnetKeys)
}

// DeleteSDNVnet removes a vnet from the edited SDN configuration.
func (p *Provider) DeleteSDNVnet(ctx context.Context, id string) error {
	op := "delete SDN vnet " + id
	if id == "" {
		return reject(op, "no vnet ID")
	}
	return p.fail(op, p.client.Delete(ctx, sdnPath+"/vnets/"+url.PathEscape(id), nil))
}

// ApplySDN commits the edited SDN configuration (PUT /cluster/sdn) and
// returns the reloadnetworkall task that deploys it on every node. The
// commit itself is done when ApplySDN returns; the task only reloads the
// nodes' networks.
func (p *Provider) ApplySDN(ctx context.Context) (provider.Task, error) {
	const op = "apply SDN configuration"
	var upid string
	if err := p.client.Put(ctx, sdnPath, map[string]any{}, &upid); err != nil {
		return provider.Task{}, p.fail(op, err)
	}
	if upid == "" {
		return provider.Task{}, p.fail(op, errors.New("PUT "+sdnPath+": no task in the answer"))
	}
	return taskOf(upid, ""), nil
}

// sdnObject reads one zone or vnet of the edited configuration, with the
// configuration's digest.
func (p *Provider) sdnObject(ctx context.Context, kind, id string) (map[string]string, error) {
	var raw map[string]json.RawMessage
	if err := p.client.Get(ctx, sdnPath+"/"+kind+"/"+url.PathEscape(id), &raw); err != nil {
		return nil, err
	}
	return configValues(raw), nil
}

// sdnUpdate sends the PUT that turns the properties keys of cur into
// want: the values that differ, and the keys cur has and want has not
// under "delete". It sends nothing when they agree.
func (p *Provider) sdnUpdate(ctx context.Context, op, path string, cur, want map[string]string, keys []string) error {
	set := map[string]string{}
	var del []string
	for _, k := range keys {
		w, ok := want[k]
		c := canonicalValue(k, cur[k])
		switch {
		case ok && w != c:
			set[k] = w
		case !ok && c != "":
			del = append(del, k)
		}
	}
	if len(set) == 0 && len(del) == 0 {
		return nil
	}
	body := sdnBody(set)
	if len(del) > 0 {
		body["delete"] = strings.Join(del, ",")
	}
	if d := cur["digest"]; d != "" {
		body["digest"] = d
	}
	return p.fail(op, p.client.Put(ctx, path, body, nil))
}

// sdnBody returns canonical values as request parameters, integers as
// JSON numbers.
func sdnBody(v map[string]string) map[string]any {
	body := make(map[string]any, len(v)+3)
	for k, s := range v {
		if n, err := strconv.Atoi(s); err == nil && sdnIntKeys[k] {
			body[k] = n
		} else {
			body[k] = s
		}
	}
	return body
}

// canonicalValue returns a property as Proxmox reported it in the form
// zoneValues and vnetValues produce: integers without fraction, lists
// sorted and comma-separated.
func canonicalValue(key, s string) string {
	switch {
	case s == "":
		return ""
	case sdnIntKeys[key]:
		if n := looseInt(s); n != 0 || s == "0" {
			return strconv.Itoa(n)
		}
	case sdnListKeys[key]:
		return canonicalList(splitList(s))
	}
	return s
}

// canonicalList sorts a list, drops duplicates and joins it with commas.
func canonicalList(items []string) string {
	s := slices.Clone(items)
	slices.Sort(s)
	return strings.Join(slices.Compact(s), ",")
}

// sortedList splits a Proxmox list and sorts it; nil when it is empty.
func sortedList(s string) []string {
	items := splitList(s)
	slices.Sort(items)
	return slices.Compact(items)
}

// looseInt reads an integer Proxmox wrote as a number or a string; zero
// when there is none.
func looseInt(s string) int {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return int(math.Round(f))
}
