package bpf

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"
)

// ErrClosed is returned by Reader.Read after Close.
var ErrClosed = ringbuf.ErrClosed

// ErrFlushed is returned by Reader.Read once every record that was in the
// ring buffer when Flush was called has been read.
var ErrFlushed = ringbuf.ErrFlushed

// PollInterval bounds how long a record can wait in the ring buffer: the
// programs submit without waking the reader (see capture_config.wakeup_bytes),
// so the reader looks on this timer as well as when woken.
const PollInterval = 10 * time.Millisecond

// Reader reads events from the probe's ring buffer. It is not safe for
// concurrent Read calls; Close and Flush may be called from any goroutine.
type Reader struct {
	rd  *ringbuf.Reader
	rec ringbuf.Record
	// deadline is the caller's; poll is the next timer tick.
	deadline, poll time.Time
}

// NewReader opens a reader on the probe's ring buffer.
func (p *Probe) NewReader() (*Reader, error) {
	rd, err := ringbuf.NewReader(p.Events())
	if err != nil {
		return nil, fmt.Errorf("opening the ring buffer: %w", err)
	}
	return &Reader{rd: rd}, nil
}

// Read blocks until the next event and decodes it into ev, reusing one
// record buffer so that steady-state reads do not allocate.
func (r *Reader) Read(ev *Event) error {
	for {
		if now := time.Now(); !now.Before(r.poll) {
			r.poll = now.Add(PollInterval)
			wait := r.poll
			if !r.deadline.IsZero() && r.deadline.Before(wait) {
				wait = r.deadline
			}
			r.rd.SetDeadline(wait)
		}
		err := r.rd.ReadInto(&r.rec)
		if err == nil {
			return ev.Decode(r.rec.RawSample)
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if !r.deadline.IsZero() && !time.Now().Before(r.deadline) {
			return err
		}
		r.poll = time.Time{} // a tick passed with nothing to read: wait for the next
	}
}

// SetDeadline makes a blocked Read return os.ErrDeadlineExceeded at t; the
// zero time removes the deadline. Not safe concurrently with Read.
func (r *Reader) SetDeadline(t time.Time) {
	r.deadline = t
	r.poll = time.Time{}
}

// Flush makes Read return the records in the ring buffer now, then
// ErrFlushed: how a reader drains on shutdown without losing what the
// kernel already delivered.
func (r *Reader) Flush() error { return r.rd.Flush() }

// Close stops a blocked Read with ErrClosed.
func (r *Reader) Close() error { return r.rd.Close() }

// Pending is how many bytes of records wait in the ring buffer.
func (r *Reader) Pending() int { return r.rd.AvailableBytes() }
