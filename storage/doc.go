// Package storage holds Moxxie's storage policy logic: Proxmox calendar
// events (ParseCalendar, Calendar.Next), Proxmox Backup Server prune
// semantics (Prune), which guests a policy applies to (Selector), the
// evaluation of snapshot and backup schedules on each leader tick
// (Evaluate), the names Moxxie gives to the snapshots and backups it
// makes (SnapshotName, BackupNotes) and the backup coverage report
// (Coverage).
//
// The package is pure: no I/O, no clock reads, no randomness. Every time
// is passed in, and a calendar is evaluated in UTC or in the time zone
// its caller passes (NextIn), so the same time and zone give the same
// answer on every server.
//
// Schedules run exactly once per slot: a policy remembers the last slot it
// handled, Evaluate reports the newest slot after it, and the slots missed
// while no leader existed are counted, not run one by one. A policy with
// repeat-missed catches up once; without it a slot older than the grace
// period is recorded as skipped.
package storage
