package spool

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// Dropping by kind. A full spool gives up expendable records (all of their
// messages of kinds in Options.Expendable) before the others. The oldest
// expendable record is rarely at the head, where the spool drops by moving
// the acknowledged position; one further on is dropped in place: its
// header is rewritten with flagDropped (readers skip it, a restart does not
// replay it) and its payload's whole blocks are punched out of the file,
// which frees them on disk at once. The search for expendable records
// resumes where the last one ended (scanSeg, scanOff), so that protected
// records are stepped over once each, not at every append: appends stay
// O(1), and a full spool's drops cost one header read per record.

// punchBlock is the granularity assumed of hole punching: the bytes of a
// record dropped in place that stay on disk are its header and the
// partial blocks at each end of its payload.
const punchBlock = 4096

// deadShare bounds what records dropped in place keep on disk (Spool.dead)
// to MaxBytes/deadShare, on top of MaxBytes.
const deadShare = 8

// punched is the range of sp's payload a hole punch frees.
func punched(sp span) (off, n int64) {
	from := (sp.off + headerSize + punchBlock - 1) / punchBlock * punchBlock
	to := (sp.off + sp.h.size()) / punchBlock * punchBlock
	if to <= from {
		return from, 0
	}
	return from, to - from
}

// deadBytes is what the record of sp takes on disk once dropped in place.
func deadBytes(sp span) int64 {
	_, n := punched(sp)
	return sp.h.size() - n
}

// expendable reports whether a record of the kinds ks is expendable.
func (s *Spool) expendable(ks KindSet) bool {
	return s.opts.Expendable != 0 && ks != 0 && ks&^s.opts.Expendable == 0
}

// batchKinds returns the kinds of batch and its messages counted by kind.
func batchKinds(batch []Message) (KindSet, [NumKinds]uint64) {
	var ks KindSet
	var n [NumKinds]uint64
	for i := range batch {
		k := batch[i].kind()
		ks |= KindSet(1) << k
		n[k]++
	}
	return ks, n
}

// countKinds adds to d the kinds of the messages of the record sp in seg
// from sequence number from on: from its header when it holds one kind,
// else from the kinds that open its payload. What cannot be read is left
// for drop to count as KindUnknown.
func (s *Spool) countKinds(d *Drop, seg *segment, sp span, from uint64) {
	skip := uint64(0)
	if from > sp.h.first {
		skip = from - sp.h.first
	}
	if skip >= uint64(sp.h.count) {
		return
	}
	n := uint64(sp.h.count) - skip
	if sp.h.version == recordV1 {
		d.Kinds[KindUnknown] += n
		return
	}
	if k, ok := sp.h.kinds.only(); ok {
		d.Kinds[k] += n
		return
	}
	if seg.r == nil {
		return
	}
	buf := make([]byte, n)
	if _, err := seg.r.ReadAt(buf, sp.off+headerSize+int64(skip)); err != nil {
		return
	}
	for _, k := range buf {
		if Kind(k) < NumKinds && sp.h.kinds.Has(Kind(k)) {
			d.Kinds[k]++
		}
	}
}

// nextExpendable returns the oldest live expendable record at or after the
// scan position, and moves the position past it; ok is false when there is
// none.
func (s *Spool) nextExpendable() (seg *segment, sp span, ok bool) {
	if s.opts.Expendable == 0 || s.noPunch || len(s.segs) == 0 {
		return nil, span{}, false
	}
	i, off := 0, s.headOff
	if s.scanSeg != nil {
		j, found := slices.BinarySearchFunc(s.segs, s.scanSeg.index, func(g *segment, idx uint64) int {
			switch {
			case g.index < idx:
				return -1
			case g.index > idx:
				return 1
			}
			return 0
		})
		if found && s.segs[j] == s.scanSeg {
			i, off = j, s.scanOff
		}
	}
	for ; i < len(s.segs); i, off = i+1, 0 {
		seg = s.segs[i]
		if i == 0 {
			off = max(off, s.headOff)
		}
		s.scanSeg, s.scanOff = seg, off
		if seg.records == 0 || off >= seg.size {
			s.scanOff = seg.size
			continue
		}
		if seg.r == nil {
			f, err := os.Open(seg.path)
			if err != nil {
				continue // the head reader deals with it when it gets there
			}
			seg.r = f
		}
		if s.srSeg != seg {
			s.sr.r, s.sr.woff, s.sr.wn = seg.r, 0, 0
			s.srSeg = seg
		}
		s.sr.size = seg.size
		for off < seg.size {
			var err error
			sp, err = s.sr.next(off, false)
			if err != nil {
				break
			}
			off = sp.end
			s.scanOff = off
			if sp.kind != spanRecord || sp.h.dropped() || sp.h.end() <= s.ackPos || !s.expendable(sp.h.kinds) {
				continue
			}
			return seg, sp, true
		}
		s.scanOff = seg.size
	}
	return nil, span{}, false
}

// dropExpendable drops expendable records, oldest first, until size more
// bytes fit, counting them in d. It reports whether they fit.
func (s *Spool) dropExpendable(d *Drop, size int64) bool {
	for s.used+size > s.opts.MaxBytes {
		seg, sp, ok := s.nextExpendable()
		if !ok {
			return false
		}
		if !s.dropOne(d, seg, sp) {
			// The record stays, for the next search.
			s.scanSeg, s.scanOff = seg, sp.off
			return false
		}
	}
	return true
}

// dropNewestExpendable drops the newest expendable records appended
// (Spool.recent), newest first, until size more bytes fit, counting them
// in d. It reports whether they fit.
func (s *Spool) dropNewestExpendable(d *Drop, size int64) bool {
	for s.used+size > s.opts.MaxBytes {
		if len(s.recent) == 0 || s.noPunch || len(s.segs) == 0 {
			return false
		}
		r := s.recent[len(s.recent)-1]
		s.recent = s.recent[:len(s.recent)-1]
		seg, sp, ok := s.spanAt(r)
		if !ok {
			continue // acknowledged or dropped since
		}
		if !s.dropOne(d, seg, sp) {
			s.recent = append(s.recent, r)
			return false
		}
	}
	return true
}

// recentRef is where an expendable record was appended.
type recentRef struct {
	seg *segment
	off int64
}

// maxRecent bounds Spool.recent: DropNewest finds the newest expendable
// records among the last ones appended (between maxRecent/2 and
// maxRecent of them), and no further back; then it refuses the batch.
const maxRecent = 1024

// spanAt returns the record at r if it is still live and expendable.
func (s *Spool) spanAt(r recentRef) (*segment, span, bool) {
	i, found := slices.BinarySearchFunc(s.segs, r.seg.index, func(g *segment, idx uint64) int {
		switch {
		case g.index < idx:
			return -1
		case g.index > idx:
			return 1
		}
		return 0
	})
	if !found || s.segs[i] != r.seg || (i == 0 && r.off < s.headOff) || r.off >= r.seg.size {
		return nil, span{}, false
	}
	seg := r.seg
	if seg.r == nil {
		f, err := os.Open(seg.path)
		if err != nil {
			return nil, span{}, false
		}
		seg.r = f
	}
	if s.srSeg != seg {
		s.sr.r, s.sr.woff, s.sr.wn = seg.r, 0, 0
		s.srSeg = seg
	}
	s.sr.size = seg.size
	sp, err := s.sr.next(r.off, false)
	if err != nil || sp.kind != spanRecord || sp.h.dropped() || sp.h.end() <= s.ackPos || !s.expendable(sp.h.kinds) {
		return nil, span{}, false
	}
	return seg, sp, true
}

// dropOne drops the expendable record sp of seg, at the head as the head
// always was, elsewhere in place, and counts it in d. It reports false,
// dropping nothing, when what dropped records keep on disk is at its bound
// or the record cannot be dropped in place.
func (s *Spool) dropOne(d *Drop, seg *segment, sp span) bool {
	n := sp.h.end() - max(sp.h.first, s.ackPos)
	if seg == s.segs[0] && sp.off == s.headOff {
		s.countKinds(d, seg, sp, s.ackPos)
		s.countGap(seg, sp)
		s.ackPos = sp.h.end()
		s.advance(seg, sp)
	} else {
		run, before := s.joinRun(seg, sp)
		if s.dead+deadBytes(run)-before > s.opts.MaxBytes/deadShare {
			// Freed when the replay or the head's drops pass them.
			return false
		}
		// Its kinds are read before its payload is punched out.
		var k Drop
		s.countKinds(&k, seg, sp, sp.h.first)
		if err := s.markDropped(seg, sp, run, before); err != nil {
			s.log.Error("cannot drop a record in place; the spool drops from its head from now on", "error", err)
			s.noPunch = true
			return false
		}
		for i, c := range k.Kinds {
			d.Kinds[i] += c
		}
		n = uint64(sp.h.count)
	}
	d.Batches++
	d.Messages += n
	return true
}

// markDropped drops the record sp of seg in place: its header is rewritten
// with flagDropped, then its payload's whole blocks are punched out. A
// record right after the last one dropped in place joins it: that header
// is rewritten to span both (its count and length grow), and the record's
// own header is punched out too, so a run of dropped records keeps two
// blocks on disk, not two each. run and before are joinRun's for sp.
func (s *Spool) markDropped(seg *segment, sp, run span, before int64) error {
	f := seg.w
	if f == nil {
		if s.markSeg != seg {
			if s.markF != nil {
				s.markF.Close()
				s.markF, s.markSeg = nil, nil
			}
			mf, err := os.OpenFile(seg.path, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			s.markF, s.markSeg = mf, seg
		}
		f = s.markF
	}
	h := run.h
	h.flags |= flagDropped
	var hb [headerSize]byte
	h.put(hb[:])
	if _, err := f.WriteAt(hb[:], run.off); err != nil {
		return fmt.Errorf("mark a dropped record in %s: %w", seg.path, err)
	}
	if s.plan.segmentOnAppend {
		// Under FsyncAlways the mark is on disk before the payload goes:
		// a crash cannot leave a record whose payload is holes.
		if err := s.fsync(f, seg.path); err != nil {
			s.syncFailed(err)
		}
	}
	// The readers' windows may hold the old header.
	if s.hrSeg == seg {
		s.hr.wn = 0
	}
	if s.srSeg == seg {
		s.sr.wn = 0
	}
	run.h = h
	if off, n := punched(run); n > 0 {
		err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
		if err != nil {
			// The record is dropped all the same, its bytes stay until
			// its segment goes; later ones are dropped from the head.
			s.noPunch = true
			s.dead += n
			seg.dead += n
			if !errors.Is(err, unix.EOPNOTSUPP) {
				s.log.Error("cannot punch a dropped record out of its segment", "segment", seg.path, "error", err)
			}
		}
	}
	size := sp.h.size()
	seg.records--
	s.batches--
	s.used -= size
	seg.dropped += size
	dead := deadBytes(run) - before
	seg.dead += dead
	s.dead += dead
	s.lastRun, s.lastRunSeg = run, seg
	return nil
}

// joinRun returns the span of dropped records sp is to be part of: the
// last run dropped in place when sp follows it, still ahead of the read
// position, else sp alone; and what that run kept on disk before.
func (s *Spool) joinRun(seg *segment, sp span) (span, int64) {
	r := s.lastRun
	if s.lastRunSeg != seg || r.end != sp.off || (seg == s.segs[0] && r.off < s.headOff) ||
		r.h.version != sp.h.version || uint64(r.h.count)+uint64(sp.h.count) > math.MaxUint32 {
		return sp, 0
	}
	before := deadBytes(r)
	r.h.count += sp.h.count
	r.h.length += uint32(sp.end - sp.off)
	r.h.kinds |= sp.h.kinds
	r.end = sp.end
	return r, before
}

// advancePastDropped accounts for the read position moving past sp, a
// record dropped in place.
func (s *Spool) advancePastDropped(seg *segment, sp span) {
	size := sp.end - sp.off
	seg.dropped -= size
	dead := min(deadBytes(sp), seg.dead)
	seg.dead -= dead
	s.dead -= dead
}

// kindsSaid lists counts by kind for a log line: "kind 1: 500, kind 2: 3".
func (s *Spool) kindsSaid(n [NumKinds]uint64) string {
	var b []byte
	for k, v := range n {
		if v == 0 {
			continue
		}
		if len(b) > 0 {
			b = append(b, ", "...)
		}
		if k < len(s.opts.KindNames) && s.opts.KindNames[k] != "" {
			b = fmt.Appendf(b, "%s %d", s.opts.KindNames[k], v)
		} else {
			b = fmt.Appendf(b, "kind %d: %d", k, v)
		}
	}
	if b == nil {
		return "no messages"
	}
	return string(b)
}

// rememberExpendable notes an expendable record appended at off of seg,
// for DropNewest.
func (s *Spool) rememberExpendable(seg *segment, off int64) {
	if len(s.recent) == maxRecent {
		// The older half goes: amortized O(1) an append.
		s.recent = append(s.recent[:0], s.recent[maxRecent/2:]...)
	}
	s.recent = append(s.recent, recentRef{seg: seg, off: off})
}

// splitAt returns where batch, size bytes as one record, is cut into
// records of expendable messages and records of the others, in order:
// the end of each run, or nil to write it as one record. A batch is cut
// only when it mixes both classes and the spool is past half full with
// it, where drops come near: then a bind storm's batch that holds a
// listen loses its binds to a full spool and keeps the listen, at the
// cost of more, smaller records to replay.
func (s *Spool) splitAt(batch []Message, ks KindSet, size int64) []int {
	if !s.opts.SplitMixed || s.opts.Expendable == 0 || s.noPunch || s.used+size <= s.opts.MaxBytes/2 ||
		ks&s.opts.Expendable == 0 || ks&^s.opts.Expendable == 0 {
		return nil
	}
	ends := s.ends[:0]
	for i := 1; i < len(batch); i++ {
		if s.opts.Expendable.Has(batch[i].kind()) != s.opts.Expendable.Has(batch[i-1].kind()) {
			ends = append(ends, i)
		}
	}
	ends = append(ends, len(batch))
	s.ends = ends
	return ends
}
