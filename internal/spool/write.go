package spool

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

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
	ks, kinds := batchKinds(batch)
	ends := s.splitAt(batch, ks, size)
	size += headerSize * int64(max(len(ends)-1, 0))
	if size > s.opts.MaxBytes || size-headerSize > maxPayload || n > math.MaxUint32 {
		err := fmt.Errorf("spool %s: %w: %d messages in %d bytes, max %d", s.dir, ErrTooLarge, n, size, s.opts.MaxBytes)
		s.drop(Drop{Reason: TooLarge, Batches: 1, Messages: n, Kinds: kinds, Err: err})
		return err
	}
	if s.used+size > s.opts.MaxBytes {
		if s.opts.FullPolicy == DropNewest && !s.expendable(ks) && s.opts.Expendable != 0 {
			// A batch that is not expendable takes the place of
			// expendable ones, if they make room.
			d := Drop{Reason: FullNewest}
			s.dropNewestExpendable(&d, size)
			if d.Batches > 0 {
				d.Err = fmt.Errorf("spool full (%d bytes): dropped the newest %d expendable messages in %d batches (%s) for a batch that is not", s.opts.MaxBytes, d.Messages, d.Batches, s.kindsSaid(d.Kinds))
				s.drop(d)
				s.persistAck()
			}
		}
	}
	if s.used+size > s.opts.MaxBytes {
		if s.opts.FullPolicy == DropNewest {
			err := fmt.Errorf("spool %s: %w: %d of %d bytes used, batch of %d messages needs %d", s.dir, ErrFull, s.used, s.opts.MaxBytes, n, size)
			s.drop(Drop{Reason: FullNewest, Batches: 1, Messages: n, Kinds: kinds, Err: err})
			return err
		}
		if err := s.makeRoom(size); err != nil {
			return s.notWritten(fmt.Errorf("spool %s: making room: %w", s.dir, err), n, kinds, keep)
		}
	}
	if err := s.ensureSegment(size); err != nil {
		return s.notWritten(fmt.Errorf("spool %s: %w", s.dir, err), n, kinds, keep)
	}
	seg := s.active
	s.wbuf = s.wbuf[:0]
	if ends == nil {
		s.wbuf = appendRecord(s.wbuf, s.nextSeq, batch)
	}
	start := 0
	for i, e := range ends {
		if s.opts.FullPolicy == DropNewest && s.opts.Expendable.Has(batch[start].kind()) {
			s.rememberExpendable(seg, seg.size+int64(len(s.wbuf)))
		}
		s.wbuf = appendRecord(s.wbuf, s.nextSeq+uint64(start), batch[start:e])
		start = ends[i]
	}
	_, err := seg.w.WriteAt(s.wbuf, seg.size)
	if err == nil && s.plan.segmentOnAppend {
		err = s.fsync(seg.w, seg.path)
	}
	if cap(s.wbuf) > 4<<20 {
		s.wbuf = nil // one huge batch should not pin its buffer forever
	}
	if err != nil {
		s.undoWrite(seg, n)
		return s.notWritten(fmt.Errorf("spool %s: %w", s.dir, err), n, kinds, keep)
	}
	if ends == nil && s.opts.FullPolicy == DropNewest && s.expendable(ks) {
		s.rememberExpendable(seg, seg.size)
	}
	records := max(len(ends), 1)
	seg.size += size
	if s.plan.segmentOnAppend {
		seg.synced = seg.size
	}
	seg.records += records
	s.batches += records
	s.used += size
	s.nextSeq += n
	s.stats.AppendedBatches += uint64(records)
	s.stats.AppendedMessages += n
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return nil
}

// notWritten is the outcome of an append of n messages that failed with
// err: counted as a WriteError drop, unless the caller keeps the batch.
func (s *Spool) notWritten(err error, n uint64, kinds [NumKinds]uint64, keep bool) error {
	if keep {
		return fmt.Errorf("%w: %w", ErrNotWritten, err)
	}
	s.drop(Drop{Reason: WriteError, Batches: 1, Messages: n, Kinds: kinds, Err: err})
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
	if s.plan.dirOnCreate {
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

// seal stops appends to seg, syncing it as the plan says of a segment that
// stops taking appends.
func (s *Spool) seal(seg *segment) {
	if s.plan.segmentOnSeal && seg.synced < seg.size {
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
	s.dropExpendable(&d, size)
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
		if sp.h.end() > s.ackPos && !sp.h.dropped() {
			s.countKinds(&d, seg, sp, s.ackPos)
			d.Batches++
			d.Messages += sp.h.end() - max(sp.h.first, s.ackPos)
			s.ackPos = sp.h.end()
		}
		s.ackPos = max(s.ackPos, sp.h.end())
		s.advance(seg, sp)
	}
	if errors.Is(err, ErrEmpty) {
		err = nil // nothing left to drop; the record fits by itself
	}
	if d.Batches > 0 {
		d.Reason = FullOldest
		d.Err = fmt.Errorf("spool full (%d bytes): dropped the oldest %d messages in %d batches (%s)", s.opts.MaxBytes, d.Messages, d.Batches, s.kindsSaid(d.Kinds))
		s.drop(d)
		s.persistAck()
	}
	return err
}
