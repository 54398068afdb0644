//go:build mangen

package main

import (
	"os"

	"github.com/moxxie/moxxie/packaging/mangen"
)

// With the mangen build tag, `moxxiectl __gen-man DIR` writes the man pages
// the packages ship (packaging/build-deb); release builds leave this out.
func init() {
	a := &app{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	mangen.Main(a.rootCommand(), os.Args)
}
