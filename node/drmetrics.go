package node

import (
	"time"

	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	drFailedOverDesc = telemetry.NewDesc("dr", "plan_failed_over",
		"1 while this site runs the copies of a replica's guests after a failover (until the source site fails it back), per plan, at the recovery site.", "plan", "source_site")
	drFencedDesc = telemetry.NewDesc("dr", "plan_fenced",
		"1 while a plan of this site is fenced after its recovery site failed it over: its guests are kept stopped here until a failback.", "plan", "recovery_site")
	drSelfFencedDesc = telemetry.NewDesc("dr", "plan_self_fenced",
		"1 while a plan of this site is fenced by this site itself: it sees neither the plan's recovery site nor a quorum of the other sites, which may be failing it over, and keeps the plan's guests stopped until the recovery site answers (or moxxiectl site unfence).", "plan", "recovery_site")
	drSyncAgeDesc = telemetry.NewDesc("dr", "replica_sync_age_seconds",
		"Seconds since the source site last sent a replica, by the source's clock as stamped; alert when it grows: the replica's backups are getting old.", "plan", "source_site")
	drUnrecoverableDesc = telemetry.NewDesc("dr", "replica_unrecoverable_guests",
		"Guests of a replica that cannot come back (no backup, or not in the source's inventory), as the source last sent it.", "plan", "source_site")
	drRecoveryPointDesc = telemetry.NewDesc("dr", "replica_recovery_point_age_seconds",
		"Seconds since the oldest of the backups a failover of the replica would restore was made (the worst recovery point, by the source's backup times): alert when it exceeds the plan's recovery point objective. Absent while no guest has a backup.", "plan", "source_site")
	drObjectiveDesc = telemetry.NewDesc("dr", "replica_recovery_point_objective_seconds",
		"The replica's recovery point objective in seconds: the plan's rpo, or 26 hours when it sets none.", "plan", "source_site")
	drConflictsDesc = telemetry.NewDesc("dr", "conflicts",
		"Conflicts recorded after partitions or failovers (moxxiectl dr conflicts).")
)

// drCollector exports the DR plans of the state at scrape time: every
// server answers from its own replicated copy.
func drCollector(state func() *fsm.Store, clock func() time.Time) prometheus.Collector {
	return telemetry.NewCollector(func(ch chan<- prometheus.Metric) {
		st := state()
		_, plans, err := st.DRPlans(nil)
		if err != nil {
			return
		}
		now := clock()
		for _, p := range plans {
			if p.Replica {
				failedOver := p.Failover != nil && p.Failover.State != fsm.DRFailoverReleased
				telemetry.Gauge(ch, drFailedOverDesc, telemetry.Bool(failedOver), p.ID, p.SourceSite)
				if p.SyncedAt != 0 {
					telemetry.Gauge(ch, drSyncAgeDesc, now.Sub(p.SyncedAt.Time()).Seconds(), p.ID, p.SourceSite)
				}
				bad := 0
				var oldest fsm.Timestamp
				for _, g := range p.Status {
					if g.Backup == "" || g.Error != "" {
						bad++
					}
					if g.Backup != "" && g.BackupAt != 0 && (oldest == 0 || g.BackupAt < oldest) {
						oldest = g.BackupAt
					}
				}
				telemetry.Gauge(ch, drUnrecoverableDesc, float64(bad), p.ID, p.SourceSite)
				telemetry.Gauge(ch, drObjectiveDesc, p.Objective().Seconds(), p.ID, p.SourceSite)
				if oldest != 0 {
					telemetry.Gauge(ch, drRecoveryPointDesc, max(now.Sub(oldest.Time()).Seconds(), 0), p.ID, p.SourceSite)
				}
				continue
			}
			telemetry.Gauge(ch, drFencedDesc, telemetry.Bool(p.Fence != nil && !p.Fence.Isolated), p.ID, p.RecoverySite)
			telemetry.Gauge(ch, drSelfFencedDesc, telemetry.Bool(p.Fence.Keeps() && p.Fence.Isolated), p.ID, p.RecoverySite)
		}
		if _, cs, err := st.DRConflicts(nil); err == nil {
			telemetry.Gauge(ch, drConflictsDesc, float64(len(cs)))
		}
	}, drFailedOverDesc, drFencedDesc, drSelfFencedDesc, drSyncAgeDesc, drUnrecoverableDesc, drRecoveryPointDesc, drObjectiveDesc, drConflictsDesc)
}
