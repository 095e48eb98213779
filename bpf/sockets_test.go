package bpf

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// socketSpec describes a socket the way a test case wants it made.
type socketSpec struct {
	family int // unix.AF_INET or unix.AF_INET6
	sotype int // unix.SOCK_STREAM, unix.SOCK_DGRAM, unix.SOCK_RAW
	proto  int // 0, unix.IPPROTO_MPTCP, unix.IPPROTO_SCTP, unix.IPPROTO_ICMP
}

var (
	tcp4   = socketSpec{unix.AF_INET, unix.SOCK_STREAM, 0}
	udp4   = socketSpec{unix.AF_INET, unix.SOCK_DGRAM, 0}
	tcp6   = socketSpec{unix.AF_INET6, unix.SOCK_STREAM, 0}
	udp6   = socketSpec{unix.AF_INET6, unix.SOCK_DGRAM, 0}
	mptcp4 = socketSpec{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP}
	mptcp6 = socketSpec{unix.AF_INET6, unix.SOCK_STREAM, unix.IPPROTO_MPTCP}
	sctp4  = socketSpec{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP}
	raw4   = socketSpec{unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP}
)

// open makes the socket, closed at the end of the test.
func (s socketSpec) open(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(s.family, s.sotype|unix.SOCK_CLOEXEC, s.proto)
	if err != nil {
		t.Fatalf("socket(%d, %d, %d): %v", s.family, s.sotype, s.proto, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// sockopt is one setsockopt call.
type sockopt struct {
	name         string
	level, opt   int
	value        int
	device       string // SO_BINDTODEVICE takes a string
	wantOpt      Opts
	wantBoundDev bool
}

var (
	soReuseAddr     = sockopt{name: "SO_REUSEADDR", level: unix.SOL_SOCKET, opt: unix.SO_REUSEADDR, value: 1, wantOpt: OptReuseAddr}
	soReusePort     = sockopt{name: "SO_REUSEPORT", level: unix.SOL_SOCKET, opt: unix.SO_REUSEPORT, value: 1, wantOpt: OptReusePort}
	ipFreebind      = sockopt{name: "IP_FREEBIND", level: unix.IPPROTO_IP, opt: unix.IP_FREEBIND, value: 1, wantOpt: OptFreebind}
	ipTransparent   = sockopt{name: "IP_TRANSPARENT", level: unix.IPPROTO_IP, opt: unix.IP_TRANSPARENT, value: 1, wantOpt: OptTransparent}
	ipBindNoPort    = sockopt{name: "IP_BIND_ADDRESS_NO_PORT", level: unix.IPPROTO_IP, opt: unix.IP_BIND_ADDRESS_NO_PORT, value: 1, wantOpt: OptBindAddressNoPort}
	ipv6V6Only      = sockopt{name: "IPV6_V6ONLY", level: unix.IPPROTO_IPV6, opt: unix.IPV6_V6ONLY, value: 1, wantOpt: OptV6Only}
	ipv6Freebind    = sockopt{name: "IPV6_FREEBIND", level: unix.IPPROTO_IPV6, opt: unix.IPV6_FREEBIND, value: 1, wantOpt: OptFreebind}
	ipv6Transparent = sockopt{name: "IPV6_TRANSPARENT", level: unix.IPPROTO_IPV6, opt: unix.IPV6_TRANSPARENT, value: 1, wantOpt: OptTransparent}
	soBindToLo      = sockopt{name: "SO_BINDTODEVICE", level: unix.SOL_SOCKET, opt: unix.SO_BINDTODEVICE, device: "lo", wantBoundDev: true}
)

func (o sockopt) apply(t *testing.T, fd int) {
	t.Helper()
	var err error
	if o.device != "" {
		err = unix.SetsockoptString(fd, o.level, o.opt, o.device)
	} else {
		err = unix.SetsockoptInt(fd, o.level, o.opt, o.value)
	}
	if err != nil {
		t.Fatalf("setsockopt %s: %v", o.name, err)
	}
}

// bindAddr binds fd to ap, or for AF_UNSPEC, to a sockaddr_in whose family
// is AF_UNSPEC (which inet_bind accepts for INADDR_ANY).
func bindAddr(fd int, family int, ap netip.AddrPort) error {
	switch family {
	case unix.AF_INET:
		return unix.Bind(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()})
	case unix.AF_INET6:
		return unix.Bind(fd, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()})
	case unix.AF_UNSPEC:
		var sa unix.RawSockaddrInet4
		sa.Family = unix.AF_UNSPEC
		sa.Port = htons(ap.Port())
		sa.Addr = ap.Addr().As4()
		_, _, errno := unix.Syscall(unix.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
		if errno != 0 {
			return errno
		}
		return nil
	}
	return fmt.Errorf("bindAddr: family %d", family)
}

func htons(p uint16) uint16 { return p<<8 | p>>8 }

// bindRaw4 binds fd to ap with a sockaddr_in cut to length bytes.
func bindRaw4(fd int, ap netip.AddrPort, length int) error {
	var sa unix.RawSockaddrInet4
	sa.Family = unix.AF_INET
	sa.Port = htons(ap.Port())
	sa.Addr = ap.Addr().As4()
	_, _, errno := unix.Syscall(unix.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(length))
	if errno != 0 {
		return errno
	}
	return nil
}

// localAddr is what getsockname says the socket is bound to.
func localAddr(t testing.TB, fd int) netip.AddrPort {
	t.Helper()
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	t.Fatalf("getsockname: unexpected %T", sa)
	return netip.AddrPort{}
}

// freePort returns a port that was free for the given socket type a moment ago.
func freePort(t testing.TB, s socketSpec) uint16 {
	t.Helper()
	fd, err := unix.Socket(s.family, s.sotype|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	any := netip.IPv4Unspecified()
	if s.family == unix.AF_INET6 {
		any = netip.IPv6Unspecified()
	}
	if err := bindAddr(fd, s.family, netip.AddrPortFrom(any, 0)); err != nil {
		t.Fatal(err)
	}
	return localAddr(t, fd).Port()
}

// threadComm is the comm of thread tid of this process, as the kernel reports it.
func threadComm(t *testing.T, tid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/comm", tid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

// nsInode is the inode of one of this process's namespaces, e.g. "net".
func nsInode(t *testing.T, pid int, ns string) uint32 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/%s", pid, ns), &st); err != nil {
		t.Fatal(err)
	}
	return uint32(st.Ino)
}

// cgroupID is the id bpf_get_current_cgroup_id reports for tasks in the
// cgroup directory dir: its inode number in cgroupfs.
func cgroupID(t *testing.T, dir string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// selfCgroupDir is this process's cgroup directory in the unified hierarchy.
func selfCgroupDir(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return testenv.Cgroup2Mount(t) + rest
		}
	}
	t.Fatal("no unified-hierarchy line in /proc/self/cgroup")
	return ""
}

func bootNow() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		panic(err)
	}
	return uint64(ts.Nano())
}

func errnoOf(err error) int32 {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return -int32(errno)
	}
	return 0
}
