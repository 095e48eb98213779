package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"
)

// Record framing, versions 1 and 2 (see the package documentation for the
// byte layout). Appends write version 2; version 1 records (no kinds) are
// still read, their messages of kind KindUnknown.
const (
	headerSize    = 32
	messageHeader = 16 // key length, value length, time
	recordV1      = 1
	recordVersion = 2

	// flagDropped marks a version 2 record dropped in place to make room
	// (dropExpendable): its payload is not read nor checked, its messages
	// were counted as dropped when it was marked.
	flagDropped = 0x01

	// maxPayload is what the u32 length field can say.
	maxPayload = math.MaxUint32
)

// recordMagic opens every record: "BWSR", bindwatch spool record.
var recordMagic = [4]byte{'B', 'W', 'S', 'R'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// header is a record's fixed header, decoded.
type header struct {
	version uint8
	flags   uint8
	kinds   KindSet // version 2: the kinds of the record's messages
	first   uint64  // spool sequence number of the record's first message
	count   uint32  // messages in the record
	length  uint32  // payload bytes after the header
	crc     uint32  // CRC-32C of header bytes 0..27 and the payload
}

// end is the sequence number after the record's last message.
func (h header) end() uint64 { return h.first + uint64(h.count) }

// size is the record's bytes on disk, header included.
func (h header) size() int64 { return headerSize + int64(h.length) }

// dropped reports a record marked dropped in place.
func (h header) dropped() bool { return h.flags&flagDropped != 0 }

// put writes h as the record header's bytes into b (headerSize of them):
// bytes 0..27 and their CRC, then h.crc, the record's.
func (h header) put(b []byte) {
	copy(b[0:4], recordMagic[:])
	b[4], b[5] = h.version, h.flags
	binary.LittleEndian.PutUint16(b[6:8], uint16(h.kinds))
	binary.LittleEndian.PutUint64(b[8:16], h.first)
	binary.LittleEndian.PutUint32(b[16:20], h.count)
	binary.LittleEndian.PutUint32(b[20:24], h.length)
	binary.LittleEndian.PutUint32(b[24:28], crc32.Checksum(b[0:24], castagnoli))
	binary.LittleEndian.PutUint32(b[28:32], h.crc)
}

// kindsLen is the bytes of per-message kinds that open the payload.
func (h header) kindsLen() int64 {
	if h.version == recordV1 {
		return 0
	}
	return int64(h.count)
}

var (
	// errNoHeader: the bytes are not a record header (bad magic or header
	// CRC), so nothing in them, the length least of all, can be trusted.
	errNoHeader = errors.New("no valid record header")
	// errUnsupported: the header is intact but says a version or flags this
	// reader does not know; its length is still right, so it can be skipped.
	errUnsupported = errors.New("unsupported record version or flags")
	// errPayload: the header is intact, the payload is not (CRC mismatch,
	// cut short, or not the messages the header announces).
	errPayload = errors.New("damaged record payload")
)

// parseHeader decodes and checks the fixed header in b[:headerSize]. A nil
// error or errUnsupported means the header itself is authentic.
func parseHeader(b []byte) (header, error) {
	if len(b) < headerSize {
		return header{}, fmt.Errorf("%w: %d bytes, want %d", errNoHeader, len(b), headerSize)
	}
	if [4]byte(b[0:4]) != recordMagic {
		return header{}, fmt.Errorf("%w: magic %x", errNoHeader, b[0:4])
	}
	if got, want := crc32.Checksum(b[0:24], castagnoli), binary.LittleEndian.Uint32(b[24:28]); got != want {
		return header{}, fmt.Errorf("%w: header crc %08x, stored %08x", errNoHeader, got, want)
	}
	h := header{
		version: b[4],
		flags:   b[5],
		kinds:   KindSet(binary.LittleEndian.Uint16(b[6:8])),
		first:   binary.LittleEndian.Uint64(b[8:16]),
		count:   binary.LittleEndian.Uint32(b[16:20]),
		length:  binary.LittleEndian.Uint32(b[20:24]),
		crc:     binary.LittleEndian.Uint32(b[28:32]),
	}
	switch {
	case h.version == recordV1 && h.flags == 0 && h.kinds == 0:
	case h.version == recordVersion && h.flags&^flagDropped == 0 && h.length >= h.count:
	default:
		return h, fmt.Errorf("%w: version %d, flags %#x, bytes 6..7 %#x", errUnsupported, h.version, h.flags, b[6:8])
	}
	return h, nil
}

// recordSize is the framed size of msgs, computed without encoding them.
func recordSize(msgs []Message) int64 {
	n := int64(headerSize)
	for i := range msgs {
		n += 1 + messageHeader + int64(len(msgs[i].Key)) + int64(len(msgs[i].Value))
	}
	return n
}

// appendRecord appends msgs framed as one record, numbered from first, to
// dst. The caller has checked that the payload fits maxPayload and that
// there are at most math.MaxUint32 messages.
func appendRecord(dst []byte, first uint64, msgs []Message) []byte {
	return appendRecordVersion(dst, recordVersion, first, msgs)
}

// appendRecordVersion is appendRecord in the given version: recordV1 (no
// kinds: the messages' Kind is not written) is for tests, and readers of
// old spools.
func appendRecordVersion(dst []byte, version uint8, first uint64, msgs []Message) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, headerSize)...) // put below, once the payload is known
	h := header{version: version, first: first, count: uint32(len(msgs))}
	if version != recordV1 {
		for i := range msgs {
			k := msgs[i].kind()
			h.kinds |= KindSet(1) << k
			dst = append(dst, byte(k))
		}
	}
	for i := range msgs {
		m := &msgs[i]
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(m.Key)))
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(m.Value)))
		var t int64
		if !m.Time.IsZero() {
			t = m.Time.UnixNano()
		}
		dst = binary.LittleEndian.AppendUint64(dst, uint64(t))
		dst = append(dst, m.Key...)
		dst = append(dst, m.Value...)
	}
	rec := dst[start:]
	h.length = uint32(len(rec) - headerSize)
	h.put(rec)
	h.crc = crc32.Update(crc32.Checksum(rec[0:28], castagnoli), castagnoli, rec[headerSize:])
	binary.LittleEndian.PutUint32(rec[28:32], h.crc)
	return dst
}

// decodePayload splits a checked payload into h.count messages. Keys and
// values are sub-slices of p, so p must not be reused; an empty key or
// value comes back nil.
func decodePayload(h header, p []byte) ([]Message, error) {
	// The count is bounded by the payload before anything is allocated
	// from it: every message takes at least messageHeader bytes.
	nk := h.kindsLen() // one byte a message in version 2
	if uint64(h.count)*messageHeader+uint64(nk) > uint64(len(p)) {
		return nil, fmt.Errorf("%w: %d messages cannot fit in %d bytes", errPayload, h.count, len(p))
	}
	msgs := make([]Message, h.count)
	off := int(nk)
	for i := range msgs {
		if nk > 0 {
			k := Kind(p[i])
			if k >= NumKinds || !h.kinds.Has(k) {
				return nil, fmt.Errorf("%w: message %d of kind %d, not in the header's kinds %#x", errPayload, i, k, uint16(h.kinds))
			}
			msgs[i].Kind = k
		}
		if len(p)-off < messageHeader {
			return nil, fmt.Errorf("%w: message %d header cut at byte %d", errPayload, i, off)
		}
		kl := uint64(binary.LittleEndian.Uint32(p[off:]))
		vl := uint64(binary.LittleEndian.Uint32(p[off+4:]))
		t := int64(binary.LittleEndian.Uint64(p[off+8:]))
		off += messageHeader
		if kl+vl > uint64(len(p)-off) {
			return nil, fmt.Errorf("%w: message %d needs %d bytes, %d left", errPayload, i, kl+vl, len(p)-off)
		}
		m := &msgs[i]
		if kl > 0 {
			m.Key = p[off : off+int(kl) : off+int(kl)]
		}
		off += int(kl)
		if vl > 0 {
			m.Value = p[off : off+int(vl) : off+int(vl)]
		}
		off += int(vl)
		if t != 0 {
			m.Time = time.Unix(0, t)
		}
	}
	if off != len(p) {
		return nil, fmt.Errorf("%w: %d bytes after the last message", errPayload, len(p)-off)
	}
	if nk > 0 {
		var seen KindSet
		for i := range msgs {
			seen |= KindSet(1) << msgs[i].Kind
		}
		if seen != h.kinds {
			return nil, fmt.Errorf("%w: the header's kinds %#x are not the messages' %#x", errPayload, uint16(h.kinds), uint16(seen))
		}
	}
	return msgs, nil
}

// checkPayload reports whether payload matches the record CRC of the header
// bytes hb.
func checkPayload(hb []byte, h header, payload []byte) bool {
	return crc32.Update(crc32.Checksum(hb[0:28], castagnoli), castagnoli, payload) == h.crc
}

// Kind classifies a message for the spool: which records a full spool
// drops first (Options.Expendable) and how its drops are counted
// (Stats.DroppedByKind). Its meaning is the caller's; KindUnknown is a
// message of no kind, and every message of a version 1 record.
type Kind uint8

// KindUnknown is the zero Kind.
const KindUnknown Kind = 0

// NumKinds bounds Kind: a message's kind must be below it.
const NumKinds = 16

// KindSet is a set of kinds, bit k for Kind k.
type KindSet uint16

// Kinds returns the set of ks.
func Kinds(ks ...Kind) KindSet {
	var s KindSet
	for _, k := range ks {
		s |= KindSet(1) << k
	}
	return s
}

// Has reports whether k is in s.
func (s KindSet) Has(k Kind) bool { return k < NumKinds && s&(KindSet(1)<<k) != 0 }

// only returns the one kind in s, if s holds exactly one.
func (s KindSet) only() (Kind, bool) {
	if s == 0 || s&(s-1) != 0 {
		return 0, false
	}
	k := Kind(0)
	for s&1 == 0 {
		s >>= 1
		k++
	}
	return k, true
}

// kind is m's Kind, KindUnknown if out of range.
func (m *Message) kind() Kind {
	if m.Kind >= NumKinds {
		return KindUnknown
	}
	return m.Kind
}
