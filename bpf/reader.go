package bpf

import (
	"errors"
	"fmt"
	"os"
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
}

// NewReader opens a reader on the probe's ring buffer, starting at its last
// committed position: records an earlier reader read but did not commit are
// read again.
func (p *Probe) NewReader() (*Reader, error) {
	r, err := openRing(p.Events())
	if err != nil {
		return nil, fmt.Errorf("opening the ring buffer: %w", err)
	}
	return &Reader{ring: r}, nil
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
		if end := r.flushEnd.Load(); end != 0 && r.ring.position() >= end-1 {
			r.flushEnd.Store(0)
			return ErrFlushed
		}
		rec, err := r.ring.next()
		if err == nil {
			return ev.Decode(rec)
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

// Position is the ring position after the last event Read returned; pass it
// to Commit once that event and all before it are safe.
func (r *Reader) Position() uint64 { return r.ring.position() }

// Commit frees the ring up to pos, a value Position returned.
func (r *Reader) Commit(pos uint64) { r.ring.commit(pos) }

// CommitAll frees everything read so far: for readers that do not track
// delivery (snoop).
func (r *Reader) CommitAll() { r.ring.commit(r.ring.position()) }

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
