package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// This file speaks systemd's notify protocol (sd_notify(3)) without
// libsystemd: one datagram a message to the unix socket named by
// NOTIFY_SOCKET. systemd/moxxied.service is Type=notify with WatchdogSec=;
// the messages moxxied sends, and when:
//
//   - READY=1 once the server can serve: node.New returned (stores open,
//     raft started, listeners bound) and the server's own API answered
//     GET /v1/health over TLS through its listener (Server.Healthy). A
//     leader is not waited for: a server waiting for its peers is ready.
//   - WATCHDOG=1 every half WATCHDOG_USEC while Server.Healthy succeeds.
//     A failed check withholds the ping and is repeated every twelfth of
//     the interval; when none succeeds for the whole interval systemd
//     kills the server (SIGABRT) and Restart=on-failure starts it again.
//   - RELOADING=1 and READY=1 around a SIGHUP reload (certificates and
//     key-encryption keys).
//   - STOPPING=1 before a SIGTERM shutdown (leadership handed off first).
//   - STATUS=... alongside, shown by systemctl status.

// sdNotifier sends notify messages to systemd. Its zero value, for a
// process systemd did not start as a notify service, sends nothing.
type sdNotifier struct {
	addr *net.UnixAddr // nil without NOTIFY_SOCKET
}

// newSDNotifier reads NOTIFY_SOCKET through getenv. A name starting with
// "@" is an abstract socket.
func newSDNotifier(getenv func(string) string) sdNotifier {
	name := getenv("NOTIFY_SOCKET")
	if name == "" {
		return sdNotifier{}
	}
	if strings.HasPrefix(name, "@") {
		name = "\x00" + name[1:]
	}
	return sdNotifier{addr: &net.UnixAddr{Name: name, Net: "unixgram"}}
}

// enabled reports whether systemd listens.
func (n sdNotifier) enabled() bool { return n.addr != nil }

// notify sends state, one or more NAME=VALUE lines, as one datagram.
func (n sdNotifier) notify(state string) error {
	if n.addr == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// reloading is the message that starts a reload: RELOADING=1 with the
// CLOCK_MONOTONIC time systemd wants next to it.
func reloading() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "RELOADING=1"
	}
	return "RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(ts.Nano()/1000, 10)
}

// watchdogInterval returns the watchdog timeout systemd set for process
// pid (WATCHDOG_USEC, for WATCHDOG_PID when that is set), or 0 when it set
// none. It follows sd_watchdog_enabled(3).
func watchdogInterval(getenv func(string) string, pid int) (time.Duration, error) {
	v := getenv("WATCHDOG_USEC")
	if v == "" {
		return 0, nil
	}
	usec, err := strconv.ParseUint(v, 10, 63)
	if err != nil || usec == 0 {
		return 0, fmt.Errorf("WATCHDOG_USEC=%q is not a positive number of microseconds", v)
	}
	if p := getenv("WATCHDOG_PID"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return 0, fmt.Errorf("WATCHDOG_PID=%q is not a process ID", p)
		}
		if n != pid {
			return 0, nil // meant for another process
		}
	}
	return time.Duration(usec) * time.Microsecond, nil
}

// healthCheckTimeout bounds one health check.
const healthCheckTimeout = 5 * time.Second

// waitServing runs check until it succeeds, backing off from 50 ms to
// 2 s between attempts, and returns nil then; or ctx's error when ctx ends
// first. A check still failing after 10 s is logged once.
func waitServing(ctx context.Context, check func(context.Context) error, logger *slog.Logger) error {
	start, delay, logged := time.Now(), 50*time.Millisecond, false
	for {
		cctx, cancel := context.WithTimeout(ctx, healthCheckTimeout)
		err := check(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if !logged && time.Since(start) > 10*time.Second {
			logger.Warn("server not serving yet; READY not sent to systemd", "error", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// watchdog pings systemd while the server is healthy.
type watchdog struct {
	// interval is WATCHDOG_USEC: systemd kills the service when no ping
	// arrives for that long.
	interval time.Duration
	check    func(context.Context) error
	notify   func(string) error
	logger   *slog.Logger
}

// run checks the server every half interval and pings after each
// success; after a failure it checks again every twelfth of the interval,
// so a server unhealthy for a moment is not killed but one that stays
// unhealthy for the interval is. It returns when ctx ends.
func (w watchdog) run(ctx context.Context) {
	period := w.interval / 2
	retry := max(w.interval/12, time.Millisecond)
	timeout := min(period/2, healthCheckTimeout)
	failing := false
	t := time.NewTimer(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := w.check(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			msg := "WATCHDOG=1"
			if failing {
				w.logger.Info("server healthy again; watchdog pings resumed")
				msg += "\nSTATUS=serving"
				failing = false
			}
			if nerr := w.notify(msg); nerr != nil {
				w.logger.Warn("watchdog ping failed", "error", nerr)
			}
			t.Reset(period)
			continue
		}
		if !failing {
			w.logger.Error("health check failed; withholding the systemd watchdog ping", "error", err, "watchdog", w.interval.String())
			failing = true
		}
		if nerr := w.notify("STATUS=unhealthy: " + oneLine(err.Error())); nerr != nil {
			w.logger.Warn("sd_notify failed", "error", nerr)
		}
		t.Reset(retry)
	}
}

// oneLine keeps a STATUS value on one line.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
