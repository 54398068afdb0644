package pvesim

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxTasksPerNode bounds the finished tasks kept per node, like the task
// index on a Proxmox host that is rotated.
const maxTasksPerNode = 1000

// errInterrupted ends a task that was stopped through the API or by Close,
// with the message a Proxmox worker dies with on SIGTERM.
var errInterrupted = errors.New("interrupted by signal")

// task is one asynchronous worker, identified by its UPID.
type task struct {
	upid   string
	node   string
	typ    string
	id     string
	user   string // the full user, with the token name for API tokens
	pid    uint32
	pstart uint32
	start  time.Time

	cancel     chan struct{}
	cancelOnce sync.Once
	finished   chan struct{} // closed when the task has ended

	mu    sync.Mutex
	lines []string  // guarded by mu
	done  bool      // guarded by mu
	end   time.Time // guarded by mu
	exit  string    // guarded by mu
}

// taskState is a consistent copy of a task's progress.
type taskState struct {
	done  bool
	end   time.Time
	exit  string
	lines int
}

func (t *task) state() taskState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return taskState{done: t.done, end: t.end, exit: t.exit, lines: len(t.lines)}
}

func (t *task) logLines(start, limit int) (total int, lines []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	total = len(t.lines)
	if start >= total {
		return total, nil
	}
	end := total
	if limit > 0 && start+limit < end {
		end = start + limit
	}
	return total, slices.Clone(t.lines[start:end])
}

func (t *task) appendLine(line string) {
	t.mu.Lock()
	t.lines = append(t.lines, line)
	t.mu.Unlock()
}

// tokenSplit splits a task's user into the user and the API token name, as
// the task list and status do.
func (t *task) tokenSplit() (user, tokenid string) {
	u, tok, ok := strings.Cut(t.user, "!")
	if !ok {
		return t.user, ""
	}
	return u, tok
}

// taskIndex holds every known task. It is guarded by Sim.mu.
type taskIndex struct {
	byUPID  map[string]*task
	byNode  map[string][]*task // in start order
	nextPID uint32
}

func (ix *taskIndex) add(t *task) {
	ix.byUPID[t.upid] = t
	list := append(ix.byNode[t.node], t)
	if len(list) > maxTasksPerNode {
		// Drop the oldest finished task; running ones stay.
		for i, old := range list {
			if old.state().done {
				delete(ix.byUPID, old.upid)
				list = slices.Delete(list, i, i+1)
				break
			}
		}
	}
	ix.byNode[t.node] = list
}

// run is the handle a task's body uses to log, wait and change state.
type run struct {
	s         *Sim
	t         *task
	dur       time.Duration
	undo      func() // called with Sim.mu held when the task fails before it commits
	committed bool
	inject    bool // the task type is in Faults.FailTasks or FailTasksAt
	failAt    int  // the percentage of copy progress to fail at (Faults.FailTasksAt), or -1
	warnings  int
}

// warn logs a warning; a task that ends without error but with warnings
// ends with exit status "WARNINGS: N".
func (r *run) warn(format string, args ...any) {
	r.logf("WARN: "+format, args...)
	r.warnings++
}

// logf appends a line to the task log.
func (r *run) logf(format string, args ...any) {
	for _, line := range strings.Split(fmt.Sprintf(format, args...), "\n") {
		r.t.appendLine(line)
	}
}

// sleep waits frac of the task's duration, or until the task is stopped.
func (r *run) sleep(frac float64) error {
	d := time.Duration(float64(r.dur) * frac)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-r.t.cancel:
		return errInterrupted
	case <-r.s.closed:
		return errInterrupted
	}
}

// transfer waits frac of the task's duration while logging copy progress of
// size bytes, like qemu-img and the migration code do.
func (r *run) transfer(frac float64, size uint64) error {
	return r.copyData(frac, size, func(done, total uint64, pct float64, _ time.Duration) string {
		return fmt.Sprintf("transferred %s of %s (%.2f%%)", humanBytes(done), humanBytes(total), pct)
	}, nil)
}

// progressLine formats one line of copy progress: done of total bytes,
// pct percent, elapsed since the copy began.
type progressLine func(done, total uint64, pct float64, elapsed time.Duration) string

// copyData waits frac of the task's duration while logging the progress
// of copying size bytes in four steps, each line made by line. When the
// task's type is in Faults.FailTasksAt, it stops once it has logged that
// percentage and returns fail() (a generic I/O error when fail is nil),
// as a copy that breaks part-way does.
func (r *run) copyData(frac float64, size uint64, line progressLine, fail func() error) error {
	steps := []float64{25, 50, 75, 100}
	if r.failAt >= 0 {
		steps = append(steps, float64(r.failAt))
		slices.Sort(steps)
		steps = slices.Compact(steps)
	}
	start := time.Now()
	prev := 0.0
	for _, pct := range steps {
		if err := r.sleep(frac * (pct - prev) / 100); err != nil {
			return err
		}
		prev = pct
		done := uint64(float64(size) * pct / 100)
		if pct == 100 {
			done = size
		}
		r.logf("%s", line(done, size, pct, time.Since(start)))
		if r.failAt >= 0 && pct >= float64(r.failAt) {
			if fail != nil {
				return fail()
			}
			return fmt.Errorf("%sinjected fault: I/O error after %d%%", failPrefix(r.t.typ), r.failAt)
		}
	}
	return nil
}

// commit applies the task's result with Sim.mu held. An injected fault
// fails the task instead, leaving the state as before (after undo); a
// task to fail part-way that copied nothing fails here too.
func (r *run) commit(apply func() error) error {
	r.s.lock()
	defer r.s.unlock()
	if r.inject {
		return fmt.Errorf("%sinjected fault", failPrefix(r.t.typ))
	}
	if err := apply(); err != nil {
		return err
	}
	r.committed = true
	return nil
}

// locked runs fn with Sim.mu held, for checks a worker makes as it starts.
func (r *run) locked(fn func() error) error {
	r.s.lock()
	defer r.s.unlock()
	return fn()
}

// failPrefix is how the error of a failing worker of type typ begins on a
// real Proxmox host.
func failPrefix(typ string) string {
	switch typ {
	case "qmclone", "vzclone":
		return "clone failed: "
	case "qmstart":
		return "start failed: "
	case "qmigrate", "vzmigrate":
		return "migration aborted: "
	}
	return ""
}

// taskWeights scales the base task duration by kind of work.
var taskWeights = map[string]float64{
	"qmcreate": 1, "vzcreate": 1.5,
	"qmstart": 1, "vzstart": 1,
	"qmstop": 0.5, "vzstop": 0.5,
	"qmshutdown": 1, "vzshutdown": 1,
	"qmdestroy": 0.5, "vzdestroy": 0.5,
	"qmclone": 1, "vzclone": 1,
	"qmigrate": 3, "vzmigrate": 2,
	"qmsnapshot": 1, "vzsnapshot": 1,
	"qmdelsnapshot": 0.5, "vzdelsnapshot": 0.5,
	"qmrollback": 1, "vzrollback": 1,
	"qmmove": 2, "move_volume": 2,
	"qmrestore": 2, "vzrestore": 2,
	"qmtemplate":       1,
	"qmconfig":         0.5,
	"resize":           0.5,
	"imgdel":           0.2,
	"vzdump":           2,
	"reloadnetworkall": 1,
}

// spawn starts a worker of type typ on nodeName and returns its UPID. It is
// called with Sim.mu held, so that the checks and state changes a real
// worker makes before it forks are atomic with its creation. weight scales
// the task duration on top of the type's own weight (e.g. a full clone).
func (s *Sim) spawn(nodeName, typ, id, user string, weight float64, body func(r *run) error) string {
	n := s.nodeByName[nodeName]
	now := time.Now()
	s.tasks.nextPID++
	t := &task{
		node:     nodeName,
		typ:      typ,
		id:       id,
		user:     user,
		pid:      s.tasks.nextPID,
		pstart:   uint32(now.Sub(n.bootTime) / (10 * time.Millisecond)),
		start:    now,
		cancel:   make(chan struct{}),
		finished: make(chan struct{}),
	}
	t.upid = fmt.Sprintf("UPID:%s:%08X:%08X:%08X:%s:%s:%s:", nodeName, t.pid, t.pstart, uint32(now.Unix()), typ, id, user)
	s.tasks.add(t)

	f := s.faults()
	w := taskWeights[typ]
	if w == 0 {
		w = 1
	}
	failAt, partial := f.FailTasksAt[typ]
	if !partial {
		failAt = -1
	}
	r := &run{
		s:      s,
		t:      t,
		dur:    time.Duration(float64(s.taskDuration)*w*weight) + f.SlowTasks + f.SlowTaskTypes[typ],
		inject: slices.Contains(f.FailTasks, typ) || partial,
		failAt: failAt,
	}
	work := func() {
		err := body(r)
		if err != nil && !r.committed && r.undo != nil {
			s.lock()
			r.undo()
			s.unlock()
		}
		s.finishTask(r, err)
	}
	select {
	case <-s.closed:
		// Close is waiting for the tracked tasks, or done: this one
		// fails at once (its sleeps return), untracked.
		go work()
	default:
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			work()
		}()
	}
	return t.upid
}

func (s *Sim) finishTask(r *run, err error) {
	t := r.t
	exit := "OK"
	t.mu.Lock()
	switch {
	case err != nil:
		exit = strings.TrimSpace(err.Error())
		t.lines = append(t.lines, "TASK ERROR: "+exit)
	case r.warnings > 0:
		exit = fmt.Sprintf("WARNINGS: %d", r.warnings)
		t.lines = append(t.lines, "TASK "+exit)
	default:
		t.lines = append(t.lines, "TASK OK")
	}
	t.done = true
	t.end = time.Now()
	t.exit = exit
	t.mu.Unlock()
	close(t.finished)
	s.logf("task %s %s:%s finished: %s", t.node, t.typ, t.id, exit)
}

// humanBytes prints a byte count the way Proxmox task logs do.
func humanBytes(b uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(b)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
