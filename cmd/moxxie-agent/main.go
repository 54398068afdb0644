// Command moxxie-agent runs on each Proxmox host: it enrols with the Moxxie
// servers, holds the host's network plan in the kernel with netlink and
// nftables, heals drift and reports back.
package main

import "os"

func main() { os.Exit(Run(os.Args[1:])) }
