package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/moxxie/moxxie/sdn"
)

// Report states sent to the servers.
const (
	StateApplied = "applied"
	StateFailed  = "failed"
)

// Assignment is the plan the servers want a host to hold now: the version
// of a rollout being prepared, or the committed one, or the previous one
// after a rollback.
type Assignment struct {
	Version   uint64
	RolloutID string
	Phase     string
	Plan      sdn.Plan
	// RequestID is the request ID of the apply that started the rollout;
	// the agent logs it with the version, so that the request can be
	// followed from the API to the hosts.
	RequestID string `json:",omitempty"`
}

// requestID returns the request_id log attribute of a, empty (and left
// out) when a has no request ID.
func (a *Assignment) requestID() slog.Attr {
	if a.RequestID == "" {
		return slog.Attr{}
	}
	return slog.String("request_id", a.RequestID)
}

// Report is what the agent tells the servers after applying a plan or
// healing drift.
type Report struct {
	Version uint64
	State   string
	Error   string
	Drift   []string
	Actions int
}

// Server is what the agent needs of the Moxxie API.
type Server interface {
	// Enrol registers or updates the host.
	Enrol(ctx context.Context, h sdn.Host) error
	// Plan returns the host's assignment once the store index passes
	// index (a blocking query of up to wait), with the index it reflects.
	Plan(ctx context.Context, host string, index uint64, wait time.Duration) (Assignment, uint64, error)
	// Report records the host's state.
	Report(ctx context.Context, host string, r Report) error
}

// Applier makes the kernel hold a plan; *Kernel is one.
type Applier interface {
	Apply(ctx context.Context, plan sdn.Plan) ([]string, error)
	Verify(plan sdn.Plan) ([]string, error)
	Watch(ctx context.Context, fn func()) error
}

// Config configures Run.
type Config struct {
	// Host is what the agent enrols as.
	Host   sdn.Host
	Server Server
	Kernel Applier
	// StateDir, when set, keeps the last applied assignment there, so a
	// restarted agent heals drift before it reaches a server.
	StateDir string
	// Resync is how often the agent verifies the kernel without a
	// prompt; zero means 30 seconds.
	Resync time.Duration
	// Wait is the blocking query wait; zero means 5 minutes.
	Wait time.Duration
	// DryRun logs what the agent would change and reports nothing; the
	// Kernel must be in dry-run mode too.
	DryRun bool
	Logger *slog.Logger
	// Metrics, when set, counts and times the agent's passes.
	Metrics *Metrics
}

// Run enrols the host, then holds the servers' plan for it until ctx ends:
// it applies every new assignment and reports the outcome, re-applies when
// a managed link changes or disappears (drift), and verifies every Resync.
// Without a server it keeps holding the last plan it applied.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Resync <= 0 {
		cfg.Resync = 30 * time.Second
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &runner{cfg: cfg, log: cfg.Logger, kick: make(chan struct{}, 1), plans: make(chan Assignment, 1)}
	return r.run(ctx)
}

type runner struct {
	cfg   Config
	log   *slog.Logger
	kick  chan struct{}
	plans chan Assignment

	cur      *Assignment // the assignment held, nil before the first
	reported Report      // the last report the servers acknowledged
	pending  *Report     // a report not yet acknowledged
}

func (r *runner) run(ctx context.Context) error {
	if a, ok := r.loadState(); ok {
		r.log.Info("holding the last applied plan until a server answers", "version", a.Version)
		r.cur = &a
		r.kickNow()
	}
	watchErr := make(chan error, 1)
	go func() { watchErr <- r.cfg.Kernel.Watch(ctx, r.kickNow) }()
	go r.follow(ctx)
	resync := time.NewTicker(r.cfg.Resync)
	defer resync.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-watchErr:
			if ctx.Err() != nil {
				return nil
			}
			// The netlink subscription died (e.g. its socket overran):
			// heal whatever changed meanwhile and subscribe again.
			r.log.Warn("watching links failed; resubscribing", "error", err)
			r.hold(ctx, false)
			go func() {
				select {
				case <-ctx.Done():
					watchErr <- nil
				case <-time.After(time.Second):
					watchErr <- r.cfg.Kernel.Watch(ctx, r.kickNow)
				}
			}()
		case a := <-r.plans:
			fresh := r.cur == nil || r.cur.Version != a.Version
			r.cur = &a
			r.hold(ctx, fresh)
		case <-r.kick:
			r.hold(ctx, false)
		case <-resync.C:
			r.hold(ctx, false)
		case <-retry.C:
		}
		if r.pending != nil {
			r.send(ctx)
			if r.pending != nil {
				retry.Reset(time.Second)
			}
		}
	}
}

// kickNow asks the loop to verify and heal now; a kick while one is
// pending is dropped.
func (r *runner) kickNow() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// follow enrols, then follows the host's assignment with blocking queries
// and hands every new version or phase to the loop.
func (r *runner) follow(ctx context.Context) {
	backoff := newBackoff()
	for {
		err := r.cfg.Server.Enrol(ctx, r.cfg.Host)
		if err == nil {
			r.log.Info("enrolled", "address", r.cfg.Host.Address)
			break
		}
		r.log.Warn("enrol failed", "error", err)
		if !backoff.sleep(ctx) {
			return
		}
	}
	backoff.reset()
	var index uint64
	var last Assignment
	first := true
	for ctx.Err() == nil {
		a, idx, err := r.cfg.Server.Plan(ctx, r.cfg.Host.Name, index, r.cfg.Wait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("reading the plan failed", "error", err)
			backoff.sleep(ctx)
			continue
		}
		backoff.reset()
		if idx < index {
			// The servers' index went back (a restored snapshot): start over.
			idx = 0
		}
		index = idx
		if first || a.Version != last.Version || a.Phase != last.Phase || a.RolloutID != last.RolloutID {
			first = false
			last = a
			select {
			case <-r.plans:
			default:
			}
			r.plans <- a
		}
	}
}

// hold makes the kernel hold the current assignment and queues a report
// when something changed: a new assignment, a failure, or healed drift.
func (r *runner) hold(ctx context.Context, fresh bool) {
	if r.cur == nil {
		return
	}
	a := *r.cur
	drift, _ := r.cfg.Kernel.Verify(a.Plan)
	start := time.Now()
	actions, err := r.cfg.Kernel.Apply(ctx, a.Plan)
	took := time.Since(start)
	rep := Report{Version: a.Version, State: StateApplied, Actions: len(actions)}
	if err != nil {
		rep.State, rep.Error = StateFailed, err.Error()
		r.log.Error("applying the plan failed", "version", a.Version, a.requestID(), "error", err)
	} else {
		if len(actions) > 0 || fresh && a.Version != 0 {
			r.log.Info("applied", "version", a.Version, a.requestID(), "actions", actions)
		}
		if left, verr := r.cfg.Kernel.Verify(a.Plan); verr != nil || len(left) > 0 {
			rep.State = StateFailed
			rep.Error = fmt.Sprintf("still differs after apply: %v", left)
			if verr != nil {
				rep.Error = verr.Error()
			}
		}
		if !r.cfg.DryRun {
			r.saveState(a)
		}
	}
	r.cfg.Metrics.applied(a.Version, took, rep.State == StateApplied)
	if !fresh && len(actions) > 0 && len(drift) > 0 {
		rep.Drift = drift
		r.log.Warn("healed drift", "version", a.Version, "drift", drift)
		r.cfg.Metrics.healed()
	}
	if r.cfg.DryRun {
		return
	}
	if fresh || rep.State != r.reported.State || rep.Version != r.reported.Version || rep.Error != r.reported.Error || len(rep.Drift) > 0 {
		r.pending = &rep
	}
}

// send delivers the pending report; it stays pending when the servers
// cannot be reached.
func (r *runner) send(ctx context.Context) {
	rep := *r.pending
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.cfg.Server.Report(c, r.cfg.Host.Name, rep); err != nil {
		r.log.Warn("report failed", "error", err)
		return
	}
	r.reported, r.pending = rep, nil
}

const stateFile = "plan.json"

// saveState keeps a in StateDir, atomically; a failure is logged, since
// the servers still hold the truth.
func (r *runner) saveState(a Assignment) {
	if r.cfg.StateDir == "" {
		return
	}
	b, err := json.Marshal(a)
	if err == nil {
		tmp := filepath.Join(r.cfg.StateDir, stateFile+".tmp")
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
			err = os.Rename(tmp, filepath.Join(r.cfg.StateDir, stateFile))
		}
	}
	if err != nil {
		r.log.Warn("saving the applied plan failed", "error", err)
	}
}

func (r *runner) loadState() (Assignment, bool) {
	var a Assignment
	if r.cfg.StateDir == "" {
		return a, false
	}
	b, err := os.ReadFile(filepath.Join(r.cfg.StateDir, stateFile))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			r.log.Warn("reading the last applied plan failed", "error", err)
		}
		return a, false
	}
	if err := json.Unmarshal(b, &a); err != nil || a.Plan.Host != r.cfg.Host.Name {
		r.log.Warn("ignoring the last applied plan: unreadable or for another host", "file", filepath.Join(r.cfg.StateDir, stateFile))
		return Assignment{}, false
	}
	return a, true
}

// backoff doubles a delay from 250 ms up to 10 s.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 250 * time.Millisecond} }

func (b *backoff) reset() { b.d = 250 * time.Millisecond }

// sleep waits the current delay and doubles it; false when ctx ended.
func (b *backoff) sleep(ctx context.Context) bool {
	t := time.NewTimer(b.d)
	defer t.Stop()
	b.d = min(b.d*2, 10*time.Second)
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
