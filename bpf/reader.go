package bpf

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Reader.Read after Close.
var ErrClosed = os.ErrClosed

// ErrFlushed is returned by Reader.Read once every record that was in the
// ring buffer when Flush was called has been read.
var ErrFlushed = errors.New("ring buffer flushed")

// PollInterval bounds how long a record can wait in the ring buffer: the
// programs submit without waking the reader (see capture_config.wakeup_bytes),
// so the reader looks on this timer as well as when woken.
const PollInterval = 10 * time.Millisecond

// Reader reads events from the probe's ring buffer. Read is for one
// goroutine; Close, Flush and Commit may be called from any.
//
// Reading does not free a record's space in the ring: Commit does. A reader
// that never commits sees the ring fill, and the kernel then counts drops.
type Reader struct {
	ring *ring
	// readMu is held by Read; Close takes it to wait for Read to leave.
	readMu   sync.Mutex
	deadline time.Time
	// flushEnd is the producer position Flush saw, plus one; 0 when not
	// flushing.
	flushEnd atomic.Uint64
	// ahead are records read from the ring and not returned yet, in the
	// order Read returns them (see readAhead); pos is what Position says.
	ahead []readRecord
	pos   uint64
	// buf is ahead's array, twice readAhead: pop moves ahead's start
	// forward, and fill moves what is left back to buf's start only when
	// the room after it runs out, not at every record.
	buf []readRecord
	// spinAt is the ring position of the record fill last waited for a
	// program to finish writing, and spinUntil when that wait ends: one
	// wait per record, however many Reads find it still being written.
	spinAt    uint64
	spinUntil time.Time
}

// readAhead is how many records Read takes from the ring at once, when
// they are there to take, to return them in seq order. A program takes
// its seq before it reserves its ring space, so two CPUs may reserve in
// the other order: the ring then holds seq n+1 before n, one or two
// records apart (TestRingOrderAcrossCPUs), and a consumer that skips what
// it has seen (the audit) would skip n. Read sorts what it took by seq;
// it never waits for a record that is not there, so a late record still
// reserved (not yet submitted) when Read comes stays late. A variable for
// the tests that watch the ring record by record.
var readAhead = 8

// busySpin is how long Read waits for a record a program is writing when
// records read ahead wait for it: a program takes a few microseconds
// between its seq and its submit (TestRingOrderAcrossCPUs: 40 µs at most).
const busySpin = 50 * time.Microsecond

// readRecord is a record read ahead: the event, or why it does not
// decode, and where it lies in the ring.
type readRecord struct {
	ev    Event
	err   error
	start uint64
}

// NewReader opens a reader on the probe's ring buffer, starting at its last
// committed position: records an earlier reader read but did not commit are
// read again.
func (p *Probe) NewReader() (*Reader, error) {
	r, err := openRing(p.Events())
	if err != nil {
		return nil, fmt.Errorf("opening the ring buffer: %w", err)
	}
	buf := make([]readRecord, 0, 2*readAhead)
	return &Reader{ring: r, ahead: buf, buf: buf, pos: r.position()}, nil
}

// Read blocks until the next event and decodes it into ev. It does not
// allocate.
func (r *Reader) Read(ev *Event) error {
	r.readMu.Lock()
	defer r.readMu.Unlock()
	for {
		if r.ring.closed.Load() {
			return ErrClosed
		}
		// Topped up before each return: the record after the one
		// returned is there to go first when it is numbered before it.
		if err := r.fill(); err != nil {
			return err
		}
		if len(r.ahead) > 0 {
			return r.pop(ev)
		}
		if end := r.flushEnd.Load(); end != 0 && r.ring.position() >= end-1 {
			r.flushEnd.Store(0)
			return ErrFlushed
		}
		wait := PollInterval
		if !r.deadline.IsZero() {
			left := time.Until(r.deadline)
			if left <= 0 {
				return os.ErrDeadlineExceeded
			}
			wait = min(wait, left)
		}
		if err := r.ring.wait(wait); err != nil {
			return err
		}
	}
}

// fill reads what the ring holds now, up to readAhead records, into
// ahead, sorted by seq: a record goes before those numbered after it
// (records that do not decode stay where they are).
func (r *Reader) fill() error {
	if cap(r.ahead) < readAhead {
		r.ahead = append(r.buf[:0], r.ahead...)
	}
	for len(r.ahead) < readAhead {
		start := r.ring.position()
		rec, err := r.ring.next()
		if errors.Is(err, errRingBusy) && len(r.ahead) > 0 {
			// A program is writing the next record: the one that
			// overtook it, if any, is ahead. Wait the few microseconds
			// it takes rather than return that one first.
			if r.spinUntil.IsZero() || start != r.spinAt {
				r.spinAt, r.spinUntil = start, time.Now().Add(busySpin)
			}
			if time.Now().Before(r.spinUntil) {
				runtime.Gosched()
				continue
			}
		}
		if errors.Is(err, errRingEmpty) {
			return nil
		}
		if err != nil {
			if len(r.ahead) == 0 {
				return err
			}
			return nil // returned once what was read ahead is
		}
		r.ahead = append(r.ahead, readRecord{start: start})
		a := &r.ahead[len(r.ahead)-1]
		a.err = a.ev.Decode(rec)
		placeBySeq(r.ahead)
	}
	return nil
}

// placeBySeq moves the last of ahead before those numbered after it, up to
// a record that does not decode.
func placeBySeq(ahead []readRecord) {
	for i := len(ahead) - 1; i > 0; i-- {
		a, b := &ahead[i], &ahead[i-1]
		if a.err != nil || b.err != nil || b.ev.Seq <= a.ev.Seq {
			return
		}
		*a, *b = *b, *a
	}
}

// pop returns the first record read ahead. Position becomes the start of
// the earliest record in the ring still ahead: everything before it was
// returned, nothing after it is freed before it is.
func (r *Reader) pop(ev *Event) error {
	a := &r.ahead[0]
	*ev = a.ev
	err := a.err
	r.ahead = r.ahead[1:]
	r.pos = r.ring.position()
	for i := range r.ahead {
		r.pos = min(r.pos, r.ahead[i].start)
	}
	return err
}

// Position is the ring position up to which every event was returned by
// Read (after the last one, unless an event before it in the ring is
// still to come, when it was read ahead to be returned in seq order); pass
// it to Commit once those events are safe.
func (r *Reader) Position() uint64 { return r.pos }

// Commit frees the ring up to pos, a value Position returned.
func (r *Reader) Commit(pos uint64) { r.ring.commit(pos) }

// CommitAll frees everything returned so far: for readers that do not
// track delivery (snoop).
func (r *Reader) CommitAll() { r.ring.commit(r.pos) }

// SetDeadline makes a blocked Read return os.ErrDeadlineExceeded at t; the
// zero time removes the deadline. Not safe concurrently with Read.
func (r *Reader) SetDeadline(t time.Time) { r.deadline = t }

// Flush makes Read return the records in the ring buffer now, then
// ErrFlushed: how a reader drains on shutdown without losing what the
// kernel already delivered.
func (r *Reader) Flush() error {
	r.flushEnd.Store(atomic.LoadUint64(r.ring.prod) + 1)
	r.ring.wake()
	return nil
}

// Close stops a blocked Read with ErrClosed and unmaps the ring.
func (r *Reader) Close() error {
	if r.ring.closed.Swap(true) {
		return nil
	}
	r.ring.wake()
	r.readMu.Lock()
	defer r.readMu.Unlock()
	r.ring.close()
	return nil
}

// Produced is the ring position after the last record the kernel reserved
// (submitted or not): every record reserved so far lies below it, and a
// reader whose Position reached it has read them all. Safe from any
// goroutine; 0 after Close.
func (r *Reader) Produced() uint64 { return r.ring.produced() }

// Pending is how many bytes of records wait in the ring buffer unread.
func (r *Reader) Pending() int { return r.ring.pending() }

// Uncommitted is how many bytes of records were read but not committed.
func (r *Reader) Uncommitted() int { return r.ring.uncommitted() }
