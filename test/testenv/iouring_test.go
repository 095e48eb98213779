package testenv

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// TestIoUringListen: the socket IoUringListen returns is bound to
// 127.0.0.1 on the port it reports, and listening.
func TestIoUringListen(t *testing.T) {
	l, err := IoUringListen()
	if errors.Is(err, ErrIoUringUnsupported) {
		t.Skipf("SKIP: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sa, err := unix.Getsockname(l.FD)
	if err != nil {
		t.Fatal(err)
	}
	in := sa.(*unix.SockaddrInet4)
	if in.Addr != [4]byte{127, 0, 0, 1} || in.Port != int(l.Port) || l.Port == 0 {
		t.Errorf("bound to %v:%d, reported port %d", in.Addr, in.Port, l.Port)
	}
	if on, err := unix.GetsockoptInt(l.FD, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || on != 1 {
		t.Errorf("SO_ACCEPTCONN %d (%v): not listening", on, err)
	}
}
