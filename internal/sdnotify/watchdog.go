package sdnotify

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// WatchdogInterval returns the unit's WatchdogSec= as systemd passed it in
// $WATCHDOG_USEC, or 0 when the watchdog is off for this process: the
// variable is unset, or $WATCHDOG_PID names another process (a child that
// inherited the environment). Ping at half of it, as sd_watchdog_enabled(3)
// advises, so one late tick does not cost a restart. A value systemd would
// never write is an error rather than a silent 0.
func (n *Notifier) WatchdogInterval() (time.Duration, error) {
	if n == nil || n.watchdogUSec == "" {
		return 0, nil
	}
	if n.watchdogPID != "" {
		pid, err := strconv.Atoi(n.watchdogPID)
		if err != nil || pid <= 0 {
			return 0, fmt.Errorf("sdnotify: %s=%q: want a process id", WatchdogPIDVar, n.watchdogPID)
		}
		if pid != n.pid {
			return 0, nil
		}
	}
	usec, err := strconv.ParseUint(n.watchdogUSec, 10, 64)
	// systemd never passes 0 (watchdog off) nor more than a Duration holds.
	if err != nil || usec == 0 || usec > uint64(time.Duration(1<<63-1)/time.Microsecond) {
		return 0, fmt.Errorf("sdnotify: %s=%q: want a positive number of microseconds", WatchdogUSecVar, n.watchdogUSec)
	}
	return time.Duration(usec) * time.Microsecond, nil
}

// KeepAlive pings the watchdog every half interval until ctx is done,
// but only while healthy returns nil: a ping must mean the agent works,
// not merely that this goroutine is scheduled. While healthy fails it sends
// the error as STATUS instead, so `systemctl status` says why systemd is
// about to kill the service, and on recovery it puts back the status last
// set with Ready or Status.
//
// It returns at once when the watchdog is off (or $WATCHDOG_USEC is
// malformed: the error), and otherwise when ctx is done, with nil. A failed
// send is logged and retried at the next tick rather than returned: one
// lost datagram must not stop the pings for good.
func (n *Notifier) KeepAlive(ctx context.Context, healthy func() error, log *slog.Logger) error {
	interval, err := n.WatchdogInterval()
	if err != nil || interval == 0 || !n.Enabled() {
		return err
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "sdnotify")
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	wasHealthy := true
	for {
		herr := healthy()
		switch {
		case herr == nil && wasHealthy:
			err = n.Watchdog()
		case herr == nil:
			err = n.Send("WATCHDOG=1", statusLine(n.lastStatus()))
		case wasHealthy:
			// Once per spell: the status line and the log are for a human.
			// Not through Status, which would make it the status to return to.
			log.Error("unhealthy: not feeding the systemd watchdog", "reason", herr, "watchdog", interval)
			err = n.Send(statusLine("unhealthy, watchdog not fed: " + herr.Error()))
		default:
			err = nil
		}
		if err != nil {
			log.Warn("notifying systemd failed; retrying at the next tick", "err", err)
		}
		wasHealthy = herr == nil
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
