package bpf

import (
	"errors"
	"slices"
	"testing"
)

// Records read ahead are returned in seq order, a record that does not
// decode where it lay, and Position never passes a record still to come.
func TestReadAheadSortsBySeq(t *testing.T) {
	bad := errors.New("malformed")
	var ahead []readRecord
	add := func(seq, start uint64, err error) {
		ahead = append(ahead, readRecord{ev: Event{Seq: seq}, err: err, start: start})
		placeBySeq(ahead)
	}
	// Ring order: 11, 12, 10 (two CPUs), a malformed record, 14, 13.
	add(11, 0, nil)
	add(12, 100, nil)
	add(10, 200, nil)
	add(0, 300, bad)
	add(14, 400, nil)
	add(13, 500, nil)
	var got []uint64
	var starts []uint64
	for _, a := range ahead {
		got = append(got, a.ev.Seq)
		starts = append(starts, a.start)
	}
	if want := []uint64{10, 11, 12, 0, 13, 14}; !slices.Equal(got, want) {
		t.Fatalf("seqs %v, want %v", got, want)
	}

	r := &Reader{ring: &ring{read: 600}, ahead: ahead}
	var ev Event
	var positions []uint64
	for len(r.ahead) > 0 {
		r.pop(&ev)
		positions = append(positions, r.Position())
	}
	// After 10 (at 200), 11 (at 0) is still to come: 0. After 11, 12's
	// 100; after 12, the malformed record's 300. 13 (at 500) goes before
	// 14 (at 400): 400 until 14 is returned, then where the reader is.
	if want := []uint64{0, 100, 300, 400, 400, 600}; !slices.Equal(positions, want) {
		t.Fatalf("positions %v, want %v (starts %v)", positions, want, starts)
	}
}
