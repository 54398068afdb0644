package main

import (
	"slices"

	"github.com/spf13/cobra"
)

// flagChanges applies to an object, for an update command, the flags the
// command was given, and counts them: an update given none is refused.
type flagChanges struct {
	cmd *cobra.Command
	n   int
}

func changesOf(cmd *cobra.Command) *flagChanges { return &flagChanges{cmd: cmd} }

// given reports whether the flag name was given, counting it if so.
func (c *flagChanges) given(name string) bool {
	if !c.cmd.Flags().Changed(name) {
		return false
	}
	c.n++
	return true
}

// set calls do when the flag name was given.
func (c *flagChanges) set(name string, do func()) {
	if c.given(name) {
		do()
	}
}

// setAny calls do once when any of the flags names was given.
func (c *flagChanges) setAny(names []string, do func()) {
	if slices.ContainsFunc(names, c.cmd.Flags().Changed) {
		c.n++
		do()
	}
}

// any reports whether any flag was given.
func (c *flagChanges) any() bool { return c.n > 0 }
