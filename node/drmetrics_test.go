package node

import (
	"testing"
	"time"

	"github.com/moxxie/moxxie/fsm"
)

// TestMetrics_DRReplica: a replica's recovery point is the age of the
// oldest of its guests' newest backups; guests without one count as
// unrecoverable and leave the recovery point alone. Its objective is the
// plan's rpo, or the default.
func TestMetrics_DRReplica(t *testing.T) {
	x := newMetricsState(t)
	at := func(ago time.Duration) fsm.Timestamp { return fsm.Timestamp(x.now.Add(-ago).UnixNano()) }
	plan := fsm.DRPlan{ID: "shop", SourceSite: "east", RecoverySite: "west", BackupStorage: "dr", TargetStorage: "local-lvm", UpdatedAt: at(time.Hour), SyncedAt: at(0), RPO: "4h",
		Guests: []fsm.DRGuest{{VMID: 100, Order: 1}, {VMID: 101, Order: 1}, {VMID: 102, Order: 2}},
		Status: []fsm.DRGuestStatus{
			{VMID: 100, Backup: "dr:backup/vzdump-qemu-100.vma", BackupAt: at(2 * time.Hour)},
			{VMID: 101, Backup: "dr:backup/vzdump-qemu-101.vma", BackupAt: at(30 * time.Minute)},
			{VMID: 102, Error: "guest 102 has no backup on storage dr made by a backup policy of site east"},
		}}
	x.apply(&fsm.DRReplicaSyncRequest{Source: "east", LocalSite: "west", Plans: []fsm.DRPlan{plan}, ConflictIDs: []string{"c1"}})
	now := x.now.Add(time.Minute)
	c := drCollector(x.f.State, func() time.Time { return now })
	for name, want := range map[string]float64{
		"moxxie_dr_replica_recovery_point_age_seconds":       (2*time.Hour + time.Minute).Seconds(),
		"moxxie_dr_replica_unrecoverable_guests":             1,
		"moxxie_dr_replica_recovery_point_objective_seconds": 4 * 3600,
		"moxxie_dr_replica_sync_age_seconds":                 60,
		"moxxie_dr_plan_failed_over":                         0,
	} {
		if got := collect(t, c, name); len(got) != 1 || got["plan=shop,source_site=east"] != want {
			t.Errorf("%s: %v, want %v for plan shop", name, got, want)
		}
	}

	// No guest with a backup: no recovery point.
	for i := range plan.Status {
		plan.Status[i] = fsm.DRGuestStatus{VMID: plan.Status[i].VMID, Error: "no backup"}
	}
	plan.UpdatedAt, plan.RPO = at(0), ""
	x.apply(&fsm.DRReplicaSyncRequest{Source: "east", LocalSite: "west", Plans: []fsm.DRPlan{plan}, ConflictIDs: []string{"c2"}})
	if got := collect(t, c, "moxxie_dr_replica_recovery_point_age_seconds"); len(got) != 0 {
		t.Errorf("recovery point without backups: %v", got)
	}
	if got := collect(t, c, "moxxie_dr_replica_recovery_point_objective_seconds"); got["plan=shop,source_site=east"] != fsm.DefaultDRRPO.Seconds() {
		t.Errorf("default objective: %v", got)
	}
}
