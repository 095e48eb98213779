package spool

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Walking a segment: every byte of a segment file belongs to exactly one
// span, and spans follow each other without gaps, so a reader that goes from
// span to span sees every record and every damaged byte exactly once.
type spanKind uint8

const (
	// spanRecord is a record with an intact header; its payload CRC was
	// checked if the walk was asked to verify.
	spanRecord spanKind = iota
	// spanDamaged is a record whose header is intact but whose payload is
	// not (CRC mismatch, cut by the end of the file) or whose version this
	// reader does not know. The header says how many messages it held.
	spanDamaged
	// spanGarbage is bytes without a valid header, up to the next valid
	// header or the end of the file. Nothing in them can be trusted, so
	// what they held is known only from the sequence numbers around them.
	spanGarbage
)

func (k spanKind) String() string {
	switch k {
	case spanRecord:
		return "record"
	case spanDamaged:
		return "damaged record"
	default:
		return "unreadable bytes"
	}
}

type span struct {
	kind     spanKind
	off, end int64
	h        header // spanRecord and spanDamaged
	err      error  // why the span is damaged or garbage
}

const (
	// windowBytes is how much a walk reads at a time when it must read
	// everything (payload CRCs, searching for the next header).
	windowBytes = 256 << 10
	// headerFill is how much a walk reads when it wants a header: enough to
	// hold the headers of many small records, little when records are big.
	headerFill = 4 << 10
)

// segmentReader walks the spans of one segment of known size through a
// read window, so that scanning costs few system calls and its memory does
// not depend on what the headers claim.
type segmentReader struct {
	r    io.ReaderAt
	size int64
	buf  []byte // window, len == cap == windowBytes once allocated
	woff int64  // file offset of buf[0]
	wn   int    // valid bytes in buf
}

func newSegmentReader(r io.ReaderAt, size int64) *segmentReader {
	return &segmentReader{r: r, size: size}
}

// at returns the bytes [off, off+n) clipped to the end of the segment,
// reading fill bytes into the window when they are not there. The slice is
// valid until the next call. n must not exceed windowBytes.
func (sr *segmentReader) at(off int64, n, fill int) ([]byte, error) {
	if rest := sr.size - off; int64(n) > rest {
		n = int(max(rest, 0))
	}
	if off >= sr.woff && off+int64(n) <= sr.woff+int64(sr.wn) {
		return sr.buf[off-sr.woff : off-sr.woff+int64(n)], nil
	}
	if sr.buf == nil {
		sr.buf = make([]byte, windowBytes)
	}
	fill = min(max(fill, n), windowBytes)
	if rest := sr.size - off; int64(fill) > rest {
		fill = int(rest)
	}
	got, err := sr.r.ReadAt(sr.buf[:fill], off)
	if got < fill {
		sr.wn = 0
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the file is shorter than it was
		}
		return nil, fmt.Errorf("read %d bytes at %d: %w", fill, off, err)
	}
	sr.woff, sr.wn = off, got
	return sr.buf[:n], nil
}

// next returns the span that starts at off, io.EOF at the end of the
// segment. With verify, a record's payload CRC is checked (reading it
// whole); without, only its header is read.
func (sr *segmentReader) next(off int64, verify bool) (span, error) {
	if off >= sr.size {
		return span{}, io.EOF
	}
	hb, err := sr.at(off, headerSize, headerFill)
	if err != nil {
		return span{}, err
	}
	h, herr := parseHeader(hb)
	if herr != nil && !errors.Is(herr, errUnsupported) {
		return sr.garbage(off, herr)
	}
	end := off + h.size()
	if end > sr.size {
		// A torn write, or a length that lies: records found inside are
		// kept either way.
		q, err := sr.findHeader(off+1, sr.size)
		if err != nil {
			return span{}, err
		}
		return span{kind: spanDamaged, off: off, end: q, h: h,
			err: fmt.Errorf("%w: record of %d bytes cut short by the end of the segment at %d", errPayload, h.size(), sr.size)}, nil
	}
	if herr != nil {
		return span{kind: spanDamaged, off: off, end: end, h: h, err: herr}, nil
	}
	if verify && !h.dropped() {
		var hdr [headerSize]byte
		copy(hdr[:], hb)
		crc := crc32.Checksum(hdr[0:28], castagnoli)
		for p := off + headerSize; p < end; {
			chunk, err := sr.at(p, int(min(end-p, windowBytes)), windowBytes)
			if err != nil {
				return span{}, err
			}
			crc = crc32.Update(crc, castagnoli, chunk)
			p += int64(len(chunk))
		}
		if crc != h.crc {
			q, err := sr.findHeader(off+1, end)
			if err != nil {
				return span{}, err
			}
			return span{kind: spanDamaged, off: off, end: q, h: h,
				err: fmt.Errorf("%w: crc %08x, stored %08x", errPayload, crc, h.crc)}, nil
		}
	}
	return span{kind: spanRecord, off: off, end: end, h: h}, nil
}

// garbage returns the span of unreadable bytes from off to the next
// authentic header or the end of the segment.
func (sr *segmentReader) garbage(off int64, why error) (span, error) {
	q, err := sr.findHeader(off+1, sr.size)
	if err != nil {
		return span{}, err
	}
	return span{kind: spanGarbage, off: off, end: q, err: why}, nil
}

// findHeader returns the first offset in [from, limit) holding an authentic
// header (its CRC must match, so that a magic inside a payload does not
// count), or limit.
func (sr *segmentReader) findHeader(from, limit int64) (int64, error) {
	for p := from; p < limit; {
		chunk, err := sr.at(p, int(min(limit-p+int64(len(recordMagic))-1, windowBytes)), windowBytes)
		if err != nil {
			return 0, err
		}
		i := bytes.Index(chunk, recordMagic[:])
		if i < 0 || p+int64(i) >= limit {
			if len(chunk) < len(recordMagic) || p+int64(len(chunk)) >= limit {
				break
			}
			// A magic may straddle the window's end.
			p += int64(len(chunk) - len(recordMagic) + 1)
			continue
		}
		q := p + int64(i)
		hb, err := sr.at(q, headerSize, headerFill)
		if err != nil {
			return 0, err
		}
		if _, err := parseHeader(hb); err == nil || errors.Is(err, errUnsupported) {
			return q, nil
		}
		p = q + 1
	}
	return limit, nil
}
