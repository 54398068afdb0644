package node

import (
	"time"

	"github.com/moxxie/moxxie/fsm"
)

// defaultMeteringInterval is how often the leader meters usage without
// metering_interval.
const defaultMeteringInterval = time.Minute

// runMetering proposes a metering tick every interval until stop: each
// accrues usage from where the state says metering stopped, whichever
// server proposed the last tick, to this leader's now.
func (s *Server) runMetering(stop <-chan struct{}) {
	every := time.Duration(s.cfg.MeteringInterval)
	if every <= 0 {
		every = defaultMeteringInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if _, err := s.raftApply(&fsm.MeterTickRequest{}); err != nil {
			s.logger.Warn("metering tick failed", "error", err)
		}
	}
}
