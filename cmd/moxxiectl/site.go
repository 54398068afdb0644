package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/moxxie/moxxie/client"
	"github.com/spf13/cobra"
)

func (a *app) siteCommand() *cobra.Command {
	return group("site", "Show the sites of the federation and their servers; fail plans over, drill them and fail them back",
		&cobra.Command{
			Use:   "list",
			Short: "List every site the answering server's view of the pool knows, with its state",
			Long: `List every site the answering server's view of the sites' pool knows.

A site is up when all its servers are alive, degraded when some are not,
unreachable when none is alive in this view but a quorum of the other sites
does not agree, down when a quorum of the other sites agrees that every server
of it is dead, and left when its servers left the pool gracefully.`,
			Args: exactArgs(),
			RunE: a.siteList,
		},
		&cobra.Command{
			Use:   "get NAME",
			Short: "Show a site's state, its servers and the sites voting it down",
			Args:  exactArgs("NAME"),
			RunE:  a.siteGet,
		},
		&cobra.Command{
			Use:   "forget NAME",
			Short: "Declare a site lost for good, so that it no longer counts in the other sites' quorum",
			Long: `Declare a site of which no server is alive gone for good. Every server of
every site then sees it left, as if its servers had left the pool: it no longer
counts in the quorum the other sites need to vote a site down, and nobody tries
to reach it any more. With three sites, once one is lost for good the other two
cannot vote each other down (each needs two votes) until it is forgotten.

Forget a site only when it will not come back as it was, after its failover:
a site that left is never failed over. The answering site's leader does it, and
the audit log records it. It is refused for your own site and for a site of
which a server is alive. A server of the site that shows up alive again (the site
was only cut off, or is rebuilt) counts again, and fails as any other server.`,
			Args: exactArgs("NAME"),
			RunE: a.siteForget,
		},
		a.siteFailoverCommand(),
		a.siteDrillCommand(),
		a.siteFailbackCommand(),
		a.siteUnfenceCommand(),
	)
}

func (a *app) siteList(cmd *cobra.Command, _ []string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	out, err := c.Sites(cmd.Context())
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, out)
	}
	tw := newTable(a.stdout)
	row(tw, "SITE", "ROLE", "STATE", "SERVERS ALIVE", "LEADER", "DOWN VOTES")
	for _, s := range out.Sites {
		alive, leader := 0, "-"
		for _, m := range s.Members {
			if m.State == "alive" {
				alive++
			}
			if m.Leader && m.State == "alive" {
				leader = m.Node
			}
		}
		name := s.Name
		if s.Name == out.Local {
			name += " (local)"
		}
		row(tw, cell(name), cell(s.Role), cell(s.State), strconv.Itoa(alive)+"/"+strconv.Itoa(len(s.Members)), cell(leader), votes(s))
	}
	return tw.Flush()
}

// votes shows the sites voting a site down against its quorum.
func votes(s client.Site) string {
	if len(s.Votes) == 0 {
		return "-"
	}
	return strings.Join(s.Votes, ",") + " (" + strconv.Itoa(len(s.Votes)) + "/" + strconv.Itoa(s.Quorum) + ")"
}

func (a *app) siteForget(cmd *cobra.Command, args []string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	s, err := c.ForgetSite(cmd.Context(), args[0])
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, s)
	}
	return printf(a.stdout, "site %s forgotten: it is %s, and no longer counts in the quorum of the other sites\n", s.Name, s.State)
}

func (a *app) siteGet(cmd *cobra.Command, args []string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	s, err := c.Site(cmd.Context(), args[0])
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, s)
	}
	down := "-"
	if !s.DownSince.IsZero() {
		down = s.DownSince.UTC().Format(time.RFC3339)
	}
	if err := keyValues(a.stdout, "Site", s.Name, "Role", s.Role, "State", s.State, "Down votes", votes(*s), "Down since", down); err != nil {
		return err
	}
	if err := printf(a.stdout, "\n"); err != nil {
		return err
	}
	tw := newTable(a.stdout)
	row(tw, "SERVER", "STATE", "SINCE", "LEADER", "HEALTHY", "API ADDRESS", "GOSSIP ADDRESS", "VOTES DOWN")
	for _, m := range s.Members {
		row(tw, cell(m.Node), cell(m.State), m.Since.UTC().Format(time.RFC3339), strconv.FormatBool(m.Leader), strconv.FormatBool(m.Healthy),
			orDash(cell(m.APIAddress)), cell(m.Addr), orDash(strings.Join(m.Down, ",")))
	}
	return tw.Flush()
}
