package bpf

import (
	"fmt"
	"time"

	"github.com/cilium/ebpf/ringbuf"
)

// ErrClosed is returned by Reader.Read after Close.
var ErrClosed = ringbuf.ErrClosed

// ErrFlushed is returned by Reader.Read once every record that was in the
// ring buffer when Flush was called has been read.
var ErrFlushed = ringbuf.ErrFlushed

// Reader reads events from the probe's ring buffer. It is not safe for
// concurrent Read calls; Close may be called from any goroutine to stop one.
type Reader struct {
	rd  *ringbuf.Reader
	rec ringbuf.Record
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
	if err := r.rd.ReadInto(&r.rec); err != nil {
		return err
	}
	return ev.Decode(r.rec.RawSample)
}

// SetDeadline makes a blocked Read return os.ErrDeadlineExceeded at t.
func (r *Reader) SetDeadline(t time.Time) { r.rd.SetDeadline(t) }

// Flush makes Read return the records in the ring buffer now, then
// ErrFlushed: how a reader drains on shutdown without losing what the
// kernel already delivered.
func (r *Reader) Flush() error { return r.rd.Flush() }

// Close stops a blocked Read with ErrClosed.
func (r *Reader) Close() error { return r.rd.Close() }

// Pending is how many bytes of records wait in the ring buffer.
func (r *Reader) Pending() int { return r.rd.AvailableBytes() }
