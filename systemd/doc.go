// Package systemd holds the systemd units of Moxxie: moxxied.service (one
// server, Type=notify with a watchdog, unprivileged and sandboxed) and
// moxxie-agent.service (the host agent, root bounded to CAP_NET_ADMIN and
// CAP_NET_RAW). The packages install them in /usr/lib/systemd/system.
// The tests check them with systemd-analyze verify and check that the
// directives the servers and agents rely on are present; the notify and
// watchdog side lives in cmd/moxxied/notify.go.
package systemd
