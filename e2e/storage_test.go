package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	_ "time/tzdata" // Asia/Tokyo below on any test machine
)

// simAdmin sends a request to the dev appliance's simulator admin API
// (faults and node power).
func simAdmin(t *testing.T, dir, method, path string, body any) {
	t.Helper()
	resp := simRequest(t, dir, method, "/pvesim/v1"+path, body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("simulator admin %s %s: %s", method, path, resp.Status)
	}
}

// simBackup is a backup as the simulator lists it.
type simBackup struct {
	VolID     string `json:"volid"`
	VMID      int    `json:"vmid"`
	Notes     string `json:"notes"`
	Protected int    `json:"protected"`
}

// simBackups lists the backups on the shared storage.
func simBackups(t *testing.T, dir string) []simBackup {
	t.Helper()
	var out []simBackup
	simGet(t, dir, "/nodes/pve1/storage/nfs-shared/content?content=backup", &out)
	return out
}

// runOp is a policy run as `moxxiectl operation` shows it.
type runOp struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Status string `json:"status"`
	Policy string `json:"policy"`
	Slot   string `json:"slot"`
	Missed int    `json:"missed"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
	Stats *struct {
		Total, Succeeded, Failed, Pruned int
	} `json:"stats"`
}

// policyRuns lists the runs of a policy of kind (snapshot or backup),
// oldest slot first.
func policyRuns(t *testing.T, dir, kind, policy string) ([]runOp, error) {
	out, err := devctl(t, dir, kind, "policy", "runs", policy, "-o", "json")
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	var runs []runOp
	if err := json.Unmarshal([]byte(out), &runs); err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	slices.SortFunc(runs, func(a, b runOp) int { return strings.Compare(a.Slot, b.Slot) })
	return runs, nil
}

// killLeader kill -9s the dev appliance's leader and returns its ID.
func killLeader(t *testing.T, dir string) string {
	t.Helper()
	out, err := devctl(t, dir, "cluster", "status", "-o", "json")
	var cs struct {
		Leader string `json:"leader"`
	}
	if err != nil || json.Unmarshal([]byte(out), &cs) != nil || cs.Leader == "" {
		t.Fatalf("cluster status: %v\n%s", err, out)
	}
	for _, s := range readServers(t, dir) {
		if s.ID == cs.Leader {
			if err := syscall.Kill(s.PID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			return s.ID
		}
	}
	t.Fatalf("leader %s is not among the dev servers", cs.Leader)
	return ""
}

// TestDev_BackupPolicyExactlyOnceAcrossLeaderKill runs a backup policy
// every 10 s against a dev appliance whose simulator makes tasks slow,
// and kill -9s the leader as soon as a run is recorded: the new leader
// finishes that run, every guest has exactly one backup of it, no slot
// runs twice, and retention keeps the last two per guest. Then it shows
// the coverage report following guests that are added and removed.
func TestDev_BackupPolicyExactlyOnceAcrossLeaderKill(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	startDev(t, dir)
	ctl := mustCtl(t, dir)
	waitUntil(t, 30*time.Second, "the seeded guests and storages synced", func() error {
		out, err := devctl(t, dir, "backup", "coverage", "-o", "json")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if !strings.Contains(out, `"vmid": 100`) && !strings.Contains(out, `"vmid":100`) {
			return fmt.Errorf("no guests yet: %s", out)
		}
		return nil
	})
	simAdmin(t, dir, http.MethodPut, "/faults", map[string]any{"slow_tasks": "1500ms"})
	ctl("backup", "policy", "create", "every10", "--schedule", "*:*:0/10", "--vmids", "100,101",
		"--storage", "nfs-shared", "--mode", "snapshot", "--keep-last", "2")

	var first runOp
	waitUntil(t, 30*time.Second, "the first run recorded", func() error {
		runs, err := policyRuns(t, dir, "backup", "every10")
		if err != nil || len(runs) == 0 {
			return fmt.Errorf("no run yet: %v", err)
		}
		first = runs[0]
		return nil
	})
	if first.Status != "pending" && first.Status != "running" {
		t.Fatalf("run %s is %s already: the leader is killed at a run's start", first.ID, first.Status)
	}
	killed := killLeader(t, dir)
	t.Logf("run %s recorded (%s); killed leader %s", first.ID, first.Status, killed)
	waitUntil(t, 60*time.Second, "the interrupted run finished under a new leader", func() error {
		runs, err := policyRuns(t, dir, "backup", "every10")
		if err != nil {
			return err
		}
		for _, r := range runs {
			if r.ID == first.ID && r.Status == "succeeded" {
				return nil
			}
		}
		return fmt.Errorf("runs %+v", runs)
	})
	// Let a few more slots run, then stop the policy.
	waitUntil(t, 60*time.Second, "three runs succeeded", func() error {
		runs, err := policyRuns(t, dir, "backup", "every10")
		if err != nil {
			return err
		}
		n := 0
		for _, r := range runs {
			if r.Status == "succeeded" {
				n++
			}
		}
		if n < 3 {
			return fmt.Errorf("%d succeeded", n)
		}
		return nil
	})
	ctl("backup", "policy", "update", "every10", "--disabled")
	runs, err := policyRuns(t, dir, "backup", "every10")
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "the last run ended", func() error {
		runs, err = policyRuns(t, dir, "backup", "every10")
		if err != nil {
			return err
		}
		for _, r := range runs {
			if r.Status == "pending" || r.Status == "running" {
				return fmt.Errorf("run %s is %s", r.ID, r.Status)
			}
		}
		return nil
	})
	slots := map[string]bool{}
	for _, r := range runs {
		if slots[r.Slot] {
			t.Fatalf("slot %s ran twice: %+v", r.Slot, runs)
		}
		slots[r.Slot] = true
		if r.Status != "succeeded" {
			t.Fatalf("run %+v did not succeed", r)
		}
	}
	// Exactly one backup per guest of the interrupted run, and the last
	// two runs' backups kept by retention.
	perRun := map[string]map[int]int{}
	for _, b := range simBackups(t, dir) {
		for _, line := range strings.Split(b.Notes, "\n") {
			if _, run, ok := strings.Cut(line, " run="); ok && strings.HasPrefix(line, "moxxie-policy=every10") {
				if perRun[run] == nil {
					perRun[run] = map[int]int{}
				}
				perRun[run][b.VMID]++
			}
		}
	}
	for run, byVM := range perRun {
		for vmid, n := range byVM {
			if n != 1 {
				t.Fatalf("run %s made %d backups of %d", run, n, vmid)
			}
		}
	}
	last := runs[len(runs)-2:]
	if len(perRun) != 2 || perRun[last[0].ID][100] != 1 || perRun[last[1].ID][101] != 1 {
		t.Fatalf("retention keep-last 2: backups by run %v, runs %+v", perRun, runs)
	}
	simAdmin(t, dir, http.MethodPut, "/faults", map[string]any{})

	// Coverage: a nightly policy protects the guests tagged prod.
	ctl("backup", "policy", "create", "prod-nightly", "--schedule", "02:00", "--tags", "prod", "--storage", "nfs-shared")
	coverage := func() map[int]bool {
		t.Helper()
		var rep struct {
			Guests []struct {
				VMID      int      `json:"vmid"`
				Policies  []string `json:"policies"`
				Protected bool     `json:"protected"`
			} `json:"guests"`
		}
		out := ctl("backup", "coverage", "-o", "json")
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("coverage: %v\n%s", err, out)
		}
		m := map[int]bool{}
		for _, g := range rep.Guests {
			m[g.VMID] = g.Protected
		}
		return m
	}
	cov := coverage()
	for vmid, want := range map[int]bool{100: true, 101: true, 102: true, 103: false, 104: false, 200: false} {
		if got, ok := cov[vmid]; !ok || got != want {
			t.Fatalf("coverage of %d: %v (listed %v), want %v: %v", vmid, got, ok, want, cov)
		}
	}
	if _, ok := cov[9000]; ok {
		t.Fatal("templates are not in the coverage report")
	}
	out := ctl("vm", "create", "app1", "--template", "debian-12-cloud", "--tag", "prod", "--wait", "-o", "json")
	var vm struct{ VMID int }
	if err := json.Unmarshal([]byte(jsonPart(out)), &vm); err != nil || vm.VMID == 0 {
		t.Fatalf("vm create: %v\n%s", err, out)
	}
	out = ctl("vm", "create", "app2", "--template", "debian-12-cloud", "--wait", "-o", "json")
	var vm2 struct{ VMID int }
	if err := json.Unmarshal([]byte(jsonPart(out)), &vm2); err != nil || vm2.VMID == 0 {
		t.Fatalf("vm create: %v\n%s", err, out)
	}
	cov = coverage()
	if !cov[vm.VMID] || cov[vm2.VMID] {
		t.Fatalf("new guests: %d protected %v, %d protected %v (want true, false)", vm.VMID, cov[vm.VMID], vm2.VMID, cov[vm2.VMID])
	}
	out = ctl("backup", "coverage", "--unprotected", "-o", "json")
	if !strings.Contains(out, fmt.Sprint(vm2.VMID)) || strings.Contains(out, fmt.Sprintf(`"vmid": %d,`, vm.VMID)) {
		t.Fatalf("--unprotected lists %d and not %d:\n%s", vm2.VMID, vm.VMID, out)
	}
	ctl("vm", "delete", fmt.Sprint(vm2.VMID), "--wait")
	if _, ok := coverage()[vm2.VMID]; ok {
		t.Fatalf("deleted guest %d still in the coverage report", vm2.VMID)
	}
}

// TestDev_SnapshotPolicyCatchesUpMissedRunsOnce runs a snapshot policy
// every 5 s, takes the cluster's quorum away for three slots, and shows
// that the missed slots are caught up by one run, not one per slot. A
// policy in a time zone then runs by that zone's clock, and, disabled,
// runs when asked to.
func TestDev_SnapshotPolicyCatchesUpMissedRunsOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	startDev(t, dir)
	ctl := mustCtl(t, dir)
	ctl("snapshot", "policy", "create", "often", "--schedule", "*:*:0/5", "--vmids", "103",
		"--repeat-missed", "--keep-last", "3")
	waitUntil(t, 30*time.Second, "a first run succeeded", func() error {
		runs, err := policyRuns(t, dir, "snapshot", "often")
		if err != nil {
			return err
		}
		for _, r := range runs {
			if r.Status == "succeeded" {
				return nil
			}
		}
		return fmt.Errorf("runs %+v", runs)
	})
	// Two of three servers frozen: no quorum, no leader, for 17 s.
	servers := readServers(t, dir)
	for _, s := range servers[:2] {
		if err := syscall.Kill(s.PID, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	resumed := false
	resume := func() {
		if resumed {
			return
		}
		resumed = true
		for _, s := range servers[:2] {
			_ = syscall.Kill(s.PID, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	outage := time.Now()
	time.Sleep(17 * time.Second) // the outage itself: three slots pass with no leader
	resume()
	var runs []runOp
	waitUntil(t, 60*time.Second, "a run after the outage succeeded", func() error {
		var err error
		runs, err = policyRuns(t, dir, "snapshot", "often")
		if err != nil {
			return err
		}
		for _, r := range runs {
			slot, _ := time.Parse(time.RFC3339Nano, r.Slot)
			if slot.After(outage.Add(15*time.Second)) && r.Status == "succeeded" {
				return nil
			}
		}
		return fmt.Errorf("runs %+v", runs)
	})
	ctl("snapshot", "policy", "update", "often", "--disabled")
	// Every run covers the slots since the previous one; the catch-up run
	// covers at least two missed slots, and no slot ran twice.
	caught := false
	for i := 1; i < len(runs); i++ {
		prev, _ := time.Parse(time.RFC3339Nano, runs[i-1].Slot)
		cur, _ := time.Parse(time.RFC3339Nano, runs[i].Slot)
		gap := int(cur.Sub(prev) / (5 * time.Second))
		if gap != runs[i].Missed+1 {
			t.Fatalf("run %s at %s follows %s and says it missed %d slots: %+v", runs[i].ID, cur, prev, runs[i].Missed, runs)
		}
		if runs[i].Missed >= 2 {
			caught = true
		}
	}
	if !caught {
		t.Fatalf("no run caught up the missed slots: %+v", runs)
	}
	// Retention: at most three of the policy's snapshots remain.
	var snaps []struct{ Name string }
	simGet(t, dir, "/nodes/pve1/qemu/103/snapshot", &snaps)
	n := 0
	for _, s := range snaps {
		if strings.HasPrefix(s.Name, "mx-often-") {
			n++
		}
	}
	if n == 0 || n > 3 {
		t.Fatalf("%d policy snapshots on guest 103, want 1-3: %+v", n, snaps)
	}

	// A policy in a time zone runs by that zone's clock: every 5 s during
	// this hour and the next in Tokyo, hours that are not now in UTC.
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	h := time.Now().In(tokyo).Hour()
	ctl("snapshot", "policy", "create", "tokyo", "--schedule", fmt.Sprintf("%d,%d:*:0/5", h, (h+1)%24), "--timezone", "Asia/Tokyo",
		"--vmids", "103", "--keep-last", "1")
	waitUntil(t, 30*time.Second, "the Tokyo policy ran", func() error {
		runs, err := policyRuns(t, dir, "snapshot", "tokyo")
		if err != nil || len(runs) == 0 || runs[0].Status != "succeeded" {
			return fmt.Errorf("runs %+v (%v)", runs, err)
		}
		slot, _ := time.Parse(time.RFC3339Nano, runs[0].Slot)
		if lh := slot.In(tokyo).Hour(); lh != h && lh != (h+1)%24 || slot.Second()%5 != 0 {
			t.Fatalf("slot %s, %d:xx in Tokyo, want in hour %d or %d", slot, lh, h, (h+1)%24)
		}
		return nil
	})
	ctl("snapshot", "policy", "update", "tokyo", "--disabled")
	// A disabled policy still runs when asked to, now, once its last
	// scheduled run is done.
	var before []runOp
	waitUntil(t, 30*time.Second, "the Tokyo policy's runs done", func() error {
		var err error
		if before, err = policyRuns(t, dir, "snapshot", "tokyo"); err != nil {
			return err
		}
		for _, r := range before {
			if r.Status == "pending" || r.Status == "running" {
				return fmt.Errorf("run %s %s", r.ID, r.Status)
			}
		}
		return nil
	})
	ctl("snapshot", "policy", "run", "tokyo", "--wait")
	after, err := policyRuns(t, dir, "snapshot", "tokyo")
	if err != nil || len(after) != len(before)+1 || after[0].Status != "succeeded" {
		t.Fatalf("runs after run now: %+v (%v), before %d", after, err, len(before))
	}
	if out, err := devctl(t, dir, "snapshot", "policy", "create", "x", "--schedule", "daily", "--timezone", "Asia/Tokio", "--vmids", "103"); err == nil ||
		!strings.Contains(out, "unknown time zone") || !strings.Contains(out, "field timezone") {
		t.Fatalf("a misspelt zone: %v %s", err, out)
	}
}

// TestDev_VolumesQuotaAndMigrationFailure walks a guest disk through its
// life in a dev appliance: a create over the tenant's disk quota is
// refused naming the quota; create, resize, detach and attach work; a
// move that the simulator fails half-way leaves the guest on its original
// disk and says so; the move then succeeds; delete removes the disk. A
// snapshot policy on the guest then meets the tenant's snapshots quota.
func TestDev_VolumesQuotaAndMigrationFailure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	startDev(t, dir)
	ctl := mustCtl(t, dir)
	ctl("tenant", "create", "acme", "--quota", "disk=20GiB,snapshots=1")
	out := ctl("vm", "create", "data1", "--template", "debian-12-cloud", "--tenant", "acme", "--no-start", "--wait", "-o", "json")
	var vm struct {
		VMID int
		Node string
	}
	if err := json.Unmarshal([]byte(jsonPart(out)), &vm); err != nil || vm.VMID == 0 || vm.Node == "" {
		t.Fatalf("vm create: %v\n%s", err, out)
	}
	vmid := fmt.Sprint(vm.VMID)

	out, err := devctl(t, dir, "storage", "volume", "create", "--vmid", vmid, "--storage", "local-lvm", "--size-gib", "100")
	if err == nil || !strings.Contains(out, "disk_gib") || !strings.Contains(out, "acme") {
		t.Fatalf("a disk over the quota: %v\n%s", err, out)
	}
	type volOp struct {
		Status     string `json:"status"`
		RolledBack bool   `json:"rolled_back"`
		Error      *struct {
			Message string `json:"message"`
		} `json:"error"`
		Volume struct {
			Slot   string `json:"slot"`
			Result string `json:"result"`
		} `json:"volume"`
	}
	run := func(args ...string) volOp {
		t.Helper()
		out, _ := devctl(t, dir, append(args, "--wait", "-o", "json")...)
		var op volOp
		// A failed operation's JSON is followed by the error moxxiectl prints.
		if err := json.NewDecoder(strings.NewReader(jsonPart(out))).Decode(&op); err != nil {
			t.Fatalf("moxxiectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return op
	}
	op := run("storage", "volume", "create", "--vmid", vmid, "--storage", "local-lvm", "--size-gib", "5")
	if op.Status != "succeeded" || op.Volume.Slot != "scsi1" || op.Volume.Result == "" {
		t.Fatalf("volume create: %+v", op)
	}
	volid := op.Volume.Result
	if op := run("storage", "volume", "resize", volid, "--size-gib", "8"); op.Status != "succeeded" {
		t.Fatalf("resize: %+v", op)
	}
	if op := run("storage", "volume", "detach", volid); op.Status != "succeeded" {
		t.Fatalf("detach: %+v", op)
	}
	if op := run("storage", "volume", "attach", volid, "--slot", "scsi2"); op.Status != "succeeded" {
		t.Fatalf("attach: %+v", op)
	}
	config := func() map[string]any {
		var c map[string]any
		simGet(t, dir, fmt.Sprintf("/nodes/%s/qemu/%s/config", vm.Node, vmid), &c)
		return c
	}
	if c := config(); !strings.HasPrefix(fmt.Sprint(c["scsi2"]), volid+",") || !strings.Contains(fmt.Sprint(c["scsi2"]), "size=8G") {
		t.Fatalf("scsi2 after resize, detach and attach: %v", c["scsi2"])
	}

	// The simulator fails the copy half-way.
	simAdmin(t, dir, http.MethodPut, "/faults", map[string]any{"fail_tasks_at": map[string]int{"qmmove": 50}})
	op = run("storage", "volume", "move", volid, "--storage", "nfs-shared")
	if op.Status != "failed" || !op.RolledBack || op.Error == nil || !strings.Contains(op.Error.Message, "still uses its original disk "+volid) {
		t.Fatalf("failed move: %+v %+v", op, op.Error)
	}
	if c := config(); !strings.HasPrefix(fmt.Sprint(c["scsi2"]), volid+",") {
		t.Fatalf("after the failed move scsi2 is %v, want %s", c["scsi2"], volid)
	}
	var content []struct {
		VolID string `json:"volid"`
		VMID  int    `json:"vmid"`
	}
	simGet(t, dir, "/nodes/"+vm.Node+"/storage/nfs-shared/content?content=images", &content)
	for _, c := range content {
		if c.VMID == vm.VMID {
			t.Fatalf("the failed move left %s on nfs-shared", c.VolID)
		}
	}
	simAdmin(t, dir, http.MethodPut, "/faults", map[string]any{})
	op = run("storage", "volume", "move", volid, "--storage", "nfs-shared")
	if op.Status != "succeeded" || !strings.HasPrefix(op.Volume.Result, "nfs-shared:") {
		t.Fatalf("move: %+v", op)
	}
	if c := config(); !strings.HasPrefix(fmt.Sprint(c["scsi2"]), op.Volume.Result+",") {
		t.Fatalf("after the move scsi2 is %v, want %s", c["scsi2"], op.Volume.Result)
	}
	if op := run("storage", "volume", "delete", op.Volume.Result); op.Status != "succeeded" {
		t.Fatalf("delete: %+v", op)
	}
	if c := config(); c["scsi2"] != nil {
		t.Fatalf("scsi2 after delete: %v", c)
	}
	out = ctl("storage", "volume", "list", "--vmid", vmid, "-o", "json")
	if strings.Contains(out, "nfs-shared:") {
		t.Fatalf("the deleted volume is still listed:\n%s", out)
	}

	// A snapshot policy on the guest: the first snapshot fits acme's
	// snapshots quota of 1, the next is refused naming it.
	ctl("snapshot", "policy", "create", "acme-often", "--schedule", "*:*:0/3", "--vmids", vmid, "--keep-last", "5")
	waitUntil(t, 30*time.Second, "a run refused by the snapshots quota", func() error {
		runs, err := policyRuns(t, dir, "snapshot", "acme-often")
		if err != nil {
			return err
		}
		ok, refused := false, false
		for _, r := range runs {
			ok = ok || r.Status == "succeeded"
			refused = refused || r.Status == "failed" && r.Error != nil && strings.Contains(r.Error.Message, "quota snapshots of tenant acme exceeded")
		}
		if !ok || !refused {
			return fmt.Errorf("runs %+v", runs)
		}
		return nil
	})
	ctl("snapshot", "policy", "update", "acme-often", "--disabled")
}
