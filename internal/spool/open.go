package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

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
		plan:     planSyncs(opts.Fsync),
		log:      opts.Logger.With("component", "spool", "dir", dir),
		dirf:     dirf,
		ack:      ack,
		notify:   make(chan struct{}, 1),
		hr:       newSegmentReader(nil, 0),
		sr:       newSegmentReader(nil, 0),
		dirDirty: created,
	}
	s.mu.Lock() // only for unlockReport, which reports what load finds
	if err := s.load(slot, haveAck); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	if _, err := s.storeAck(s.plan.ackAtOpen); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	if s.plan.dirAtOpen {
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
			switch {
			case sp.kind != spanGarbage && sp.h.dropped():
				seg.dropped += sp.end - sp.off
				seg.dead += deadBytes(sp)
			case sp.kind == spanRecord:
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
		if s.plan.segmentsAtOpen {
			// A crashed process's writes may still be only in the page
			// cache; from now on this segment counts as closed.
			if err := s.fsync(f, sf.path); err != nil {
				s.syncFailed(err)
			}
		}
		f.Close() // reopened when the replay gets there
		s.segs = append(s.segs, seg)
		s.batches += seg.records
		s.used += seg.size - seg.dropped
		s.dead += seg.dead
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
