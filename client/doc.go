// Package client is a Go client for Moxxie's HTTP API.
//
// A Client talks HTTPS to one or more servers (Config.Address may list
// several, comma-separated). Any server answers any request: followers
// forward to the leader. When a server cannot be reached the client tries
// the next one and remembers the one that answered.
//
// Failures are retried within a bounded time (Config.RetryFor, 10 seconds by
// default): connection failures, where nothing was sent, always; 503
// answers carrying Retry-After (no leader yet) and connections that broke
// after the request was sent only for requests that are safe to repeat.
// Reads are; writes are made safe by an Idempotency-Key, which the client
// sets on every write (a random one unless WriteOptions gives one), so a
// retried write returns the first result instead of applying twice.
//
// An answer with an error status is returned as *APIError; a request that
// no server completed as *ConnError. Both print as one line.
package client
