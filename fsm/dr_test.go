package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// drFSM is site east's state machine, with a running index and leader
// clock: east protects its own plans at west and recovers west's plans.
type drFSM struct {
	t     *testing.T
	f     *FSM
	index uint64
	now   int64
}

func newDR(t *testing.T) *drFSM {
	return &drFSM{t: t, f: New(), now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).UnixNano()}
}

// apply applies cmd with the next index, the clock a second on.
func (x *drFSM) apply(cmd Command) *Result {
	x.t.Helper()
	x.index++
	x.now += int64(time.Second)
	cmd.Meta().Now = x.now
	return applyCmd(x.t, x.f, x.index, cmd)
}

func (x *drFSM) ok(cmd Command) any {
	x.t.Helper()
	r := x.apply(cmd)
	if r.Err != nil {
		x.t.Fatalf("%T: %v", cmd, r.Err)
	}
	return r.Value
}

// fails applies cmd, requires an error wrapping want that names field and
// requires the state to be unchanged.
func (x *drFSM) fails(cmd Command, want error, field string) {
	x.t.Helper()
	before := dump(x.t, x.f)
	r := x.apply(cmd)
	requireDRErr(x.t, r.Err, want, field)
	if r.Value != nil {
		x.t.Errorf("%T: refused, but returned %#v", cmd, r.Value)
	}
	if !bytes.Equal(before, dump(x.t, x.f)) {
		x.t.Fatalf("%T: a refused command changed the state", cmd)
	}
}

// requireDRErr requires err to wrap want and, when field is not empty, to
// be a FieldError naming field.
func requireDRErr(t testing.TB, err, want error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v on field %q", want, field)
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
	var fe *FieldError
	if field != "" && (!errors.As(err, &fe) || fe.Field != field) {
		t.Fatalf("error %q names field %v, want %q", err, fe, field)
	}
}

// ownPlan is a plan of east recovering at west, its guests in the order
// given.
func ownPlan(id string, vmids ...int) DRPlan {
	p := DRPlan{ID: id, SourceSite: "east", RecoverySite: "west", BackupStorage: "pbs", TargetStorage: "local-lvm"}
	for i, v := range vmids {
		p.Guests = append(p.Guests, DRGuest{VMID: v, Order: i})
	}
	return p
}

// westPlan is a plan of west recovering here, as west sends it: version
// is its change time at west.
func westPlan(id string, version Timestamp, vmids ...int) DRPlan {
	p := DRPlan{ID: id, SourceSite: "west", RecoverySite: "east", BackupStorage: "pbs", TargetStorage: "local-lvm",
		UpdatedAt: version, SyncedAt: version + 1, CreatedAt: 1, CreateIndex: 1, ModifyIndex: 1}
	for i, v := range vmids {
		p.Guests = append(p.Guests, DRGuest{VMID: v, Order: i})
		p.Status = append(p.Status, DRGuestStatus{VMID: v, Name: "g" + strconv.Itoa(v), Kind: "qemu", Backup: fmt.Sprintf("pbs:backup/vm/%d/x", v), BackupAt: 1})
	}
	return p
}

func (x *drFSM) put(p DRPlan, create bool) *DRPlanPutRequest {
	return &DRPlanPutRequest{Plan: p, Create: create, LocalSite: "east"}
}

// sync is west's sync of plans to this site.
func (x *drFSM) sync(plans ...DRPlan) *DRReplicaSyncRequest {
	ids := make([]string, len(plans))
	for i := range ids {
		ids[i] = fmt.Sprintf("cf-%d-%d", x.index+1, i)
	}
	return &DRReplicaSyncRequest{Source: "west", LocalSite: "east", Plans: plans, ConflictIDs: ids}
}

// run starts a run of kind for plan with one item per vmid, in the order
// given (Order is the position).
func (x *drFSM) run(plan, kind, id string, vmids ...int) *DRRunStartRequest {
	r := &DRRunStartRequest{Plan: plan, Kind: kind, Trigger: DRTriggerManual, Run: Operation{ID: id}}
	for i, v := range vmids {
		r.Items = append(r.Items, DRItem{VMID: v, Order: i, Name: "g" + strconv.Itoa(v), Kind: "qemu"})
	}
	return r
}

// step moves the item of vmid (at position order) of run to step.
func step(run string, order, vmid int, to string) *DRItemUpdateRequest {
	r := &DRItemUpdateRequest{Run: run, Order: order, VMID: vmid, Step: to}
	if to == DRStepFailed {
		r.Error = "boom"
	}
	return r
}

func finish(run, status string) *OperationUpdateRequest {
	r := &OperationUpdateRequest{ID: run, Status: &status}
	if status == OpFailed {
		r.Error = &OpError{Code: "failed", Message: "1 guest failed"}
	}
	return r
}

func (x *drFSM) plan(id string) *DRPlan {
	x.t.Helper()
	_, p, err := x.f.State().DRPlan(nil, id)
	if err != nil {
		x.t.Fatal(err)
	}
	return p
}

func (x *drFSM) op(id string) *Operation {
	x.t.Helper()
	_, op, err := x.f.State().Operation(nil, id)
	if err != nil || op == nil {
		x.t.Fatalf("operation %s: %v, %v", id, op, err)
	}
	return op
}

func (x *drFSM) items(run string) []*DRItem {
	x.t.Helper()
	_, items, err := x.f.State().DRItems(nil, run)
	if err != nil {
		x.t.Fatal(err)
	}
	return items
}

func (x *drFSM) conflicts() []*DRConflict {
	x.t.Helper()
	_, cs, err := x.f.State().DRConflicts(nil)
	if err != nil {
		x.t.Fatal(err)
	}
	return cs
}

func TestDRPlan_Validate(t *testing.T) {
	dns := func(p *DRPlan) {
		p.Networks = []DRNetwork{{Source: "vmbr0", Target: "vnet1", Prefix: "p-west"}}
		p.Guests[0].DNSName = "web.moxxie.test"
	}
	cases := []struct {
		name  string
		edit  func(*DRPlan)
		field string // "": valid
	}{
		{"valid", func(*DRPlan) {}, ""},
		{"valid with every option", func(p *DRPlan) {
			dns(p)
			p.TargetNode, p.Manual, p.RPO = "pve2", true, "4h30m"
			p.Guests[1].TargetVMID, p.Guests[1].DNSName, p.Guests[1].Order = 2101, "db.moxxie.test", 999999
			p.Networks = append(p.Networks, DRNetwork{Source: "vmbr1", Target: "vnet1"})
		}, ""},
		{"two guests without a target vmid", func(p *DRPlan) { p.Guests[0].TargetVMID, p.Guests[1].TargetVMID = 0, 0 }, ""},
		{"no id", func(p *DRPlan) { p.ID = "" }, "id"},
		{"upper-case id", func(p *DRPlan) { p.ID = "Web" }, "id"},
		{"id too long", func(p *DRPlan) { p.ID = strings.Repeat("a", 41) }, "id"},
		{"bad source site", func(p *DRPlan) { p.SourceSite = "East" }, "source_site"},
		{"no recovery site", func(p *DRPlan) { p.RecoverySite = "" }, "recovery_site"},
		{"recovery site is the source site", func(p *DRPlan) { p.RecoverySite = p.SourceSite }, "recovery_site"},
		{"bad backup storage", func(p *DRPlan) { p.BackupStorage = "" }, "backup_storage"},
		{"bad target storage", func(p *DRPlan) { p.TargetStorage = "a b" }, "target_storage"},
		{"bad target node", func(p *DRPlan) { p.TargetNode = "-pve" }, "target_node"},
		{"rpo not a duration", func(p *DRPlan) { p.RPO = "daily" }, "rpo"},
		{"rpo too short", func(p *DRPlan) { p.RPO = "30s" }, "rpo"},
		{"rpo too long", func(p *DRPlan) { p.RPO = "9000h" }, "rpo"},
		{"no guests", func(p *DRPlan) { p.Guests = nil }, "guests"},
		{"too many guests", func(p *DRPlan) {
			p.Guests = nil
			for v := range MaxDRGuests + 1 {
				p.Guests = append(p.Guests, DRGuest{VMID: 1000 + v})
			}
		}, "guests"},
		{"vmid listed twice", func(p *DRPlan) { p.Guests[1].VMID = p.Guests[0].VMID }, "guests[1].vmid"},
		{"vmid out of range", func(p *DRPlan) { p.Guests[0].VMID = 1 }, "guests[0].vmid"},
		{"negative order", func(p *DRPlan) { p.Guests[1].Order = -1 }, "guests[1].order"},
		{"target vmid listed twice", func(p *DRPlan) { p.Guests[0].TargetVMID, p.Guests[1].TargetVMID = 2100, 2100 }, "guests[1].target_vmid"},
		{"target vmid out of range", func(p *DRPlan) { p.Guests[0].TargetVMID = MaxVMID + 1 }, "guests[0].target_vmid"},
		{"invalid dns name", func(p *DRPlan) { dns(p); p.Guests[0].DNSName = "-web.moxxie.test" }, "guests[0].dns_name"},
		{"dns name listed twice", func(p *DRPlan) { dns(p); p.Guests[1].DNSName = p.Guests[0].DNSName }, "guests[1].dns_name"},
		{"dns name without a network prefix", func(p *DRPlan) { dns(p); p.Networks[0].Prefix = "" }, "networks"},
		{"dns name without networks", func(p *DRPlan) { dns(p); p.Networks = nil }, "networks"},
		{"network source mapped twice", func(p *DRPlan) {
			p.Networks = []DRNetwork{{Source: "vmbr0", Target: "vnet1"}, {Source: "vmbr0", Target: "vnet2"}}
		}, "networks[1].source"},
		{"bad network source", func(p *DRPlan) { p.Networks = []DRNetwork{{Source: "0br", Target: "vnet1"}} }, "networks[0].source"},
		{"bad network target", func(p *DRPlan) { p.Networks = []DRNetwork{{Source: "vmbr0", Target: ""}} }, "networks[0].target"},
		{"prefix too long", func(p *DRPlan) {
			p.Networks = []DRNetwork{{Source: "vmbr0", Target: "vnet1", Prefix: strings.Repeat("p", 65)}}
		}, "networks[0].prefix"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := ownPlan("web", 100, 101)
			tc.edit(&p)
			x := newDR(t)
			if tc.field == "" {
				x.ok(x.put(p, true))
				return
			}
			x.fails(x.put(p, true), ErrInvalid, tc.field)
			// A replica is checked the same.
			p.SourceSite, p.RecoverySite = "west", "east"
			if tc.field == "source_site" || tc.field == "recovery_site" {
				return
			}
			x.fails(x.sync(p), ErrInvalid, tc.field)
		})
	}
}

func TestDRPlanPut(t *testing.T) {
	x := newDR(t)
	// A plan is written at its source site only.
	wrong := x.put(ownPlan("web", 100), true)
	wrong.LocalSite = "west"
	x.fails(wrong, ErrInvalid, "source_site")
	x.fails(x.put(ownPlan("web", 100), false), ErrNotFound, "")

	// What a plan records of its runs is the state machine's, not the
	// request's.
	in := ownPlan("web", 100)
	in.Replica, in.Status, in.SourceUpdatedAt, in.SyncedAt = true, []DRGuestStatus{{VMID: 100}}, 5, 6
	in.Failover, in.Fence, in.ActiveRun, in.LastRun = &DRFailover{Run: "x"}, &DRFence{By: "west"}, "x", "y"
	in.CreatedAt, in.CreateIndex = 1, 1
	got := x.ok(x.put(in, true)).(*DRPlan)
	created, createIndex := Timestamp(x.now), x.index
	want := ownPlan("web", 100)
	want.CreatedAt, want.UpdatedAt, want.CreateIndex, want.ModifyIndex = created, created, createIndex, createIndex
	if !reflect.DeepEqual(got, &want) || !reflect.DeepEqual(x.plan("web"), &want) {
		t.Fatalf("created plan %+v, want %+v", got, &want)
	}
	x.fails(x.put(ownPlan("web", 100), true), ErrConflict, "id")

	// West failed it over; east fences it and fails it back: an update
	// keeps all that.
	x.ok(&DRFenceRequest{Plan: "web", Fence: &DRFence{By: "west", Run: "w-1", Since: 7}})
	x.ok(x.run("web", OpDRFailback, "fb-1", 100))
	upd := ownPlan("web", 100, 101)
	upd.Manual = true
	got = x.ok(x.put(upd, false)).(*DRPlan)
	if got.Fence == nil || got.Fence.Run != "w-1" || got.ActiveRun != "fb-1" || got.LastRun != "fb-1" ||
		got.CreatedAt != created || got.CreateIndex != createIndex || got.UpdatedAt != Timestamp(x.now) || got.ModifyIndex != x.index ||
		len(got.Guests) != 2 || !got.Manual || got.Replica {
		t.Fatalf("updated plan %+v", got)
	}

	// West's replica here is changed at west only.
	x.ok(x.sync(westPlan("db", 10, 200)))
	p := ownPlan("db", 200)
	x.fails(x.put(p, false), ErrConflict, "id")
	x.fails(x.put(p, true), ErrConflict, "id")
}

func TestDRReplicaSync(t *testing.T) {
	x := newDR(t)
	sent := westPlan("db", 10, 200, 201)
	sent.Fence = &DRFence{By: "x"} // west's own state, not the replica's
	res := x.ok(x.sync(sent, westPlan("app", 10, 300))).(*DRSyncResult)
	if len(res.Failovers) != 0 {
		t.Fatalf("failovers %+v before any", res.Failovers)
	}
	p := x.plan("db")
	want := westPlan("db", 10, 200, 201)
	want.Replica, want.SourceUpdatedAt = true, 10
	want.CreatedAt, want.UpdatedAt, want.CreateIndex, want.ModifyIndex = Timestamp(x.now), Timestamp(x.now), x.index, x.index
	if !reflect.DeepEqual(p, &want) {
		t.Fatalf("replica\n %+v\nwant\n %+v", p, &want)
	}
	synced := x.index

	// The same sync again changes nothing; a newer one replaces the
	// replica, keeping its history.
	x.ok(x.sync(westPlan("db", 10, 200, 201), westPlan("app", 10, 300)))
	if p := x.plan("db"); p.ModifyIndex != synced {
		t.Fatalf("an unchanged sync rewrote the replica at %d", p.ModifyIndex)
	}
	x.ok(x.sync(westPlan("db", 20, 200), westPlan("app", 10, 300)))
	if p := x.plan("db"); p.SourceUpdatedAt != 20 || len(p.Guests) != 1 || p.CreateIndex != synced || p.ModifyIndex != x.index {
		t.Fatalf("replica after a change %+v", p)
	}

	// Refused: a plan recovering elsewhere, a plan of this site's own ID,
	// one of another source, and a malformed sync.
	elsewhere := westPlan("x", 10, 400)
	elsewhere.RecoverySite = "north"
	x.fails(x.sync(westPlan("db", 20, 200), elsewhere), ErrInvalid, "recovery_site")
	x.ok(x.put(ownPlan("web", 100), true))
	x.fails(x.sync(westPlan("db", 20, 200), westPlan("web", 10, 100)), ErrConflict, "id")
	north := &DRReplicaSyncRequest{Source: "north", LocalSite: "east", ConflictIDs: []string{"c"}, Plans: []DRPlan{westPlan("db", 30, 200)}}
	north.Plans[0].SourceSite = "north"
	x.fails(north, ErrConflict, "id")
	bad := x.sync(westPlan("db", 20, 200))
	bad.ConflictIDs = nil
	x.fails(bad, ErrInvalid, "conflict_ids")
	bad = x.sync(westPlan("db", 20, 200))
	bad.Plans[0].SourceSite = "north"
	x.fails(bad, ErrInvalid, "source_site")
	bad = x.sync()
	bad.Source = "West"
	x.fails(bad, ErrInvalid, "source")

	// app runs a drill and db fails over; a sync without them keeps them,
	// one without a plain replica removes it. Plans of other sources stay.
	x.ok(x.sync(westPlan("db", 20, 200), westPlan("app", 10, 300), westPlan("old", 10, 500)))
	x.ok(x.run("app", OpDRDrill, "drill-1", 300))
	x.ok(x.run("db", OpDRFailover, "fo-1", 200))
	x.ok(x.sync())
	for id, kept := range map[string]bool{"db": true, "app": true, "old": false, "web": true} {
		if (x.plan(id) != nil) != kept {
			t.Errorf("plan %s kept %v, want %v", id, !kept, kept)
		}
	}
	// Once the drill ends, app goes too.
	x.ok(finish("drill-1", OpSucceeded))
	x.ok(x.sync(westPlan("db", 20, 200)))
	if x.plan("app") != nil {
		t.Fatal("a replica west no longer has survived the end of its drill")
	}

	// db failed over: west's newer version is not applied but recorded,
	// once however often it is sent; a still newer one is recorded again.
	failover := *x.plan("db").Failover
	for range 3 {
		res := x.ok(x.sync(westPlan("db", 30, 200, 201))).(*DRSyncResult)
		if f := res.Failovers["db"]; f == nil || *f != failover || len(res.Failovers) != 1 {
			t.Fatalf("failovers %+v, want db's %+v", res.Failovers, failover)
		}
		if p := x.plan("db"); p.SourceUpdatedAt != 20 || len(p.Guests) != 1 {
			t.Fatalf("a failed-over replica took a newer version: %+v", p)
		}
	}
	cs := x.conflicts()
	if len(cs) != 1 || cs[0].Plan != "db" || cs[0].Kind != DRConflictPlanChanged || cs[0].Site != "west" || cs[0].Version != 30 ||
		cs[0].At == 0 || !strings.Contains(cs[0].Detail, "fo-1") {
		t.Fatalf("conflicts %+v, want db's plan_changed at version 30", cs)
	}
	x.ok(x.sync(westPlan("db", 20, 200)))           // the version it failed over with: no conflict
	x.ok(x.sync(westPlan("db", 40, 200, 201, 202))) // newer again
	x.ok(x.sync(westPlan("db", 40, 200, 201, 202))) // and repeated
	if cs := x.conflicts(); len(cs) != 2 || cs[1].Version != 40 && cs[0].Version != 40 {
		t.Fatalf("conflicts %+v, want a second one at version 40", cs)
	}
}

func TestDRRunStart(t *testing.T) {
	setup := func(t *testing.T) *drFSM {
		x := newDR(t)
		x.ok(x.put(ownPlan("web", 100, 101), true))
		x.ok(x.sync(westPlan("db", 10, 200, 201, 202)))
		return x
	}

	t.Run("failover", func(t *testing.T) {
		x := setup(t)
		req := x.run("db", OpDRFailover, "fo-1", 202, 200, 201)
		req.Trigger, req.Actor = DRTriggerAutomatic, "server:n1"
		req.Items[0].Order = 0
		req.Items[1].Order, req.Items[2].Order = 5, 5
		req.Items[0].Step, req.Items[0].Task, req.Items[0].Error, req.Items[0].Started = DRStepRunning, "UPID:x", "e", 9
		req.Run.Status, req.Run.Kind, req.Run.Policy, req.Run.VMID = OpSucceeded, OpVMCreate, "other", 100
		op := x.ok(req).(*Operation)
		now := Timestamp(x.now)
		if op.ID != "fo-1" || op.Kind != OpDRFailover || op.Policy != "db" || op.Status != OpPending || op.Step != DRTriggerAutomatic ||
			op.Actor != "server:n1" || op.VMID != 0 || op.Stats == nil || *op.Stats != (RunStats{Total: 3}) ||
			op.CreatedAt != now || op.FinishedAt != 0 || op.CreateIndex != x.index || !op.IsDRRun() {
			t.Fatalf("operation %+v", op)
		}
		if got := x.op("fo-1"); !reflect.DeepEqual(got, op) {
			t.Fatalf("stored operation %+v, returned %+v", got, op)
		}
		p := x.plan("db")
		if p.ActiveRun != "fo-1" || p.LastRun != "fo-1" ||
			!reflect.DeepEqual(p.Failover, &DRFailover{Run: "fo-1", Trigger: DRTriggerAutomatic, StartedAt: now, State: OpRunning}) {
			t.Fatalf("plan %+v, failover %+v", p, p.Failover)
		}
		items := x.items("fo-1")
		var got []int
		for _, it := range items {
			got = append(got, it.VMID)
			if it.RunID != "fo-1" || it.Step != DRStepPending || it.Task != "" || it.Error != "" || it.Started != 0 ||
				it.Key != drItemKey("fo-1", it.Order, it.VMID) || it.Name != "g"+strconv.Itoa(it.VMID) {
				t.Errorf("item %+v", it)
			}
		}
		if !reflect.DeepEqual(got, []int{202, 200, 201}) {
			t.Fatalf("items in order %v, want by order then vmid", got)
		}

		// A plan fails over once: not while it runs, nor after.
		x.fails(x.run("db", OpDRFailover, "fo-2", 200), ErrConflict, "plan")
		x.fails(x.run("db", OpDRDrill, "fo-2", 200), ErrConflict, "plan")
		x.ok(finish("fo-1", OpSucceeded))
		x.fails(x.run("db", OpDRFailover, "fo-2", 200), ErrConflict, "plan")
		// A drill of a failed-over replica may run.
		x.ok(x.run("db", OpDRDrill, "dr-1", 200))
	})

	t.Run("no guests", func(t *testing.T) {
		x := setup(t)
		op := x.ok(x.run("db", OpDRFailover, "fo-1")).(*Operation)
		if op.Status != OpSucceeded || op.FinishedAt != Timestamp(x.now) || op.Stats.Total != 0 || !strings.HasSuffix(op.Step, "no guests") {
			t.Fatalf("empty failover %+v", op)
		}
		p := x.plan("db")
		if p.ActiveRun != "" || p.LastRun != "fo-1" || p.Failover == nil || p.Failover.State != OpSucceeded {
			t.Fatalf("plan %+v, failover %+v", p, p.Failover)
		}
		if len(x.items("fo-1")) != 0 {
			t.Fatal("items of an empty run")
		}
		x.fails(x.run("db", OpDRFailover, "fo-2", 200), ErrConflict, "plan")
		x.fails(finish("fo-1", OpFailed), ErrConflict, "id")
	})

	t.Run("drill", func(t *testing.T) {
		x := setup(t)
		req := x.run("db", OpDRDrill, "d-1", 200)
		req.Keep = true
		op := x.ok(req).(*Operation)
		if op.Kind != OpDRDrill || op.Step != DRTriggerManual+", keep" {
			t.Fatalf("drill %+v", op)
		}
		if p := x.plan("db"); p.ActiveRun != "d-1" || p.Failover != nil {
			t.Fatalf("a drill changed the failover: %+v", p)
		}
		x.fails(x.run("web", OpDRDrill, "d-2", 100), ErrConflict, "plan")
	})

	t.Run("failback", func(t *testing.T) {
		x := setup(t)
		x.fails(x.run("web", OpDRFailback, "fb-1", 100), ErrConflict, "plan") // not fenced
		x.fails(x.run("db", OpDRFailback, "fb-1", 200), ErrConflict, "plan")  // a replica
		x.fails(x.run("web", OpDRFailover, "fb-1", 100), ErrConflict, "plan") // failover of a non-replica
		x.ok(&DRFenceRequest{Plan: "web", Fence: &DRFence{By: "west", Run: "w-1", Since: 1}})
		x.fails(x.run("web", OpDRFailover, "fb-1", 100), ErrConflict, "plan")
		op := x.ok(x.run("web", OpDRFailback, "fb-1", 100, 101)).(*Operation)
		if op.Kind != OpDRFailback || op.Policy != "web" || len(x.items("fb-1")) != 2 {
			t.Fatalf("failback %+v", op)
		}
		if p := x.plan("web"); p.ActiveRun != "fb-1" || p.Failover != nil || p.Fence == nil {
			t.Fatalf("plan %+v", p)
		}
		x.fails(x.run("web", OpDRFailback, "fb-2", 100), ErrConflict, "plan")
	})

	t.Run("refused", func(t *testing.T) {
		x := setup(t)
		x.ok(&OperationCreateRequest{Op: Operation{ID: "op-1", Kind: OpVMStart, VMID: 100}})
		bad := func(edit func(*DRRunStartRequest)) *DRRunStartRequest {
			r := x.run("db", OpDRFailover, "fo-1", 200, 201)
			edit(r)
			return r
		}
		x.fails(bad(func(r *DRRunStartRequest) { r.Plan = "nope" }), ErrNotFound, "")
		x.fails(bad(func(r *DRRunStartRequest) { r.Run.ID = "op-1" }), ErrConflict, "id")
		x.fails(bad(func(r *DRRunStartRequest) { r.Run.ID = "" }), ErrInvalid, "id")
		x.fails(bad(func(r *DRRunStartRequest) { r.Kind = "dr.teleport" }), ErrInvalid, "kind")
		x.fails(bad(func(r *DRRunStartRequest) { r.Kind = "" }), ErrInvalid, "kind")
		x.fails(bad(func(r *DRRunStartRequest) { r.Trigger = "" }), ErrInvalid, "trigger")
		x.fails(bad(func(r *DRRunStartRequest) { r.Items[1].VMID = 200 }), ErrInvalid, "items")
		x.fails(bad(func(r *DRRunStartRequest) { r.Items[1].VMID = 0 }), ErrInvalid, "items")
	})
}

func TestDRItemUpdate(t *testing.T) {
	// setup starts a run of kind with guests 200 and 201 (orders 0, 1).
	setup := func(t *testing.T, kind string, keep bool) *drFSM {
		x := newDR(t)
		x.ok(x.sync(westPlan("db", 10, 200, 201)))
		if kind == OpDRFailback {
			x.ok(x.put(ownPlan("web", 200, 201), true))
			x.ok(&DRFenceRequest{Plan: "web", Fence: &DRFence{By: "west", Since: 1}})
			x.ok(x.run("web", kind, "r", 200, 201))
			return x
		}
		req := x.run("db", kind, "r", 200, 201)
		req.Keep = keep
		x.ok(req)
		return x
	}

	t.Run("forward only", func(t *testing.T) {
		x := setup(t, OpDRFailover, false)
		it := x.ok(&DRItemUpdateRequest{Run: "r", VMID: 200, Step: DRStepAllocated, TargetVMID: 2200, TargetNode: "pve2"}).(*DRItem)
		started := Timestamp(x.now)
		if it.Step != DRStepAllocated || it.TargetVMID != 2200 || it.TargetNode != "pve2" || it.Started != started || it.Finished != 0 {
			t.Fatalf("allocated item %+v", it)
		}
		x.ok(step("r", 0, 200, DRStepRestoring))
		// The same step again records what it learned; empty fields are
		// left alone.
		it = x.ok(&DRItemUpdateRequest{Run: "r", VMID: 200, Step: DRStepRestoring, Task: "UPID:r", TaskNode: "pve2"}).(*DRItem)
		if it.Task != "UPID:r" || it.TargetVMID != 2200 || it.TargetNode != "pve2" || it.Started != started {
			t.Fatalf("item %+v", it)
		}
		x.fails(step("r", 0, 200, DRStepAllocated), ErrConflict, "step")
		x.fails(step("r", 0, 200, DRStepCleaned), ErrConflict, "step")  // a drill's
		x.fails(step("r", 0, 200, DRStepReleased), ErrConflict, "step") // a failback's
		x.fails(step("r", 0, 200, "teleported"), ErrConflict, "step")
		x.fails(step("r", 0, 200, DRStepPending), ErrInvalid, "step")
		x.fails(step("r", 0, 200, ""), ErrInvalid, "step")
		x.fails(&DRItemUpdateRequest{Run: "r", VMID: 200, Step: DRStepFailed}, ErrInvalid, "error")
		// The order the runner brings a guest back in: its address before
		// its configuration, which carries it.
		for _, s := range []string{DRStepRestored, DRStepAddressed, DRStepConfigured, DRStepStarting} {
			x.ok(step("r", 0, 200, s))
		}
		x.fails(step("r", 0, 200, DRStepAddressed), ErrConflict, "step")
		if st := x.op("r").Stats; *st != (RunStats{Total: 2}) {
			t.Fatalf("stats %+v before any item ended", st)
		}
		it = x.ok(&DRItemUpdateRequest{Run: "r", VMID: 200, Step: DRStepRunning, Address: "10.0.0.9"}).(*DRItem)
		if it.Finished != Timestamp(x.now) || it.Address != "10.0.0.9" || it.Task != "UPID:r" {
			t.Fatalf("running item %+v", it)
		}
		if op := x.op("r"); *op.Stats != (RunStats{Total: 2, Succeeded: 1}) || op.ModifyIndex != x.index || !op.Active() {
			t.Fatalf("operation after an item ended %+v, stats %+v", op, op.Stats)
		}
		// An item that ended stays so.
		x.fails(step("r", 0, 200, DRStepRunning), ErrConflict, "step")
		x.fails(step("r", 0, 200, DRStepFailed), ErrConflict, "step")
		// A failed item fails from any step, with its error.
		x.ok(step("r", 1, 201, DRStepAllocated))
		it = x.ok(step("r", 1, 201, DRStepFailed)).(*DRItem)
		if it.Error != "boom" || it.Finished == 0 {
			t.Fatalf("failed item %+v", it)
		}
		if st := x.op("r").Stats; *st != (RunStats{Total: 2, Succeeded: 1, Failed: 1}) {
			t.Fatalf("stats %+v", st)
		}
		x.fails(step("r", 1, 201, DRStepRestoring), ErrConflict, "step")
	})

	t.Run("fails from pending", func(t *testing.T) {
		x := setup(t, OpDRFailover, false)
		it := x.ok(step("r", 0, 200, DRStepFailed)).(*DRItem)
		if it.Step != DRStepFailed || it.Started == 0 || it.Finished == 0 {
			t.Fatalf("item %+v", it)
		}
	})

	t.Run("unknown items and runs", func(t *testing.T) {
		x := setup(t, OpDRFailover, false)
		x.ok(&OperationCreateRequest{Op: Operation{ID: "vm-op", Kind: OpVMStart, VMID: 100}})
		x.fails(step("nope", 0, 200, DRStepAllocated), ErrNotFound, "")
		x.fails(step("vm-op", 0, 200, DRStepAllocated), ErrNotFound, "")
		x.fails(step("r", 0, 999, DRStepAllocated), ErrNotFound, "vmid")
		x.fails(step("r", 1, 200, DRStepAllocated), ErrNotFound, "vmid") // wrong order
	})

	t.Run("finished run", func(t *testing.T) {
		x := setup(t, OpDRFailover, false)
		x.ok(step("r", 0, 200, DRStepAllocated))
		x.ok(finish("r", OpFailed))
		x.fails(step("r", 0, 200, DRStepRestoring), ErrConflict, "run")
		x.fails(step("r", 1, 201, DRStepFailed), ErrConflict, "run")
	})

	t.Run("drill cleans up", func(t *testing.T) {
		x := setup(t, OpDRDrill, false)
		x.ok(step("r", 0, 200, DRStepRunning))
		if st := x.op("r").Stats; st.Succeeded != 0 {
			t.Fatalf("a drill's running guest ended it: %+v", st)
		}
		x.ok(step("r", 0, 200, DRStepCleaned))
		if st := x.op("r").Stats; st.Succeeded != 1 {
			t.Fatalf("stats %+v", st)
		}
		x.fails(step("r", 0, 200, DRStepCleaned), ErrConflict, "step")
		x.fails(step("r", 1, 201, DRStepReleased), ErrConflict, "step")
	})

	t.Run("drill keeps its guests", func(t *testing.T) {
		x := setup(t, OpDRDrill, true)
		// The runner says what it does in the operation's step: the keep
		// survives that.
		x.ok(&OperationUpdateRequest{ID: "r", Status: str(OpRunning), Step: str("recovering 2 guests")})
		x.ok(step("r", 0, 200, DRStepRunning))
		if st := x.op("r").Stats; st.Succeeded != 1 {
			t.Fatalf("a kept drill guest running did not end its item: %+v", st)
		}
		x.fails(step("r", 0, 200, DRStepCleaned), ErrConflict, "step")
		for _, it := range x.items("r") {
			if !it.Keep {
				t.Errorf("item %d of a kept drill does not say so", it.VMID)
			}
		}
	})

	t.Run("failback", func(t *testing.T) {
		x := setup(t, OpDRFailback, false)
		x.fails(step("r", 0, 200, DRStepAllocated), ErrConflict, "step")
		x.fails(step("r", 0, 200, DRStepAddressed), ErrConflict, "step")
		for _, s := range []string{DRStepReleased, DRStepRestoring, DRStepRestored, DRStepStarting, DRStepRunning} {
			x.ok(step("r", 0, 200, s))
		}
		if st := x.op("r").Stats; st.Succeeded != 1 {
			t.Fatalf("stats %+v", st)
		}
	})

	t.Run("failback records the original's network", func(t *testing.T) {
		x := setup(t, OpDRFailback, false)
		net := map[string]string{"net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=20", "ipconfig0": "ip=10.1.0.5/24,gw=10.1.0.1"}
		x.ok(step("r", 0, 200, DRStepReleased))
		it := x.ok(&DRItemUpdateRequest{Run: "r", VMID: 200, Step: DRStepRestoring, Network: net}).(*DRItem)
		if !maps.Equal(it.Network, net) {
			t.Fatalf("item %+v", it)
		}
		// The same record again is no change (a runner that asks again
		// after a lost answer); another one is refused.
		x.ok(&DRItemUpdateRequest{Run: "r", VMID: 200, Step: DRStepRestoring, Task: "UPID:r", Network: net})
		x.fails(&DRItemUpdateRequest{Run: "r", VMID: 200, Step: DRStepRestoring, Network: map[string]string{"net0": "virtio,bridge=vmbr1"}}, ErrConflict, "network")
		for _, s := range []string{DRStepRestored, DRStepStarting, DRStepRunning} {
			x.ok(step("r", 0, 200, s))
		}
		if it := x.items("r")[0]; !maps.Equal(it.Network, net) || it.Task != "UPID:r" {
			t.Fatalf("item %+v at the end", it)
		}
		for _, bad := range []map[string]string{
			{"scsi0": "local:1"}, {"net32": "virtio,bridge=vmbr0"}, {"net01": "virtio,bridge=vmbr0"}, {"net+1": "x"},
			{"ipconfig": "ip=dhcp"}, {"net1": ""}, {"net1": strings.Repeat("x", 1025)},
		} {
			x.fails(&DRItemUpdateRequest{Run: "r", VMID: 201, Step: DRStepReleased, Network: bad}, ErrInvalid, "network")
		}
	})

	t.Run("only a failback records a network", func(t *testing.T) {
		x := setup(t, OpDRFailover, false)
		x.fails(&DRItemUpdateRequest{Run: "r", VMID: 200, Step: DRStepAllocated, Network: map[string]string{"net0": "virtio,bridge=vmbr0"}}, ErrInvalid, "network")
		if it := x.items("r")[0]; it.Step != DRStepPending {
			t.Fatalf("a refused update changed the item: %+v", it)
		}
	})
}

func TestDRStepFinal(t *testing.T) {
	cases := []struct {
		kind, step string
		keep, want bool
	}{
		{OpDRFailover, DRStepRunning, false, true},
		{OpDRFailover, DRStepStarting, false, false},
		{OpDRFailover, DRStepFailed, false, true},
		{OpDRFailback, DRStepRunning, false, true},
		{OpDRDrill, DRStepRunning, false, false},
		{OpDRDrill, DRStepRunning, true, true},
		{OpDRDrill, DRStepCleaned, false, true},
		{OpDRDrill, DRStepFailed, true, true},
		{OpDRDrill, DRStepPending, true, false},
		{OpDRRelease, DRStepBackedUp, false, true},
		{OpDRRelease, DRStepStopped, true, false},
		{"dr.teleport", DRStepRunning, false, false},
		{"dr.teleport", DRStepFailed, false, true},
	}
	for _, c := range cases {
		if got := DRStepFinal(c.kind, c.step, c.keep); got != c.want {
			t.Errorf("DRStepFinal(%s, %s, %v) = %v, want %v", c.kind, c.step, c.keep, got, c.want)
		}
	}
	// Every kind's steps start pending and end in a final step, and none
	// before the last is final (a drill without keep).
	for kind, steps := range drSteps {
		if steps[0] != DRStepPending || !DRStepFinal(kind, steps[len(steps)-1], false) {
			t.Errorf("%s: steps %v", kind, steps)
		}
		for _, s := range steps[:len(steps)-1] {
			if DRStepFinal(kind, s, false) {
				t.Errorf("%s: step %s before the last is final", kind, s)
			}
		}
	}
}

func TestDRRunFinish(t *testing.T) {
	cases := []struct {
		name, kind, status string
	}{
		{"failover succeeded", OpDRFailover, OpSucceeded},
		{"failover failed", OpDRFailover, OpFailed},
		{"drill", OpDRDrill, OpSucceeded},
		{"failback failed", OpDRFailback, OpFailed},
		{"failback succeeded", OpDRFailback, OpSucceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := newDR(t)
			x.ok(x.sync(westPlan("db", 10, 200)))
			x.ok(x.put(ownPlan("web", 100), true))
			x.ok(&DRFenceRequest{Plan: "web", Fence: &DRFence{By: "west", Since: 1}})
			plan := "db"
			if tc.kind == OpDRFailback {
				plan = "web"
			}
			if at, err := x.f.State().DRFailedBackAt(x.plan(plan)); err != nil || at != 0 {
				t.Errorf("DRFailedBackAt before any run = %v, %v; want 0", at, err)
			}
			x.ok(x.run(plan, tc.kind, "r", 200))
			before := *x.plan(plan)
			// Progress leaves the plan alone.
			x.ok(&OperationUpdateRequest{ID: "r", Status: str(OpRunning), Step: str("recovering")})
			if p := x.plan(plan); !reflect.DeepEqual(*p, before) {
				t.Fatalf("a running update changed the plan: %+v", p)
			}
			op := x.ok(finish("r", tc.status)).(*Operation)
			if op.Status != tc.status || op.FinishedAt != Timestamp(x.now) {
				t.Fatalf("operation %+v", op)
			}
			p := x.plan(plan)
			if p.ActiveRun != "" || p.LastRun != "r" || p.ModifyIndex != x.index {
				t.Fatalf("plan %+v after its run ended", p)
			}
			// Only a failback that succeeded says since when the guests
			// run here again.
			wantBack := Timestamp(0)
			if tc.kind == OpDRFailback && tc.status == OpSucceeded {
				wantBack = op.FinishedAt
			}
			if at, err := x.f.State().DRFailedBackAt(p); err != nil || at != wantBack {
				t.Errorf("DRFailedBackAt = %v, %v; want %v", at, err, wantBack)
			}
			switch tc.kind {
			case OpDRFailover:
				if p.Failover == nil || p.Failover.Run != "r" || p.Failover.State != tc.status || p.Failover.StartedAt != before.Failover.StartedAt {
					t.Fatalf("failover %+v, want %s", p.Failover, tc.status)
				}
				if before.Failover.State != OpRunning {
					t.Fatal("the state of a stored failover was changed in place")
				}
			case OpDRDrill:
				if p.Failover != nil {
					t.Fatalf("a drill recorded a failover %+v", p.Failover)
				}
			case OpDRFailback:
				// The guests are back here: the fence goes with a
				// failback that succeeded, not one that failed.
				if (p.Fence == nil) != (tc.status == OpSucceeded) {
					t.Fatalf("fence %+v after a failback that %s", p.Fence, tc.status)
				}
			}
		})
	}

}

// TestDRRelease follows a failover to its end: the recovery site
// releases its copies for the source's failback, and once the source
// lifts its fence the replica may fail over again.
func TestDRRelease(t *testing.T) {
	x := newDR(t)
	x.ok(x.put(ownPlan("web", 100), true))
	x.ok(x.sync(westPlan("db", 10, 200), westPlan("app", 10, 300)))
	x.fails(x.run("db", OpDRRelease, "rl-1", 200), ErrConflict, "plan")  // never failed over
	x.fails(x.run("web", OpDRRelease, "rl-1", 100), ErrConflict, "plan") // not a replica
	x.ok(x.run("db", OpDRFailover, "fo-1", 200))
	x.fails(x.run("db", OpDRRelease, "rl-1", 200), ErrConflict, "plan") // still running
	x.ok(step("fo-1", 0, 200, DRStepRunning))
	x.ok(finish("fo-1", OpSucceeded))

	x.ok(x.run("db", OpDRRelease, "rl-1", 200))
	x.fails(x.run("db", OpDRFailover, "fo-2", 200), ErrConflict, "plan")
	x.fails(step("rl-1", 0, 200, DRStepAllocated), ErrConflict, "step")
	for _, s := range []string{DRStepStopped, DRStepBackingUp} {
		x.ok(step("rl-1", 0, 200, s))
	}
	it := x.ok(&DRItemUpdateRequest{Run: "rl-1", VMID: 200, Step: DRStepBackedUp, Backup: "pbs:backup/vm/2200/z"}).(*DRItem)
	if it.Backup != "pbs:backup/vm/2200/z" || it.Finished == 0 {
		t.Fatalf("released item %+v", it)
	}
	if st := x.op("rl-1").Stats; *st != (RunStats{Total: 1, Succeeded: 1}) {
		t.Fatalf("stats %+v", st)
	}
	// West still fences its plan while the release runs.
	fenced := westPlan("db", 20, 200, 201)
	fenced.Fence = &DRFence{By: "east", Run: "fo-1", Since: 5}
	x.ok(x.sync(fenced, westPlan("app", 10, 300)))
	if p := x.plan("db"); p.SourceUpdatedAt != 10 || p.Failover == nil || p.ActiveRun != "rl-1" {
		t.Fatalf("replica %+v during its release", p)
	}
	x.ok(finish("rl-1", OpSucceeded))
	p := x.plan("db")
	if p.ActiveRun != "" || p.LastRun != "rl-1" || p.Failover == nil || p.Failover.State != DRFailoverReleased || p.Failover.Run != "fo-1" {
		t.Fatalf("replica %+v, failover %+v after the release", p, p.Failover)
	}
	x.fails(x.run("db", OpDRRelease, "rl-2", 200), ErrConflict, "plan") // released already
	x.fails(x.run("db", OpDRFailover, "fo-2", 200), ErrConflict, "plan")

	// Until west lifts its fence the failover stands.
	res := x.ok(x.sync(fenced, westPlan("app", 10, 300))).(*DRSyncResult)
	if f := res.Failovers["db"]; f == nil || f.State != DRFailoverReleased {
		t.Fatalf("failovers %+v", res.Failovers)
	}
	created := p.CreateIndex
	res = x.ok(x.sync(westPlan("db", 20, 200, 201), westPlan("app", 10, 300))).(*DRSyncResult)
	if len(res.Failovers) != 0 {
		t.Fatalf("failovers %+v after west lifted its fence", res.Failovers)
	}
	p = x.plan("db")
	if p.Failover != nil || p.SourceUpdatedAt != 20 || len(p.Guests) != 2 || p.LastRun != "rl-1" || p.CreateIndex != created || p.ModifyIndex != x.index {
		t.Fatalf("replica %+v after west lifted its fence", p)
	}
	x.ok(x.run("db", OpDRFailover, "fo-2", 200, 201))

	// A release that failed leaves the failover as it was.
	x.ok(finish("fo-2", OpFailed))
	x.ok(x.run("db", OpDRRelease, "rl-3", 200))
	x.ok(finish("rl-3", OpFailed))
	if f := x.plan("db").Failover; f == nil || f.State != OpFailed || f.Run != "fo-2" {
		t.Fatalf("failover %+v after a failed release", f)
	}
}

func TestDRFence(t *testing.T) {
	x := newDR(t)
	x.ok(x.put(ownPlan("web", 100, 101), true))
	x.ok(x.sync(westPlan("db", 10, 200)))
	x.fails(&DRFenceRequest{Plan: "db", Fence: &DRFence{By: "west", Since: 1}}, ErrConflict, "plan")
	x.fails(&DRFenceRequest{Plan: "nope", Fence: &DRFence{By: "west", Since: 1}}, ErrNotFound, "")

	// Fenced by a failover of unknown run, then learned again with the
	// same: Since stays.
	p := x.ok(&DRFenceRequest{Plan: "web", Fence: &DRFence{By: "west", Since: 50}}).(*DRPlan)
	if p.Fence == nil || !reflect.DeepEqual(*p.Fence, DRFence{By: "west", Since: 50}) || p.ModifyIndex != x.index {
		t.Fatalf("fenced plan %+v", p)
	}
	p = x.ok(&DRFenceRequest{Plan: "web", Fence: &DRFence{By: "west", Since: 60}}).(*DRPlan)
	if p.Fence.Since != 50 {
		t.Fatalf("fence since %d, want 50 kept", p.Fence.Since)
	}
	// The guests ran here after the failover: conflicts, recorded once
	// however often they are sent.
	cf := []DRConflict{
		{ID: "c-1", Plan: "web", Kind: DRConflictGuestRan, Site: "east", VMID: 100, Detail: "vm 100 ran", At: 70},
		{ID: "c-2", Plan: "web", Kind: DRConflictGuestRan, Site: "east", VMID: 101, Detail: "vm 101 ran", At: 70},
	}
	for i := range 3 {
		again := slices.Clone(cf)
		for j := range again {
			again[j].ID = fmt.Sprintf("c-%d-%d", i, j) // each sender stamps new IDs
		}
		if i == 0 {
			again = cf
		}
		x.ok(&DRFenceRequest{Plan: "web", Fence: &DRFence{By: "west", Since: 80}, Conflicts: again})
	}
	cs := x.conflicts()
	if len(cs) != 2 || cs[0].ID != "c-1" || cs[0].Version != 70 || cs[1].VMID != 101 {
		t.Fatalf("conflicts %+v", cs)
	}
	if p := x.plan("web"); p.Fence.Since != 50 {
		t.Fatalf("fence since %d after conflicts", p.Fence.Since)
	}
	// vm 100 ran again later: a new conflict.
	x.ok(&DRFenceRequest{Plan: "web", Fence: &DRFence{By: "west"}, Conflicts: []DRConflict{
		{ID: "c-3", Plan: "web", Kind: DRConflictGuestRan, Site: "east", VMID: 100, Detail: "vm 100 ran", At: 90}}})
	if cs := x.conflicts(); len(cs) != 3 {
		t.Fatalf("%d conflicts, want 3", len(cs))
	}

	// Another failover run is another fence.
	p = x.ok(&DRFenceRequest{Plan: "web", Fence: &DRFence{By: "west", Run: "w-2", Since: 100}}).(*DRPlan)
	if p.Fence.Since != 100 || p.Fence.Run != "w-2" {
		t.Fatalf("fence %+v", p.Fence)
	}
	p = x.ok(&DRFenceRequest{Plan: "web", Fence: &DRFence{By: "west", Run: "w-2", Since: 110}}).(*DRPlan)
	if p.Fence.Since != 100 {
		t.Fatalf("fence %+v, want since 100 kept", p.Fence)
	}
	// Lifted (a failback ran), then lifting again is harmless.
	p = x.ok(&DRFenceRequest{Plan: "web"}).(*DRPlan)
	if p.Fence != nil {
		t.Fatalf("fence %+v after lifting", p.Fence)
	}
	x.ok(&DRFenceRequest{Plan: "web"})
	if len(x.conflicts()) != 3 {
		t.Fatal("lifting the fence dropped conflicts")
	}
}

func TestDRFailoverEnd(t *testing.T) {
	x := newDR(t)
	x.ok(x.sync(westPlan("db", 10, 200)))
	x.fails(&DRFailoverEndRequest{Plan: "nope"}, ErrNotFound, "")
	// Without a failover it is a no-op.
	before := dump(t, x.f)
	if p := x.ok(&DRFailoverEndRequest{Plan: "db"}).(*DRPlan); p.Failover != nil {
		t.Fatalf("plan %+v", p)
	}
	if !bytes.Equal(before, dump(t, x.f)) {
		t.Fatal("ending no failover changed the state")
	}
	x.ok(x.run("db", OpDRFailover, "fo-1", 200))
	x.fails(&DRFailoverEndRequest{Plan: "db"}, ErrConflict, "plan")
	x.ok(finish("fo-1", OpSucceeded))
	p := x.ok(&DRFailoverEndRequest{Plan: "db"}).(*DRPlan)
	if p.Failover != nil || p.LastRun != "fo-1" || p.ModifyIndex != x.index {
		t.Fatalf("plan %+v after the failover ended", p)
	}
	// The plan may fail over again, and takes west's versions again.
	x.ok(x.sync(westPlan("db", 20, 200, 201)))
	if p := x.plan("db"); p.SourceUpdatedAt != 20 {
		t.Fatalf("replica %+v after its failover ended", p)
	}
	x.ok(x.run("db", OpDRFailover, "fo-2", 200))
}

func TestDRPlanDelete(t *testing.T) {
	cases := []struct {
		name  string
		setup func(x *drFSM)
		plan  string
		want  error
	}{
		{"plan", func(*drFSM) {}, "web", nil},
		{"replica", func(*drFSM) {}, "db", nil},
		{"missing", func(*drFSM) {}, "nope", ErrNotFound},
		{"empty id", func(*drFSM) {}, "", ErrNotFound},
		{"drill running", func(x *drFSM) { x.ok(x.run("db", OpDRDrill, "d", 200)) }, "db", ErrConflict},
		{"drill ended", func(x *drFSM) { x.ok(x.run("db", OpDRDrill, "d", 200)); x.ok(finish("d", OpSucceeded)) }, "db", nil},
		{"failed over", func(x *drFSM) { x.ok(x.run("db", OpDRFailover, "f", 200)); x.ok(finish("f", OpSucceeded)) }, "db", ErrConflict},
		{"fenced", func(x *drFSM) { x.ok(&DRFenceRequest{Plan: "web", Fence: &DRFence{By: "west"}}) }, "web", ErrConflict},
		{"failing back", func(x *drFSM) {
			x.ok(&DRFenceRequest{Plan: "web", Fence: &DRFence{By: "west"}})
			x.ok(x.run("web", OpDRFailback, "b", 100))
			x.ok(&DRFenceRequest{Plan: "web"})
		}, "web", ErrConflict},
		{"failed back", func(x *drFSM) {
			x.ok(&DRFenceRequest{Plan: "web", Fence: &DRFence{By: "west"}})
			x.ok(x.run("web", OpDRFailback, "b", 100))
			x.ok(finish("b", OpSucceeded))
			x.ok(&DRFenceRequest{Plan: "web"})
		}, "web", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := newDR(t)
			x.ok(x.put(ownPlan("web", 100), true))
			x.ok(x.sync(westPlan("db", 10, 200)))
			tc.setup(x)
			if tc.want != nil {
				field := "id"
				if tc.want == ErrNotFound {
					field = ""
				}
				x.fails(&DRPlanDeleteRequest{ID: tc.plan}, tc.want, field)
				return
			}
			p := x.ok(&DRPlanDeleteRequest{ID: tc.plan}).(*DRPlan)
			if p.ID != tc.plan || x.plan(tc.plan) != nil {
				t.Fatalf("deleted %+v, still there: %v", p, x.plan(tc.plan) != nil)
			}
		})
	}
}

// drScenario is a disaster and its recovery, from both sites' logs
// applied at one (which the state machine allows: a site is source of
// some plans and recovery site of others), with refused commands mixed in.
func drScenario() []Command {
	fence := &DRFence{By: "west", Run: "w-1", Since: 3}
	sync := func(n Timestamp, plans ...DRPlan) *DRReplicaSyncRequest {
		ids := make([]string, len(plans))
		for i := range ids {
			ids[i] = fmt.Sprintf("cf-%d-%d", n, i)
		}
		return &DRReplicaSyncRequest{Source: "west", LocalSite: "east", Plans: plans, ConflictIDs: ids}
	}
	drill := &DRRunStartRequest{Plan: "db", Kind: OpDRDrill, Trigger: DRTriggerManual, Keep: true, Run: Operation{ID: "d-1"},
		Items: []DRItem{{VMID: 200}, {VMID: 201, Order: 1}}}
	return []Command{
		&DRPlanPutRequest{Plan: ownPlan("web", 100, 101), Create: true, LocalSite: "east"},
		sync(1, westPlan("db", 10, 200, 201), westPlan("app", 10, 300)),
		sync(2, westPlan("db", 10, 200, 201), westPlan("app", 10, 300)),
		drill,
		&DRItemUpdateRequest{Run: "d-1", VMID: 200, Step: DRStepRunning},
		&DRItemUpdateRequest{Run: "d-1", VMID: 201, Order: 1, Step: DRStepFailed, Error: "no backup"},
		&OperationUpdateRequest{ID: "d-1", Status: str(OpFailed), Error: &OpError{Code: "failed", Message: "1 of 2"}},
		&DRRunStartRequest{Plan: "db", Kind: OpDRFailover, Trigger: DRTriggerAutomatic, Run: Operation{ID: "f-1"},
			Items: []DRItem{{VMID: 201, Order: 1}, {VMID: 200}}},
		&DRRunStartRequest{Plan: "db", Kind: OpDRFailover, Trigger: DRTriggerAutomatic, Run: Operation{ID: "f-2"}},
		sync(3, westPlan("db", 30, 200), westPlan("app", 10, 300)),
		sync(4, westPlan("db", 30, 200), westPlan("app", 10, 300)),
		&DRItemUpdateRequest{Run: "f-1", VMID: 200, Step: DRStepAllocated, TargetVMID: 2200},
		&DRItemUpdateRequest{Run: "f-1", VMID: 200, Step: DRStepRestored},
		&DRItemUpdateRequest{Run: "f-1", VMID: 200, Step: DRStepAllocated},
		&DRItemUpdateRequest{Run: "f-1", VMID: 200, Step: DRStepRunning, Address: "10.0.0.9"},
		&DRItemUpdateRequest{Run: "f-1", VMID: 201, Order: 1, Step: DRStepRunning},
		&DRPlanDeleteRequest{ID: "db"},
		&OperationUpdateRequest{ID: "f-1", Status: str(OpSucceeded)},
		&DRFenceRequest{Plan: "web", Fence: fence, Conflicts: []DRConflict{{ID: "c-1", Plan: "web", Kind: DRConflictGuestRan, Site: "east", VMID: 100, At: 5}}},
		&DRFenceRequest{Plan: "web", Fence: fence, Conflicts: []DRConflict{{ID: "c-2", Plan: "web", Kind: DRConflictGuestRan, Site: "east", VMID: 100, At: 5}}},
		&DRPlanDeleteRequest{ID: "web"},
		&DRRunStartRequest{Plan: "web", Kind: OpDRFailback, Trigger: DRTriggerManual, Run: Operation{ID: "b-1"}, Items: []DRItem{{VMID: 100}}},
		&DRItemUpdateRequest{Run: "b-1", VMID: 100, Step: DRStepReleased},
		&OperationUpdateRequest{ID: "b-1", Status: str(OpSucceeded)},
		&DRFenceRequest{Plan: "web"},
		&DRFailoverEndRequest{Plan: "db"},
		sync(5, westPlan("db", 40, 200)),
		&DRPlanDeleteRequest{ID: "web"},
		&DRPlanDeleteRequest{ID: "db"},
	}
}

// TestDR_Deterministic applies the scenario to two state machines, one
// command at a time and as batches, and through a snapshot half way: the
// responses and states agree. Apply reads no clock.
func TestDR_Deterministic(t *testing.T) {
	cmds := drScenario()
	var entries [][]byte
	for i, c := range cmds {
		c.Meta().Now = int64(1000 + i)
		entries = append(entries, mustEncode(t, c))
	}
	a, b := New(), New()
	ra, rb := applyLog(a, 1, entries), applyLog(b, 1, entries)
	if !reflect.DeepEqual(ra, rb) {
		t.Fatalf("responses differ:\n%v\n%v", ra, rb)
	}
	requireSameDump(t, a, b)
	refused := func(resp string) bool { return !strings.Contains(resp, " err=<nil> ") }
	var n int
	for _, r := range ra {
		if refused(r) {
			n++
		}
	}
	if n == 0 || n == len(ra) {
		t.Fatalf("%d of %d commands refused: the scenario should mix both\n%s", n, len(ra), strings.Join(ra, "\n"))
	}

	// Half way through a snapshot, then the rest on both.
	cut := len(entries) / 2
	c := New()
	applyLog(c, 1, entries[:cut])
	restored := testSnapshotRestore(t, c)
	rc := applyLog(c, uint64(cut+1), entries[cut:])
	rr := applyLog(restored, uint64(cut+1), entries[cut:])
	if !reflect.DeepEqual(rc, rr) || !reflect.DeepEqual(rc, ra[cut:]) {
		t.Fatalf("responses after a restore differ:\n%v\n%v", rc, rr)
	}
	requireSameDump(t, c, restored)
	requireSameDump(t, c, a)

	// As batches of three: the same responses.
	d, e := New(), New()
	var rd, re []*Result
	for i := 0; i < len(entries); i += 3 {
		chunk := entries[i:min(i+3, len(entries))]
		rd = append(rd, applyBatch(t, d, uint64(i+1), chunk...)...)
		re = append(re, applyBatch(t, e, uint64(i+1), chunk...)...)
	}
	for i := range rd {
		if got, want := responseString(rd[i]), responseString(re[i]); got != want {
			t.Fatalf("batched entry %d: %s vs %s", i, got, want)
		}
		// Their values hold other indexes; their outcomes are the same.
		if (rd[i].Err != nil) != refused(ra[i]) || rd[i].Err != nil && !strings.Contains(ra[i], "err="+rd[i].Err.Error()+" ") {
			t.Errorf("entry %d: batched %s, alone %s", i, responseString(rd[i]), ra[i])
		}
	}
	requireSameDump(t, d, e)
	testSnapshotRestore(t, d)
}

// TestDR_SourceReadsNoClock keeps the DR code of the state machine free
// of what would make servers disagree: the clock (durations are fine),
// randomness, the environment.
func TestDR_SourceReadsNoClock(t *testing.T) {
	banned := map[string]bool{"time.Now": true, "time.Since": true, "time.Until": true, "time.After": true, "time.Tick": true,
		"time.NewTimer": true, "time.NewTicker": true, "time.AfterFunc": true}
	for _, name := range []string{"dr.go", "dr_commands.go", "dr_types.go"} {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			switch p, _ := strconv.Unquote(imp.Path.Value); p {
			case "math/rand", "math/rand/v2", "crypto/rand", "os", "sync":
				t.Errorf("%s imports %s", name, p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok && banned[id.Name+"."+sel.Sel.Name] {
					t.Errorf("%s uses %s.%s", name, id.Name, sel.Sel.Name)
				}
			}
			return true
		})
	}
}

// TestDR_OddInput applies unusual but decodable DR commands: each is
// answered, none panics, and a refused one changes nothing.
func TestDR_OddInput(t *testing.T) {
	cmds := []Command{
		&DRFenceRequest{Plan: "web"},                                     // lift a fence that is not there
		&DRFenceRequest{Plan: "web", Conflicts: []DRConflict{{}}},        // a conflict without an ID
		&DRFenceRequest{Plan: "web", Conflicts: []DRConflict{{ID: "x"}}}, // an empty conflict
		&DRFenceRequest{Plan: "db", Fence: &DRFence{}},
		&DRFenceRequest{},
		&DRRunStartRequest{Plan: "db", Kind: OpDRFailover, Trigger: DRTriggerManual, Run: Operation{ID: "e"}}, // no items
		&DRRunStartRequest{Plan: "db", Kind: "vm.create", Trigger: DRTriggerManual, Run: Operation{ID: "k"}},  // not a DR run
		&DRRunStartRequest{Plan: "db", Kind: OpDRDrill, Trigger: DRTriggerManual, Run: Operation{ID: "o"},
			Items: []DRItem{{VMID: 200, Order: -5}, {VMID: 201, Order: 1 << 40}}},
		&DRRunStartRequest{Plan: "db", Kind: OpDRDrill, Trigger: DRTriggerManual, Run: Operation{ID: "s"}, Items: []DRItem{{VMID: 200, Step: DRStepRunning}}},
		&DRItemUpdateRequest{Run: "e", VMID: 200, Step: DRStepRunning},
		&DRItemUpdateRequest{Run: "o", Order: -5, VMID: 200, Step: DRStepFailed, Error: "x"},
		&DRItemUpdateRequest{Run: "o", Order: 1 << 40, VMID: 201, Step: DRStepCleaned},
		&DRReplicaSyncRequest{Source: "west", LocalSite: "east"}, // removes every replica of west that may go
		&DRReplicaSyncRequest{Source: "west", LocalSite: "east", Plans: []DRPlan{westPlan("db", 5, 200), westPlan("db", 6, 200)}, ConflictIDs: []string{"a", "b"}},
		&DRReplicaSyncRequest{Source: "west", LocalSite: "", Plans: []DRPlan{westPlan("db", 5, 200)}, ConflictIDs: []string{"a"}},
		&DRPlanPutRequest{Plan: ownPlan("web", 100)},
		&DRPlanDeleteRequest{ID: "db"},
		&DRFailoverEndRequest{},
	}
	for _, mt := range []MessageType{DRPlanPutType, DRPlanDeleteType, DRReplicaSyncType, DRRunStartType, DRItemUpdateType, DRFenceType, DRFailoverEndType} {
		cmds = append(cmds, commands[mt].new())
	}
	odd := func(t *testing.T, x *drFSM, c Command) {
		t.Helper()
		before := dump(t, x.f)
		x.index++
		resp, panicked := applyRecover(x.f, x.index, mustEncode(t, c))
		if panicked {
			t.Fatalf("%T: Apply panicked: %v", c, resp)
		}
		r, ok := resp.(*Result)
		if !ok {
			t.Fatalf("%T: Apply returned %T", c, resp)
		}
		if r.Err != nil && !bytes.Equal(before, dump(t, x.f)) {
			t.Fatalf("%T refused (%v), but the state changed", c, r.Err)
		}
	}
	setup := func(t *testing.T) *drFSM {
		x := newDR(t)
		x.ok(x.put(ownPlan("web", 100), true))
		x.ok(x.sync(westPlan("db", 10, 200, 201)))
		return x
	}
	for i, c := range cmds {
		t.Run(fmt.Sprintf("%d %s", i, c.Type()), func(t *testing.T) {
			x := setup(t)
			odd(t, x, c)
			testSnapshotRestore(t, x.f)
		})
	}
	// And one after another, on one state.
	x := setup(t)
	for _, c := range cmds {
		odd(t, x, c)
	}
	testSnapshotRestore(t, x.f)
}

// TestNewDRRun builds a run from a replica: one item per guest, with
// what west last sent of it, which the state machine then starts.
func TestNewDRRun(t *testing.T) {
	x := newDR(t)
	p := westPlan("db", 10, 200, 201, 202)
	p.Guests[1].TargetVMID, p.Guests[1].DNSName, p.Guests[1].Order = 2201, "db.moxxie.test", 0
	p.Networks = []DRNetwork{{Source: "vmbr0", Target: "vnet1", Prefix: "p-east"}}
	p.Status = p.Status[:2] // nothing known of 202
	p.Status[0].Memory = 8 << 30
	x.ok(x.sync(p))
	x.ok(x.put(ownPlan("web", 100), true))
	_, plans, err := x.f.State().DRPlans(nil)
	if err != nil || len(plans) != 2 || plans[0].ID != "db" || plans[1].ID != "web" {
		t.Fatalf("DRPlans = %v, %v", plans, err)
	}

	req := NewDRRun(x.plan("db"), OpDRDrill, DRTriggerManual, true, "d-1")
	if req.Plan != "db" || req.Kind != OpDRDrill || req.Trigger != DRTriggerManual || !req.Keep || req.Run.ID != "d-1" || len(req.Items) != 3 {
		t.Fatalf("request %+v", req)
	}
	want := []DRItem{
		{VMID: 200, Order: 0, Name: "g200", Kind: "qemu", Backup: "pbs:backup/vm/200/x", Memory: 8 << 30},
		{VMID: 201, Order: 0, Name: "g201", Kind: "qemu", Backup: "pbs:backup/vm/201/x", TargetVMID: 2201, DNSName: "db.moxxie.test"},
		{VMID: 202, Order: 2},
	}
	if !reflect.DeepEqual(req.Items, want) {
		t.Fatalf("items %+v, want %+v", req.Items, want)
	}
	x.ok(req)
	var order []int
	for _, it := range x.items("d-1") {
		order = append(order, it.VMID)
		if !it.Keep || it.Step != DRStepPending {
			t.Errorf("item %+v", it)
		}
	}
	if !reflect.DeepEqual(order, []int{200, 201, 202}) {
		t.Fatalf("items in order %v", order)
	}
}

// noChange applies cmd, requires it to succeed and the state to be
// unchanged.
func (x *drFSM) noChange(cmd Command) {
	x.t.Helper()
	before := dump(x.t, x.f)
	x.ok(cmd)
	if !bytes.Equal(before, dump(x.t, x.f)) {
		x.t.Fatalf("%T %+v changed the state", cmd, cmd)
	}
}

func TestDRIsolation(t *testing.T) {
	iso := func(action string, vmids ...int) *DRIsolationRequest {
		return &DRIsolationRequest{Plan: "web", Action: action, VMIDs: vmids}
	}
	lift := func(by string) *DRIsolationRequest {
		return &DRIsolationRequest{Plan: "web", Action: DRIsolationLift, By: by}
	}

	t.Run("bad input", func(t *testing.T) {
		x := newDR(t)
		x.ok(x.put(ownPlan("web", 100, 101), true))
		x.ok(x.sync(westPlan("db", 10, 200)))
		x.fails(iso("pause"), ErrInvalid, "action")
		x.fails(iso(DRIsolationFence, 100), ErrInvalid, "vmids")
		x.fails(iso(DRIsolationStopped), ErrInvalid, "vmids")
		x.fails(iso(DRIsolationRestarted, 0), ErrInvalid, "vmids")
		x.fails(iso(DRIsolationLift), ErrInvalid, "by")
		x.fails(&DRIsolationRequest{Plan: "nope", Action: DRIsolationFence}, ErrNotFound, "")
		x.fails(&DRIsolationRequest{Plan: "db", Action: DRIsolationFence}, ErrConflict, "plan")
	})

	t.Run("no failover: fenced, lifted by a sync, ended", func(t *testing.T) {
		x := newDR(t)
		x.ok(x.put(ownPlan("web", 100, 101, 102), true))
		// Nothing to stop, lift or end without an isolated fence.
		for _, c := range []Command{iso(DRIsolationStopped, 100), lift("sync"), iso(DRIsolationRestarted, 100), iso(DRIsolationEnd)} {
			x.noChange(c)
		}
		p := x.ok(iso(DRIsolationFence)).(*DRPlan)
		since := Timestamp(x.now)
		if !reflect.DeepEqual(p.Fence, &DRFence{By: "west", Since: since, Isolated: true}) || p.ModifyIndex != x.index || !p.Fence.Keeps() {
			t.Fatalf("fence %+v", p.Fence)
		}
		x.noChange(iso(DRIsolationFence)) // fenced already: Since stays
		// Two writers recording stops: nothing is lost, each once.
		x.ok(iso(DRIsolationStopped, 101))
		x.ok(iso(DRIsolationStopped, 100, 101))
		if got := x.plan("web").Fence.Stopped; !slices.Equal(got, []int{100, 101}) {
			t.Fatalf("stopped %v", got)
		}
		// Neither a failback nor a delete while fenced.
		x.fails(x.run("web", OpDRFailback, "fb-1", 100), ErrConflict, "plan")
		x.fails(&DRPlanDeleteRequest{ID: "web"}, ErrConflict, "id")
		// Not ended before it is lifted.
		x.noChange(iso(DRIsolationEnd))
		p = x.ok(lift("sync")).(*DRPlan)
		if !p.Fence.Lifted || p.Fence.LiftedBy != "sync" || p.Fence.Keeps() {
			t.Fatalf("lifted fence %+v", p.Fence)
		}
		x.noChange(lift("root"))                 // lifted once, by the first
		x.noChange(iso(DRIsolationStopped, 102)) // a lifted fence stops nothing
		// Not ended while a stopped guest waits to run again.
		x.ok(iso(DRIsolationRestarted, 100))
		x.noChange(iso(DRIsolationEnd))
		x.ok(iso(DRIsolationRestarted, 101, 102))
		if f := x.plan("web").Fence; f.Stopped != nil {
			t.Fatalf("stopped %v after every guest restarted", f.Stopped)
		}
		if p := x.ok(iso(DRIsolationEnd)).(*DRPlan); p.Fence != nil {
			t.Fatalf("fence %+v after the end", p.Fence)
		}
		x.noChange(iso(DRIsolationEnd))
		// A plan update keeps the fence it has.
		x.ok(iso(DRIsolationFence))
		x.ok(x.put(ownPlan("web", 100), false))
		if f := x.plan("web").Fence; f == nil || !f.Isolated {
			t.Fatalf("fence %+v after a plan update", f)
		}
	})

	t.Run("a failover after all", func(t *testing.T) {
		x := newDR(t)
		x.ok(x.put(ownPlan("web", 100, 101), true))
		x.ok(iso(DRIsolationFence))
		x.ok(iso(DRIsolationStopped, 100))
		// A sync names west's failover: an ordinary fence.
		p := x.ok(&DRFenceRequest{Plan: "web", Fence: &DRFence{By: "west", Run: "fo-1", Since: 99}}).(*DRPlan)
		if !reflect.DeepEqual(p.Fence, &DRFence{By: "west", Run: "fo-1", Since: 99}) || !p.Fence.Keeps() {
			t.Fatalf("fence %+v", p.Fence)
		}
		// Isolation never lifts, ends or replaces it.
		for _, c := range []Command{iso(DRIsolationFence), iso(DRIsolationStopped, 101), lift("root"), iso(DRIsolationRestarted, 100), iso(DRIsolationEnd)} {
			x.noChange(c)
		}
		// The failback does.
		x.ok(x.run("web", OpDRFailback, "fb-1", 100, 101))
		x.ok(finish("fb-1", OpSucceeded))
		if p := x.plan("web"); p.Fence != nil {
			t.Fatalf("fence %+v after the failback", p.Fence)
		}
	})

	t.Run("lifted by an operator, then a failover is learned", func(t *testing.T) {
		x := newDR(t)
		x.ok(x.put(ownPlan("web", 100), true))
		x.ok(iso(DRIsolationFence))
		x.ok(iso(DRIsolationStopped, 100))
		x.ok(lift("root"))
		x.ok(iso(DRIsolationRestarted, 100))
		// Still isolated: the fence stays, lifted, until the recovery
		// site answers. It answers with a failover: the guests stop again.
		p := x.ok(&DRFenceRequest{Plan: "web", Fence: &DRFence{By: "west", Run: "fo-1", Since: 99}}).(*DRPlan)
		if p.Fence.Isolated || p.Fence.Lifted || !p.Fence.Keeps() {
			t.Fatalf("fence %+v", p.Fence)
		}
	})
}

func TestDRPlan_Objective(t *testing.T) {
	for _, tc := range []struct {
		rpo  string
		want time.Duration
	}{{"", DefaultDRRPO}, {"4h", 4 * time.Hour}, {"90m", 90 * time.Minute}} {
		p := DRPlan{RPO: tc.rpo}
		if got := p.Objective(); got != tc.want {
			t.Errorf("rpo %q: %s, want %s", tc.rpo, got, tc.want)
		}
	}
}

// TestDRRunRetry: a failed failover runs again at the recovery site. Each
// guest that failed goes back to the last step its record shows it
// reached (no VMID: from the start; a VMID: its restore, the task
// forgotten; an address: configuring), a running copy is left alone, and
// the run and the plan's failover are running again. Only a replica's
// failed failover with no run in progress runs again.
func TestDRRunRetry(t *testing.T) {
	x := newDR(t)
	x.ok(x.put(ownPlan("web", 100), true))
	x.ok(x.sync(westPlan("db", 10, 200, 201, 202, 203)))
	retry := &DRRunRetryRequest{Plan: "db"}
	x.fails(&DRRunRetryRequest{Plan: "nope"}, ErrNotFound, "")
	x.fails(&DRRunRetryRequest{Plan: "web"}, ErrConflict, "plan") // not a replica
	x.fails(retry, ErrConflict, "plan")                           // never failed over
	x.ok(x.run("db", OpDRFailover, "fo-1", 200, 201, 202, 203))
	x.fails(retry, ErrConflict, "plan") // running

	x.ok(&DRItemUpdateRequest{Run: "fo-1", Order: 0, VMID: 200, Step: DRStepAllocated, TargetVMID: 1200, TargetNode: "pve1"})
	for _, s := range []string{DRStepRestoring, DRStepRestored, DRStepAddressed, DRStepConfigured, DRStepStarting, DRStepRunning} {
		x.ok(step("fo-1", 0, 200, s))
	}
	x.ok(step("fo-1", 1, 201, DRStepFailed))
	x.ok(&DRItemUpdateRequest{Run: "fo-1", Order: 2, VMID: 202, Step: DRStepAllocated, TargetVMID: 1202, TargetNode: "pve2"})
	x.ok(&DRItemUpdateRequest{Run: "fo-1", Order: 2, VMID: 202, Step: DRStepRestoring, Task: "UPID:pve2:1", TaskNode: "pve2"})
	x.ok(step("fo-1", 2, 202, DRStepFailed))
	x.ok(&DRItemUpdateRequest{Run: "fo-1", Order: 3, VMID: 203, Step: DRStepAllocated, TargetVMID: 1203, TargetNode: "pve1"})
	x.ok(step("fo-1", 3, 203, DRStepRestored))
	x.ok(&DRItemUpdateRequest{Run: "fo-1", Order: 3, VMID: 203, Step: DRStepAddressed, Address: "10.9.0.3"})
	x.ok(step("fo-1", 3, 203, DRStepFailed))
	x.ok(finish("fo-1", OpFailed))
	if f := x.plan("db").Failover; f == nil || f.State != OpFailed {
		t.Fatalf("failover %+v", f)
	}

	op := x.ok(retry).(*Operation)
	if op.ID != "fo-1" || op.Status != OpPending || op.Error != nil || op.FinishedAt != 0 || *op.Stats != (RunStats{Total: 4, Succeeded: 1}) ||
		op.Step != "run again: 3 failed guests" || op.ModifyIndex != x.index {
		t.Fatalf("run again: %+v, stats %+v", op, op.Stats)
	}
	if p := x.plan("db"); p.ActiveRun != "fo-1" || p.Failover == nil || p.Failover.State != OpRunning || p.Failover.Run != "fo-1" {
		t.Fatalf("plan %+v, failover %+v", p, p.Failover)
	}
	type want struct {
		step, task, address string
		target              int
	}
	wants := map[int]want{
		200: {DRStepRunning, "UPID", "", 1200}, // untouched (its task was never set)
		201: {DRStepPending, "", "", 0},
		202: {DRStepAllocated, "UPID:pve2:1", "", 1202},
		203: {DRStepAddressed, "", "10.9.0.3", 1203},
	}
	for _, it := range x.items("fo-1") {
		w := wants[it.VMID]
		if w.task == "UPID" {
			w.task = ""
		}
		if it.Step != w.step || it.Task != w.task || (it.TaskNode != "") != (w.task != "") || it.Address != w.address || it.TargetVMID != w.target ||
			it.Error != "" || (it.Step != DRStepRunning) != (it.Finished == 0) {
			t.Errorf("item %d: %+v, want %+v", it.VMID, it, w)
		}
	}
	x.fails(retry, ErrConflict, "plan") // running again

	// It ends as any run does; a succeeded failover is failed back, not
	// run again.
	for _, s := range []string{DRStepAllocated, DRStepRestoring, DRStepRestored, DRStepAddressed, DRStepConfigured, DRStepStarting, DRStepRunning} {
		x.ok(step("fo-1", 1, 201, s))
	}
	for _, s := range []string{DRStepRestoring, DRStepRestored, DRStepAddressed, DRStepConfigured, DRStepStarting, DRStepRunning} {
		x.ok(step("fo-1", 2, 202, s))
	}
	for _, s := range []string{DRStepConfigured, DRStepStarting, DRStepRunning} {
		x.ok(step("fo-1", 3, 203, s))
	}
	if st := x.op("fo-1").Stats; *st != (RunStats{Total: 4, Succeeded: 4}) {
		t.Fatalf("stats %+v", st)
	}
	x.ok(finish("fo-1", OpSucceeded))
	if f := x.plan("db").Failover; f == nil || f.State != OpSucceeded {
		t.Fatalf("failover %+v", f)
	}
	x.fails(retry, ErrConflict, "plan")
}
