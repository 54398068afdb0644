// Package proxmox implements provider.Provider for Proxmox VE through
// github.com/luthermonson/go-proxmox, authenticating with an API token
// (the PVEAPIToken Authorization header) and nothing else.
//
// # TLS
//
// Exactly one way of trusting the server applies:
//
//   - CAFile: the server's chain must verify against the PEM bundle, and
//     its certificate must name the URL's host.
//   - Fingerprint: the SHA-256 of the server's leaf certificate must equal
//     the pinned value ("AA:BB:..." as the Proxmox GUI shows it). Chain,
//     expiry and name are not checked, so self-signed node certificates
//     work; a different certificate is refused.
//   - Insecure: nothing is verified. It must be asked for explicitly and is
//     the only setting that allows a plain http URL.
//   - none of these: the system roots, as for any HTTPS client.
//
// CAFile and Fingerprint together, or either with Insecure, is a
// configuration error. A failed verification is reported as
// provider.ErrUnavailable and never retried.
//
// # Timeouts and retries
//
// Every HTTP attempt has Config.Timeout to connect, send and read the whole
// answer. A failed attempt is retried, up to Config.Retries times with
// exponential backoff (250ms doubling to 5s, jittered), when it failed with
// a 5xx status (including Proxmox's 595 and 596 for an unreachable node),
// 408 or 429, a network error or a timeout, and it is safe to repeat:
//
//   - GET and PUT are repeated after any such failure: reading, and
//     setting configuration to given values, do the same thing twice.
//   - POST and DELETE start work on Proxmox (create, clone, start, migrate,
//     snapshot, destroy, ...). They are repeated only when the request
//     cannot have reached Proxmox: no connection was made (refused,
//     unreachable, TLS handshake failed), or the server answered 429. A
//     POST that timed out or got a 5xx may have been applied, so its
//     error is returned for the caller to decide, e.g. by reading the
//     inventory.
//
// 4xx answers, 501, and 5xx answers whose message says an object does not
// exist or refuses the action ("already exists", "is running", ...), are
// final.
//
// # Errors
//
// Errors wrap the sentinels of package provider:
//
//   - ErrUnauthorized for 401 and 403;
//   - ErrNotFound for 404 and for answers that name a missing guest,
//     snapshot, storage, task or node (Proxmox sends those as 500s, or as
//     400s for tasks);
//   - ErrRejected for other 4xx, 501, refused actions ("already exists",
//     "is running", ...) and invalid arguments caught before sending;
//   - ErrUnavailable for everything else that went wrong on the way or on
//     the server, also wrapping ErrTimeout when an attempt timed out;
//   - ErrTaskFailed for a task that ended with an error.
//
// A call canceled through its context returns the context's error instead.
// Messages keep the method, API path and Proxmox's own message. The token
// secret never appears in an error, a log record or the printed form of a
// Config.
//
// # Tasks
//
// Methods that start work return the Proxmox task (UPID) at once.
// WaitTask polls /nodes/{node}/tasks/{upid}/status every Config.TaskPoll
// and reads the new lines of the task log for progress. Exit status "OK"
// or "WARNINGS: n" is success. A change Proxmox applies synchronously (a
// container's configuration) yields a Task with an empty ID, which
// TaskStatus and WaitTask report as finished successfully.
//
// # Disks and backups
//
// Disks are the volume-backed entries of a guest's configuration
// (scsiN, virtioN, sataN, ideN, efidisk0, tpmstate0, rootfs, mpN, unusedN);
// CD-ROMs, cloud-init drives, host devices and bind mounts are not. Adding,
// attaching and detaching change the configuration (a task for a virtual
// machine, synchronous for a container); resizes, moves, volume deletions
// and restores are tasks. A move that fails part-way leaves the guest on
// its original volume, as Proxmox does.
//
// # SDN
//
// Zone and vnet changes edit Proxmox's SDN configuration; they reach the
// nodes when ApplySDN commits it, which returns the reloadnetworkall task
// that deploys it. Lists report each object's pending state, and objects
// deleted but not yet applied. Updates read the object first and send
// only what differs, with the configuration's digest.
package proxmox
