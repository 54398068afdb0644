package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/fsm"
)

// runSDNRollouts aborts an SDN rollout whose hosts have not all prepared
// by its deadline, so every host returns to the previous version. The
// hosts' reports commit or abort a rollout in the state machine itself;
// only the deadline needs a clock, which is the leader's.
func (s *Server) runSDNRollouts(stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-stop
		cancel()
	}()
	for {
		ws := memdb.NewWatchSet()
		_, r, err := s.State().SDNActiveRollout(ws)
		if err != nil {
			s.logger.Error("reading the active SDN rollout failed", "error", err)
			return
		}
		ws.Add(s.State().AbandonCh())
		wctx := ctx
		if r != nil {
			left := time.Until(time.Unix(0, int64(r.Deadline)))
			if left <= 0 {
				s.abortRollout(r)
				continue
			}
			var wcancel context.CancelFunc
			wctx, wcancel = context.WithTimeout(ctx, left)
			err = ws.WatchCtx(wctx)
			wcancel()
		} else {
			err = ws.WatchCtx(wctx)
		}
		if ctx.Err() != nil {
			return
		}
		_ = err // a timeout means the deadline passed: look again.
	}
}

// abortRollout proposes the abort of r, naming the hosts that did not
// prepare; a rollout that ended meanwhile is left as it is.
func (s *Server) abortRollout(r *fsm.SDNRollout) {
	missing := []string{}
	for _, h := range r.Hosts {
		if !slices.Contains(r.Prepared, h) {
			missing = append(missing, h)
		}
	}
	reason := fmt.Sprintf("deadline passed: %s did not apply version %d", strings.Join(missing, ", "), r.Version)
	_, err := s.raftApply(&fsm.SDNRolloutAbortRequest{RolloutID: r.ID, Reason: reason})
	switch {
	case err == nil:
		s.logger.Warn("SDN rollout aborted", "rollout", r.ID, "version", r.Version, "reason", reason)
	case errors.Is(err, fsm.ErrConflict):
	default:
		s.logger.Warn("aborting the SDN rollout failed", "rollout", r.ID, "error", err)
		time.Sleep(time.Second)
	}
}

// sdnMirrorInterval is how often the leader mirrors the SDN to Proxmox
// without a committed rollout prompting it, to repair edits made there.
const sdnMirrorInterval = time.Minute

// runSDNMirror writes the SDN zones and vnets to Proxmox SDN, when
// proxmox.sdn_mirror is on, after every committed rollout and once a
// minute. Zones this leader has mirrored are remembered, so a zone removed
// from the intent is removed from Proxmox too.
func (s *Server) runSDNMirror(stop <-chan struct{}) {
	if !s.cfg.Proxmox.SDNMirror || s.provider == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-stop
		cancel()
	}()
	owned := map[string]bool{}
	if _, in, err := s.State().SDNIntent(nil); err == nil {
		for _, z := range in.Zones {
			owned[z.ID] = true
		}
	}
	var mirrored string // the newest committed rollout mirrored
	tick := time.NewTicker(sdnMirrorInterval)
	defer tick.Stop()
	for {
		ws := memdb.NewWatchSet()
		_, rs, err := s.State().SDNRollouts(ws)
		if err != nil {
			s.logger.Error("reading SDN rollouts failed", "error", err)
			return
		}
		newest := ""
		for _, r := range rs {
			if r.Phase == fsm.SDNPhaseCommitted {
				newest = r.ID
				break
			}
		}
		if newest != "" && newest != mirrored {
			mirrored = newest
			s.mirrorSDN(ctx, owned)
		}
		ws.Add(s.State().AbandonCh())
		wctx, wcancel := context.WithCancel(ctx)
		select {
		case <-ws.WatchCh(wctx):
		case <-tick.C:
			if mirrored != "" {
				s.mirrorSDN(ctx, owned)
			}
		case <-ctx.Done():
		}
		wcancel()
		if ctx.Err() != nil {
			return
		}
	}
}

// mirrorSDN writes the current intent's zones and vnets to Proxmox once.
func (s *Server) mirrorSDN(ctx context.Context, owned map[string]bool) {
	_, in, err := s.State().SDNIntent(nil)
	if err != nil {
		s.logger.Error("reading the SDN intent failed", "error", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	acts, err := syncProxmoxSDN(ctx, s.provider, in, func(id string) bool { return owned[id] })
	for _, z := range in.Zones {
		owned[z.ID] = true
	}
	if len(acts) > 0 {
		s.logger.Info("mirrored the SDN to Proxmox", "actions", acts)
	}
	if err != nil {
		s.logger.Warn("mirroring the SDN to Proxmox failed", "error", err)
	}
}
