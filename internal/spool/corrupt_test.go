package spool

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

const (
	corruptMsgs = 3
	corruptSize = 120
)

// tenBatchSpool writes batches 0..9 into one segment of a new spool and
// returns the directory, the segment's path and each record's offset.
func tenBatchSpool(t *testing.T) (dir, seg string, offs []int64) {
	t.Helper()
	dir = t.TempDir()
	s := mustOpen(t, dir, Options{MaxBytes: 1 << 20})
	rec := recordSize(batchOf(0, corruptMsgs, corruptSize))
	for i := range 10 {
		mustAppend(t, s, batchOf(i, corruptMsgs, corruptSize))
		offs = append(offs, int64(i)*rec)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segmentFiles(t, dir)
	if len(segs) != 1 {
		t.Fatalf("segments %v, want one", segs)
	}
	return dir, segs[0], offs
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptRecordsSkipped flips bytes in records and checks that exactly
// the damaged records are skipped, their messages counted, and every other
// record replayed intact and in order.
func TestCorruptRecordsSkipped(t *testing.T) {
	rec := recordSize(batchOf(0, corruptMsgs, corruptSize))
	type flip struct {
		record int
		at     int64 // offset within the record
	}
	tests := []struct {
		name    string
		flips   []flip
		lost    []int
		regions uint64
	}{
		{"magic", []flip{{4, 0}}, []int{4}, 1},
		{"version", []flip{{4, 4}}, []int{4}, 1},
		{"first", []flip{{4, 9}}, []int{4}, 1},
		{"count", []flip{{4, 17}}, []int{4}, 1},
		{"length", []flip{{4, 21}}, []int{4}, 1},
		{"header crc", []flip{{4, 25}}, []int{4}, 1},
		{"record crc", []flip{{4, 29}}, []int{4}, 1},
		{"payload start", []flip{{4, headerSize}}, []int{4}, 1},
		{"a key", []flip{{4, headerSize + messageHeader + 3}}, []int{4}, 1},
		{"middle of the payload", []flip{{4, rec / 2}}, []int{4}, 1},
		{"last byte", []flip{{4, rec - 1}}, []int{4}, 1},
		{"first record's header", []flip{{0, 2}}, []int{0}, 1},
		{"first record's payload", []flip{{0, rec - 5}}, []int{0}, 1},
		{"last record's payload", []flip{{9, headerSize + 1}}, []int{9}, 1},
		{"several records", []flip{{2, 50}, {5, 1}, {6, 20}, {8, rec - 1}}, []int{2, 5, 6, 8}, 3},
		{"one record in several places", []flip{{3, 3}, {3, 60}, {3, rec - 2}}, []int{3}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, seg, offs := tenBatchSpool(t)
			for _, f := range tt.flips {
				flipByte(t, seg, offs[f.record]+f.at)
			}
			var log dropLog
			s := mustOpen(t, dir, Options{MaxBytes: 1 << 20, OnDrop: log.add})
			defer s.Close()
			var want []int
			for i := range 10 {
				if !slices.Contains(tt.lost, i) {
					want = append(want, i)
				}
			}
			if got := drain(t, s, corruptSize); !slices.Equal(got, want) {
				t.Fatalf("replayed %v, want %v", got, want)
			}
			st := s.Stats()
			wantLost := uint64(len(tt.lost) * corruptMsgs)
			if st.DroppedMessages[Corrupt] != wantLost || st.Dropped() != wantLost || log.messages(Corrupt) != wantLost {
				t.Fatalf("dropped %v (reported %d), want %d corrupt", st.DroppedMessages, log.messages(Corrupt), wantLost)
			}
			if st.CorruptRegions != tt.regions {
				t.Fatalf("%d corrupt regions, want %d", st.CorruptRegions, tt.regions)
			}
			// A restart after the drain neither replays nor recounts.
			s.Close()
			s = mustOpen(t, dir, Options{MaxBytes: 1 << 20})
			if _, err := s.Peek(); err != ErrEmpty {
				t.Fatalf("Peek after reopening the drained spool: %v", err)
			}
			if st := s.Stats(); st.Dropped() != 0 {
				t.Fatalf("recounted after reopen: %v", st.DroppedMessages)
			}
		})
	}
}

// TestCorruptLastHeaderUncountable: unreadable bytes at the very end hide
// how many messages they held. The region is counted and reported; the
// messages cannot be.
func TestCorruptLastHeaderUncountable(t *testing.T) {
	dir, seg, offs := tenBatchSpool(t)
	flipByte(t, seg, offs[9]+1)
	var log dropLog
	s := mustOpen(t, dir, Options{MaxBytes: 1 << 20, OnDrop: log.add})
	defer s.Close()
	if got := drain(t, s, corruptSize); !slices.Equal(got, seq(0, 8)) {
		t.Fatalf("replayed %v", got)
	}
	if st := s.Stats(); st.CorruptRegions != 1 || len(log.drops) != 1 || log.drops[0].Reason != Corrupt {
		t.Fatalf("stats %+v, drops %+v: want one corrupt region reported", st, log.drops)
	}
}

// TestCorruptionFoundWhileOpen: damage that appears after Open is found
// when the replay reads it.
func TestCorruptionFoundWhileOpen(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{MaxBytes: 1 << 20, Fsync: FsyncAlways})
	defer s.Close()
	for i := range 3 {
		mustAppend(t, s, batchOf(i, corruptMsgs, corruptSize))
	}
	rec := recordSize(batchOf(0, corruptMsgs, corruptSize))
	flipByte(t, segmentFiles(t, dir)[0], rec+rec/2)
	if got := drain(t, s, corruptSize); !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("replayed %v, want [0 2]", got)
	}
	if st := s.Stats(); st.DroppedMessages[Corrupt] != corruptMsgs || st.CorruptRegions != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTruncatedTail(t *testing.T) {
	rec := recordSize(batchOf(0, corruptMsgs, corruptSize))
	tests := []struct {
		name    string
		cut     int64 // bytes of the last record that remain
		counted uint64
	}{
		// The header is gone: the region is counted, its messages cannot be.
		{"in the magic", 3, 0},
		{"in the header", headerSize - 1, 0},
		// The header is whole: it says how many messages were lost.
		{"after the header", headerSize, corruptMsgs},
		{"in the payload", rec / 2, corruptMsgs},
		{"one byte short", rec - 1, corruptMsgs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, seg, offs := tenBatchSpool(t)
			if err := os.Truncate(seg, offs[9]+tt.cut); err != nil {
				t.Fatal(err)
			}
			s := mustOpen(t, dir, Options{MaxBytes: 1 << 20})
			defer s.Close()
			if n, _ := s.Len(); n != 9 {
				t.Fatalf("Len = %d after losing the last record, want 9", n)
			}
			// Appends after the damage go to a new segment and come back.
			mustAppend(t, s, batchOf(10, corruptMsgs, corruptSize))
			if got := drain(t, s, corruptSize); !slices.Equal(got, append(seq(0, 8), 10)) {
				t.Fatalf("replayed %v", got)
			}
			if st := s.Stats(); st.DroppedMessages[Corrupt] != tt.counted || st.CorruptRegions != 1 {
				t.Fatalf("dropped %v in %d regions, want %d corrupt in 1", st.DroppedMessages, st.CorruptRegions, tt.counted)
			}
		})
	}
}

// TestAbsurdLength: a header claiming a 4 GiB payload, with or without a
// matching header CRC, costs no more memory than the file holds.
func TestAbsurdLength(t *testing.T) {
	for _, validCRC := range []bool{true, false} {
		name := "bad header crc"
		if validCRC {
			name = "valid header crc"
		}
		t.Run(name, func(t *testing.T) {
			dir, seg, offs := tenBatchSpool(t)
			f, err := os.OpenFile(seg, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			hdr := make([]byte, headerSize)
			f.ReadAt(hdr, offs[5])
			binary.LittleEndian.PutUint32(hdr[20:24], 0xfffffff0)
			if validCRC {
				reheader(hdr)
			}
			f.WriteAt(hdr, offs[5])
			f.Close()

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			s := mustOpen(t, dir, Options{MaxBytes: 1 << 20})
			defer s.Close()
			got := drain(t, s, corruptSize)
			runtime.ReadMemStats(&after)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
				t.Fatalf("opening and draining allocated %d bytes", alloc)
			}
			// Either way the next authentic header ends the damage: only
			// record 5 is lost, as its header or the gap says.
			if want := append(seq(0, 4), seq(6, 9)...); !slices.Equal(got, want) {
				t.Fatalf("replayed %v, want %v", got, want)
			}
			wantLost := uint64(corruptMsgs)
			if st := s.Stats(); st.DroppedMessages[Corrupt] != wantLost {
				t.Fatalf("dropped %v, want %d corrupt", st.DroppedMessages, wantLost)
			}
		})
	}
}

// TestDamageDroppedForRoomIsCorrupt: DropOldest meeting damaged bytes
// counts them as corrupt, not as dropped for room.
func TestDamageDroppedForRoomIsCorrupt(t *testing.T) {
	dir, seg, offs := tenBatchSpool(t)
	flipByte(t, seg, offs[0]+headerSize+7)
	rec := recordSize(batchOf(0, corruptMsgs, corruptSize))
	s := mustOpen(t, dir, Options{MaxBytes: 10 * rec})
	defer s.Close()
	mustAppend(t, s, batchOf(10, corruptMsgs, corruptSize))
	mustAppend(t, s, batchOf(11, corruptMsgs, corruptSize))
	st := s.Stats()
	if st.DroppedMessages[Corrupt] != corruptMsgs || st.DroppedMessages[FullOldest] != corruptMsgs {
		t.Fatalf("dropped %v, want record 0 as corrupt and record 1 for room", st.DroppedMessages)
	}
	if got := drain(t, s, corruptSize); !slices.Equal(got, seq(2, 11)) {
		t.Fatalf("replayed %v", got)
	}
	_ = filepath.Base(dir)
}

// TestCutWhileOpen: a segment cut short by something else while the spool
// is open is read up to the cut; the records lost are counted (the one cut
// through by its header, the one after it by the gap the next append
// shows), and appends go on in a new segment.
func TestCutWhileOpen(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{MaxBytes: 1 << 20})
	defer s.Close()
	rec := recordSize(batchOf(0, corruptMsgs, corruptSize))
	for i := range 5 {
		mustAppend(t, s, batchOf(i, corruptMsgs, corruptSize))
	}
	b, err := s.Peek()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(b); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(segmentFiles(t, dir)[0], 3*rec+rec/2); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, s, corruptSize); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("replayed %v, want [1 2]", got)
	}
	mustAppend(t, s, batchOf(5, corruptMsgs, corruptSize))
	if got := drain(t, s, corruptSize); !slices.Equal(got, []int{5}) {
		t.Fatalf("replayed %v after the cut, want [5]", got)
	}
	st := s.Stats()
	if st.DroppedMessages[Corrupt] != 2*corruptMsgs || st.CorruptRegions != 2 || st.Batches != 0 || st.Bytes != 0 {
		t.Fatalf("stats %+v, want 2 batches' messages lost in 2 regions and an empty spool", st)
	}
	if n := len(segmentFiles(t, dir)); n != 1 {
		t.Fatalf("%d segments left, want the one taking appends", n)
	}
}
