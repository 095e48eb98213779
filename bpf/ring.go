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
// out: a consumer page the reader may write, then the producer page, then
// the data pages, which the kernel offers twice in a row so that a record
// is never split at the end. Only a window of the data is mapped at a time,
// moved along as the reader reads: every mapped page counts in the agent's
// resident memory, and the whole doubled area was 16 MiB of it (8 MiB when
// mapped once) for data the reader looks at once.
//
// Unlike a plain reader it does not hand the space of a record back to the
// kernel when it reads it: the consumer position moves only on Commit. An
// agent commits once the events are safely in Kafka or the spool, so that if
// it is killed, the next one (reading the same pinned map) starts again from
// the last committed event instead of losing what was in flight.
type ring struct {
	cons, prod *uint64 // in the mapped pages; accessed atomically
	mask       uint64
	size       uint64 // bytes of data
	fd         int    // the map's, for moving the window
	consPage   []byte
	prodPage   []byte
	window     []byte // data bytes [winStart, winStart+len(window)), of the doubled area
	winStart   uint64

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

var (
	errRingEmpty = errors.New("ring buffer empty")
	// errRingBusy: the next record is reserved, not yet submitted.
	errRingBusy = fmt.Errorf("%w: next record not yet submitted", errRingEmpty)
)

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
	prodPage, err := unix.Mmap(fd, int64(page), page, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		unix.Munmap(consPage)
		return nil, fmt.Errorf("mapping the ring buffer's producer page: %w", err)
	}
	r := &ring{
		cons:     (*uint64)(unsafe.Pointer(&consPage[0])),
		prod:     (*uint64)(unsafe.Pointer(&prodPage[0])),
		mask:     size - 1,
		size:     size,
		fd:       fd,
		consPage: consPage,
		prodPage: prodPage,
		epfd:     -1,
		wakefd:   -1,
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
	// The ring is edge-triggered: the kernel calls it readable while any
	// record is uncommitted, and the agent holds records it has read
	// uncommitted until Kafka or the spool has them, so level-triggered
	// every wait of a reader that caught up returned at once. Under a
	// storm that spin (epoll_wait and the eventfd read, again and again)
	// took 59% of the agent's CPU (test/storm.sh with PROFILE, perf) from
	// the stages it shares a core with. Edge-triggered, a wait ends on a
	// wakeup the programs force (capture_config.wakeup_bytes), on Close
	// or Flush, or at PollInterval.
	for _, ev := range []unix.EpollEvent{
		{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(mapFD)},
		{Events: unix.EPOLLIN, Fd: int32(r.wakefd)},
	} {
		if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, int(ev.Fd), &ev); err != nil {
			return fmt.Errorf("epoll_ctl: %w", err)
		}
	}
	return nil
}

// next returns the data of the next committed record without waiting, or
// errRingEmpty. Discarded records are skipped. The slice is valid until the
// next call (the window may move then) and never after the space is
// committed back.
func (r *ring) next() ([]byte, error) {
	for {
		prod := atomic.LoadUint64(r.prod)
		if r.read == prod {
			return nil, errRingEmpty
		}
		// The length word is written last by the kernel (with the busy bit
		// cleared): load it atomically before trusting the record's bytes.
		at := r.read & r.mask
		word, err := r.view(at, ringHeaderSize)
		if err != nil {
			return nil, err
		}
		hdr := atomic.LoadUint32((*uint32)(unsafe.Pointer(&word[0])))
		if hdr&ringBusyBit != 0 {
			return nil, errRingBusy
		}
		n := uint64(hdr &^ (ringBusyBit | ringDiscardBit))
		r.read += (ringHeaderSize + n + 7) &^ 7
		if hdr&ringDiscardBit != 0 {
			continue
		}
		// Past the end of the data the second copy goes on: a record that
		// wraps is read in one piece.
		return r.view(at+ringHeaderSize, n)
	}
}

// wait blocks until the kernel signals data, Close or Flush interrupt it,
// or the timeout passes.
func (r *ring) wait(timeout time.Duration) error {
	ms := int(timeout / time.Millisecond)
	if timeout > 0 && ms == 0 {
		ms = 1
	}
	n, err := unix.EpollWait(r.epfd, r.events[:], ms)
	if err != nil && !errors.Is(err, unix.EINTR) {
		return fmt.Errorf("epoll_wait: %w", err)
	}
	for _, ev := range r.events[:max(n, 0)] {
		if ev.Fd == int32(r.wakefd) {
			// Drain the eventfd so it does not wake every later wait.
			var buf [8]byte
			unix.Read(r.wakefd, buf[:])
		}
	}
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

// produced is the kernel's producer position; 0 once closed. Safe from any
// goroutine.
func (r *ring) produced() uint64 {
	r.mapMu.RLock()
	defer r.mapMu.RUnlock()
	if r.closed.Load() {
		return 0
	}
	return atomic.LoadUint64(r.prod)
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
	if r.window != nil {
		unix.Munmap(r.window)
	}
	unix.Munmap(r.prodPage)
	unix.Munmap(r.consPage)
}

// ringWindowBytes is how much of the data is mapped at a time: large enough
// that moving it (one munmap and one mmap) is rare, thousands of records
// apart, and small beside the ring. A variable for the tests.
var ringWindowBytes uint64 = 512 << 10

// view returns the n bytes at offset off of the doubled data area (off may
// run past the data's end into its second copy), moving the window first
// when they are not inside it. The slice is valid until the next view.
func (r *ring) view(off, n uint64) ([]byte, error) {
	if off >= r.size {
		off -= r.size // the same bytes, in the first copy
	}
	if r.window == nil || off < r.winStart || off+n > r.winStart+uint64(len(r.window)) {
		page := uint64(os.Getpagesize())
		start := off &^ (page - 1)
		length := max(min(ringWindowBytes, r.size), (off-start+n+page-1)&^(page-1))
		if start+length > 2*r.size {
			return nil, fmt.Errorf("ring buffer record of %d bytes at %d does not fit the %d-byte ring", n, off, r.size)
		}
		if r.window != nil {
			unix.Munmap(r.window)
			r.window = nil
		}
		// Data begins after the consumer and producer pages.
		w, err := unix.Mmap(r.fd, int64(2*page+start), int(length), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return nil, fmt.Errorf("mapping the ring buffer's data at %d: %w", start, err)
		}
		r.window, r.winStart = w, start
	}
	return r.window[off-r.winStart : off-r.winStart+n], nil
}
