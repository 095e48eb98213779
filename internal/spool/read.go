package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
)

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
		if sp.h.dropped() {
			s.countGap(seg, sp)
			s.ackPos = sp.h.end()
			s.advance(seg, sp)
			continue
		}
		if seg == s.active && s.plan.segmentBeforePeek && seg.synced < sp.end {
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
	// Records dropped in place are counted again from the headers left.
	s.used += seg.dropped
	s.dead -= seg.dead
	seg.dropped, seg.dead = 0, 0
	if s.srSeg == seg {
		s.sr.wn = 0
	}
	s.scanSeg, s.lastRunSeg = nil, nil
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
		switch {
		case sp.kind != spanGarbage && sp.h.dropped():
			seg.dropped += sp.end - sp.off
			seg.dead += deadBytes(sp)
		case sp.kind == spanRecord:
			seg.records++
		}
		off = sp.end
	}
	s.used -= seg.dropped
	s.dead += seg.dead
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
	s.used -= seg.size - s.headOff - seg.dropped
	s.dropHead(seg)
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
	if sp.kind != spanGarbage && sp.h.dropped() {
		s.advancePastDropped(seg, sp)
		s.peeked = nil
		return
	}
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
		if end := sp.h.end(); end > s.ackPos && sp.h.dropped() {
			// Dropped before, and counted then.
			s.countGap(seg, sp)
			s.ackPos = end
		} else if end > s.ackPos {
			d.Batches = 1
			d.Messages = end - max(sp.h.first, s.ackPos)
			if k, ok := sp.h.kinds.only(); ok && sp.h.version != recordV1 {
				d.Kinds[k] = d.Messages
			}
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
