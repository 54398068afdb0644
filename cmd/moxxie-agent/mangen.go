//go:build mangen

package main

import (
	"os"

	"github.com/moxxie/moxxie/packaging/mangen"
)

// With the mangen build tag, `moxxie-agent __gen-man DIR` writes the man
// page the packages ship (packaging/build-deb); release builds leave this
// out. --host defaults to the hostname of the machine it runs on, not of
// the build machine, so the page shows no default for it.
func init() { mangen.Main(rootCmd(&options{}, ""), os.Args) }
