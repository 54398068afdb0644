// Command moxxied is the Moxxie server: `moxxied server` runs one server of
// a cluster, `moxxied dev` a whole appliance on loopback.
package main

import "os"

func main() { os.Exit(Run(os.Args[1:])) }
