package bpf

import (
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// listenerCapturer loads hook with listen and close records on, for this
// process only, and requires every timeline program to be attached.
func listenerCapturer(t *testing.T, hook Hook) *capturer {
	t.Helper()
	// An SCTP socket loads the sctp module, if the kernel has one, before
	// the probe looks for sctp_inet_listen.
	if fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP); err == nil {
		unix.Close(fd)
	}
	c := newCapturer(t, hook, Filter{PID: uint32(os.Getpid()), Errors: true, Listeners: true})
	blind := slices.DeleteFunc(c.probe.BlindSpots(), func(s string) bool { return s == blindSCTPListen && !sctpAvailable() })
	if len(blind) > 0 {
		t.Fatalf("hook %s cannot see: %v", c.probe.Hook(), blind)
	}
	return c
}

func sctpAvailable() bool {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

func sockCookie(t *testing.T, fd int) uint64 {
	t.Helper()
	v, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
	if err != nil {
		t.Fatalf("getsockopt(SO_COOKIE): %v", err)
	}
	return v
}

func listenFD(t *testing.T, fd, backlog int) {
	t.Helper()
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatalf("listen: %v", err)
	}
}

// kinds lists the kinds of evs in order.
func kindsOf(evs []Event) []Kind {
	out := make([]Kind, len(evs))
	for i := range evs {
		out[i] = evs[i].Kind
	}
	return out
}

// checkListen checks a listen record of fd against what the kernel says
// through ordinary syscalls.
func checkListen(t *testing.T, ev Event, fd int, s socketSpec, wantProto uint16, backlog uint32) {
	t.Helper()
	local := localAddr(t, fd)
	if ev.Kind != KindListen || ev.Ret != 0 {
		t.Fatalf("want a successful listen record, got kind %v ret %d", ev.Kind, ev.Ret)
	}
	if ev.Cookie == 0 || ev.Cookie != sockCookie(t, fd) {
		t.Errorf("cookie %d, SO_COOKIE says %d", ev.Cookie, sockCookie(t, fd))
	}
	if ev.Port == 0 || ev.Port != local.Port() {
		t.Errorf("port %d, getsockname says %d", ev.Port, local.Port())
	}
	if ev.EffectiveAddr() != local.Addr() {
		t.Errorf("addr %s, getsockname says %s", ev.EffectiveAddr(), local.Addr())
	}
	if ev.Protocol != wantProto || int(ev.Family) != s.family {
		t.Errorf("protocol %d family %d, want %d %d", ev.Protocol, ev.Family, wantProto, s.family)
	}
	if ev.Backlog != backlog {
		t.Errorf("backlog %d, want %d", ev.Backlog, backlog)
	}
	if ev.PID != uint32(os.Getpid()) || ev.UID != uint32(os.Getuid()) || ev.NetNS != nsInode(t, os.Getpid(), "net") {
		t.Errorf("task fields: pid %d uid %d netns %d", ev.PID, ev.UID, ev.NetNS)
	}
	if ev.ReqFamily != AFUnreadable || ev.RequestedAddr().IsValid() {
		t.Errorf("a listen has no requested address, got family %d", ev.ReqFamily)
	}
	if ev.CommString() != threadComm(t, int(ev.TID)) {
		t.Errorf("comm %q", ev.CommString())
	}
	opts, _ := kernelOpts(t, fd, s)
	if ev.Opts != opts {
		t.Errorf("opts %s, getsockopt says %s", ev.Opts, opts)
	}
}

// checkClose checks the record of a socket that stopped listening.
func checkClose(t *testing.T, ev Event, cookie uint64, port uint16, atLeast time.Duration) {
	t.Helper()
	if ev.Kind != KindClose || ev.Cookie != cookie || ev.Port != port && port != 0 {
		t.Fatalf("want a close of cookie %d port %d, got kind %v cookie %d port %d", cookie, port, ev.Kind, ev.Cookie, ev.Port)
	}
	if ev.ListenNS < uint64(atLeast) || ev.ListenNS > uint64(time.Minute) {
		t.Errorf("listened %v, want at least %v", time.Duration(ev.ListenNS), atLeast)
	}
}

func somaxconn(t *testing.T) uint32 {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		t.Fatal(err)
	}
	var n uint32
	for _, c := range b {
		if c >= '0' && c <= '9' {
			n = n*10 + uint32(c-'0')
		}
	}
	return n
}

func TestListeners(t *testing.T) {
	for _, hook := range testHooks(t) {
		t.Run(string(hook), func(t *testing.T) { testListeners(t, hook) })
	}
}

func testListeners(t *testing.T, hook Hook) {
	c := listenerCapturer(t, hook)
	t.Logf("hook in use: %s", c.probe.Hook())

	bindListenClose := func(t *testing.T, s socketSpec, addr string, opts []sockopt, wantProto uint16) {
		c.t = t
		fd := s.open(t)
		for _, o := range opts {
			o.apply(t, fd)
		}
		bind := c.one(func() {
			if err := bindAddr(fd, s.family, netip.AddrPortFrom(netip.MustParseAddr(addr), 0)); err != nil {
				t.Fatal(err)
			}
		})
		if bind.Kind != KindBind || bind.Cookie != sockCookie(t, fd) {
			t.Fatalf("bind record kind %v cookie %d, SO_COOKIE %d", bind.Kind, bind.Cookie, sockCookie(t, fd))
		}
		listen := c.one(func() { listenFD(t, fd, 7) })
		checkListen(t, listen, fd, s, wantProto, 7)
		cookie, port := listen.Cookie, listen.Port
		closed := c.one(func() { unix.Close(fd) })
		checkClose(t, closed, cookie, port, 0)
	}
	t.Run("tcp4 listen after bind", func(t *testing.T) { bindListenClose(t, tcp4, "127.0.0.1", nil, ProtoTCP) })
	t.Run("tcp6 dual-stack", func(t *testing.T) { bindListenClose(t, tcp6, "::", nil, ProtoTCP) })
	t.Run("tcp6 v6only", func(t *testing.T) { bindListenClose(t, tcp6, "::", []sockopt{ipv6V6Only}, ProtoTCP) })
	t.Run("mptcp4 reported once as MPTCP", func(t *testing.T) {
		if _, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP); err != nil {
			t.Skipf("MPTCP is not available in this kernel (socket: %v); not a bindwatch requirement", err)
		}
		bindListenClose(t, mptcp4, "127.0.0.1", nil, ProtoMPTCP)
	})
	t.Run("sctp4", func(t *testing.T) {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP)
		if err != nil {
			t.Skipf("SCTP is not available in this kernel (socket: %v); not a bindwatch requirement", err)
		}
		unix.Close(fd)
		bindListenClose(t, sctp4, "127.0.0.1", nil, ProtoSCTP)
	})

	t.Run("listen without bind gets the port the kernel chose", func(t *testing.T) {
		c.t = t
		fd := tcp4.open(t)
		ev := c.one(func() { listenFD(t, fd, 1<<20) })
		// The kernel caps the backlog at net.core.somaxconn.
		checkListen(t, ev, fd, tcp4, ProtoTCP, somaxconn(t))
		if ev.EffectiveAddr() != netip.IPv4Unspecified() {
			t.Errorf("addr %s, want 0.0.0.0", ev.EffectiveAddr())
		}
	})

	t.Run("EADDRINUSE: the undo and the failure", func(t *testing.T) {
		c.t = t
		port := freePort(t, tcp4)
		a, b := tcp4.open(t), tcp4.open(t)
		for _, fd := range []int{a, b} {
			soReuseAddr.apply(t, fd)
			if err := bindAddr(fd, unix.AF_INET, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)); err != nil {
				t.Fatal(err)
			}
		}
		listenFD(t, a, 1)
		evs := c.during(func() {
			if err := unix.Listen(b, 1); err != unix.EADDRINUSE {
				t.Fatalf("second listen: %v, want EADDRINUSE", err)
			}
		})
		if len(evs) != 2 || evs[0].Kind != KindClose || evs[1].Kind != KindListen {
			t.Fatalf("want the undo (close) then the failed listen, got %v", kindsOf(evs))
		}
		cookie := sockCookie(t, b)
		checkClose(t, evs[0], cookie, 0, 0)
		if evs[1].Cookie != cookie || evs[1].Errno() != uint32(unix.EADDRINUSE) {
			t.Errorf("failed listen: cookie %d errno %d, want %d EADDRINUSE", evs[1].Cookie, evs[1].Errno(), cookie)
		}
	})

	t.Run("SO_REUSEPORT group of two", func(t *testing.T) {
		c.t = t
		port := freePort(t, tcp4)
		var cookies []uint64
		for range 2 {
			fd := tcp4.open(t)
			soReusePort.apply(t, fd)
			if err := bindAddr(fd, unix.AF_INET, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)); err != nil {
				t.Fatal(err)
			}
			ev := c.one(func() { listenFD(t, fd, 16) })
			checkListen(t, ev, fd, tcp4, ProtoTCP, 16)
			if !ev.Opts.Has(OptReusePort) {
				t.Errorf("opts %s: SO_REUSEPORT not seen", ev.Opts)
			}
			cookies = append(cookies, ev.Cookie)
		}
		if cookies[0] == cookies[1] {
			t.Fatalf("two members share cookie %d", cookies[0])
		}
	})

	t.Run("listener in its own network namespace", func(t *testing.T) {
		c.t = t
		var ev Event
		var netns uint32
		var port uint16
		body := func() {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				t.Errorf("unshare(CLONE_NEWNET): %v", err)
				return
			}
			var st unix.Stat_t
			if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
				t.Errorf("stat: %v", err)
				return
			}
			netns = uint32(st.Ino)
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			if err != nil {
				t.Errorf("socket: %v", err)
				return
			}
			defer unix.Close(fd)
			evs := c.during(func() {
				if err := unix.Listen(fd, 3); err != nil {
					t.Errorf("listen: %v", err)
				}
			})
			if len(evs) == 1 {
				ev = evs[0]
			}
			sa, _ := unix.Getsockname(fd)
			port = uint16(sa.(*unix.SockaddrInet4).Port)
		}
		testenv.OnDisposableThread(body)
		if ev.Kind != KindListen || ev.NetNS != netns || ev.NetNS == nsInode(t, os.Getpid(), "net") || ev.Port != port {
			t.Fatalf("listen in netns %d port %d: got %+v", netns, port, ev)
		}
	})

	t.Run("shutdown(SHUT_RD) stops listening", func(t *testing.T) {
		c.t = t
		fd := tcp4.open(t)
		listenFD(t, fd, 4)
		cookie, port := sockCookie(t, fd), localAddr(t, fd).Port()
		ev := c.one(func() {
			if err := unix.Shutdown(fd, unix.SHUT_RD); err != nil {
				t.Fatal(err)
			}
		})
		checkClose(t, ev, cookie, port, 0)
	})

	t.Run("a listener that lives one millisecond", func(t *testing.T) {
		c.t = t
		var cookie uint64
		evs := c.during(func() {
			fd := tcp4.open(t)
			listenFD(t, fd, 4)
			cookie = sockCookie(t, fd)
			time.Sleep(time.Millisecond)
			unix.Close(fd)
		})
		if len(evs) != 2 || evs[0].Kind != KindListen || evs[1].Kind != KindClose {
			t.Fatalf("want listen then close, got %v", kindsOf(evs))
		}
		if evs[0].Cookie != cookie {
			t.Errorf("listen cookie %d, SO_COOKIE %d", evs[0].Cookie, cookie)
		}
		checkClose(t, evs[1], cookie, evs[0].Port, time.Millisecond)
	})

	t.Run("UDP server: bind to a port, then release", func(t *testing.T) {
		c.t = t
		fd := udp4.open(t)
		port := freePort(t, udp4)
		bind := c.one(func() {
			if err := bindAddr(fd, unix.AF_INET, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)); err != nil {
				t.Fatal(err)
			}
		})
		cookie := sockCookie(t, fd)
		if bind.Cookie != cookie {
			t.Fatalf("bind cookie %d, SO_COOKIE %d", bind.Cookie, cookie)
		}
		ev := c.one(func() { unix.Close(fd) })
		checkClose(t, ev, cookie, port, 0)
		if ev.Protocol != ProtoUDP || ev.EffectiveAddr() != netip.MustParseAddr("127.0.0.1") || ev.PID != uint32(os.Getpid()) {
			t.Errorf("UDP release: %+v", ev)
		}
	})

	t.Run("clients are not listeners", func(t *testing.T) {
		c.t = t
		srv := udp4.open(t)
		if err := bindAddr(srv, unix.AF_INET, netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
			t.Fatal(err)
		}
		dst := &unix.SockaddrInet4{Port: int(localAddr(t, srv).Port()), Addr: [4]byte{127, 0, 0, 1}}
		lsn := tcp4.open(t)
		if err := bindAddr(lsn, unix.AF_INET, netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
			t.Fatal(err)
		}
		listenFD(t, lsn, 4)
		tcpDst := &unix.SockaddrInet4{Port: int(localAddr(t, lsn).Port()), Addr: [4]byte{127, 0, 0, 1}}
		evs := c.during(func() {
			// A sendto client: autobound at its first send.
			s := udp4.open(t)
			if err := unix.Sendto(s, []byte("x"), 0, dst); err != nil {
				t.Fatal(err)
			}
			unix.Close(s)
			// A connected UDP client.
			u := udp4.open(t)
			if err := unix.Connect(u, dst); err != nil {
				t.Fatal(err)
			}
			unix.Close(u)
			// A TCP client with IP_BIND_ADDRESS_NO_PORT: one bind record.
			cl := tcp4.open(t)
			ipBindNoPort.apply(t, cl)
			if err := bindAddr(cl, unix.AF_INET, netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
				t.Fatal(err)
			}
			if err := unix.Connect(cl, tcpDst); err != nil {
				t.Fatal(err)
			}
			unix.Close(cl)
		})
		if len(evs) != 1 || evs[0].Kind != KindBind || !evs[0].Opts.Has(OptBindAddressNoPort) {
			t.Fatalf("want only the client's bind record, got %v: %+v", kindsOf(evs), evs)
		}
	})
}
