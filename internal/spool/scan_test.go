package spool

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// spanShape is what a test expects of one span.
type spanShape struct {
	kind  spanKind
	first uint64 // records and damaged records
	count uint32
}

func TestWalkSegment(t *testing.T) {
	r0 := appendRecord(nil, 0, batchOf(0, 2, 50))
	r1 := appendRecord(nil, 2, batchOf(1, 3, 50))
	r2 := appendRecord(nil, 5, batchOf(2, 1, 50))
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	flip := func(rec []byte, off int) []byte {
		c := bytes.Clone(rec)
		c[off] ^= 0x40
		return c
	}
	unsupported := bytes.Clone(r1)
	unsupported[4] = 3
	reheader(unsupported)
	absurd := bytes.Clone(r1[:headerSize])
	binary.LittleEndian.PutUint32(absurd[20:24], 0xfffffff0)
	reheader(absurd)
	rec, dmg, gbg := spanRecord, spanDamaged, spanGarbage

	tests := []struct {
		name string
		seg  []byte
		// want with payload CRCs checked; unverified differs only in that
		// payload damage is not seen.
		want       []spanShape
		unverified []spanShape
	}{
		{"intact", cat(r0, r1, r2), []spanShape{{rec, 0, 2}, {rec, 2, 3}, {rec, 5, 1}}, nil},
		{"payload flipped", cat(r0, flip(r1, headerSize+40), r2),
			[]spanShape{{rec, 0, 2}, {dmg, 2, 3}, {rec, 5, 1}},
			[]spanShape{{rec, 0, 2}, {rec, 2, 3}, {rec, 5, 1}}},
		{"record crc flipped", cat(r0, flip(r1, 29), r2),
			[]spanShape{{rec, 0, 2}, {dmg, 2, 3}, {rec, 5, 1}},
			[]spanShape{{rec, 0, 2}, {rec, 2, 3}, {rec, 5, 1}}},
		{"magic flipped", cat(r0, flip(r1, 1), r2), []spanShape{{rec, 0, 2}, {gbg, 0, 0}, {rec, 5, 1}}, nil},
		{"length flipped", cat(r0, flip(r1, 21), r2), []spanShape{{rec, 0, 2}, {gbg, 0, 0}, {rec, 5, 1}}, nil},
		{"first record's header crc flipped", cat(flip(r0, 25), r1, r2), []spanShape{{gbg, 0, 0}, {rec, 2, 3}, {rec, 5, 1}}, nil},
		{"unsupported version skipped by length", cat(r0, unsupported, r2), []spanShape{{rec, 0, 2}, {dmg, 2, 3}, {rec, 5, 1}}, nil},
		{"torn in header", cat(r0, r1[:20]), []spanShape{{rec, 0, 2}, {gbg, 0, 0}}, nil},
		{"torn in payload", cat(r0, r1[:len(r1)-1]), []spanShape{{rec, 0, 2}, {dmg, 2, 3}}, nil},
		{"absurd length with a valid header crc", cat(r0, absurd), []spanShape{{rec, 0, 2}, {dmg, 2, 3}}, nil},
		{"zeros between", cat(r0, make([]byte, 1000), r2), []spanShape{{rec, 0, 2}, {gbg, 0, 0}, {rec, 5, 1}}, nil},
		{"zeros only", make([]byte, 3000), []spanShape{{gbg, 0, 0}}, nil},
		{"magic without header in garbage", cat(r0, []byte("xxBWSRyyBWS"), r2), []spanShape{{rec, 0, 2}, {gbg, 0, 0}, {rec, 5, 1}}, nil},
		{"garbage longer than the window", cat(r0, bytes.Repeat([]byte("BWS"), windowBytes), r2), []spanShape{{rec, 0, 2}, {gbg, 0, 0}, {rec, 5, 1}}, nil},
		{"record across window boundaries", cat(r0, appendRecord(nil, 2, batchOf(9, 3, windowBytes)), r2), []spanShape{{rec, 0, 2}, {rec, 2, 3}, {rec, 5, 1}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, verify := range []bool{true, false} {
				want := tt.want
				if !verify && tt.unverified != nil {
					want = tt.unverified
				}
				got := walk(t, tt.seg, verify)
				if len(got) != len(want) {
					t.Fatalf("verify=%v: %d spans %+v, want %d %+v", verify, len(got), got, len(want), want)
				}
				for i, sp := range got {
					w := want[i]
					if sp.kind != w.kind || (w.kind != spanGarbage && (sp.h.first != w.first || sp.h.count != w.count)) {
						t.Fatalf("verify=%v: span %d is %v first %d count %d, want %v first %d count %d",
							verify, i, sp.kind, sp.h.first, sp.h.count, w.kind, w.first, w.count)
					}
				}
			}
		})
	}
}
