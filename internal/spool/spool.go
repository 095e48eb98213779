package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Message is one Kafka message. A zero Time stays zero; an empty Key or
// Value comes back nil.
type Message struct {
	Key, Value []byte
	Time       time.Time
	// Kind says what the message holds, for the full policy and the drop
	// counters; it must be below NumKinds.
	Kind Kind
}

// Batch is a spooled batch as Peek returns it.
type Batch struct {
	// First is the spool's sequence number of the batch's first message;
	// the others follow without gaps.
	First    uint64
	Messages []Message
}

// Spool is an append-only queue of batches on disk. Its methods may be
// called from several goroutines; the publish stage appends while one
// replayer peeks and acknowledges.
type Spool struct {
	dir  string
	opts Options
	plan syncPlan
	log  *slog.Logger

	mu     sync.Mutex
	closed bool
	dirf   *os.File
	ack    *ackFile
	segs   []*segment // oldest first
	// active is the last segment while appends go to it; nil until the
	// first append after Open, or after a failed write left it unusable.
	active    *segment
	headOff   int64  // read position in segs[0]
	ackPos    uint64 // first message neither acknowledged nor dropped
	nextSeq   uint64
	nextIndex uint64
	batches   int
	used      int64 // bytes from the read position to the end of the last segment, less dropped records
	// dead is what records dropped in place (markDropped) still take on
	// disk past the read position: what hole punching did not free.
	dead int64
	// scanSeg and scanOff are where the search for expendable records
	// resumes: no live expendable record is before it. scanSeg nil, or no
	// longer in segs, means the read position.
	scanSeg *segment
	scanOff int64
	sr      *segmentReader // reads scanSeg
	srSeg   *segment
	// markF writes headers into markSeg, a sealed segment (markDropped).
	markF   *os.File
	markSeg *segment
	// lastRun is the last run of records dropped in place, in lastRunSeg:
	// a record dropped right after it joins it (markDropped).
	lastRun    span
	lastRunSeg *segment
	// recent are the last expendable records appended, oldest first, for
	// DropNewest (dropNewestExpendable).
	recent []recentRef
	ends   []int // splitAt's
	// noPunch: the file system cannot punch holes, so records are no
	// longer dropped in place (their bytes would stay on disk).
	noPunch  bool
	dirDirty bool // a directory change not synced yet
	peeked   *peeked
	hr       *segmentReader // reads segs[0]
	hrSeg    *segment
	wbuf     []byte
	stats    Stats
	pending  []Drop
	notify   chan struct{}
}

type peeked struct {
	batch Batch
	seg   *segment
	sp    span
}

// drop counts d and queues it for reporting once the lock is released.
func (s *Spool) drop(d Drop) {
	var known uint64
	for _, n := range d.Kinds {
		known += n
	}
	if known < d.Messages {
		d.Kinds[KindUnknown] += d.Messages - known
	}
	for k, n := range d.Kinds {
		s.stats.DroppedByKind[d.Reason][k] += n
	}
	s.stats.DroppedMessages[d.Reason] += d.Messages
	s.stats.DroppedBatches[d.Reason] += d.Batches
	s.pending = append(s.pending, d)
}

// unlockReport releases the lock, then reports the drops found while it
// was held: to OnDrop if set, else to the log.
func (s *Spool) unlockReport() {
	drops := s.pending
	s.pending = nil
	s.mu.Unlock()
	for _, d := range drops {
		if s.opts.OnDrop != nil {
			s.opts.OnDrop(d)
			continue
		}
		s.log.Warn("spool dropped messages", "reason", d.Reason.String(), "batches", d.Batches, "messages", d.Messages, "error", d.Err)
	}
}

// Appended returns a channel that receives a value after appends, so that
// a replayer waiting on an empty spool needs no polling: after ErrEmpty
// from Peek, wait on it, then Peek again. An append between the Peek and
// the wait leaves a value in the channel, so none is missed. It has room
// for one value and is meant for one replayer. It is closed by Close.
func (s *Spool) Appended() <-chan struct{} { return s.notify }

// Len returns the batches not yet acknowledged (the one Peek returned
// included, until it is acknowledged) and their bytes. Records whose
// payload turns out damaged are counted until a read reaches them.
func (s *Spool) Len() (batches int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batches, s.used
}

// Stats returns the spool's counters and contents, also after Close.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Batches, st.Bytes, st.Segments, st.DeadBytes = s.batches, s.used, len(s.segs), s.dead
	st.Acked, st.Next = s.ackPos, s.nextSeq
	return st
}

// Dir is the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// Close syncs what the policy asks, stores the acknowledged position,
// closes the files and releases the directory's lock. Peek, Append and Ack
// return ErrClosed afterwards; the Appended channel is closed.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.unlockReport()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if a := s.active; a != nil && s.plan.segmentOnSeal && a.synced < a.size {
		if err := s.fsync(a.w, a.path); err != nil {
			errs = append(errs, err)
		} else {
			a.synced = a.size
		}
	}
	if _, err := s.storeAck(s.plan.ackAtClose); err != nil {
		errs = append(errs, err)
	}
	if s.plan.dirAtClose && s.dirDirty {
		if err := s.syncDirFile(); err != nil {
			errs = append(errs, fmt.Errorf("sync directory %s: %w", s.dir, err))
		}
	}
	s.closeFiles()
	close(s.notify)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close spool %s: %w", s.dir, err)
	}
	return nil
}

func (s *Spool) closeFiles() {
	for _, seg := range s.segs {
		if seg.r != nil {
			seg.r.Close()
		}
		if seg.w != nil {
			seg.w.Close()
		}
	}
	if s.markF != nil {
		s.markF.Close()
	}
	s.ack.close()
	s.dirf.Close()
}
