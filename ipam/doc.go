// Package ipam is the pure core of Moxxie's IP address management: prefix
// math, an allocator over merged runs of used keys, the release quarantine
// and input validation.
//
// Nothing here reads the clock, randomness, the disk or the network, so the
// FSM can call it inside its deterministic Apply. Time arrives as Unix
// nanoseconds stamped by the leader; storage arrives as the RunStore and
// HoldStore interfaces, which the FSM implements over a go-memdb
// transaction. DESIGN.md explains the choices.
package ipam
