package bpf

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"testing"

	"github.com/bindwatch/bindwatch/test/testenv"
	"golang.org/x/sys/unix"
)

// bindCase is one bind() the capture tests perform and check field by field.
type bindCase struct {
	name string
	sock socketSpec
	opts []sockopt
	// bindFamily overrides the sockaddr family (AF_UNSPEC); 0 means sock.family.
	bindFamily int
	// addrLen passes a sockaddr_in this many bytes long; 0 means its size.
	addrLen int
	addr    string
	// port picks the requested port; nil means 0 (ephemeral).
	port func(t *testing.T, s socketSpec) uint16
	// before runs on the socket before bind (e.g. a first bind for EINVAL).
	before func(t *testing.T, fd int)
	// otherThread binds from a thread other than the main one.
	otherThread bool
	wantErr     syscall.Errno
	wantProto   uint16
}

// portInUse binds another socket of the same kind to a free port and returns
// it, so the case's own bind collides.
func portInUse(t *testing.T, s socketSpec) uint16 {
	fd := s.open(t)
	any := netip.IPv4Unspecified()
	if s.family == unix.AF_INET6 {
		any = netip.IPv6Unspecified()
	}
	if err := bindAddr(fd, s.family, netip.AddrPortFrom(any, 0)); err != nil {
		t.Fatalf("occupying a port: %v", err)
	}
	return localAddr(t, fd).Port()
}

func freshPort(t *testing.T, s socketSpec) uint16 { return freePort(t, s) }

var bindCases = []bindCase{
	{name: "tcp4 ephemeral", sock: tcp4, addr: "127.0.0.1", wantProto: ProtoTCP},
	{name: "udp4 any ephemeral", sock: udp4, addr: "0.0.0.0", wantProto: ProtoUDP},
	{name: "tcp6 loopback ephemeral", sock: tcp6, addr: "::1", wantProto: ProtoTCP},
	{name: "udp6 any v6only", sock: udp6, opts: []sockopt{ipv6V6Only}, addr: "::", wantProto: ProtoUDP},
	{name: "tcp6 v4-mapped", sock: tcp6, addr: "::ffff:127.0.0.1", wantProto: ProtoTCP},
	{name: "tcp4 fixed port reuseaddr", sock: tcp4, opts: []sockopt{soReuseAddr}, addr: "127.0.0.1", port: freshPort, wantProto: ProtoTCP},
	{name: "udp4 reuseport", sock: udp4, opts: []sockopt{soReusePort}, addr: "127.0.0.1", port: freshPort, wantProto: ProtoUDP},
	{name: "tcp4 freebind non-local", sock: tcp4, opts: []sockopt{ipFreebind}, addr: "192.0.2.1", wantProto: ProtoTCP},
	{name: "udp4 transparent non-local", sock: udp4, opts: []sockopt{ipTransparent}, addr: "192.0.2.2", wantProto: ProtoUDP},
	{name: "tcp4 bind address no port", sock: tcp4, opts: []sockopt{ipBindNoPort}, addr: "127.0.0.1", wantProto: ProtoTCP},
	{name: "udp4 bindtodevice lo", sock: udp4, opts: []sockopt{soBindToLo}, addr: "127.0.0.1", wantProto: ProtoUDP},
	{name: "tcp6 freebind transparent", sock: tcp6, opts: []sockopt{ipv6Freebind, ipv6Transparent}, addr: "2001:db8::1", wantProto: ProtoTCP},
	{name: "tcp4 every option", sock: tcp4, opts: []sockopt{soReuseAddr, soReusePort, ipFreebind, ipTransparent, ipBindNoPort, soBindToLo}, addr: "192.0.2.3", wantProto: ProtoTCP},
	{name: "udp6 reuseaddr reuseport v6only bindtodevice", sock: udp6, opts: []sockopt{soReuseAddr, soReusePort, ipv6V6Only, soBindToLo}, addr: "::1", port: freshPort, wantProto: ProtoUDP},
	{name: "tcp4 unspec family any", sock: tcp4, bindFamily: unix.AF_UNSPEC, addr: "0.0.0.0", wantProto: ProtoTCP},
	{name: "tcp4 EADDRINUSE", sock: tcp4, addr: "0.0.0.0", port: portInUse, wantErr: unix.EADDRINUSE, wantProto: ProtoTCP},
	{name: "udp6 EADDRINUSE", sock: udp6, addr: "::", port: portInUse, wantErr: unix.EADDRINUSE, wantProto: ProtoUDP},
	{name: "tcp4 EADDRNOTAVAIL", sock: tcp4, addr: "192.0.2.1", port: freshPort, wantErr: unix.EADDRNOTAVAIL, wantProto: ProtoTCP},
	{name: "udp6 EADDRNOTAVAIL", sock: udp6, addr: "2001:db8::2", port: freshPort, wantErr: unix.EADDRNOTAVAIL, wantProto: ProtoUDP},
	{name: "tcp4 EINVAL short sockaddr", sock: tcp4, addr: "127.0.0.1", port: freshPort, addrLen: 8, wantErr: unix.EINVAL, wantProto: ProtoTCP},
	{name: "tcp4 EINVAL already bound", sock: tcp4, addr: "127.0.0.1", port: freshPort, wantErr: unix.EINVAL, wantProto: ProtoTCP,
		before: func(t *testing.T, fd int) {
			if err := bindAddr(fd, unix.AF_INET, netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
				t.Fatal(err)
			}
		}},
	{name: "mptcp4 ephemeral", sock: mptcp4, addr: "127.0.0.1", wantProto: ProtoMPTCP},
	{name: "mptcp6 fixed port reuseaddr", sock: mptcp6, opts: []sockopt{soReuseAddr}, addr: "::1", port: freshPort, wantProto: ProtoMPTCP},
	{name: "mptcp4 EADDRINUSE", sock: mptcp4, addr: "0.0.0.0", port: portInUse, wantErr: unix.EADDRINUSE, wantProto: ProtoMPTCP},
	{name: "raw icmp", sock: raw4, addr: "127.0.0.1", wantProto: unix.IPPROTO_ICMP},
	{name: "tcp4 from a second thread", sock: tcp4, addr: "127.0.0.1", otherThread: true, wantProto: ProtoTCP},
}

// observed is what a case saw, in a form the hooks must agree on: fields that
// differ from run to run (time, seq, tid, fresh ports) are left out.
type observed struct {
	PID, PPID, UID, GID uint32
	CgroupID            uint64
	MntNS, NetNS        uint32
	Ret                 int32
	BoundIf             uint32
	Protocol, Family    uint16
	ReqFamily           uint16
	Opts                Opts
	Reuse               uint8
	Addr, ReqAddr       netip.Addr
	Comm                string
	// Ports differ between runs; that each matched the socket must not.
	PortMatchesSocket, ReqPortMatches bool
}

func TestCapture(t *testing.T) {
	hooks := testHooks(t)
	seen := map[Hook]map[string]observed{}
	for _, hook := range hooks {
		t.Run(string(hook), func(t *testing.T) {
			c := newCapturer(t, hook, Filter{PID: uint32(os.Getpid()), Errors: true})
			t.Logf("hook in use: %s (mptcp_bind hooked: %v)", c.probe.Hook(), c.probe.MPTCPHooked())
			seen[hook] = map[string]observed{}
			for _, bc := range bindCases {
				t.Run(bc.name, func(t *testing.T) {
					c.t = t
					seen[hook][bc.name] = runBindCase(t, c, bc)
				})
			}
			t.Run("unix socket is not reported", func(t *testing.T) {
				c.t = t
				c.none(func() {
					fd := socketSpec{unix.AF_UNIX, unix.SOCK_STREAM, 0}.open(t)
					if err := unix.Bind(fd, &unix.SockaddrUnix{Name: "@bindwatch-test"}); err != nil {
						t.Fatal(err)
					}
				})
			})
			t.Run("bind on a file is not reported", func(t *testing.T) {
				c.t = t
				f, err := os.Open("/proc/self/stat")
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				c.none(func() {
					err := unix.Bind(int(f.Fd()), &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
					if err != unix.ENOTSOCK {
						t.Fatalf("bind on a file: %v, want ENOTSOCK", err)
					}
				})
			})
			t.Run("unreadable sockaddr", func(t *testing.T) {
				c.t = t
				fd := tcp4.open(t)
				// A pointer to unmapped memory: bind fails with EFAULT
				// while copying the sockaddr, before inet_bind runs. Only
				// the syscall tracepoint sees such a call.
				evs := c.during(func() {
					_, _, errno := unix.Syscall(unix.SYS_BIND, uintptr(fd), 8, 16)
					if errno != unix.EFAULT {
						t.Fatalf("bind with a bad pointer: %v, want EFAULT", errno)
					}
				})
				if c.probe.Hook() != HookTracepoint {
					if len(evs) != 0 {
						t.Fatalf("hook %s saw a bind that never reached inet_bind: %+v", c.probe.Hook(), evs)
					}
					return
				}
				if len(evs) != 1 || evs[0].ReqFamily != AFUnreadable || evs[0].RequestedAddr().IsValid() || evs[0].Errno() != uint32(unix.EFAULT) {
					t.Fatalf("want one EFAULT event with an unreadable request, got %+v", evs)
				}
			})
			t.Run("sctp4", func(t *testing.T) {
				c.t = t
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP)
				if err != nil {
					t.Skipf("SCTP is not available in this kernel (socket: %v); not a bindwatch requirement", err)
				}
				unix.Close(fd)
				runBindCase(t, c, bindCase{name: "sctp4", sock: sctp4, addr: "127.0.0.1", wantProto: ProtoSCTP})
			})
		})
	}
	if len(seen) < 2 {
		return
	}
	t.Run("hooks agree", func(t *testing.T) {
		first := hooks[0]
		for _, h := range hooks[1:] {
			for name, want := range seen[first] {
				if got, ok := seen[h][name]; !ok {
					t.Errorf("%s: hook %s has no result", name, h)
				} else if got != want {
					t.Errorf("%s: hook %s saw\n  %+v\nhook %s saw\n  %+v", name, first, want, h, got)
				}
			}
		}
	})
}

// runBindCase performs bc's bind under c and checks every field of the event
// against what the kernel says through ordinary syscalls.
func runBindCase(t *testing.T, c *capturer, bc bindCase) observed {
	fd := bc.sock.open(t)
	for _, o := range bc.opts {
		o.apply(t, fd)
	}
	if bc.before != nil {
		bc.before(t, fd)
	}
	var port uint16
	if bc.port != nil {
		port = bc.port(t, bc.sock)
	}
	family := bc.sock.family
	if bc.bindFamily != 0 {
		family = bc.bindFamily
	}
	requested := netip.AddrPortFrom(netip.MustParseAddr(bc.addr), port)

	var (
		bindErr      error
		tid          int
		bootBefore   uint64
		bootAfter    uint64
		threadCommOf string
	)
	bind := func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid = unix.Gettid()
		threadCommOf = threadComm(t, tid)
		bootBefore = bootNow()
		if bc.addrLen != 0 {
			bindErr = bindRaw4(fd, requested, bc.addrLen)
		} else {
			bindErr = bindAddr(fd, family, requested)
		}
		bootAfter = bootNow()
	}
	ev := c.one(func() {
		if bc.otherThread {
			testenv.OnDisposableThread(bind) // tid differs from pid
		} else {
			bind()
		}
	})
	if got := errnoOf(bindErr); got != -int32(bc.wantErr) {
		t.Fatalf("bind(%v) = %v, the case wants errno %d", requested, bindErr, bc.wantErr)
	}
	effective := localAddr(t, fd)

	// The kernel's own view after the call, not what the case set: bind
	// itself sets IPV6_V6ONLY for a specific IPv6 address, and raw sockets
	// are born with SO_REUSEADDR.
	wantOpts, wantReuse := kernelOpts(t, fd, bc.sock)
	var wantBoundIf uint32
	for _, o := range bc.opts {
		if o.wantBoundDev {
			lo, err := net.InterfaceByName("lo")
			if err != nil {
				t.Fatal(err)
			}
			wantBoundIf = uint32(lo.Index)
		}
	}

	check := func(field string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", field, got, want)
		}
	}
	check("PID", ev.PID, uint32(os.Getpid()))
	check("TID", ev.TID, uint32(tid))
	if bc.otherThread && ev.TID == ev.PID {
		t.Errorf("TID = PID = %d for a bind on a second thread", ev.TID)
	}
	check("PPID", ev.PPID, uint32(os.Getppid()))
	check("UID", ev.UID, uint32(os.Getuid()))
	check("GID", ev.GID, uint32(os.Getgid()))
	check("Comm", ev.CommString(), threadCommOf)
	check("CgroupID", ev.CgroupID, cgroupID(t, selfCgroupDir(t)))
	check("MntNS", ev.MntNS, nsInode(t, os.Getpid(), "mnt"))
	check("NetNS", ev.NetNS, nsInode(t, os.Getpid(), "net"))
	check("Ret", ev.Ret, -int32(bc.wantErr))
	check("Errno", ev.Errno(), uint32(bc.wantErr))
	check("Protocol", ev.Protocol, bc.wantProto)
	check("Family", ev.Family, uint16(bc.sock.family))
	check("effective address", ev.EffectiveAddr(), effective.Addr())
	check("effective port", ev.Port, effective.Port())
	check("ReqFamily", ev.ReqFamily, uint16(family))
	check("requested address", ev.RequestedAddr(), requested.Addr())
	check("requested port", ev.ReqPort, requested.Port())
	check("Opts (bits v6only,r,R,N,T,F)", fmt.Sprintf("%06b", uint8(ev.Opts)), fmt.Sprintf("%06b", uint8(wantOpts)))
	check("Reuse", ev.Reuse, wantReuse)
	check("BoundIf", ev.BoundIf, wantBoundIf)
	if ev.BootNS < bootBefore || ev.BootNS > bootAfter {
		t.Errorf("BootNS %d outside the bind's window [%d, %d]", ev.BootNS, bootBefore, bootAfter)
	}
	if bc.wantErr == 0 && port == 0 && !wantOpts.Has(OptBindAddressNoPort) && bc.sock.sotype != unix.SOCK_RAW && ev.Port == 0 {
		t.Errorf("a successful bind to port 0 reported port 0, want the ephemeral port the kernel chose")
	}
	return observed{
		PID: ev.PID, PPID: ev.PPID, UID: ev.UID, GID: ev.GID, CgroupID: ev.CgroupID,
		MntNS: ev.MntNS, NetNS: ev.NetNS, Ret: ev.Ret, BoundIf: ev.BoundIf,
		Protocol: ev.Protocol, Family: ev.Family, ReqFamily: ev.ReqFamily, Opts: ev.Opts, Reuse: ev.Reuse,
		Addr: ev.EffectiveAddr(), ReqAddr: ev.RequestedAddr(), Comm: ev.CommString(),
		PortMatchesSocket: ev.Port == effective.Port(),
		ReqPortMatches:    ev.ReqPort == requested.Port(),
	}
}

// kernelOpts reads the socket's bind-relevant options back with getsockopt.
func kernelOpts(t *testing.T, fd int, s socketSpec) (Opts, uint8) {
	t.Helper()
	get := func(level, opt int) bool {
		v, err := unix.GetsockoptInt(fd, level, opt)
		if err == unix.EOPNOTSUPP && s.proto == unix.IPPROTO_MPTCP {
			return false // 6.1's MPTCP answers few options; what it cannot answer it cannot set
		}
		if err != nil {
			t.Fatalf("getsockopt(%d, %d): %v", level, opt, err)
		}
		return v != 0
	}
	var o Opts
	var reuse uint8
	if get(unix.SOL_SOCKET, unix.SO_REUSEADDR) {
		o |= OptReuseAddr
		reuse = 1
	}
	if get(unix.SOL_SOCKET, unix.SO_REUSEPORT) {
		o |= OptReusePort
	}
	ipLevel, freebind, transparent := unix.IPPROTO_IP, unix.IP_FREEBIND, unix.IP_TRANSPARENT
	if s.family == unix.AF_INET6 {
		ipLevel, freebind, transparent = unix.IPPROTO_IPV6, unix.IPV6_FREEBIND, unix.IPV6_TRANSPARENT
		if get(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY) {
			o |= OptV6Only
		}
	}
	if get(ipLevel, freebind) {
		o |= OptFreebind
	}
	if get(ipLevel, transparent) {
		o |= OptTransparent
	}
	if get(unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT) {
		o |= OptBindAddressNoPort
	}
	return o, reuse
}
