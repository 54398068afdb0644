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
