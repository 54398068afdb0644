// Command moxxiebench measures Moxxie's durable write and IPAM allocation
// throughput, latency and leader failover time, and the durable put
// throughput of etcd for comparison on the same machine.
//
// Usage:
//
//	moxxiebench write    --addr URLs --token T --cacert F [--clients 64] [--duration 20s] [--target all|leader]
//	moxxiebench etcd     --endpoints URLs [--clients 64] [--duration 20s]
//	moxxiebench alloc    --addr URLs --token T --cacert F [--count 1] [--prefix 10.0.0.0/8] [--target all|leader]
//	moxxiebench failover --servers-json DIR/servers.json --token T --cacert F [--kills 20]
//	moxxiebench inventory --moxxied PATH [--nodes 64] [--guests 10000] [--interval 1s] [--duration 30s]
//	moxxiebench pages    [--mib 64] [--rounds 3]
//	moxxiebench report   [--medians] RESULT.json...
//	moxxiebench ports    N
//
// Every run is bounded in time and in requests, and stops by itself.
// See docs/benchmarks.md.
package main

import "os"

func main() { os.Exit(run(os.Args[1:])) }
