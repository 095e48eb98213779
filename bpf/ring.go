package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ring reads a BPF ring buffer map, mapped into memory as the kernel lays it
// out: a consumer page the reader may write, then the producer page and the
// data pages. The kernel offers the data pages twice in a row so a record
// can be read across the wrap in place; they are mapped once here, and the
// rare record that wraps is copied out instead: every mapped page counts in
// the agent's resident memory, and the second mapping was 8 MiB of it
// (RssFile) for nothing but that copy.
//
// Unlike a plain reader it does not hand the space of a record back to the
// kernel when it reads it: the consumer position moves only on Commit. An
// agent commits once the events are safely in Kafka or the spool, so that if
// it is killed, the next one (reading the same pinned map) starts again from
// the last committed event instead of losing what was in flight.
type ring struct {
	cons, prod *uint64 // in the mapped pages; accessed atomically
	data       []byte  // the data pages, once
	wrapped    []byte  // a copy of the last record that wrapped around the end
	mask       uint64
	consPage   []byte
	prodPages  []byte

	read   uint64 // position after the last record read; the reader's own
	epfd   int
	wakefd int // eventfd: Close and Flush interrupt a wait through it
	events [2]unix.EpollEvent

	// mapMu guards the mapping: commit (any goroutine) reads it, Close
	// removes it.
	mapMu  sync.RWMutex
	closed atomic.Bool
}

// Bits of a record header's length word (include/uapi/linux/bpf.h).
const (
	ringBusyBit    = 1 << 31
	ringDiscardBit = 1 << 30
	ringHeaderSize = 8
)

var errRingEmpty = errors.New("ring buffer empty")

func openRing(m *ebpf.Map) (*ring, error) {
	if m.Type() != ebpf.RingBuf {
		return nil, fmt.Errorf("map %s is a %s, not a ring buffer", m, m.Type())
	}
	size := uint64(m.MaxEntries())
	page := os.Getpagesize()
	fd := m.FD()
	consPage, err := unix.Mmap(fd, 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mapping the ring buffer's consumer page: %w", err)
	}
	prodPages, err := unix.Mmap(fd, int64(page), page+int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		unix.Munmap(consPage)
		return nil, fmt.Errorf("mapping the ring buffer's data: %w", err)
	}
	r := &ring{
		cons:      (*uint64)(unsafe.Pointer(&consPage[0])),
		prod:      (*uint64)(unsafe.Pointer(&prodPages[0])),
		data:      prodPages[page:],
		mask:      size - 1,
		consPage:  consPage,
		prodPages: prodPages,
		epfd:      -1,
		wakefd:    -1,
	}
	r.read = atomic.LoadUint64(r.cons)
	if err := r.setupPoll(fd); err != nil {
		r.unmap()
		return nil, err
	}
	return r, nil
}

func (r *ring) setupPoll(mapFD int) error {
	var err error
	if r.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	if r.wakefd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	for _, fd := range []int{mapFD, r.wakefd} {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return fmt.Errorf("epoll_ctl: %w", err)
		}
	}
	return nil
}

// next returns the data of the next committed record without waiting, or
// errRingEmpty. Discarded records are skipped. The slice is only valid until
// the space is committed back, or, for a record that wrapped, until the next
// call.
func (r *ring) next() ([]byte, error) {
	for {
		prod := atomic.LoadUint64(r.prod)
		if r.read == prod {
			return nil, errRingEmpty
		}
		// The length word is written last by the kernel (with the busy bit
		// cleared): load it atomically before trusting the record's bytes.
		hdr := atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.data[r.read&r.mask])))
		if hdr&ringBusyBit != 0 {
			return nil, errRingEmpty // reserved, not yet submitted
		}
		n := uint64(hdr &^ (ringBusyBit | ringDiscardBit))
		start := (r.read + ringHeaderSize) & r.mask
		r.read += (ringHeaderSize + n + 7) &^ 7
		if hdr&ringDiscardBit != 0 {
			continue
		}
		if end := start + n; end > uint64(len(r.data)) {
			// The record wraps: its head is at the end of the data pages,
			// its tail at their start.
			r.wrapped = append(append(r.wrapped[:0], r.data[start:]...), r.data[:end-uint64(len(r.data))]...)
			return r.wrapped, nil
		}
		return r.data[start : start+n], nil
	}
}

// wait blocks until the kernel signals data, Close or Flush interrupt it,
// or the timeout passes.
func (r *ring) wait(timeout time.Duration) error {
	ms := int(timeout / time.Millisecond)
	if timeout > 0 && ms == 0 {
		ms = 1
	}
	_, err := unix.EpollWait(r.epfd, r.events[:], ms)
	if err != nil && !errors.Is(err, unix.EINTR) {
		return fmt.Errorf("epoll_wait: %w", err)
	}
	// Drain the eventfd so it does not wake every later wait.
	var buf [8]byte
	unix.Read(r.wakefd, buf[:])
	return nil
}

func (r *ring) wake() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(r.wakefd, one[:])
}

// position is where the reader stands: the end of the last record read.
func (r *ring) position() uint64 { return r.read }

// commit hands the space up to pos back to the kernel. pos must be a
// position this reader returned; an older one than the last is ignored.
// Safe from any goroutine; after close it does nothing.
func (r *ring) commit(pos uint64) {
	r.mapMu.RLock()
	defer r.mapMu.RUnlock()
	if r.closed.Load() {
		return
	}
	for {
		cur := atomic.LoadUint64(r.cons)
		if pos <= cur || atomic.CompareAndSwapUint64(r.cons, cur, pos) {
			return
		}
	}
}

// pending is how many bytes the kernel wrote that this reader has not read.
func (r *ring) pending() int { return int(atomic.LoadUint64(r.prod) - r.read) }

// uncommitted is how many bytes hold records read but not yet committed.
func (r *ring) uncommitted() int { return int(r.read - atomic.LoadUint64(r.cons)) }

// close unmaps the ring; the caller makes sure no read runs.
func (r *ring) close() {
	r.closed.Store(true)
	r.mapMu.Lock()
	defer r.mapMu.Unlock()
	r.unmap()
}

func (r *ring) unmap() {
	if r.epfd >= 0 {
		unix.Close(r.epfd)
	}
	if r.wakefd >= 0 {
		unix.Close(r.wakefd)
	}
	unix.Munmap(r.prodPages)
	unix.Munmap(r.consPage)
}
