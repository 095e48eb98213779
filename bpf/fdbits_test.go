package bpf

import (
	"net/netip"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel takes bind's and listen's fd as an int: the upper 32 bits of
// the register are ignored. A program that looked the fd up with the whole
// register found no file and reported nothing, so a caller could bind or
// listen unseen, with no gap in the sequence numbers, by setting them.
var highFDBits = []struct {
	name string
	bits uintptr
}{
	{"bit 32", 1 << 32},
	{"all upper bits", 0xffffffff << 32},
}

func TestFDHighBits(t *testing.T) {
	for _, hook := range testHooks(t) {
		t.Run(string(hook), func(t *testing.T) { testFDHighBits(t, hook) })
	}
}

func testFDHighBits(t *testing.T, hook Hook) {
	c := listenerCapturer(t, hook)
	t.Logf("hook in use: %s", c.probe.Hook())
	drops := func() Drops {
		d, err := c.probe.Drops()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	before := drops()

	for _, hb := range highFDBits {
		t.Run(hb.name, func(t *testing.T) {
			c.t = t
			fd := tcp4.open(t)
			var sa unix.RawSockaddrInet4
			sa.Family = unix.AF_INET
			sa.Addr = netip.MustParseAddr("127.0.0.1").As4()
			bind := c.one(func() {
				_, _, errno := unix.Syscall(unix.SYS_BIND, uintptr(fd)|hb.bits, uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
				if errno != 0 {
					t.Fatalf("bind(fd %#x): %v", uintptr(fd)|hb.bits, errno)
				}
			})
			// The kernel bound fd itself: the call was not refused as EBADF.
			local := localAddr(t, fd)
			if local.Port() == 0 {
				t.Fatalf("getsockname says fd %d is not bound after the call", fd)
			}
			if bind.Kind != KindBind || bind.Ret != 0 {
				t.Fatalf("want a successful bind record, got kind %v ret %d", bind.Kind, bind.Ret)
			}
			if bind.Cookie != sockCookie(t, fd) {
				t.Errorf("cookie %d, SO_COOKIE says %d", bind.Cookie, sockCookie(t, fd))
			}
			if bind.EffectiveAddr() != local.Addr() || bind.Port != local.Port() {
				t.Errorf("effective %s:%d, getsockname says %s", bind.EffectiveAddr(), bind.Port, local)
			}
			if bind.ReqFamily != unix.AF_INET || bind.RequestedAddr() != local.Addr() || bind.ReqPort != 0 {
				t.Errorf("requested family %d %s:%d, want AF_INET 127.0.0.1:0", bind.ReqFamily, bind.RequestedAddr(), bind.ReqPort)
			}
			if bind.Protocol != ProtoTCP || bind.Family != unix.AF_INET {
				t.Errorf("protocol %d family %d", bind.Protocol, bind.Family)
			}
			if bind.PID != uint32(os.Getpid()) || bind.UID != uint32(os.Getuid()) {
				t.Errorf("pid %d uid %d", bind.PID, bind.UID)
			}

			listen := c.one(func() {
				_, _, errno := unix.Syscall(unix.SYS_LISTEN, uintptr(fd)|hb.bits, 5, 0)
				if errno != 0 {
					t.Fatalf("listen(fd %#x): %v", uintptr(fd)|hb.bits, errno)
				}
			})
			// The kernel made fd itself listen.
			if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v != 1 {
				t.Fatalf("SO_ACCEPTCONN %d (%v) after the call, want 1", v, err)
			}
			checkListen(t, listen, fd, tcp4, ProtoTCP, 5)
			if listen.Cookie != bind.Cookie {
				t.Errorf("listen cookie %d, bind cookie %d", listen.Cookie, bind.Cookie)
			}
		})
	}
	if after := drops(); after.NoSocket != before.NoSocket {
		t.Errorf("no_socket drops went from %d to %d: the program lost calls whose socket the kernel found", before.NoSocket, after.NoSocket)
	}
}
