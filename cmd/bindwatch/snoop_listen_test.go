package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSnoopListen runs `bindwatch snoop --listen` while this test opens and
// closes a real listener: a LISTEN and a CLOSE row, the port getsockname
// gives, the cookie SO_COOKIE gives; and in JSON lines, the same records.
func TestSnoopListen(t *testing.T) {
	// Go listens with MPTCP where the kernel has it: ask the socket.
	protoOf := func(l *net.TCPListener) string {
		raw, _ := l.SyscallConn()
		var p int
		raw.Control(func(fd uintptr) { p, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL) })
		if p == unix.IPPROTO_MPTCP {
			return "MPTCP"
		}
		return "TCP"
	}
	cookieOf := func(l *net.TCPListener) uint64 {
		raw, err := l.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var cookie uint64
		var serr error
		raw.Control(func(fd uintptr) { cookie, serr = getsockoptUint64(int(fd)) })
		if serr != nil {
			t.Fatal(serr)
		}
		return cookie
	}
	pid := fmt.Sprint(os.Getpid())
	t.Run("table", func(t *testing.T) {
		p := startSnoop(t, "--listen", "-p", pid)
		l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port, cookie, proto := l.Addr().(*net.TCPAddr).Port, cookieOf(l), protoOf(l)
		l.Close()
		out := p.stop(t, syscall.SIGINT)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(strings.TrimSpace(lines[0]), "PID COMM") {
			t.Fatalf("want a header, a LISTEN and a CLOSE row, got:\n%s", out)
		}
		for i, want := range []string{"LISTEN", "CLOSE"} {
			f := strings.Fields(lines[i+1])
			if len(f) != 10 || f[0] != pid || f[2] != want || f[3] != proto || f[4] != "127.0.0.1" ||
				f[5] != fmt.Sprint(port) || f[9] != fmt.Sprint(cookie) {
				t.Errorf("row %q: want %s of 127.0.0.1:%d cookie %d", lines[i+1], want, port, cookie)
			}
		}
	})
	t.Run("json", func(t *testing.T) {
		p := startSnoop(t, "--listen", "-j", "-p", pid)
		l, err := net.ListenTCP("tcp6", &net.TCPAddr{IP: net.IPv6loopback})
		if err != nil {
			t.Fatal(err)
		}
		port, cookie := l.Addr().(*net.TCPAddr).Port, cookieOf(l)
		l.Close()
		out := p.stop(t, syscall.SIGINT)
		var kinds []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var rec struct {
				Kind             string
				Cookie           uint64
				Port             int
				Addr             string
				Backlog          int
				ListenDurationNS int64 `json:"listen_duration_ns"`
			}
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("%v: %s", err, line)
			}
			if rec.Cookie != cookie || rec.Port != port || rec.Addr != "::1" {
				t.Errorf("record %s: want cookie %d port %d", line, cookie, port)
			}
			if rec.Kind == "listen" && rec.Backlog == 0 || rec.Kind == "close" && rec.ListenDurationNS <= 0 {
				t.Errorf("record %s: no backlog or duration", line)
			}
			kinds = append(kinds, rec.Kind)
		}
		if strings.Join(kinds, ",") != "listen,close" {
			t.Fatalf("kinds %v, want listen then close:\n%s", kinds, out)
		}
	})
}

func getsockoptUint64(fd int) (uint64, error) {
	return unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
}
