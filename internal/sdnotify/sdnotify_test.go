package sdnotify_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/internal/sdnotify"
)

// manager is the service manager's end: a unixgram socket bound where
// NOTIFY_SOCKET points, receiving with SO_PASSCRED as systemd does so that
// the sender's pid (what NotifyAccess=main checks) is known.
type manager struct {
	t      *testing.T
	conn   *net.UnixConn
	socket string // the NOTIFY_SOCKET value
}

func listen(t *testing.T, socket string) *manager {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listening on %s: %v", socket, err)
	}
	t.Cleanup(func() { conn.Close() })
	raw, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1)
	}); err != nil || serr != nil {
		t.Fatalf("SO_PASSCRED: %v %v", err, serr)
	}
	return &manager{t: t, conn: conn, socket: socket}
}

// pathSocket and abstractSocket are the two kinds of NOTIFY_SOCKET systemd
// hands out: /run/systemd/notify, and "@..." for services it runs in
// containers and for sd_notify's own tests.
func pathSocket(t *testing.T) *manager {
	return listen(t, filepath.Join(t.TempDir(), "notify"))
}

func abstractSocket(t *testing.T) *manager {
	return listen(t, fmt.Sprintf("@bindwatch-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
}

// receive returns the next datagram and the pid the kernel vouches sent it.
func (m *manager) receive() (msg string, pid int32) {
	m.t.Helper()
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(syscall.SizeofUcred))
	m.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, oobn, _, _, err := m.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		m.t.Fatalf("no datagram on %s: %v", m.socket, err)
	}
	cmsgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(cmsgs) != 1 {
		m.t.Fatalf("control messages %v: %v", cmsgs, err)
	}
	cred, err := syscall.ParseUnixCredentials(&cmsgs[0])
	if err != nil {
		m.t.Fatal(err)
	}
	return string(buf[:n]), cred.Pid
}

// nothingPending fails if a datagram is waiting.
func (m *manager) nothingPending() {
	m.t.Helper()
	m.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, 4096)
	if n, _, err := m.conn.ReadFromUnix(buf); err == nil {
		m.t.Fatalf("unexpected datagram %q", buf[:n])
	}
}

func (m *manager) notifier() *sdnotify.Notifier {
	return sdnotify.New(env(sdnotify.SocketVar, m.socket), os.Getpid())
}

// env is a getenv over the given name, value pairs.
func env(kv ...string) func(string) string {
	return func(name string) string {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == name {
				return kv[i+1]
			}
		}
		return ""
	}
}

func monotonicUSec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

func TestDatagrams(t *testing.T) {
	cases := []struct {
		name string
		call func(*sdnotify.Notifier) error
		want string
	}{
		{"ready", func(n *sdnotify.Notifier) error { return n.Ready("") }, "READY=1"},
		{"ready with status", func(n *sdnotify.Notifier) error { return n.Ready("hook fexit, publishing to k1:9092") },
			"READY=1\nSTATUS=hook fexit, publishing to k1:9092"},
		{"status newline cannot forge an assignment", func(n *sdnotify.Notifier) error { return n.Status("spooling\nREADY=1") },
			"STATUS=spooling READY=1"},
		{"status", func(n *sdnotify.Notifier) error { return n.Status("spooling: kafka unreachable") },
			"STATUS=spooling: kafka unreachable"},
		{"stopping", func(n *sdnotify.Notifier) error { return n.Stopping() }, "STOPPING=1"},
		{"watchdog", func(n *sdnotify.Notifier) error { return n.Watchdog() }, "WATCHDOG=1"},
		{"send skips empty assignments", func(n *sdnotify.Notifier) error { return n.Send("", "A=1", "", "B=2") }, "A=1\nB=2"},
	}
	for _, kind := range []struct {
		name   string
		listen func(*testing.T) *manager
	}{{"path", pathSocket}, {"abstract", abstractSocket}} {
		for _, c := range cases {
			t.Run(kind.name+"/"+c.name, func(t *testing.T) {
				m := kind.listen(t)
				if err := c.call(m.notifier()); err != nil {
					t.Fatal(err)
				}
				got, pid := m.receive()
				if got != c.want {
					t.Errorf("datagram %q, want %q", got, c.want)
				}
				if pid != int32(os.Getpid()) {
					t.Errorf("sent by pid %d, want the main pid %d (NotifyAccess=main)", pid, os.Getpid())
				}
				m.nothingPending()
			})
		}
		t.Run(kind.name+"/reloading", func(t *testing.T) {
			m := kind.listen(t)
			before := monotonicUSec(t)
			if err := m.notifier().Reloading(); err != nil {
				t.Fatal(err)
			}
			after := monotonicUSec(t)
			got, _ := m.receive()
			rest, ok := strings.CutPrefix(got, "RELOADING=1\nMONOTONIC_USEC=")
			usec, err := strconv.ParseInt(rest, 10, 64)
			if !ok || err != nil || usec < before || usec > after {
				t.Errorf("datagram %q, want RELOADING=1 and MONOTONIC_USEC between %d and %d", got, before, after)
			}
		})
	}
}

// TestUnset: outside systemd every call is a silent no-op, so the agent can
// call them unconditionally.
func TestUnset(t *testing.T) {
	for _, n := range []*sdnotify.Notifier{sdnotify.New(env(), os.Getpid()), nil, {}} {
		if n.Enabled() {
			t.Errorf("%+v enabled without NOTIFY_SOCKET", n)
		}
		for name, err := range map[string]error{
			"Ready": n.Ready("x"), "Reloading": n.Reloading(), "Stopping": n.Stopping(),
			"Status": n.Status("x"), "Watchdog": n.Watchdog(), "Send": n.Send("A=1"),
		} {
			if err != nil {
				t.Errorf("%s without NOTIFY_SOCKET: %v", name, err)
			}
		}
	}
}

func TestFromEnvironment(t *testing.T) {
	m := abstractSocket(t)
	t.Setenv(sdnotify.SocketVar, m.socket)
	if err := sdnotify.FromEnvironment().Ready("from env"); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.receive(); got != "READY=1\nSTATUS=from env" {
		t.Errorf("datagram %q", got)
	}
}

func TestSendErrors(t *testing.T) {
	closed := pathSocket(t)
	closed.conn.Close()
	cases := []struct {
		name, socket, want string
	}{
		{"relative path", "run/notify", "unsupported NOTIFY_SOCKET"},
		{"vsock", "vsock:2:1234", "unsupported NOTIFY_SOCKET"},
		{"lone @", "@", "unsupported NOTIFY_SOCKET"},
		{"no such socket", filepath.Join(t.TempDir(), "absent"), "no such file"},
		{"closed listener", closed.socket, "connection refused"},
		{"no such abstract name", "@bindwatch-sdnotify-test-nobody-listens", "connection refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := sdnotify.New(env(sdnotify.SocketVar, c.socket), os.Getpid()).Ready("")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Ready with NOTIFY_SOCKET=%q: %v, want an error containing %q", c.socket, err, c.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "sdnotify: ") {
				t.Errorf("error %q does not say where it comes from", err)
			}
		})
	}
	// A full receive queue must not block the agent for longer than the
	// send timeout (a stuck PID 1).
	t.Run("full queue", func(t *testing.T) {
		m := pathSocket(t)
		n := m.notifier()
		start := time.Now()
		var err error
		for i := 0; i < 10000 && err == nil; i++ {
			err = n.Watchdog()
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("filling the queue: %v, want a deadline error", err)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("blocked %v", d)
		}
	})
}
