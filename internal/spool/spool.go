package spool

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Message is one Kafka message. A zero Time stays zero; an empty Key or
// Value comes back nil.
type Message struct {
	Key, Value []byte
	Time       time.Time
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
	used      int64 // bytes from the read position to the end of the last segment
	dirDirty  bool  // a directory change not synced yet
	peeked    *peeked
	hr        *segmentReader // reads segs[0]
	hrSeg     *segment
	wbuf      []byte
	stats     Stats
	pending   []Drop
	notify    chan struct{}
}

type peeked struct {
	batch Batch
	seg   *segment
	sp    span
}

// Open opens the spool in dir, creating the directory if needed, and takes
// an exclusive lock on it. It refuses a directory it cannot write. The
// segments found there are scanned (headers only) to rebuild the position
// and counts; damaged bytes in them are counted when a read reaches them.
func Open(dir string, opts Options) (*Spool, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	// For root only a read-only mount says no here; for anyone else the
	// permissions do too. Either way it is better said now than at the
	// first outage.
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return nil, fmt.Errorf("spool %s: not writable: %w", dir, err)
	}
	dirf, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	ack, slot, haveAck, created, err := openAckFile(filepath.Join(dir, ackFileName))
	if err != nil {
		dirf.Close()
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	s := &Spool{
		dir:      dir,
		opts:     opts,
		log:      opts.Logger.With("component", "spool", "dir", dir),
		dirf:     dirf,
		ack:      ack,
		notify:   make(chan struct{}, 1),
		hr:       newSegmentReader(nil, 0),
		dirDirty: created,
	}
	s.mu.Lock() // only for unlockReport, which reports what load finds
	if err := s.load(slot, haveAck); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	if err := s.ack.write(s.ackPos); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	if opts.Fsync != FsyncNever {
		if err := s.fsync(s.ack.f, s.ack.path); err != nil {
			s.closeFiles()
			return nil, fmt.Errorf("spool %s: %w", dir, err)
		}
		s.syncDir()
	}
	s.log.Info("spool opened", "batches", s.batches, "bytes", s.used, "segments", len(s.segs),
		"acked", s.ackPos, "next", s.nextSeq, "max_bytes", opts.MaxBytes, "full_policy", opts.FullPolicy, "fsync", opts.Fsync)
	s.unlockReport()
	if s.batches > 0 {
		s.notify <- struct{}{}
	}
	return s, nil
}

// load rebuilds the spool's state from the directory: the read position
// follows the acknowledged position, segments wholly acknowledged are
// removed, and new appends get sequence numbers after every one on disk.
func (s *Spool) load(slot ackSlot, haveAck bool) error {
	files, err := listSegments(s.dir)
	if err != nil {
		return err
	}
	s.ackPos = slot.next
	s.nextSeq = slot.next
	found := false // the first record not acknowledged has been seen
	var first uint64
	haveFirst := false
	for _, sf := range files {
		s.nextIndex = sf.index + 1
		if sf.size == 0 {
			s.removeFile(sf.path)
			continue
		}
		f, err := os.Open(sf.path)
		if err != nil {
			// Refusing to open the spool would keep the agent from
			// starting; the messages are counted from the gap the next
			// record shows.
			s.stats.CorruptRegions++
			s.drop(Drop{Reason: Corrupt, Err: fmt.Errorf("segment %s cannot be read, skipped: %w", sf.path, err)})
			continue
		}
		seg := &segment{index: sf.index, path: sf.path, size: sf.size, synced: sf.size}
		sr := newSegmentReader(f, sf.size)
		var headOff int64
		live := found
		var garbage []span
		for off := int64(0); ; {
			sp, err := sr.next(off, false)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				return fmt.Errorf("%s: %w", sf.path, err)
			}
			off = sp.end
			if sp.kind == spanGarbage {
				garbage = append(garbage, sp)
				continue
			}
			if !haveFirst {
				first, haveFirst = sp.h.first, true
			}
			s.nextSeq = max(s.nextSeq, sp.h.end())
			if !live {
				if haveAck && sp.h.end() <= s.ackPos {
					headOff = sp.end
					continue
				}
				live = true
			}
			if sp.kind == spanRecord {
				seg.records++
			}
		}
		if !live {
			// Wholly acknowledged: only unreadable bytes may remain, and
			// those are counted here since no read will reach them.
			for _, g := range garbage {
				if g.off >= headOff {
					s.countGarbage(seg, g)
				}
			}
			f.Close()
			s.removeFile(sf.path)
			continue
		}
		if !found {
			found = true
			s.headOff = headOff
		}
		if s.opts.Fsync != FsyncNever {
			// A crashed process's writes may still be only in the page
			// cache; from now on this segment counts as closed.
			if err := s.fsync(f, sf.path); err != nil {
				s.syncFailed(err)
			}
		}
		f.Close() // reopened when the replay gets there
		s.segs = append(s.segs, seg)
		s.batches += seg.records
		s.used += seg.size
	}
	s.used -= s.headOff
	if !haveAck {
		// Nothing was ever acknowledged here (or the ack file was lost):
		// everything on disk is replayed, and no gap before the first
		// record is counted as a loss.
		s.ackPos = s.nextSeq
		if haveFirst {
			s.ackPos = first
		}
	}
	if s.nextIndex == 0 {
		s.nextIndex = 1
	}
	return nil
}

// Append spools batch as one record after everything spooled before. When
// it returns nil the batch is in the spool (and on stable storage under
// FsyncAlways). Otherwise the batch is not in the spool and, unless the
// error is ErrClosed, its messages have been counted as dropped: ErrFull,
// ErrTooLarge, or the write error (errors.Is(err, syscall.ENOSPC) for a
// full disk). The spool stays usable after any of them.
//
// Under DropOldest, making room deletes the oldest records; those drops are
// counted, logged and passed to Options.OnDrop, not returned.
func (s *Spool) Append(batch []Message) error { return s.append(batch, false) }

// TryAppend is Append for a caller that keeps batch when the spool cannot
// write it: a write error (a full disk, EIO, making room failed) is returned
// wrapping ErrNotWritten and, unlike Append, not counted as a drop, since
// the batch is not lost yet. Refusals by policy (ErrFull, ErrTooLarge) are
// counted as with Append.
func (s *Spool) TryAppend(batch []Message) error { return s.append(batch, true) }

func (s *Spool) append(batch []Message, keep bool) error {
	if len(batch) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.unlockReport()
	if s.closed {
		return ErrClosed
	}
	n := uint64(len(batch))
	size := recordSize(batch)
	if size > s.opts.MaxBytes || size-headerSize > maxPayload || n > math.MaxUint32 {
		err := fmt.Errorf("spool %s: %w: %d messages in %d bytes, max %d", s.dir, ErrTooLarge, n, size, s.opts.MaxBytes)
		s.drop(Drop{Reason: TooLarge, Batches: 1, Messages: n, Err: err})
		return err
	}
	if s.used+size > s.opts.MaxBytes {
		if s.opts.FullPolicy == DropNewest {
			err := fmt.Errorf("spool %s: %w: %d of %d bytes used, batch of %d messages needs %d", s.dir, ErrFull, s.used, s.opts.MaxBytes, n, size)
			s.drop(Drop{Reason: FullNewest, Batches: 1, Messages: n, Err: err})
			return err
		}
		if err := s.makeRoom(size); err != nil {
			return s.notWritten(fmt.Errorf("spool %s: making room: %w", s.dir, err), n, keep)
		}
	}
	if err := s.ensureSegment(size); err != nil {
		return s.notWritten(fmt.Errorf("spool %s: %w", s.dir, err), n, keep)
	}
	seg := s.active
	s.wbuf = appendRecord(s.wbuf[:0], s.nextSeq, batch)
	_, err := seg.w.WriteAt(s.wbuf, seg.size)
	if err == nil && s.opts.Fsync == FsyncAlways {
		err = s.fsync(seg.w, seg.path)
	}
	if cap(s.wbuf) > 4<<20 {
		s.wbuf = nil // one huge batch should not pin its buffer forever
	}
	if err != nil {
		s.undoWrite(seg, n)
		return s.notWritten(fmt.Errorf("spool %s: %w", s.dir, err), n, keep)
	}
	seg.size += size
	if s.opts.Fsync == FsyncAlways {
		seg.synced = seg.size
	}
	seg.records++
	s.batches++
	s.used += size
	s.nextSeq += n
	s.stats.AppendedBatches++
	s.stats.AppendedMessages += n
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return nil
}

// notWritten is the outcome of an append of n messages that failed with
// err: counted as a WriteError drop, unless the caller keeps the batch.
func (s *Spool) notWritten(err error, n uint64, keep bool) error {
	if keep {
		return fmt.Errorf("%w: %w", ErrNotWritten, err)
	}
	s.drop(Drop{Reason: WriteError, Batches: 1, Messages: n, Err: err})
	return err
}

// undoWrite removes what a failed append may have written, so the next
// append lands where this one should have. If the file cannot be cut back,
// the segment takes no more appends and the failed record's sequence
// numbers are never reused, so whatever a reader finds there cannot be
// mistaken for a later batch.
func (s *Spool) undoWrite(seg *segment, n uint64) {
	terr := seg.w.Truncate(seg.size)
	if terr == nil {
		return
	}
	s.log.Error("cannot cut a failed append off its segment; starting a new segment", "segment", seg.path, "error", terr)
	if fi, err := seg.w.Stat(); err == nil && fi.Size() > seg.size {
		s.used += fi.Size() - seg.size
		seg.size = fi.Size()
	}
	s.nextSeq += n
	s.seal(seg)
}

// ensureSegment makes s.active a segment that can take a record of size
// bytes: the current one while it stays within SegmentBytes (or is empty),
// else a new one.
func (s *Spool) ensureSegment(size int64) error {
	if a := s.active; a != nil && (a.size == 0 || a.size+size <= s.opts.SegmentBytes) {
		return nil
	}
	if s.active != nil {
		s.seal(s.active)
	}
	path := filepath.Join(s.dir, segmentName(s.nextIndex))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	s.nextIndex++
	seg := &segment{index: s.nextIndex - 1, path: path, w: f}
	s.segs = append(s.segs, seg)
	s.active = seg
	s.dirDirty = true
	if s.opts.Fsync != FsyncNever {
		s.syncDir()
	}
	// A head read to its end could not go while appends went to it.
	if len(s.segs) > 1 && s.headOff >= s.segs[0].size {
		if err := s.removeHead(); err != nil {
			s.log.Error("cannot remove an acknowledged segment", "error", err)
		}
	}
	return nil
}

// seal stops appends to seg, syncing it unless the policy is never.
func (s *Spool) seal(seg *segment) {
	if s.opts.Fsync != FsyncNever && seg.synced < seg.size {
		if err := s.fsync(seg.w, seg.path); err != nil {
			s.syncFailed(err)
		} else {
			seg.synced = seg.size
		}
	}
	if err := seg.w.Close(); err != nil {
		s.log.Error("close segment", "segment", seg.path, "error", err)
	}
	seg.w = nil
	if s.active == seg {
		s.active = nil
	}
}

// makeRoom drops the oldest records until size more bytes fit in MaxBytes.
func (s *Spool) makeRoom(size int64) error {
	var d Drop
	var err error
	for s.used+size > s.opts.MaxBytes {
		var seg *segment
		var sp span
		seg, sp, err = s.headSpan(true)
		if err != nil {
			break
		}
		if sp.kind != spanRecord {
			s.skipDamaged(seg, sp)
			continue
		}
		s.countGap(seg, sp)
		if sp.h.end() > s.ackPos {
			d.Batches++
			d.Messages += sp.h.end() - max(sp.h.first, s.ackPos)
			s.ackPos = sp.h.end()
		}
		s.advance(seg, sp)
	}
	if errors.Is(err, ErrEmpty) {
		err = nil // nothing left to drop; the record fits by itself
	}
	if d.Batches > 0 {
		d.Reason = FullOldest
		d.Err = fmt.Errorf("spool full (%d bytes): dropped the oldest %d messages in %d batches, through sequence number %d", s.opts.MaxBytes, d.Messages, d.Batches, s.ackPos-1)
		s.drop(d)
		s.persistAck()
	}
	return err
}

// Peek returns the oldest batch not yet acknowledged, the same one until it
// is acknowledged or dropped, or ErrEmpty. Damaged records on the way are
// skipped and counted. The batch's bytes are its own: the caller may keep
// them.
func (s *Spool) Peek() (Batch, error) {
	s.mu.Lock()
	defer s.unlockReport()
	if s.closed {
		return Batch{}, ErrClosed
	}
	if s.peeked != nil {
		return s.peeked.batch, nil
	}
	for {
		seg, sp, err := s.headSpan(false)
		if errors.Is(err, ErrEmpty) {
			return Batch{}, ErrEmpty
		}
		if err != nil && s.shrunk(err) {
			continue
		}
		if err != nil {
			return Batch{}, fmt.Errorf("spool %s: %w", s.dir, err)
		}
		if sp.kind != spanRecord {
			s.skipDamaged(seg, sp)
			continue
		}
		if sp.h.end() <= s.ackPos {
			s.advance(seg, sp) // acknowledged before, found again
			continue
		}
		if seg == s.active && s.opts.Fsync == FsyncBatch && seg.synced < sp.end {
			// What is replayed must be what survives a power loss, or a
			// consumer could see events the spool later loses.
			if err := s.fsync(seg.w, seg.path); err != nil {
				s.syncFailed(err)
			} else {
				seg.synced = seg.size
			}
		}
		msgs, err := s.readRecord(seg, sp)
		if err != nil && s.shrunk(err) {
			continue
		}
		if errors.Is(err, errPayload) {
			// Walked again with the payload checked, the damaged span ends
			// at any authentic header inside the record's claimed length.
			vsp, verr := s.hr.next(sp.off, true)
			if verr != nil && s.shrunk(verr) {
				continue
			}
			if verr != nil {
				return Batch{}, fmt.Errorf("spool %s: %s: %w", s.dir, seg.path, verr)
			}
			if vsp.kind == spanRecord {
				// Checked fine the second time: the damage is in structure.
				vsp.kind, vsp.err = spanDamaged, err
			}
			s.skipDamaged(seg, vsp)
			continue
		}
		if err != nil {
			return Batch{}, fmt.Errorf("spool %s: %w", s.dir, err)
		}
		s.countGap(seg, sp)
		s.peeked = &peeked{batch: Batch{First: sp.h.first, Messages: msgs}, seg: seg, sp: sp}
		return s.peeked.batch, nil
	}
}

// shrunk handles a read that found the head segment shorter than the
// spool wrote it (cut by something else while open): the missing bytes
// are counted as a damaged region, the segment takes no more appends, and
// reading goes on. It reports whether that was the error.
func (s *Spool) shrunk(err error) bool {
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) || len(s.segs) == 0 || s.segs[0].r == nil {
		return false
	}
	seg := s.segs[0]
	fi, serr := seg.r.Stat()
	if serr != nil || fi.Size() >= seg.size {
		return false
	}
	s.stats.CorruptRegions++
	s.drop(Drop{Reason: Corrupt, Err: fmt.Errorf("%s was cut from %d to %d bytes while open: %w", seg.path, seg.size, fi.Size(), err)})
	newOff := max(s.headOff, fi.Size())
	s.used -= seg.size - newOff
	s.headOff = min(s.headOff, fi.Size())
	seg.size, seg.synced = fi.Size(), min(seg.synced, fi.Size())
	s.hr.woff, s.hr.wn = 0, 0
	s.peeked = nil
	// Records past the cut are gone; the count of those left is rebuilt
	// from the headers still there.
	s.batches -= seg.records
	seg.records = 0
	sr := newSegmentReader(seg.r, seg.size)
	for off := s.headOff; ; {
		sp, err := sr.next(off, false)
		if err != nil {
			break
		}
		if sp.kind == spanRecord {
			seg.records++
		}
		off = sp.end
	}
	s.batches += seg.records
	if seg == s.active {
		s.seal(seg)
	}
	return true
}

// readRecord reads and checks the record of sp into memory of its own.
func (s *Spool) readRecord(seg *segment, sp span) ([]Message, error) {
	buf := make([]byte, sp.h.size())
	if _, err := seg.r.ReadAt(buf, sp.off); err != nil {
		return nil, fmt.Errorf("read %s at %d: %w", seg.path, sp.off, err)
	}
	h, err := parseHeader(buf)
	if err != nil || h != sp.h {
		return nil, fmt.Errorf("%w: header changed on disk: %v", errPayload, err)
	}
	if !checkPayload(buf, h, buf[headerSize:]) {
		return nil, fmt.Errorf("%w: crc mismatch", errPayload)
	}
	return decodePayload(h, buf[headerSize:])
}

// Ack records that the brokers acknowledged b, the batch Peek returned:
// the next Peek returns the batch after it, and a restart does not replay
// it. Acknowledging a batch already acknowledged or dropped does nothing.
func (s *Spool) Ack(b Batch) error {
	s.mu.Lock()
	defer s.unlockReport()
	if s.closed {
		return ErrClosed
	}
	end := b.First + uint64(len(b.Messages))
	if end <= s.ackPos {
		return nil
	}
	p := s.peeked
	if p == nil || p.batch.First != b.First || len(p.batch.Messages) != len(b.Messages) {
		head := "none peeked"
		if p != nil {
			head = fmt.Sprintf("%d messages from %d", len(p.batch.Messages), p.batch.First)
		}
		return fmt.Errorf("spool %s: ack of %d messages from %d: %w (%s)", s.dir, len(b.Messages), b.First, ErrNotHead, head)
	}
	s.ackPos = max(s.ackPos, p.sp.h.end())
	s.stats.AckedBatches++
	s.stats.AckedMessages += uint64(len(b.Messages))
	s.advance(p.seg, p.sp)
	if err := s.persistAck(); err != nil {
		return fmt.Errorf("spool %s: %w", s.dir, err)
	}
	if seg := s.segs[0]; s.headOff >= seg.size && seg != s.active {
		if err := s.removeHead(); err != nil {
			return fmt.Errorf("spool %s: %w", s.dir, err)
		}
	}
	return nil
}

// headSpan returns the span at the read position, removing segments read
// to their end on the way, or ErrEmpty.
func (s *Spool) headSpan(verify bool) (*segment, span, error) {
	for {
		if len(s.segs) == 0 {
			return nil, span{}, ErrEmpty
		}
		seg := s.segs[0]
		if s.headOff >= seg.size {
			if seg == s.active {
				return nil, span{}, ErrEmpty
			}
			if err := s.removeHead(); err != nil {
				return nil, span{}, err
			}
			continue
		}
		if seg.r == nil {
			f, err := os.Open(seg.path)
			if err != nil && seg != s.active {
				s.skipSegment(seg, err)
				continue
			}
			if err != nil {
				return nil, span{}, err
			}
			seg.r = f
		}
		if s.hrSeg != seg {
			s.hr.r, s.hr.woff, s.hr.wn = seg.r, 0, 0
			s.hrSeg = seg
		}
		s.hr.size = seg.size
		sp, err := s.hr.next(s.headOff, verify)
		if err != nil {
			return nil, span{}, fmt.Errorf("%s: %w", seg.path, err)
		}
		return seg, sp, nil
	}
}

// skipSegment drops the head segment, which cannot be opened (removed,
// unreadable): waiting for it would stop the replay, and every append that
// needs room, for good. Its records are counted as corrupt; their messages
// are counted from the gap in sequence numbers the next record shows, or
// now when no record follows.
func (s *Spool) skipSegment(seg *segment, err error) {
	s.stats.CorruptRegions++
	d := Drop{Reason: Corrupt, Batches: uint64(seg.records),
		Err: fmt.Errorf("segment %s cannot be read, its %d batches are skipped: %w", seg.path, seg.records, err)}
	s.batches -= seg.records
	s.used -= seg.size - s.headOff
	if seg.w != nil {
		seg.w.Close()
		seg.w = nil
	}
	if s.hrSeg == seg {
		s.hrSeg = nil
	}
	s.segs = s.segs[1:]
	s.headOff = 0
	s.peeked = nil
	rest := false
	for _, g := range s.segs {
		rest = rest || g.records > 0
	}
	if !rest && s.nextSeq > s.ackPos {
		d.Messages = s.nextSeq - s.ackPos
		s.ackPos = s.nextSeq
		s.persistAck()
	}
	s.drop(d)
	s.removeFile(seg.path)
}

// advance moves the read position past sp, the span at the head.
func (s *Spool) advance(seg *segment, sp span) {
	s.headOff = sp.end
	s.used -= sp.end - sp.off
	if sp.kind == spanRecord {
		seg.records--
		s.batches--
	}
	s.peeked = nil
}

// countGap counts as corrupt the messages missing between the last one
// acknowledged (or dropped) and the record sp, which a run of unreadable
// bytes or a lost write must have held.
func (s *Spool) countGap(seg *segment, sp span) {
	if sp.h.first <= s.ackPos {
		return
	}
	lost := sp.h.first - s.ackPos
	s.drop(Drop{Reason: Corrupt, Messages: lost,
		Err: fmt.Errorf("%d messages (sequence numbers %d..%d) missing before the record at byte %d of %s", lost, s.ackPos, sp.h.first-1, sp.off, seg.path)})
	s.ackPos = sp.h.first
}

// skipDamaged moves past a damaged record or unreadable bytes at the head,
// counting them.
func (s *Spool) skipDamaged(seg *segment, sp span) {
	if sp.kind == spanGarbage {
		s.countGarbage(seg, sp)
	} else {
		s.stats.CorruptRegions++
		d := Drop{Reason: Corrupt, Err: fmt.Errorf("%s at bytes %d..%d of %s: %w", sp.kind, sp.off, sp.end, seg.path, sp.err)}
		if end := sp.h.end(); end > s.ackPos {
			d.Batches = 1
			d.Messages = end - max(sp.h.first, s.ackPos)
			s.countGap(seg, sp)
			s.ackPos = end
		}
		s.drop(d)
	}
	s.advance(seg, sp)
}

func (s *Spool) countGarbage(seg *segment, sp span) {
	s.stats.CorruptRegions++
	s.drop(Drop{Reason: Corrupt,
		Err: fmt.Errorf("%d unreadable bytes at %d..%d of %s: %w", sp.end-sp.off, sp.off, sp.end, seg.path, sp.err)})
}

// persistAck writes the acknowledged position, syncing it under
// FsyncAlways.
func (s *Spool) persistAck() error {
	if err := s.ack.write(s.ackPos); err != nil {
		s.log.Error("cannot store the acknowledged position; a restart will replay from an older one", "error", err)
		return err
	}
	if s.opts.Fsync == FsyncAlways {
		if err := s.fsync(s.ack.f, s.ack.path); err != nil {
			s.syncFailed(err)
			return err
		}
	}
	return nil
}

// removeHead deletes the first segment, read to its end. The acknowledged
// position is stored first, so that after a crash the segment's absence is
// not taken for lost messages.
func (s *Spool) removeHead() error {
	seg := s.segs[0]
	if err := s.ack.write(s.ackPos); err != nil {
		return err
	}
	if s.opts.Fsync != FsyncNever {
		if err := s.fsync(s.ack.f, s.ack.path); err != nil {
			s.syncFailed(err)
			return err
		}
	}
	if seg.r != nil {
		seg.r.Close()
		seg.r = nil
	}
	if seg.w != nil {
		seg.w.Close()
		seg.w = nil
	}
	if s.hrSeg == seg {
		s.hrSeg = nil
	}
	s.segs = s.segs[1:]
	s.headOff = 0
	s.removeFile(seg.path)
	return nil
}

func (s *Spool) removeFile(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		// It is acknowledged; the next Open removes it.
		s.log.Error("cannot remove a spent segment", "error", err)
		return
	}
	s.dirDirty = true
	if s.opts.Fsync == FsyncAlways {
		s.syncDir()
	}
}

func (s *Spool) syncDir() {
	if !s.dirDirty {
		return
	}
	if err := s.syncDirFile(); err != nil {
		s.syncFailed(fmt.Errorf("sync directory %s: %w", s.dir, err))
		return
	}
	s.dirDirty = false
}

// fsync flushes f's data and the metadata needed to read it back (its
// size), which is all a segment or the ack file needs, and counts it.
func (s *Spool) fsync(f *os.File, path string) error {
	s.stats.Syncs++
	return fdatasync(f, path)
}

func (s *Spool) syncDirFile() error {
	s.stats.Syncs++
	return s.dirf.Sync()
}

func (s *Spool) syncFailed(err error) {
	s.stats.SyncErrors++
	s.log.Error("fsync failed; spooled data may not survive a power loss", "error", err)
}

// drop counts d and queues it for reporting once the lock is released.
func (s *Spool) drop(d Drop) {
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
	st.Batches, st.Bytes, st.Segments = s.batches, s.used, len(s.segs)
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
	if a := s.active; a != nil && s.opts.Fsync != FsyncNever && a.synced < a.size {
		if err := s.fsync(a.w, a.path); err != nil {
			errs = append(errs, err)
		} else {
			a.synced = a.size
		}
	}
	if err := s.ack.write(s.ackPos); err != nil {
		errs = append(errs, err)
	}
	if s.opts.Fsync != FsyncNever {
		if err := s.fsync(s.ack.f, s.ack.path); err != nil {
			errs = append(errs, err)
		}
		if s.dirDirty {
			if err := s.syncDirFile(); err != nil {
				errs = append(errs, fmt.Errorf("sync directory %s: %w", s.dir, err))
			}
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
	s.ack.close()
	s.dirf.Close()
}
