package proxmox

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/moxxie/moxxie/provider"
)

// logPage is how many task log lines one request reads.
const logPage = 500

// taskOf returns the Task of a UPID. The node is taken from the UPID,
// which names the node the task runs on, and is node otherwise.
func taskOf(upid, node string) provider.Task {
	if n := upidNode(upid); n != "" {
		node = n
	}
	return provider.Task{ID: upid, Node: node}
}

// upidNode returns the node field of a UPID,
// UPID:node:pid:pstart:starttime:type:id:user:, or "".
func upidNode(upid string) string {
	f := strings.Split(upid, ":")
	if len(f) < 3 || f[0] != "UPID" {
		return ""
	}
	return f[1]
}

// taskPath returns the API path of a task.
func taskPath(t provider.Task) string {
	return nodePath(t.Node) + "/tasks/" + url.PathEscape(t.ID)
}

// resolveTask fills in a missing node from the UPID and checks the task.
func resolveTask(op string, t provider.Task) (provider.Task, error) {
	if t.Node == "" {
		t.Node = upidNode(t.ID)
	}
	if t.Node == "" {
		return t, reject(op, "task has no node")
	}
	return t, nil
}

// TaskStatus reads a task's state and the newest line of its log. The
// status Proxmox gives has no end time; for a stopped task it is looked up
// in the node's task list. A Task with an empty ID (a change Proxmox
// applied synchronously) is reported as finished successfully.
func (p *Provider) TaskStatus(ctx context.Context, task provider.Task) (provider.TaskStatus, error) {
	if task.ID == "" {
		return doneStatus(task), nil
	}
	op := "task status of " + task.ID
	task, err := resolveTask(op, task)
	if err != nil {
		return provider.TaskStatus{Task: task}, err
	}
	st, err := p.taskStatus(ctx, task)
	if err != nil {
		return provider.TaskStatus{Task: task}, p.fail(op, err)
	}
	if !st.Running {
		p.fillEndTime(ctx, &st)
	}
	if line, _, err := p.taskLog(ctx, task, 0); err == nil {
		st.LastLog = line
	} else if ctx.Err() != nil {
		return st, p.fail(op, err)
	} else {
		p.log.DebugContext(ctx, "proxmox: task log unavailable", "task", task.ID, "error", err.Error())
	}
	return st, nil
}

// WaitTask polls a task every Config.TaskPoll until it stops or ctx is
// done, and calls progress (when not nil) with the first status and with
// every status that differs from the one before, by state or newest log
// line. A task that ends with an exit status other than OK or
// "WARNINGS: ..." returns its status and an error wrapping ErrTaskFailed.
// An error reading the status ends the wait with that error; the task
// itself is not affected and may be waited for again.
func (p *Provider) WaitTask(ctx context.Context, task provider.Task, progress func(provider.TaskStatus)) (provider.TaskStatus, error) {
	if task.ID == "" {
		st := doneStatus(task)
		if progress != nil {
			progress(st)
		}
		return st, nil
	}
	op := "wait for task " + task.ID
	task, err := resolveTask(op, task)
	if err != nil {
		return provider.TaskStatus{Task: task}, err
	}
	var (
		last     provider.TaskStatus
		first    = true
		logStart = 0
		lastLine string
	)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return last, p.fail(op, ctx.Err())
		case <-timer.C:
		}
		st, err := p.taskStatus(ctx, task)
		if err != nil {
			return last, p.fail(op, err)
		}
		// The log only feeds progress; a failure to read it is not the
		// task's.
		if line, next, err := p.taskLog(ctx, task, logStart); err == nil {
			if line != "" {
				lastLine = line
			}
			logStart = next
		} else if ctx.Err() != nil {
			return last, p.fail(op, ctx.Err())
		} else {
			p.log.DebugContext(ctx, "proxmox: task log unavailable", "task", task.ID, "error", err.Error())
		}
		st.LastLog = lastLine
		if !st.Running {
			p.fillEndTime(ctx, &st)
		}
		if progress != nil && (first || changed(last, st)) {
			progress(st)
		}
		first = false
		last = st
		if !st.Running {
			if st.OK {
				return st, nil
			}
			return st, taskFailed(st)
		}
		timer.Reset(p.poll)
	}
}

// changed reports whether two statuses of one task differ in what a
// watcher sees.
func changed(a, b provider.TaskStatus) bool {
	return a.Running != b.Running || a.OK != b.OK || a.Exit != b.Exit || a.LastLog != b.LastLog
}

// taskFailed returns the error of a task that ended without success.
func taskFailed(st provider.TaskStatus) error {
	what := st.Type
	if what == "" {
		what = "task"
	}
	return fmt.Errorf("proxmox: %s %s on %s failed: %s: %w", what, st.ID, st.Node, st.Exit, provider.ErrTaskFailed)
}

// doneStatus is the status of a change applied without a task.
func doneStatus(task provider.Task) provider.TaskStatus {
	return provider.TaskStatus{Task: task, OK: true, Exit: "OK"}
}

// taskStatus reads /nodes/{node}/tasks/{upid}/status.
func (p *Provider) taskStatus(ctx context.Context, task provider.Task) (provider.TaskStatus, error) {
	var s struct {
		Status     string `json:"status"`
		ExitStatus string `json:"exitstatus"`
		Type       string `json:"type"`
		StartTime  pveInt `json:"starttime"`
		EndTime    pveInt `json:"endtime"`
	}
	if err := p.client.Get(ctx, taskPath(task)+"/status", &s); err != nil {
		return provider.TaskStatus{Task: task}, err
	}
	if s.Status == "" {
		return provider.TaskStatus{Task: task}, errors.New("task status without a state")
	}
	st := provider.TaskStatus{
		Task:    task,
		Type:    s.Type,
		Running: s.Status == "running",
		Exit:    s.ExitStatus,
	}
	if st.Type == "" {
		st.Type = upidField(task.ID, 5)
	}
	if !st.Running {
		st.OK = s.ExitStatus == "OK" || strings.HasPrefix(s.ExitStatus, "WARNINGS")
	}
	if s.StartTime > 0 {
		st.StartTime = time.Unix(int64(s.StartTime), 0).UTC()
	}
	if s.EndTime > 0 {
		st.EndTime = time.Unix(int64(s.EndTime), 0).UTC()
	}
	return st, nil
}

// upidField returns field i of a UPID, or "".
func upidField(upid string, i int) string {
	f := strings.Split(upid, ":")
	if len(f) <= i || f[0] != "UPID" {
		return ""
	}
	return f[i]
}

// taskLog reads a task's log from line start (0-based) to its end and
// returns the newest non-empty line, or "" when there is none, and the
// index to continue from.
func (p *Provider) taskLog(ctx context.Context, task provider.Task, start int) (string, int, error) {
	var newest string
	for {
		var lines []struct {
			N pveInt `json:"n"`
			T string `json:"t"`
		}
		path := fmt.Sprintf("%s/log?start=%d&limit=%d", taskPath(task), start, logPage)
		if err := p.client.Get(ctx, path, &lines); err != nil {
			return newest, start, err
		}
		for _, l := range lines {
			// Proxmox answers an empty log with the one line "no content".
			if t := strings.TrimSpace(l.T); t != "" && !(l.N == 1 && t == "no content") {
				newest = t
			}
		}
		if len(lines) == 1 && lines[0].N == 1 && lines[0].T == "no content" {
			return newest, start, nil
		}
		start += len(lines)
		if len(lines) < logPage {
			return newest, start, nil
		}
	}
}

// fillEndTime sets the end time of a stopped task, which its status does
// not report, from the node's task list: the entries of its type started
// in the same second. It leaves EndTime zero when that fails.
func (p *Provider) fillEndTime(ctx context.Context, st *provider.TaskStatus) {
	if !st.EndTime.IsZero() || st.StartTime.IsZero() {
		return
	}
	q := url.Values{}
	q.Set("source", "archive")
	q.Set("since", strconv.FormatInt(st.StartTime.Unix(), 10))
	q.Set("until", strconv.FormatInt(st.StartTime.Unix(), 10))
	q.Set("limit", "100")
	if st.Type != "" {
		q.Set("typefilter", st.Type)
	}
	var list []struct {
		UPID    string `json:"upid"`
		EndTime pveInt `json:"endtime"`
	}
	if err := p.client.Get(ctx, nodePath(st.Node)+"/tasks?"+q.Encode(), &list); err != nil {
		p.log.DebugContext(ctx, "proxmox: task end time unavailable", "task", st.ID, "error", err.Error())
		return
	}
	for _, e := range list {
		if e.UPID == st.ID && e.EndTime > 0 {
			st.EndTime = time.Unix(int64(e.EndTime), 0).UTC()
			return
		}
	}
}
