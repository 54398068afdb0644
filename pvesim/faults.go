package pvesim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"
)

// Faults are failures injected into the simulator. The zero value injects
// nothing. They can be changed at any time with Sim.SetFaults or the admin
// API; every request and every new task reads the current value.
type Faults struct {
	// Latency delays every API request before it is handled.
	Latency time.Duration
	// ErrorRate is the fraction (0..1) of authenticated API requests
	// answered with a 500 instead of being handled.
	ErrorRate float64
	// Timeout makes every API request hang until the client gives up (or
	// the simulator is closed).
	Timeout bool
	// SlowTasks is added to the duration of every new task.
	SlowTasks time.Duration
	// SlowTaskTypes adds a duration to the new tasks of a type only
	// (e.g. "qmrestore": a minute, as restores of real guests take).
	SlowTaskTypes map[string]time.Duration
	// FailTasks lists task types (e.g. "qmclone", "qmstart", "vzdump")
	// whose new tasks fail when they would complete, changing nothing.
	FailTasks []string
	// FailTasksAt makes new tasks of a type fail part-way through
	// copying data: the task logs its progress up to the given percentage
	// (0..100) and then fails as the real worker does when a copy breaks
	// (e.g. "qmmove": 50 fails a disk move half-way, its target copy
	// removed, the guest left on its original volume). Task types that
	// copy no data fail when they would complete, as with FailTasks.
	FailTasksAt map[string]int
}

// faultsJSON is the admin API form of Faults, with durations as Go duration
// strings ("150ms").
type faultsJSON struct {
	Latency   string  `json:"latency,omitempty"`
	ErrorRate float64 `json:"error_rate,omitempty"`
	Timeout   bool    `json:"timeout,omitempty"`
	SlowTasks string  `json:"slow_tasks,omitempty"`
	// SlowTaskTypes maps task types to a duration string.
	SlowTaskTypes map[string]string `json:"slow_task_types,omitempty"`
	FailTasks     []string          `json:"fail_tasks,omitempty"`
	// FailTasksAt maps task types to the percentage of their copy
	// progress at which they fail.
	FailTasksAt map[string]int `json:"fail_tasks_at,omitempty"`
}

// MarshalJSON encodes f with durations as Go duration strings.
func (f Faults) MarshalJSON() ([]byte, error) {
	j := faultsJSON{ErrorRate: f.ErrorRate, Timeout: f.Timeout, FailTasks: f.FailTasks, FailTasksAt: f.FailTasksAt}
	if f.Latency != 0 {
		j.Latency = f.Latency.String()
	}
	if f.SlowTasks != 0 {
		j.SlowTasks = f.SlowTasks.String()
	}
	for typ, d := range f.SlowTaskTypes {
		if j.SlowTaskTypes == nil {
			j.SlowTaskTypes = map[string]string{}
		}
		j.SlowTaskTypes[typ] = d.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes f from the form MarshalJSON writes, rejecting
// unknown fields.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	var out Faults
	var err error
	if j.Latency != "" {
		if out.Latency, err = time.ParseDuration(j.Latency); err != nil {
			return fmt.Errorf("latency: %w", err)
		}
	}
	if j.SlowTasks != "" {
		if out.SlowTasks, err = time.ParseDuration(j.SlowTasks); err != nil {
			return fmt.Errorf("slow_tasks: %w", err)
		}
	}
	for typ, v := range j.SlowTaskTypes {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("slow_task_types: %s: %w", typ, err)
		}
		if out.SlowTaskTypes == nil {
			out.SlowTaskTypes = map[string]time.Duration{}
		}
		out.SlowTaskTypes[typ] = d
	}
	out.ErrorRate, out.Timeout, out.FailTasks, out.FailTasksAt = j.ErrorRate, j.Timeout, j.FailTasks, j.FailTasksAt
	*f = out
	return nil
}

func (f Faults) validate() error {
	if f.ErrorRate < 0 || f.ErrorRate > 1 {
		return fmt.Errorf("pvesim: error rate %v not in [0, 1]", f.ErrorRate)
	}
	if f.Latency < 0 || f.SlowTasks < 0 {
		return fmt.Errorf("pvesim: negative latency or task delay")
	}
	for typ, d := range f.SlowTaskTypes {
		if d < 0 {
			return fmt.Errorf("pvesim: slow_task_types %s: negative delay %s", typ, d)
		}
	}
	for typ, pct := range f.FailTasksAt {
		if pct < 0 || pct > 100 {
			return fmt.Errorf("pvesim: fail_tasks_at %s: %d%% not in [0, 100]", typ, pct)
		}
	}
	return nil
}

// SetFaults replaces the injected faults. It is safe to call at any time.
// Invalid values (an error rate outside [0, 1], negative durations,
// percentages outside [0, 100]) are clamped.
func (s *Sim) SetFaults(f Faults) {
	f.ErrorRate = min(max(f.ErrorRate, 0), 1)
	f.Latency = max(f.Latency, 0)
	f.SlowTasks = max(f.SlowTasks, 0)
	f.FailTasks = slices.Clone(f.FailTasks)
	f.FailTasksAt = maps.Clone(f.FailTasksAt)
	f.SlowTaskTypes = maps.Clone(f.SlowTaskTypes)
	for typ, d := range f.SlowTaskTypes {
		f.SlowTaskTypes[typ] = max(d, 0)
	}
	for typ, pct := range f.FailTasksAt {
		f.FailTasksAt[typ] = min(max(pct, 0), 100)
	}
	s.faultsV.Store(&f)
}

func (s *Sim) faults() Faults { return *s.faultsV.Load() }

// applyDelayFaults waits out the latency fault and hangs on the timeout
// fault. It reports false when the request is gone.
func (s *Sim) applyDelayFaults(r *http.Request, f Faults) bool {
	if f.Latency > 0 {
		timer := time.NewTimer(f.Latency)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
			return false
		case <-s.closed:
			return false
		}
	}
	if f.Timeout {
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		return false
	}
	return true
}
