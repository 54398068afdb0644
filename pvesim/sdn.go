package pvesim

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"maps"
	"strconv"
	"strings"
)

// sdnObj is one zone or vnet as stored in the SDN configuration: its
// properties as strings, "type" included.
type sdnObj map[string]string

// sdnState is the SDN configuration in its three stages: edited (the
// configuration files, pending), running (committed by PUT /cluster/sdn)
// and deployed (what the nodes have, once the reload task has run). It is
// guarded by Sim.mu.
type sdnState struct {
	zones, vnets       map[string]sdnObj
	runZones, runVnets map[string]sdnObj
	depZones, depVnets map[string]sdnObj
}

func (st *sdnState) init() {
	st.zones, st.vnets = map[string]sdnObj{}, map[string]sdnObj{}
	st.runZones, st.runVnets = map[string]sdnObj{}, map[string]sdnObj{}
	st.depZones, st.depVnets = map[string]sdnObj{}, map[string]sdnObj{}
}

// runningZoneIDs lists the zones deployed on node, with the implicit
// "localnetwork" zone every node has.
func (st *sdnState) runningZoneIDs(node string) []string {
	ids := []string{"localnetwork"}
	for _, id := range sortedKeys(st.depZones) {
		if onNode(st.depZones[id], node) {
			ids = append(ids, id)
		}
	}
	return ids
}

func (st *sdnState) runningZoneType(id string) string { return st.depZones[id]["type"] }

// localVnets lists the vnets of the running configuration whose zone is on
// node, as PVE::Network::SDN::get_local_vnets does for the network list.
func (st *sdnState) localVnets(node string) []string {
	var ids []string
	for _, id := range sortedKeys(st.runVnets) {
		if onNode(st.runZones[st.runVnets[id]["zone"]], node) {
			ids = append(ids, id)
		}
	}
	return ids
}

// onNode reports whether zone z is deployed on node: it exists and its
// node list is empty or names the node.
func onNode(z sdnObj, node string) bool {
	if z == nil {
		return false
	}
	if z["nodes"] == "" {
		return true
	}
	for _, n := range splitSDNList(z["nodes"]) {
		if n == node {
			return true
		}
	}
	return false
}

// splitSDNList splits a list like PVE::Tools::split_list.
func splitSDNList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\n' || r == 0 })
}

func copyObjs(m map[string]sdnObj) map[string]sdnObj {
	out := make(map[string]sdnObj, len(m))
	for k, v := range m {
		out[k] = maps.Clone(v)
	}
	return out
}

func cfgDigest(m map[string]sdnObj) string {
	h := sha1.New()
	for _, id := range sortedKeys(m) {
		fmt.Fprintf(h, "%s: %s\n", m[id]["type"], id)
		for _, k := range sortedKeys(m[id]) {
			fmt.Fprintf(h, "\t%s %s\n", k, m[id][k])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

var (
	sdnIntKeys  = set("mtu", "tag", "vrf-vxlan", "vxlan-port", "dp-id")
	sdnBoolKeys = set("advertise-subnets", "bridge-disable-mac-learning", "disable-arp-nd-suppression",
		"exitnodes-local-routing", "vlanaware", "isolate-ports")
)

// sdnJSON renders an object's properties with their API types.
func sdnJSON(o sdnObj) map[string]any {
	out := make(map[string]any, len(o))
	for k, v := range o {
		switch {
		case sdnIntKeys[k]:
			n, err := strconv.Atoi(v)
			if err != nil {
				out[k] = v
			} else {
				out[k] = n
			}
		case sdnBoolKeys[k]:
			out[k] = b2i(boolValue(v))
		default:
			out[k] = v
		}
	}
	return out
}

// pendingView merges the running and edited configurations the way
// PVE::Network::SDN::pending_config does: running values at the top,
// edited ones under "pending", and a "state" of new, changed or deleted.
func pendingView(running, edited map[string]sdnObj) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, ro := range running {
		eo := edited[id]
		e := sdnJSON(ro)
		var state string
		pending := map[string]any{}
		for k := range ro {
			switch {
			case eo == nil:
				state = "deleted"
			case eo[k] == "":
				pending[k] = "deleted"
				state = "changed"
			case eo[k] != ro[k]:
				state = "changed"
			}
		}
		if state != "" {
			e["state"] = state
			e["pending"] = pending
		}
		out[id] = e
	}
	for id, eo := range edited {
		ro := running[id]
		e := out[id]
		if e == nil {
			e = map[string]any{}
			out[id] = e
		}
		pending, _ := e["pending"].(map[string]any)
		if pending == nil {
			pending = map[string]any{}
		}
		typed := sdnJSON(eo)
		for k, v := range eo {
			if k == "type" || k == "vnet" {
				e[k] = typed[k]
				continue
			}
			if ro == nil || ro[k] != v {
				pending[k] = typed[k]
			}
			if ro != nil && ro[k] == "" {
				e["state"] = "changed"
			}
		}
		if ro == nil {
			e["state"] = "new"
		}
		if e["state"] != nil {
			e["pending"] = pending
		}
	}
	return out
}

// sdnParams are the request parameters that are not object properties.
var sdnParams = set("zone", "vnet", "lock-token", "digest", "delete", "pending", "running")

func sdnProps(q *req) sdnObj {
	o := sdnObj{}
	for k := range q.params {
		if !sdnParams[k] {
			o[k] = q.str(k)
		}
	}
	return o
}

func sdnList(q *req, edited, running map[string]sdnObj, idKey string) []map[string]any {
	var src map[string]map[string]any
	switch {
	case q.boolv("pending"):
		src = pendingView(running, edited)
	case q.boolv("running"):
		src = map[string]map[string]any{}
		for id, o := range running {
			src[id] = sdnJSON(o)
		}
	default:
		src = map[string]map[string]any{}
		for id, o := range edited {
			src[id] = sdnJSON(o)
		}
	}
	digest := cfgDigest(edited)
	if q.boolv("running") {
		digest = cfgDigest(running)
	}
	out := []map[string]any{}
	for _, id := range sortedKeys(src) {
		e := src[id]
		if q.has("type") && e["type"] != q.str("type") {
			continue
		}
		e[idKey] = id
		e["digest"] = digest
		out = append(out, e)
	}
	return out
}

func sdnGet(q *req, edited, running map[string]sdnObj, idKey, id, what string) (any, error) {
	for _, e := range sdnList(q, edited, running, idKey) {
		if e[idKey] == id {
			return e, nil
		}
	}
	return nil, errf("sdn %s'%s' does not exist", what, id)
}

func (s *Sim) listZones(q *req) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sdnList(q, s.sdn.zones, s.sdn.runZones, "zone"), nil
}

func (s *Sim) getZone(q *req) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sdnGet(q, s.sdn.zones, s.sdn.runZones, "zone", q.str("zone"), "")
}

// sdnZoneOptions are the properties each zone plugin takes, true for the
// required ones: the plugins' options (PVE::Network::SDN::Zones::*Plugin).
var sdnZoneOptions = map[string]map[string]bool{
	"simple": {"nodes": false, "mtu": false, "dns": false, "reversedns": false, "dnszone": false,
		"ipam": false, "dhcp": false},
	"vlan": {"nodes": false, "bridge": true, "bridge-disable-mac-learning": false, "mtu": false,
		"dns": false, "reversedns": false, "dnszone": false, "ipam": false},
	"qinq": {"nodes": false, "tag": true, "bridge": true, "bridge-disable-mac-learning": false,
		"mtu": false, "vlan-protocol": false, "dns": false, "reversedns": false, "dnszone": false, "ipam": false},
	"vxlan": {"nodes": false, "peers": false, "vxlan-port": false, "mtu": false, "dns": false,
		"reversedns": false, "dnszone": false, "ipam": false, "fabric": false},
}

// sdnVnetOptions are the vnet plugin's options.
var sdnVnetOptions = map[string]bool{"zone": true, "tag": false, "alias": false, "vlanaware": false,
	"isolate-ports": false}

// checkConfig is SectionConfig's check_config: every property must be an
// option of the plugin, and a new object must have the required ones.
func checkConfig(opts map[string]bool, o sdnObj, create bool) error {
	for _, k := range sortedKeys(o) {
		if _, ok := opts[k]; !ok && k != "type" {
			return fmt.Errorf("unexpected property '%s'", k)
		}
	}
	if create {
		for _, k := range sortedKeys(opts) {
			if opts[k] && o[k] == "" {
				return fmt.Errorf("missing value for required option '%s'", k)
			}
		}
	}
	return nil
}

// checkZone runs a zone plugin's on_update_hook.
func checkZone(o sdnObj) error {
	if o["type"] == "vxlan" && (o["peers"] != "") == (o["fabric"] != "") {
		return &apiError{status: 400, msg: "Parameter verification failed.", errs: map[string]string{
			"peers": "must have exactly one of peers / fabric defined", "fabric": "must have exactly one of peers / fabric defined"}}
	}
	return nil
}

// sdnFail wraps an error raised under the SDN lock like lock_sdn_config
// does, with die "$errmsg: $err": a parameter exception becomes its
// text, status and failing parameters included, in a plain 500.
func sdnFail(what string, err error) error {
	if ae, ok := err.(*apiError); ok && ae.status == 400 {
		var b strings.Builder
		fmt.Fprintf(&b, "%d %s\n", ae.status, strings.TrimSpace(ae.msg))
		for _, k := range sortedKeys(ae.errs) {
			fmt.Fprintf(&b, "%s: %s\n", k, ae.errs[k])
		}
		return errf("%s: %s", what, b.String())
	}
	return errf("%s: %v", what, err)
}

func (s *Sim) createZone(q *req) (any, error) {
	id := q.str("zone")
	o := sdnProps(q)
	opts := sdnZoneOptions[o["type"]]
	if opts == nil {
		return nil, errf("zone type '%s' is not supported by the simulator", o["type"])
	}
	// The create handler checks the properties before it takes the SDN
	// lock, so these errors are not prefixed.
	if err := checkConfig(opts, o, true); err != nil {
		return nil, errf("%v", err)
	}
	s.lock()
	defer s.unlock()
	if s.sdn.zones[id] != nil {
		return nil, sdnFail("create sdn zone object failed", fmt.Errorf("sdn zone object ID '%s' already defined", id))
	}
	if err := checkZone(o); err != nil {
		return nil, sdnFail("create sdn zone object failed", err)
	}
	s.sdn.zones[id] = o
	return nil, nil
}

// updateObj applies a PUT's properties set and delete list to o, like
// SectionConfig's check_config and delete_from_config with the plugin's
// options opts.
func updateObj(q *req, o, set sdnObj, opts map[string]bool) (sdnObj, error) {
	if err := checkConfig(opts, set, false); err != nil {
		return nil, err
	}
	o = maps.Clone(o)
	for _, k := range splitSDNList(q.str("delete")) {
		required, ok := opts[k]
		switch {
		case !ok:
			return nil, fmt.Errorf("no such option '%s'", k)
		case required:
			return nil, fmt.Errorf("unable to delete required option '%s'", k)
		case set[k] != "":
			// Proxmox's message, punctuation included.
			return nil, errf("cannot set and delete property '%s' at the same time!", k)
		}
		delete(o, k)
	}
	maps.Copy(o, set)
	return o, nil
}

func (s *Sim) updateZone(q *req) (any, error) {
	id := q.str("zone")
	s.lock()
	defer s.unlock()
	// Under the SDN lock: the digest first, then the zone.
	if d := q.str("digest"); d != "" && d != cfgDigest(s.sdn.zones) {
		return nil, errf("update sdn zone object failed: detected modified configuration - file changed by other user? Try again.")
	}
	old := s.sdn.zones[id]
	if old == nil {
		return nil, errf("update sdn zone object failed: sdn '%s' does not exist", id)
	}
	o, err := updateObj(q, old, sdnProps(q), sdnZoneOptions[old["type"]])
	if err != nil {
		return nil, sdnFail("update sdn zone object failed", err)
	}
	if err := checkZone(o); err != nil {
		return nil, sdnFail("update sdn zone object failed", err)
	}
	s.sdn.zones[id] = o
	return nil, nil
}

func (s *Sim) deleteZone(q *req) (any, error) {
	id := q.str("zone")
	s.lock()
	defer s.unlock()
	if s.sdn.zones[id] == nil {
		return nil, errf("delete sdn zone object failed: sdn '%s' does not exist", id)
	}
	for _, vid := range sortedKeys(s.sdn.vnets) {
		if s.sdn.vnets[vid]["zone"] == id {
			return nil, errf("delete sdn zone object failed: zone %s is used by vnet %s", id, vid)
		}
	}
	delete(s.sdn.zones, id)
	return nil, nil
}

func (s *Sim) listVnets(q *req) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sdnList(q, s.sdn.vnets, s.sdn.runVnets, "vnet"), nil
}

func (s *Sim) getVnet(q *req) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sdnGet(q, s.sdn.vnets, s.sdn.runVnets, "vnet", q.str("vnet"), "vnet ")
}

// checkVnet runs the zone plugin's vnet checks on vnet id with properties o.
// It is called with Sim.mu held.
func (s *Sim) checkVnet(id string, o sdnObj) error {
	zone := s.sdn.zones[o["zone"]]
	if zone == nil {
		return paramErr("zone", "zone '%s' does not exist", o["zone"])
	}
	tag, hasTag := o["tag"], o["tag"] != ""
	n, _ := strconv.Atoi(tag)
	switch zone["type"] {
	case "simple":
		if hasTag {
			return paramErr("tag", "vlan tag is not allowed on simple zone")
		}
	case "vlan", "qinq":
		if !hasTag {
			return paramErr("tag", "missing vlan tag")
		}
		if n > 4096 {
			return paramErr("tag", "vlan tag max value is 4096")
		}
		for _, other := range sortedKeys(s.sdn.vnets) {
			if ov := s.sdn.vnets[other]; other != id && ov["zone"] == o["zone"] && ov["tag"] == tag {
				return paramErr("tag", "tag %s already exist in vnet %s", tag, other)
			}
		}
	case "vxlan":
		if !hasTag {
			return paramErr("tag", "missing vxlan tag")
		}
		if n > 16777216 {
			return paramErr("tag", "vxlan tag max value is 16777216")
		}
		for _, other := range sortedKeys(s.sdn.vnets) {
			ov := s.sdn.vnets[other]
			oz := s.sdn.zones[ov["zone"]]
			if other != id && oz != nil && oz["type"] == "vxlan" && ov["tag"] == tag {
				return paramErr("tag", "vxlan tag %s already exist in vnet %s in zone %s ", tag, other, ov["zone"])
			}
		}
	}
	return nil
}

func (s *Sim) createVnet(q *req) (any, error) {
	id := q.str("vnet")
	o := sdnProps(q)
	o["type"] = "vnet"
	o["zone"] = q.str("zone")
	s.lock()
	defer s.unlock()
	if s.sdn.vnets[id] != nil {
		return nil, sdnFail("create sdn vnet object failed", fmt.Errorf("sdn vnet object ID '%s' already defined", id))
	}
	if err := s.checkVnet(id, o); err != nil {
		return nil, sdnFail("create sdn vnet object failed", err)
	}
	s.sdn.vnets[id] = o
	return nil, nil
}

func (s *Sim) updateVnet(q *req) (any, error) {
	id := q.str("vnet")
	s.lock()
	defer s.unlock()
	old := s.sdn.vnets[id]
	if old == nil {
		return nil, errf("sdn vnet '%s' does not exist", id)
	}
	if d := q.str("digest"); d != "" && d != cfgDigest(s.sdn.vnets) {
		return nil, errf("update sdn vnet object failed: detected modified configuration - file changed by other user? Try again.")
	}
	set := sdnProps(q)
	if q.has("zone") {
		set["zone"] = q.str("zone")
	}
	o, err := updateObj(q, old, set, sdnVnetOptions)
	if err != nil {
		return nil, sdnFail("update sdn vnet object failed", err)
	}
	if o["zone"] == "" {
		return nil, sdnFail("update sdn vnet object failed", paramErr("zone", "cannot delete zone"))
	}
	if err := s.checkVnet(id, o); err != nil {
		return nil, sdnFail("update sdn vnet object failed", err)
	}
	s.sdn.vnets[id] = o
	return nil, nil
}

func (s *Sim) deleteVnet(q *req) (any, error) {
	id := q.str("vnet")
	s.lock()
	defer s.unlock()
	if s.sdn.vnets[id] == nil {
		return nil, errf("sdn vnet '%s' does not exist", id)
	}
	delete(s.sdn.vnets, id)
	return nil, nil
}

// applySDN serves PUT /cluster/sdn: the edited configuration becomes the
// running one at once, and a reloadnetworkall task deploys it to the nodes.
func (s *Sim) applySDN(q *req) (any, error) {
	s.lock()
	defer s.unlock()
	s.sdn.runZones, s.sdn.runVnets = copyObjs(s.sdn.zones), copyObjs(s.sdn.vnets)
	zones, vnets := copyObjs(s.sdn.zones), copyObjs(s.sdn.vnets)
	nodes := make([]string, 0, len(s.nodes))
	for _, n := range s.nodes {
		nodes = append(nodes, n.name)
	}
	return s.spawn(s.nodes[0].name, "reloadnetworkall", "", q.user, 1, func(r *run) error {
		for _, n := range nodes {
			r.logf("%s: reloading network config", n)
		}
		if err := r.sleep(1); err != nil {
			return err
		}
		return r.commit(func() error {
			s.sdn.depZones, s.sdn.depVnets = zones, vnets
			return nil
		})
	}), nil
}
