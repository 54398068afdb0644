package main

import (
	"context"
	"time"

	"github.com/moxxie/moxxie/agent"
	"github.com/moxxie/moxxie/client"
	"github.com/moxxie/moxxie/sdn"
)

// apiServer is the Moxxie API as the agent needs it.
type apiServer struct{ c *client.Client }

// Enrol registers or updates the host.
func (s apiServer) Enrol(ctx context.Context, h sdn.Host) error {
	_, _, err := s.c.SDNHostEnrol(ctx, h, nil)
	return err
}

// Plan reads the host's assignment with a blocking query.
func (s apiServer) Plan(ctx context.Context, host string, index uint64, wait time.Duration) (agent.Assignment, uint64, error) {
	v, m, err := s.c.SDNHostPlan(ctx, host, &client.QueryOptions{Index: index, Wait: wait})
	if err != nil {
		return agent.Assignment{}, 0, err
	}
	return agent.Assignment{Version: v.Version, RolloutID: v.RolloutID, Phase: v.Phase, Plan: v.Plan, RequestID: v.RequestID}, m.Index, nil
}

// Report records what the host holds.
func (s apiServer) Report(ctx context.Context, host string, r agent.Report) error {
	_, _, err := s.c.SDNHostReport(ctx, host, client.SDNReport{
		Version: r.Version, State: r.State, Error: r.Error, Drift: r.Drift, Actions: r.Actions,
	}, nil)
	return err
}
