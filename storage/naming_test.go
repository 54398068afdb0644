package storage

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestValidPolicyID(t *testing.T) {
	valid := []string{"a", "nightly", "db-hourly-2", "a" + strings.Repeat("0", 21)}
	invalid := []string{"", "1nightly", "-a", "Nightly", "night_ly", "night ly", "a" + strings.Repeat("0", 22), "ü"}
	for _, id := range valid {
		if err := ValidPolicyID(id); err != nil {
			t.Errorf("ValidPolicyID(%q) = %v", id, err)
		}
	}
	for _, id := range invalid {
		want := fmt.Sprintf("policy id %q must be a lowercase letter followed by up to 21 of a-z, 0-9 and '-'", id)
		if err := ValidPolicyID(id); err == nil || err.Error() != want {
			t.Errorf("ValidPolicyID(%q) = %v, want %q", id, err, want)
		}
	}
}

func TestSnapshotName(t *testing.T) {
	proxmoxName := regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_-]{1,39}$`)
	longest := "a" + strings.Repeat("-", 21)
	tests := []struct {
		policy string
		slot   time.Time
		want   string
	}{
		{"nightly", time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC), "mx-nightly-20260302020000"},
		{"q15", time.Date(2026, 3, 2, 3, 15, 30, 0, time.FixedZone("CET", 3600)), "mx-q15-20260302021530"},
		{longest, time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC), "mx-" + longest + "-20261231235959"},
	}
	for _, tt := range tests {
		got := SnapshotName(tt.policy, tt.slot)
		if got != tt.want {
			t.Errorf("SnapshotName(%q, %s) = %q, want %q", tt.policy, tt.slot, got, tt.want)
		}
		if !proxmoxName.MatchString(got) {
			t.Errorf("SnapshotName = %q is not a Proxmox snapshot name", got)
		}
		policy, slot, ok := ParseSnapshotName(got)
		if !ok || policy != tt.policy || !slot.Equal(tt.slot) {
			t.Errorf("ParseSnapshotName(%q) = %q, %s, %t", got, policy, slot, ok)
		}
	}
}

func TestParseSnapshotNameRejects(t *testing.T) {
	for _, name := range []string{
		"", "mx-", "mx-nightly", "mx-nightly-", "mx--20260302020000", "mx-Nightly-20260302020000",
		"mx-nightly-2026030202000", "mx-nightly-202603020200000", "mx-nightly-20261302020000",
		"mx-nightly-20260302T0200", "vzdump", "before-upgrade", "mxnightly-20260302020000",
		"mx-nightly-20260230020000",
	} {
		if policy, slot, ok := ParseSnapshotName(name); ok {
			t.Errorf("ParseSnapshotName(%q) = %q, %s, true", name, policy, slot)
		}
	}
	if policy, _, ok := ParseSnapshotName("mx-db-hourly-20260302020000"); !ok || policy != "db-hourly" {
		t.Errorf("ParseSnapshotName of a policy with dashes = %q, %t", policy, ok)
	}
}

func TestBackupNotes(t *testing.T) {
	if got, want := BackupNotes("nightly", "run-42"), "moxxie-policy=nightly run=run-42"; got != want {
		t.Fatalf("BackupNotes = %q, want %q", got, want)
	}
	tests := []struct {
		notes         string
		policy, runID string
		ok            bool
	}{
		{"moxxie-policy=nightly run=run-42", "nightly", "run-42", true},
		{"web1 before upgrade\nmoxxie-policy=nightly run=01J9\n", "nightly", "01J9", true},
		{"  moxxie-policy=nightly run=01J9  \r\nmore text", "nightly", "01J9", true},
		{"moxxie-policy=Bad run=1\nmoxxie-policy=good run=2", "good", "2", true},
		{"", "", "", false},
		{"a manual backup", "", "", false},
		{"moxxie-policy=nightly", "", "", false},
		{"moxxie-policy=nightly run=", "", "", false},
		{"moxxie-policy=nightly run=a b", "", "", false},
		{"moxxie-policy= run=1", "", "", false},
	}
	for _, tt := range tests {
		policy, runID, ok := ParseBackupNotes(tt.notes)
		if policy != tt.policy || runID != tt.runID || ok != tt.ok {
			t.Errorf("ParseBackupNotes(%q) = %q, %q, %t, want %q, %q, %t", tt.notes, policy, runID, ok, tt.policy, tt.runID, tt.ok)
		}
	}
}
