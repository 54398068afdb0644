package storage

import (
	"fmt"
	"strings"
	"time"
)

// maxPolicyIDLen bounds a policy ID so that SnapshotName stays within
// Proxmox's 40 characters.
const maxPolicyIDLen = 22

// snapshotPrefix starts the name of every snapshot Moxxie takes.
const snapshotPrefix = "mx-"

// snapshotTimeLayout is the slot's part of a snapshot name.
const snapshotTimeLayout = "20060102150405"

// notesPolicy and notesRun are the keys of a backup's notes.
const (
	notesPolicy = "moxxie-policy="
	notesRun    = " run="
)

// ValidPolicyID checks that id matches ^[a-z][a-z0-9-]{0,21}$; the error
// says what is wrong with it.
func ValidPolicyID(id string) error {
	if !validPolicyID(id) {
		return fmt.Errorf("policy id %q must be a lowercase letter followed by up to %d of a-z, 0-9 and '-'", id, maxPolicyIDLen-1)
	}
	return nil
}

// validPolicyID reports whether id is a valid policy ID.
func validPolicyID(id string) bool {
	if id == "" || len(id) > maxPolicyIDLen || id[0] < 'a' || id[0] > 'z' {
		return false
	}
	for i := range len(id) {
		switch b := id[i]; {
		case 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '-':
		default:
			return false
		}
	}
	return true
}

// SnapshotName returns the Proxmox snapshot name of policy's run at slot,
// "mx-<policy>-<YYYYMMDDHHMMSS>" with the slot in UTC, for example
// "mx-nightly-20260301020000": schedules may fire every second. With a valid policy ID it is a valid
// Proxmox snapshot name ([a-zA-Z][a-zA-Z0-9_-]{1,39}).
func SnapshotName(policy string, slot time.Time) string {
	return snapshotPrefix + policy + "-" + slot.UTC().Format(snapshotTimeLayout)
}

// ParseSnapshotName reverses SnapshotName; ok is false for a name it did
// not make.
func ParseSnapshotName(name string) (policy string, slot time.Time, ok bool) {
	rest, found := strings.CutPrefix(name, snapshotPrefix)
	i := strings.LastIndexByte(rest, '-')
	if !found || i < 0 || !validPolicyID(rest[:i]) {
		return "", time.Time{}, false
	}
	stamp := rest[i+1:]
	slot, err := time.Parse(snapshotTimeLayout, stamp)
	if err != nil || slot.Format(snapshotTimeLayout) != stamp {
		return "", time.Time{}, false
	}
	return rest[:i], slot, true
}

// BackupNotes returns the vzdump notes template that marks a backup as
// policy's run runID: "moxxie-policy=<policy> run=<runID>".
func BackupNotes(policy, runID string) string {
	return notesPolicy + policy + notesRun + runID
}

// ParseBackupNotes finds the line BackupNotes wrote in a backup's notes,
// ignoring the other lines; ok is false if there is none.
func ParseBackupNotes(notes string) (policy, runID string, ok bool) {
	for line := range strings.Lines(notes) {
		rest, found := strings.CutPrefix(strings.TrimSpace(line), notesPolicy)
		if !found {
			continue
		}
		policy, runID, found = strings.Cut(rest, notesRun)
		if found && validPolicyID(policy) && runID != "" && !strings.ContainsAny(runID, " \t") {
			return policy, runID, true
		}
	}
	return "", "", false
}
