package spool

import (
	"errors"
	"fmt"
	"os"
)

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

// storeAck writes the acknowledged position to the ack file and, when sync
// is set and the write went through, forces the file to stable storage.
// wrote tells a failed sync (err, wrote) from a failed write (err, !wrote),
// which callers report differently.
func (s *Spool) storeAck(sync bool) (wrote bool, err error) {
	if err := s.ack.write(s.ackPos); err != nil {
		return false, err
	}
	if sync {
		if err := s.fsync(s.ack.f, s.ack.path); err != nil {
			return true, err
		}
	}
	return true, nil
}

// persistAck stores the acknowledged position after it moved, syncing it
// as the policy asks of an acknowledgement.
func (s *Spool) persistAck() error {
	wrote, err := s.storeAck(s.plan.ackOnAck)
	if err != nil && !wrote {
		s.log.Error("cannot store the acknowledged position; a restart will replay from an older one", "error", err)
	}
	if err != nil && wrote {
		s.syncFailed(err)
	}
	return err
}

// removeHead deletes the first segment, read to its end. The acknowledged
// position is stored first, so that after a crash the segment's absence is
// not taken for lost messages.
func (s *Spool) removeHead() error {
	seg := s.segs[0]
	if wrote, err := s.storeAck(s.plan.ackBeforeRemove); err != nil {
		if wrote {
			s.syncFailed(err)
		}
		return err
	}
	s.dropHead(seg)
	s.removeFile(seg.path)
	return nil
}

// dropHead closes the head segment's files and takes it off the list:
// acknowledged (removeHead) or unreadable (skipSegment).
func (s *Spool) dropHead(seg *segment) {
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
	if s.srSeg == seg {
		s.srSeg = nil
	}
	if s.markSeg == seg {
		s.markF.Close()
		s.markF, s.markSeg = nil, nil
	}
	if s.scanSeg == seg {
		s.scanSeg = nil
	}
	if s.lastRunSeg == seg {
		s.lastRunSeg = nil
	}
	s.dead -= seg.dead
	seg.dead, seg.dropped = 0, 0
	s.segs = s.segs[1:]
	s.headOff = 0
}

func (s *Spool) removeFile(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		// It is acknowledged; the next Open removes it.
		s.log.Error("cannot remove a spent segment", "error", err)
		return
	}
	s.dirDirty = true
	if s.plan.dirOnRemove {
		s.syncDir()
	}
}
