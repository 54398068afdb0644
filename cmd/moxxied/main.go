// Command moxxied is the Moxxie server: `moxxied server` runs one server of
// a cluster, `moxxied dev` a whole appliance on loopback.
package main

import (
	"os"
	// Storage policies name IANA time zones; every server then knows the
	// same zones, also on a host without the tzdata package.
	_ "time/tzdata"
)

func main() { os.Exit(Run(os.Args[1:])) }
