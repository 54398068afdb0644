package pvesim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	pveVersion = "9.1.3"
	pveRelease = "9.1"
	pveRepoID  = "6c5a2a3d7c1b8e4f"
	kernel     = "6.17.2-1-pve"
)

func (s *Sim) getVersion(*req) (any, error) {
	return map[string]any{"release": pveRelease, "repoid": pveRepoID, "version": pveVersion}, nil
}

func (s *Sim) getClusterStatus(*req) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []map[string]any
	if s.clusterName != "" {
		out = append(out, map[string]any{
			"type": "cluster", "id": "cluster", "name": s.clusterName,
			"nodes": len(s.nodes), "quorate": b2i(s.quorateLocked()), "version": len(s.nodes) + 2,
		})
	}
	for i, n := range s.nodes {
		out = append(out, map[string]any{
			"type": "node", "id": "node/" + n.name, "name": n.name, "ip": n.ip,
			"local": b2i(i == 0), "nodeid": n.id, "online": b2i(n.online), "level": "",
		})
	}
	return out, nil
}

// guestResource is a qemu or lxc entry of cluster/resources. Its "id" is
// Type/VMID; see appendJSON.
type guestResource struct {
	Type      string  `json:"type"`
	VMID      int     `json:"vmid"`
	Node      string  `json:"node"`
	Name      string  `json:"name"`
	Status    string  `json:"status"`
	CPU       float64 `json:"cpu"`
	MaxCPU    int     `json:"maxcpu"`
	Mem       uint64  `json:"mem"`
	MaxMem    uint64  `json:"maxmem"`
	Disk      uint64  `json:"disk"`
	MaxDisk   uint64  `json:"maxdisk"`
	DiskRead  uint64  `json:"diskread"`
	DiskWrite uint64  `json:"diskwrite"`
	NetIn     uint64  `json:"netin"`
	NetOut    uint64  `json:"netout"`
	Uptime    uint64  `json:"uptime"`
	Template  int     `json:"template"`
	Tags      string  `json:"tags,omitempty"`
	Lock      string  `json:"lock,omitempty"`
	Pool      string  `json:"pool,omitempty"`
}

// guestResource fills r with g's entry, with Sim.mu held.
func (s *Sim) guestResource(r *guestResource, g *guest, now time.Time) {
	*r = guestResource{
		Type: g.kind, VMID: g.vmid, Node: g.node.name,
		Name: g.name(), Status: "stopped", MaxCPU: g.cpus(), MaxMem: g.maxmem(), MaxDisk: g.bootDiskSize(),
		Template: b2i(g.template()), Tags: g.derived().tags, Lock: g.lock(), Pool: g.pool,
	}
	switch {
	case !g.node.online:
		r.Status = "unknown"
	case g.running:
		r.Status = "running"
		r.CPU, r.Mem = g.usage(now)
		r.Uptime = g.uptime(now)
		r.NetIn, r.NetOut = r.Uptime*1200, r.Uptime*800
		r.DiskRead, r.DiskWrite = r.Uptime*4096, r.Uptime*2048
		if g.kind == kindLXC {
			r.Disk = r.MaxDisk / 100 * uint64(20+g.seed%50)
		}
	}
}

func (s *Sim) nodeResource(n *node, now time.Time) map[string]any {
	r := map[string]any{"id": "node/" + n.name, "type": "node", "node": n.name, "level": ""}
	if !n.online {
		r["status"] = "offline"
		return r
	}
	cpu, mem := n.usage(now)
	root := n.stores["local"]
	r["status"] = "online"
	r["cpu"] = cpu
	r["maxcpu"] = n.maxcpu
	r["mem"] = mem
	r["maxmem"] = n.maxmem
	r["disk"] = root.used()
	r["maxdisk"] = root.total
	r["uptime"] = uint64(now.Sub(n.bootTime) / time.Second)
	r["cgroup-mode"] = 2
	return r
}

func storageResource(n *node, st *store) map[string]any {
	status := "available"
	if !n.online {
		status = "unknown"
	}
	return map[string]any{
		"id": "storage/" + n.name + "/" + st.cfg.id, "type": "storage", "storage": st.cfg.id, "node": n.name,
		"status": status, "plugintype": st.cfg.typ, "content": strings.Join(st.cfg.content, ","),
		"shared": b2i(st.cfg.shared), "disk": st.used(), "maxdisk": st.total,
	}
}

func (s *Sim) getClusterResources(q *req) (any, error) {
	typ := q.str("type")
	now := time.Now()
	var small []any
	var guests []guestResource
	s.mu.RLock()
	if typ == "" || typ == "vm" {
		ids := make([]int, 0, len(s.guests))
		for id := range s.guests {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		guests = make([]guestResource, len(ids))
		for i, id := range ids {
			s.guestResource(&guests[i], s.guests[id], now)
		}
	}
	if typ == "" || typ == "node" {
		for _, n := range s.nodes {
			small = append(small, s.nodeResource(n, now))
		}
	}
	if typ == "" || typ == "storage" {
		for _, n := range s.nodes {
			for _, c := range s.storage {
				if st := n.stores[c.id]; st != nil {
					small = append(small, storageResource(n, st))
				}
			}
		}
	}
	if typ == "" || typ == "sdn" {
		for _, n := range s.nodes {
			for _, z := range s.sdn.runningZoneIDs(n.name) {
				status := "ok"
				if !n.online {
					status = "unknown"
				}
				e := map[string]any{"id": "sdn/" + n.name + "/" + z, "type": "sdn", "sdn": z, "node": n.name, "status": status}
				if zt := s.sdn.runningZoneType(z); zt != "" {
					e["zone-type"] = zt
				}
				small = append(small, e)
			}
		}
	}
	s.mu.RUnlock()
	// Encode outside the lock; the guests by hand, as there may be many.
	b := make([]byte, 0, 320*len(guests)+256*len(small)+2)
	b = append(b, '[')
	for i := range guests {
		if i > 0 {
			b = append(b, ',')
		}
		b = guests[i].appendJSON(b)
	}
	for i, e := range small {
		if i > 0 || len(guests) > 0 {
			b = append(b, ',')
		}
		enc, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		b = append(b, enc...)
	}
	return rawJSON(append(b, ']')), nil
}

func (s *Sim) getNextID(q *req) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if q.has("vmid") {
		vmid := q.vmid()
		if s.guests[vmid] != nil {
			return nil, paramErr("vmid", "VM %d already exists", vmid)
		}
		return strconv.Itoa(vmid), nil
	}
	for id := 100; id < 1000000; id++ {
		if s.guests[id] == nil {
			// Proxmox answers the ID as a JSON string, not a number.
			return strconv.Itoa(id), nil
		}
	}
	return nil, errf("unable to get any free VMID in range [100, 1000000]")
}

func (s *Sim) getNodes(*req) (any, error) {
	now := time.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]map[string]any, 0, len(s.nodes))
	for _, n := range s.nodes {
		e := map[string]any{"node": n.name, "id": "node/" + n.name, "type": "node", "level": ""}
		if !n.online {
			e["status"] = "offline"
		} else {
			cpu, mem := n.usage(now)
			root := n.stores["local"]
			e["status"] = "online"
			e["cpu"] = cpu
			e["maxcpu"] = n.maxcpu
			e["mem"] = mem
			e["maxmem"] = n.maxmem
			e["disk"] = root.used()
			e["maxdisk"] = root.total
			e["uptime"] = uint64(now.Sub(n.bootTime) / time.Second)
			e["ssl_fingerprint"] = fingerprint(n.name)
		}
		out = append(out, e)
	}
	return out, nil
}

// fingerprint is a stable fake SHA-256 certificate fingerprint for a node.
func fingerprint(name string) string {
	var b strings.Builder
	h := guestSeed(len(name))
	for i := 0; i < 32; i++ {
		if i > 0 {
			b.WriteByte(':')
		}
		h = h*1664525 + 1013904223 + uint32(name[i%len(name)])
		fmt.Fprintf(&b, "%02X", byte(h>>24))
	}
	return b.String()
}

func (s *Sim) getNodeStatus(q *req) (any, error) {
	now := time.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := s.nodeByName[q.nodeName()]
	cpu, mem := n.usage(now)
	root := n.stores["local"]
	used := root.used()
	sockets := 1
	if n.maxcpu >= 32 {
		sockets = 2
	}
	return map[string]any{
		"uptime":     uint64(now.Sub(n.bootTime) / time.Second),
		"cpu":        cpu,
		"wait":       0.0002,
		"idle":       0,
		"loadavg":    []string{fmt.Sprintf("%.2f", cpu*float64(n.maxcpu)), "0.42", "0.37"},
		"kversion":   "Linux " + kernel + " #1 SMP PREEMPT_DYNAMIC PMX " + kernel + " (2025-11-07T10:19Z)",
		"pveversion": "pve-manager/" + pveVersion + "/" + pveRepoID,
		"current-kernel": map[string]any{
			"sysname": "Linux", "release": kernel, "machine": "x86_64",
			"version": "#1 SMP PREEMPT_DYNAMIC PMX " + kernel + " (2025-11-07T10:19Z)",
		},
		"boot-info": map[string]any{"mode": "efi", "secureboot": 0},
		"cpuinfo": map[string]any{
			"model": "AMD EPYC 7313P 16-Core Processor", "cpus": n.maxcpu, "cores": max(n.maxcpu/sockets/2, 1),
			"sockets": sockets, "mhz": "2999.998", "hvm": "1", "user_hz": 100, "flags": "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr svm",
		},
		"memory": map[string]any{"total": n.maxmem, "used": mem, "free": n.maxmem - mem, "available": n.maxmem - mem},
		"swap":   map[string]any{"total": 8 * gib, "used": 0, "free": 8 * gib},
		"ksm":    map[string]any{"shared": 0},
		"rootfs": map[string]any{"total": root.total, "used": used, "free": root.total - min(used, root.total), "avail": root.total - min(used, root.total)},
	}, nil
}

func (s *Sim) getNetwork(q *req) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := s.nodeByName[q.nodeName()]
	prefix := n.ip[:strings.LastIndexByte(n.ip, '.')]
	// Like PVE::API2::Network, without the loopback device.
	all := []map[string]any{
		{"iface": "eno1", "type": "eth", "method": "manual", "method6": "manual", "families": []string{"inet"},
			"exists": 1, "active": 1, "priority": 2},
		{"iface": "vmbr0", "type": "bridge", "method": "static", "method6": "manual", "families": []string{"inet"},
			"autostart": 1, "active": 1, "priority": 3, "bridge_ports": "eno1", "bridge_stp": "off", "bridge_fd": "0",
			"bridge_vlan_aware": 1, "bridge_vids": "2-4094", "address": n.ip, "netmask": "24",
			"cidr": n.ip + "/24", "gateway": prefix + ".1"},
	}
	typ := q.str("type")
	out := make([]map[string]any, 0, len(all))
	for _, e := range all {
		t := e["type"].(string)
		switch {
		case typ == "", typ == "include_sdn", typ == t,
			(typ == "any_bridge" || typ == "any_local_bridge") && (t == "bridge" || t == "OVSBridge"):
			out = append(out, e)
		}
	}
	// Vnets of the running SDN configuration whose zone is on the node
	// are listed only when asked for, as PVE::API2::Network does.
	if typ == "any_bridge" || typ == "include_sdn" || typ == "vnet" {
		for _, v := range s.sdn.localVnets(n.name) {
			vo := s.sdn.runVnets[v]
			e := map[string]any{"iface": v, "type": "vnet", "active": "1",
				"ipam": b2i(s.sdn.runZones[vo["zone"]]["ipam"] != ""), "vlanaware": b2i(boolValue(vo["vlanaware"]))}
			if vo["alias"] != "" {
				e["comments"] = vo["alias"]
			}
			out = append(out, e)
		}
		slices.SortFunc(out, func(a, b map[string]any) int { return strings.Compare(a["iface"].(string), b["iface"].(string)) })
	}
	return out, nil
}

// Tasks.

// taskEntry is a task as the task lists show it.
func taskEntry(t *task) map[string]any {
	user, tokenid := t.tokenSplit()
	e := map[string]any{
		"upid": t.upid, "node": t.node, "pid": t.pid, "pstart": t.pstart, "starttime": t.start.Unix(),
		"type": t.typ, "id": t.id, "user": user,
	}
	if tokenid != "" {
		e["tokenid"] = tokenid
	}
	if st := t.state(); st.done {
		e["endtime"] = st.end.Unix()
		e["status"] = st.exit
	}
	return e
}

// statusType normalizes a task exit status as PVE::Tools does.
func statusType(exit string) string {
	switch {
	case exit == "OK":
		return "ok"
	case strings.HasPrefix(exit, "WARNINGS: "):
		return "warning"
	case exit == "" || exit == "unexpected status":
		return "unknown"
	}
	return "error"
}

func (s *Sim) getClusterTasks(*req) (any, error) {
	s.mu.RLock()
	var all []*task
	for _, n := range s.nodes {
		all = append(all, s.tasks.byNode[n.name]...)
	}
	s.mu.RUnlock()
	slices.SortStableFunc(all, func(a, b *task) int { return b.start.Compare(a.start) })
	out := make([]map[string]any, 0, len(all))
	for _, t := range all {
		out = append(out, taskEntry(t))
	}
	return out, nil
}

func (s *Sim) listNodeTasks(q *req) (any, error) {
	s.mu.RLock()
	list := slices.Clone(s.tasks.byNode[q.nodeName()])
	s.mu.RUnlock()
	source := cmp.Or(q.str("source"), "archive")
	statusOK := map[string]bool{"ok": true, "warning": true, "error": true, "unknown": true}
	if q.boolv("errors") {
		statusOK["ok"] = false
	} else if q.has("statusfilter") {
		statusOK = map[string]bool{}
		for _, f := range strings.Split(q.str("statusfilter"), ",") {
			statusOK[strings.ToLower(strings.TrimSpace(f))] = true
		}
	}
	var running, finished []*task
	states := map[*task]taskState{}
	for _, t := range list {
		st := t.state()
		states[t] = st
		if st.done {
			finished = append(finished, t)
		} else {
			running = append(running, t)
		}
	}
	slices.SortStableFunc(finished, func(a, b *task) int { return states[b].end.Compare(states[a].end) })
	slices.SortStableFunc(running, func(a, b *task) int { return b.start.Compare(a.start) })
	var candidates []*task
	if source == "active" || source == "all" {
		candidates = append(candidates, running...)
	}
	if source != "active" {
		candidates = append(candidates, finished...)
	}
	start, limit := q.intv("start", 0), q.intv("limit", 50)
	count := 0
	out := []map[string]any{}
	for _, t := range candidates {
		st := states[t]
		switch {
		case q.has("userfilter") && !strings.Contains(strings.ToLower(t.user), strings.ToLower(q.str("userfilter"))),
			q.has("typefilter") && t.typ != q.str("typefilter"),
			q.has("vmid") && t.id != q.str("vmid"),
			q.has("since") && t.start.Unix() < int64(q.intv("since", 0)),
			q.has("until") && t.start.Unix() > int64(q.intv("until", 0)),
			st.done && !statusOK[statusType(st.exit)]:
			continue
		}
		count++
		if count <= start || len(out) >= limit {
			continue
		}
		e := taskEntry(t)
		if !st.done {
			e["status"] = "RUNNING"
		}
		out = append(out, e)
	}
	q.total = count
	return out, nil
}

var upidRe = regexp.MustCompile(`^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s]+):([^:\s]*):([^:\s]+):$`)

// lookupTask finds the task a /nodes/{node}/tasks/{upid} request names,
// failing like Proxmox for a malformed UPID or a task unknown on that node.
func (s *Sim) lookupTask(q *req) (*task, error) {
	upid := q.str("upid")
	if !upidRe.MatchString(upid) {
		return nil, paramErr("upid", "unable to parse worker upid")
	}
	s.mu.RLock()
	t := s.tasks.byUPID[upid]
	s.mu.RUnlock()
	if t == nil || t.node != q.nodeName() {
		return nil, paramErr("upid", "no such task")
	}
	return t, nil
}

func (s *Sim) taskStatus(q *req) (any, error) {
	t, err := s.lookupTask(q)
	if err != nil {
		return nil, err
	}
	e := taskEntry(t)
	delete(e, "endtime")
	delete(e, "status")
	if st := t.state(); st.done {
		e["status"] = "stopped"
		e["exitstatus"] = st.exit
	} else {
		e["status"] = "running"
	}
	return e, nil
}

func (s *Sim) taskLog(q *req) (any, error) {
	upid := q.str("upid")
	if !upidRe.MatchString(upid) {
		return nil, paramErr("upid", "unable to parse worker upid")
	}
	s.mu.RLock()
	t := s.tasks.byUPID[upid]
	s.mu.RUnlock()
	if t == nil || t.node != q.nodeName() {
		q.total = 1
		return []map[string]any{{"n": 1, "t": "unable to open file - No such file or directory"}}, nil
	}
	start, limit := q.intv("start", 0), q.intv("limit", 50)
	total, lines := t.logLines(start, limit)
	out := make([]map[string]any, 0, len(lines))
	for i, l := range lines {
		out = append(out, map[string]any{"n": start + i + 1, "t": l})
	}
	if total == 0 {
		total = 1
		out = append(out, map[string]any{"n": 1, "t": "no content"})
	}
	q.total = total
	return out, nil
}

func (s *Sim) stopTask(q *req) (any, error) {
	t, err := s.lookupTask(q)
	if err != nil {
		return nil, err
	}
	t.cancelOnce.Do(func() { close(t.cancel) })
	return nil, nil
}
