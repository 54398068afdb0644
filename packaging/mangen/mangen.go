// Package mangen writes the man pages of a cobra command tree. The packages
// are built with them (packaging/build-deb): each command has a file under
// the build tag mangen that hands its root command to Main, so the shipped
// binaries carry neither this package nor its Markdown renderer.
package mangen

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// Command is the argument that asks a binary built with the mangen tag for
// its man pages: `moxxied __gen-man DIR`.
const Command = "__gen-man"

// Main generates root's man pages into the directory named by args[2] and
// exits when args[1] is Command; with any other arguments it returns, and
// the binary runs as usual. It is called from init with os.Args.
func Main(root *cobra.Command, args []string) {
	if len(args) < 2 || args[1] != Command {
		return
	}
	if len(args) != 3 {
		fmt.Fprintf(os.Stderr, "usage: %s %s DIR\n", root.Name(), Command)
		os.Exit(2)
	}
	if err := Generate(root, args[2], os.Getenv("SOURCE_DATE_EPOCH")); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Generate writes one page in section 1 for root and for each of its
// available subcommands into dir (created if missing). The date in the
// pages is epoch (seconds since 1970, as in SOURCE_DATE_EPOCH), so that a
// rebuild of the same commit makes the same pages; it is required.
func Generate(root *cobra.Command, dir, epoch string) error {
	if epoch == "" {
		return errors.New("mangen: SOURCE_DATE_EPOCH is not set")
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return fmt.Errorf("mangen: SOURCE_DATE_EPOCH: %w", err)
	}
	date := time.Unix(sec, 0).UTC()
	if err := os.MkdirAll(dir, 0o755); err != nil { // #nosec G301 -- man page directories are world-readable, as in the installed package
		return err
	}
	disableAutoGenTag(root)
	return doc.GenManTree(root, &doc.GenManHeader{
		Section: "1",
		Date:    &date,
		Source:  "Moxxie",
		Manual:  "Moxxie Manual",
	}, dir)
}

// disableAutoGenTag drops cobra's "Auto generated" history section, which
// carries no information for a reader.
func disableAutoGenTag(c *cobra.Command) {
	c.DisableAutoGenTag = true
	for _, sub := range c.Commands() {
		disableAutoGenTag(sub)
	}
}
