package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// TestIoUringBindAndListen: a bind and a listen made through io_uring never
// pass bind(2) or listen(2). Every hook must still report them (the
// syscall hook from inside the kernel's bind and listen paths), or say at
// start that it cannot (its blind spots).
func TestIoUringBindAndListen(t *testing.T) {
	for _, hook := range testHooks(t) {
		t.Run(string(hook), func(t *testing.T) {
			c := listenerCapturer(t, hook)
			ring, err := testenv.NewIoRing()
			if errors.Is(err, testenv.ErrIoUringUnsupported) {
				t.Skipf("io_uring is not available here (%v); the hole it opens is absent too", err)
			} else if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(ring.Close)
			fd := tcp4.open(t)
			port := freePort(t, tcp4)
			bind := c.during(func() { err = ring.Bind(fd, [4]byte{127, 0, 0, 1}, port) })
			if errors.Is(err, testenv.ErrIoUringUnsupported) {
				t.Skipf("this kernel's io_uring has no IORING_OP_BIND (%v): the hole is absent", err)
			}
			if err != nil {
				t.Fatalf("io_uring bind: %v", err)
			}
			if got := localAddr(t, fd); got != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port) {
				t.Fatalf("the socket is bound to %s, want 127.0.0.1:%d", got, port)
			}
			cookie := sockCookie(t, fd)
			if err := oneKind(bind, KindBind, cookie, port); err != nil {
				t.Errorf("io_uring bind: %v", err)
			}
			listen := c.during(func() { err = ring.Listen(fd, 8) })
			if err != nil {
				t.Fatalf("io_uring listen: %v", err)
			}
			if err := oneKind(listen, KindListen, cookie, port); err != nil {
				t.Errorf("io_uring listen: %v", err)
			}
		})
	}
}

// oneKind checks that evs is one record of kind for the socket.
func oneKind(evs []Event, kind Kind, cookie uint64, port uint16) error {
	if len(evs) != 1 {
		return fmt.Errorf("%d records, want one %v record: %+v", len(evs), kind, evs)
	}
	ev := evs[0]
	if ev.Kind != kind || ev.Cookie != cookie || ev.Port != port || ev.Family != AFInet || ev.Protocol != ProtoTCP {
		return fmt.Errorf("got %v cookie %d port %d family %d protocol %d, want %v cookie %d port %d",
			ev.Kind, ev.Cookie, ev.Port, ev.Family, ev.Protocol, kind, cookie, port)
	}
	return nil
}
