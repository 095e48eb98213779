// Package sdnotify tells the service manager what the agent is doing, over
// the datagram protocol of sd_notify(3): one datagram of newline-separated
// VAR=value assignments sent to the AF_UNIX socket named by $NOTIFY_SOCKET.
//
// It is written here rather than taken from go-systemd because the protocol
// is a dozen lines and the agent needs nothing else from that module. When
// $NOTIFY_SOCKET is unset (not started by systemd, or Type= is not notify)
// every call does nothing and returns nil, so the agent calls it
// unconditionally.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Environment variables systemd sets for the service's main process.
const (
	SocketVar       = "NOTIFY_SOCKET"
	WatchdogUSecVar = "WATCHDOG_USEC"
	WatchdogPIDVar  = "WATCHDOG_PID"
)

// sendTimeout bounds one send: the socket is a datagram socket whose reader
// is PID 1, and a stuck PID 1 must not hold the agent's shutdown hostage.
const sendTimeout = 2 * time.Second

// Notifier sends state changes to the service manager. The zero value and a
// nil *Notifier are valid and send nothing.
type Notifier struct {
	// socket is $NOTIFY_SOCKET: an absolute path, or "@name" for a name in
	// the abstract namespace. Empty disables the Notifier.
	socket string
	// watchdogUSec and watchdogPID are $WATCHDOG_USEC and $WATCHDOG_PID,
	// parsed on demand by WatchdogInterval.
	watchdogUSec, watchdogPID string
	pid                       int
	// monotonic reads CLOCK_MONOTONIC, which MONOTONIC_USEC is measured on.
	monotonic func() (time.Duration, error)

	mu sync.Mutex
	// status is the last status the agent set, which KeepAlive puts back
	// when the agent recovers from a spell of ill health.
	status string
}

// FromEnvironment returns a Notifier for this process, set up from the
// variables systemd passed it.
func FromEnvironment() *Notifier { return New(os.Getenv, os.Getpid()) }

// New returns a Notifier from the variables getenv returns, for the process
// pid (WATCHDOG_PID names the process the watchdog is meant for).
func New(getenv func(string) string, pid int) *Notifier {
	return &Notifier{
		socket:       getenv(SocketVar),
		watchdogUSec: getenv(WatchdogUSecVar),
		watchdogPID:  getenv(WatchdogPIDVar),
		pid:          pid,
		monotonic:    monotonicNow,
	}
}

// Enabled reports whether there is a service manager to notify.
func (n *Notifier) Enabled() bool { return n != nil && n.socket != "" }

// Ready says start-up (or a reload) is finished: systemd then starts the
// units ordered after this one and arms the watchdog. status, if not empty,
// is shown by `systemctl status`.
func (n *Notifier) Ready(status string) error {
	n.remember(status)
	return n.Send("READY=1", statusLine(status))
}

// Reloading says a configuration reload began; Ready must follow when it is
// done, whether it succeeded or not. MONOTONIC_USEC lets systemd 253 and
// later (Type=notify-reload) match the message to the reload it asked for;
// older versions ignore the field.
func (n *Notifier) Reloading() error {
	if !n.Enabled() {
		return nil
	}
	now, err := n.monotonic()
	if err != nil {
		return fmt.Errorf("sdnotify: reading CLOCK_MONOTONIC: %w", err)
	}
	return n.Send("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatInt(now.Microseconds(), 10))
}

// Stopping says the agent began shutting down; systemd shows the unit as
// deactivating from then on.
func (n *Notifier) Stopping() error { return n.Send("STOPPING=1") }

// Status sets the one line `systemctl status` shows for the unit.
func (n *Notifier) Status(text string) error {
	n.remember(text)
	return n.Send(statusLine(text))
}

func (n *Notifier) remember(status string) {
	if n == nil || status == "" {
		return
	}
	n.mu.Lock()
	n.status = status
	n.mu.Unlock()
}

func (n *Notifier) lastStatus() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status
}

// Watchdog tells systemd the agent is alive; without it within WatchdogSec
// systemd kills and (with Restart=on-failure) restarts the service.
func (n *Notifier) Watchdog() error { return n.Send("WATCHDOG=1") }

// statusLine is a STATUS= assignment, or "" for an empty status. A newline
// would end the assignment and start another, so it becomes a space.
func statusLine(text string) string {
	if text == "" {
		return ""
	}
	return "STATUS=" + strings.ReplaceAll(text, "\n", " ")
}

// Send sends the assignments (each "VAR=value"; empty ones are skipped) in
// one datagram, which systemd applies at once.
func (n *Notifier) Send(assignments ...string) error {
	if !n.Enabled() {
		return nil
	}
	var msg strings.Builder
	for _, a := range assignments {
		if a == "" {
			continue
		}
		if msg.Len() > 0 {
			msg.WriteByte('\n')
		}
		msg.WriteString(a)
	}
	if msg.Len() == 0 {
		return nil
	}
	addr, err := socketAddr(n.socket)
	if err != nil {
		return err
	}
	// A socket per message rather than one kept open: the agent notifies a
	// few times a minute, and a fresh socket follows systemd across a
	// daemon-reexec without any reconnect logic.
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("sdnotify: connecting to %s: %w", n.socket, err)
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	if _, err := conn.Write([]byte(msg.String())); err != nil {
		return fmt.Errorf("sdnotify: sending to %s: %w", n.socket, err)
	}
	return nil
}

// errUnsupportedSocket is returned for a $NOTIFY_SOCKET that is neither an
// absolute path nor an abstract name (systemd 253's "vsock:" addresses,
// for instance, which only matter inside VMs).
var errUnsupportedSocket = errors.New("sdnotify: unsupported NOTIFY_SOCKET")

// socketAddr turns $NOTIFY_SOCKET into an address. Go's net package already
// maps a leading '@' to the abstract namespace's leading NUL byte.
func socketAddr(socket string) (*net.UnixAddr, error) {
	if len(socket) < 2 || (socket[0] != '/' && socket[0] != '@') {
		return nil, fmt.Errorf("%w %q: want an absolute path or @name", errUnsupportedSocket, socket)
	}
	return &net.UnixAddr{Name: socket, Net: "unixgram"}, nil
}

func monotonicNow() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, err
	}
	return time.Duration(ts.Nano()), nil
}
