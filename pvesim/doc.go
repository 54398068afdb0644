// Package pvesim simulates a Proxmox VE 9.1 cluster behind its HTTP API,
// for Moxxie's tests, benchmarks and `moxxied dev`.
//
// A Sim holds nodes, guests (VMs and containers with their configuration
// as Proxmox stores it), storage with volumes, SDN zones and vnets, and the
// asynchronous tasks that change them. Its handler serves the subset of the
// API Moxxie uses (see Routes) under /api2/json, checking every request
// against the official schema (package pvesim/schema) before handling it,
// and answering as Proxmox does: the same JSON shapes and types, the same
// error messages as HTTP reason phrases, UPIDs for tasks that run for a
// while and change state only when they end.
//
// Faults (latency, error rates, hanging requests, slow or failing tasks,
// node outages) can be injected at any time, in process with SetFaults and
// SetNodeOnline or through the admin API under /pvesim/v1.
//
// The README in this directory says what is simulated and what is not.
package pvesim
