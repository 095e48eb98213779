package bpf

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioRing is the smallest io_uring that submits one request and waits for it:
// enough to bind and listen the way that never passes bind(2) or listen(2).
type ioRing struct {
	fd         int
	sq, cq     []byte
	sqes       []byte
	params     ioUringParams
	sqTail     *uint32
	sqMask     uint32
	sqArray    []uint32
	cqHead     *uint32
	cqTail     *uint32
	cqMask     uint32
	cqesOffset uint32
}

type ioSQOffsets struct {
	Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Resv1 uint32
	UserAddr                                                        uint64
}

type ioCQOffsets struct {
	Head, Tail, RingMask, RingEntries, Overflow, Cqes, Flags, Resv1 uint32
	UserAddr                                                        uint64
}

type ioUringParams struct {
	SQEntries, CQEntries, Flags, SQThreadCPU, SQThreadIdle, Features, WQFd uint32
	Resv                                                                   [3]uint32
	SQOff                                                                  ioSQOffsets
	CQOff                                                                  ioCQOffsets
}

// Opcodes from Linux 6.11's io_uring.h.
const (
	ioringOpBind   = 56
	ioringOpListen = 57
)

func newIoRing(t *testing.T) *ioRing {
	t.Helper()
	r := &ioRing{}
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 4, uintptr(unsafe.Pointer(&r.params)), 0)
	if errno != 0 {
		t.Skipf("io_uring is not available here (io_uring_setup: %v); the hole it opens is absent too", errno)
	}
	r.fd = int(fd)
	t.Cleanup(func() { unix.Close(r.fd) })
	p := &r.params
	var err error
	sqSize := int(p.SQOff.Array + p.SQEntries*4)
	if r.sq, err = unix.Mmap(r.fd, 0, sqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		t.Fatal(err)
	}
	cqSize := int(p.CQOff.Cqes + p.CQEntries*16)
	if r.cq, err = unix.Mmap(r.fd, 0x8000000, cqSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		t.Fatal(err)
	}
	if r.sqes, err = unix.Mmap(r.fd, 0x10000000, int(p.SQEntries*64), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(r.sq); unix.Munmap(r.cq); unix.Munmap(r.sqes) })
	r.sqTail = (*uint32)(unsafe.Pointer(&r.sq[p.SQOff.Tail]))
	r.sqMask = *(*uint32)(unsafe.Pointer(&r.sq[p.SQOff.RingMask]))
	r.sqArray = unsafe.Slice((*uint32)(unsafe.Pointer(&r.sq[p.SQOff.Array])), p.SQEntries)
	r.cqHead = (*uint32)(unsafe.Pointer(&r.cq[p.CQOff.Head]))
	r.cqTail = (*uint32)(unsafe.Pointer(&r.cq[p.CQOff.Tail]))
	r.cqMask = *(*uint32)(unsafe.Pointer(&r.cq[p.CQOff.RingMask]))
	r.cqesOffset = p.CQOff.Cqes
	return r
}

// do submits one request (opcode on fd, addr, addr2/off, len) and returns
// its result: 0 or -errno.
func (r *ioRing) do(opcode uint8, fd int, addr, off uint64, length uint32) int32 {
	tail := atomic.LoadUint32(r.sqTail)
	idx := tail & r.sqMask
	sqe := r.sqes[idx*64 : idx*64+64]
	clear(sqe)
	sqe[0] = opcode
	binary.LittleEndian.PutUint32(sqe[4:], uint32(fd))
	binary.LittleEndian.PutUint64(sqe[8:], off)
	binary.LittleEndian.PutUint64(sqe[16:], addr)
	binary.LittleEndian.PutUint32(sqe[24:], length)
	r.sqArray[idx] = idx
	atomic.StoreUint32(r.sqTail, tail+1)
	const enterGetEvents = 1
	if _, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), 1, 1, enterGetEvents, 0, 0); errno != 0 {
		return -int32(errno)
	}
	head := atomic.LoadUint32(r.cqHead)
	if head == atomic.LoadUint32(r.cqTail) {
		return -int32(unix.EAGAIN)
	}
	cqe := r.cq[r.cqesOffset+(head&r.cqMask)*16:]
	res := int32(binary.LittleEndian.Uint32(cqe[8:]))
	atomic.StoreUint32(r.cqHead, head+1)
	return res
}

// TestIoUringBindAndListen: a bind and a listen made through io_uring never
// pass bind(2) or listen(2). Every hook must still report them (the
// syscall hook from inside the kernel's bind and listen paths), or say at
// start that it cannot (its blind spots).
func TestIoUringBindAndListen(t *testing.T) {
	for _, hook := range testHooks(t) {
		t.Run(string(hook), func(t *testing.T) {
			c := listenerCapturer(t, hook)
			ring := newIoRing(t)
			fd := tcp4.open(t)
			port := freePort(t, tcp4)
			sa := [16]byte{0: unix.AF_INET}
			binary.BigEndian.PutUint16(sa[2:], port)
			copy(sa[4:], []byte{127, 0, 0, 1})
			var res int32
			bind := c.during(func() { res = ring.do(ioringOpBind, fd, uint64(uintptr(unsafe.Pointer(&sa))), 16, 0) })
			if res == -int32(unix.EINVAL) || res == -int32(unix.EOPNOTSUPP) {
				t.Skipf("this kernel's io_uring has no IORING_OP_BIND (%v): the hole is absent", unix.Errno(-res))
			}
			if res != 0 {
				t.Fatalf("io_uring bind: %v", unix.Errno(-res))
			}
			if got := localAddr(t, fd); got != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port) {
				t.Fatalf("the socket is bound to %s, want 127.0.0.1:%d", got, port)
			}
			cookie := sockCookie(t, fd)
			if err := oneKind(bind, KindBind, cookie, port); err != nil {
				t.Errorf("io_uring bind: %v", err)
			}
			listen := c.during(func() { res = ring.do(ioringOpListen, fd, 0, 0, 8) })
			if res != 0 {
				t.Fatalf("io_uring listen: %v", unix.Errno(-res))
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
