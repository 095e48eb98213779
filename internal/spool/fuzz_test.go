package spool

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzSegment feeds arbitrary bytes to the segment walk as a segment file.
// Whatever the bytes, the walk must not fail or panic, its spans must tile
// the input, a record whose CRC checks must decode (or be refused) without
// panicking and, when it decodes, encode back to the very same bytes, and
// the header-only walk must agree with the checked one on every record
// boundary it trusts.
func FuzzSegment(f *testing.F) {
	r0 := appendRecord(nil, 0, batchOf(0, 2, 30))
	r1 := appendRecord(nil, 2, []Message{{Key: []byte("k")}, {Value: []byte("v")}})
	f.Add(bytes.Join([][]byte{r0, r1}, nil))
	f.Add(r0[:len(r0)-3])
	f.Add(append(bytes.Clone(r0[:headerSize]), r1...))
	f.Add([]byte("BWSRBWSRBWSR"))
	// A version 1 record, and a version 2 one dropped in place.
	f.Add(appendRecordVersion(nil, recordV1, 0, batchOf(0, 2, 30)))
	dropped := bytes.Clone(r0)
	dropped[5] = flagDropped
	reheader(dropped)
	f.Add(bytes.Join([][]byte{dropped, r1}, nil))
	f.Fuzz(func(t *testing.T, seg []byte) {
		sr := readerOf(seg)
		var off int64
		for {
			sp, err := sr.next(off, true)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("next(%d): %v", off, err)
			}
			if sp.off != off || sp.end <= off || sp.end > int64(len(seg)) {
				t.Fatalf("span %+v after %d in %d bytes", sp, off, len(seg))
			}
			if sp.kind == spanRecord {
				rec := seg[sp.off:sp.end]
				msgs, err := decodePayload(sp.h, rec[headerSize:])
				// A record dropped in place is not read: its payload may
				// be anything (holes), its CRC that of what it was.
				if err == nil && !sp.h.dropped() {
					if again := appendRecordVersion(nil, sp.h.version, sp.h.first, msgs); !bytes.Equal(again, rec) {
						t.Fatalf("record at %d decodes to messages that encode differently:\n%x\n%x", off, rec, again)
					}
				} else if err != nil && !errors.Is(err, errPayload) {
					t.Fatalf("decodePayload: %v", err)
				}
				// The unchecked walk sees the same record here.
				u, err := readerOf(seg).next(off, false)
				if err != nil || u.kind != spanRecord || u.end != sp.end {
					t.Fatalf("unchecked walk at %d: %+v, %v; checked: %+v", off, u, err, sp)
				}
			}
			off = sp.end
		}
		if off != int64(len(seg)) {
			t.Fatalf("spans end at %d of %d", off, len(seg))
		}
	})
}

// FuzzAckFile: no ack file content makes parsing panic, and a valid slot
// wins only with its CRC.
func FuzzAckFile(f *testing.F) {
	b := make([]byte, ackFileSize)
	s := encodeAckSlot(ackSlot{generation: 3, next: 99})
	copy(b[ackSlotPitch:], s[:])
	f.Add(b)
	f.Add(b[:ackSlotSize])
	f.Fuzz(func(t *testing.T, b []byte) {
		slot, ok := parseAckFile(b)
		if !ok {
			return
		}
		e := encodeAckSlot(slot)
		if !bytes.Equal(b[:min(len(b), ackSlotSize)], e[:min(len(b), ackSlotSize)]) &&
			(len(b) < ackSlotPitch+ackSlotSize || !bytes.Equal(b[ackSlotPitch:ackSlotPitch+ackSlotSize], e[:])) {
			t.Fatalf("parsed %+v from a file holding no such slot", slot)
		}
	})
}
