package testenv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// IoRing is the smallest io_uring that submits one request and waits for
// it: enough to bind and listen the way that never passes bind(2) or
// listen(2). Raw system calls, no liburing.
type IoRing struct {
	fd         int
	sq, cq     []byte
	sqes       []byte
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

// Opcodes from Linux 6.11's include/uapi/linux/io_uring.h (after
// IORING_OP_FTRUNCATE, 55). Debian 12's linux-libc-dev (6.1) stops at
// IORING_OP_URING_CMD, so they are written out here.
const (
	IoringOpBind   = 56
	IoringOpListen = 57
)

// ErrIoUringUnsupported wraps every reason this kernel or this process
// cannot bind or listen through io_uring: no io_uring at all, io_uring
// disabled by kernel.io_uring_disabled, or a kernel before 6.11.
var ErrIoUringUnsupported = errors.New("io_uring bind and listen are not available")

// ioUringDisabledPath is the sysctl that turns io_uring off (2) or limits
// it to root and kernel.io_uring_group (1).
const ioUringDisabledPath = "/proc/sys/kernel/io_uring_disabled"

// NewIoRing sets up a ring of four entries.
func NewIoRing() (*IoRing, error) {
	r := &IoRing{}
	var p ioUringParams
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 4, uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		why := "io_uring_setup"
		if b, err := os.ReadFile(ioUringDisabledPath); err == nil {
			why += fmt.Sprintf(" with kernel.io_uring_disabled=%s", strings.TrimSpace(string(b)))
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrIoUringUnsupported, why, errno)
	}
	r.fd = int(fd)
	fail := func(err error) (*IoRing, error) {
		r.Close()
		return nil, err
	}
	var err error
	if r.sq, err = unix.Mmap(r.fd, 0, int(p.SQOff.Array+p.SQEntries*4), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return fail(fmt.Errorf("mapping the submission ring: %w", err))
	}
	if r.cq, err = unix.Mmap(r.fd, 0x8000000, int(p.CQOff.Cqes+p.CQEntries*16), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return fail(fmt.Errorf("mapping the completion ring: %w", err))
	}
	if r.sqes, err = unix.Mmap(r.fd, 0x10000000, int(p.SQEntries*64), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return fail(fmt.Errorf("mapping the submission entries: %w", err))
	}
	r.sqTail = (*uint32)(unsafe.Pointer(&r.sq[p.SQOff.Tail]))
	r.sqMask = *(*uint32)(unsafe.Pointer(&r.sq[p.SQOff.RingMask]))
	r.sqArray = unsafe.Slice((*uint32)(unsafe.Pointer(&r.sq[p.SQOff.Array])), p.SQEntries)
	r.cqHead = (*uint32)(unsafe.Pointer(&r.cq[p.CQOff.Head]))
	r.cqTail = (*uint32)(unsafe.Pointer(&r.cq[p.CQOff.Tail]))
	r.cqMask = *(*uint32)(unsafe.Pointer(&r.cq[p.CQOff.RingMask]))
	r.cqesOffset = p.CQOff.Cqes
	return r, nil
}

// Close unmaps the rings and closes the ring's fd.
func (r *IoRing) Close() {
	for _, m := range [][]byte{r.sq, r.cq, r.sqes} {
		if m != nil {
			unix.Munmap(m)
		}
	}
	unix.Close(r.fd)
}

// Do submits one request (opcode on fd, addr, addr2/off, len) and returns
// its result: 0 (or a count) or -errno.
func (r *IoRing) Do(opcode uint8, fd int, addr, off uint64, length uint32) int32 {
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

// Bind binds fd to the IPv4 address and port through IORING_OP_BIND.
func (r *IoRing) Bind(fd int, addr [4]byte, port uint16) error {
	sa := [16]byte{0: unix.AF_INET}
	binary.BigEndian.PutUint16(sa[2:], port)
	copy(sa[4:], addr[:])
	res := r.Do(IoringOpBind, fd, uint64(uintptr(unsafe.Pointer(&sa))), uint64(len(sa)), 0)
	return opResult("IORING_OP_BIND", res)
}

// Listen listens on fd through IORING_OP_LISTEN.
func (r *IoRing) Listen(fd int, backlog uint32) error {
	return opResult("IORING_OP_LISTEN", r.Do(IoringOpListen, fd, 0, 0, backlog))
}

// opResult turns a completion's result into an error; the opcode unknown
// to the kernel (EINVAL before 6.11, EOPNOTSUPP where it is compiled out)
// is ErrIoUringUnsupported.
func opResult(op string, res int32) error {
	if res >= 0 {
		return nil
	}
	errno := unix.Errno(-res)
	if errno == unix.EINVAL || errno == unix.EOPNOTSUPP {
		var u unix.Utsname
		unix.Uname(&u)
		return fmt.Errorf("%w: %s on Linux %s (6.11+ has it): %v", ErrIoUringUnsupported, op, unix.ByteSliceToString(u.Release[:]), errno)
	}
	return fmt.Errorf("%s: %w", op, errno)
}

// IoUringListener is a TCP socket bound to 127.0.0.1 and listening, both
// through io_uring.
type IoUringListener struct {
	FD   int
	Port uint16
}

// IoUringListen opens a TCP socket and binds it to 127.0.0.1 on a port the
// kernel picks, then listens on it, each through io_uring. The error wraps
// ErrIoUringUnsupported where the kernel cannot.
func IoUringListen() (*IoUringListener, error) {
	r, err := NewIoRing()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := r.Bind(fd, [4]byte{127, 0, 0, 1}, 0); err != nil {
		unix.Close(fd)
		return nil, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	l := &IoUringListener{FD: fd, Port: uint16(sa.(*unix.SockaddrInet4).Port)}
	if err := r.Listen(fd, 8); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return l, nil
}

// Close closes the socket.
func (l *IoUringListener) Close() error { return unix.Close(l.FD) }
