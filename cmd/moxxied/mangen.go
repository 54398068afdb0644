//go:build mangen

package main

import (
	"os"

	"github.com/moxxie/moxxie/packaging/mangen"
)

// With the mangen build tag, `moxxied __gen-man DIR` writes the man pages
// the packages ship (packaging/build-deb); release builds leave this out.
func init() { mangen.Main(rootCmd(), os.Args) }
