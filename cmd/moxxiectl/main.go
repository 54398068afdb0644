// Command moxxiectl is the command-line client of a Moxxie cluster. It
// mirrors the HTTP API as `moxxiectl <noun> <verb>`, reads MOXXIE_ADDR,
// MOXXIE_TOKEN and MOXXIE_CACERT from the environment, and prints tables or,
// with -o json, JSON.
package main

import "os"

func main() { os.Exit(Run(os.Args[1:])) }
