package spool

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var policies = []FsyncPolicy{FsyncAlways, FsyncBatch, FsyncNever}

// TestOrderAcrossRotationAndReopen appends across many segments, acks part,
// reopens, appends more and drains: every batch comes back once, in order,
// and nothing acknowledged before the reopen comes back after it.
func TestOrderAcrossRotationAndReopen(t *testing.T) {
	const msgs, size = 5, 100
	recBytes := recordSize(batchOf(0, msgs, size))
	for _, policy := range policies {
		t.Run(string(policy), func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{MaxBytes: 1 << 20, Fsync: policy, SegmentBytes: 3 * recBytes}
			s := mustOpen(t, dir, opts)
			for i := range 20 {
				mustAppend(t, s, batchOf(i, msgs, size))
			}
			if n, b := s.Len(); n != 20 || b != 20*recBytes {
				t.Fatalf("Len = %d batches %d bytes, want 20 and %d", n, b, 20*recBytes)
			}
			if got := len(segmentFiles(t, dir)); got != 7 {
				t.Fatalf("%d segments for 20 records of 3 per segment, want 7", got)
			}
			var got []int
			for range 7 {
				b, err := s.Peek()
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, batchID(t, b, size))
				if err := s.Ack(b); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Equal(got, seq(0, 6)) {
				t.Fatalf("first 7 batches %v", got)
			}
			// Segments 1 and 2 (batches 0..5) are spent and gone.
			if got := len(segmentFiles(t, dir)); got != 5 {
				t.Fatalf("%d segments after acking 7 batches, want 5", got)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			s = mustOpen(t, dir, opts)
			if n, b := s.Len(); n != 13 || b != 13*recBytes {
				t.Fatalf("after reopen Len = %d batches %d bytes, want 13 and %d", n, b, 13*recBytes)
			}
			for i := 20; i < 25; i++ {
				mustAppend(t, s, batchOf(i, msgs, size))
			}
			if got := drain(t, s, size); !slices.Equal(got, seq(7, 24)) {
				t.Fatalf("after reopen got batches %v, want 7..24", got)
			}
			st := s.Stats()
			if st.Dropped() != 0 || st.CorruptRegions != 0 || st.AckedBatches != 18 || st.AckedMessages != 18*msgs || st.AppendedBatches != 5 {
				t.Fatalf("stats %+v", st)
			}
			if st.Acked != 25*msgs || st.Next != 25*msgs || st.Batches != 0 || st.Bytes != 0 {
				t.Fatalf("positions %+v, want acked = next = %d, empty", st, 25*msgs)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// Only the segment that took the last appends may remain.
			if got := segmentFiles(t, dir); len(got) > 1 {
				t.Fatalf("segments left after draining: %v", got)
			}
			s = mustOpen(t, dir, opts)
			defer s.Close()
			if _, err := s.Peek(); !errors.Is(err, ErrEmpty) {
				t.Fatalf("Peek after draining and reopening: %v, want ErrEmpty", err)
			}
			if got := segmentFiles(t, dir); len(got) != 0 {
				t.Fatalf("spent segments not removed at open: %v", got)
			}
			if st := s.Stats(); st.Next != 25*msgs {
				t.Fatalf("sequence numbers restart at %d after the spool emptied, want %d", st.Next, 25*msgs)
			}
		})
	}
}

func TestPeekAndAckContract(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{MaxBytes: 1 << 20})
	defer s.Close()
	if _, err := s.Peek(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Peek on a new spool: %v", err)
	}
	if err := s.Append(nil); err != nil {
		t.Fatalf("Append of no messages: %v", err)
	}
	if n, _ := s.Len(); n != 0 {
		t.Fatalf("an empty append made %d batches", n)
	}
	mustAppend(t, s, batchOf(0, 2, 10))
	mustAppend(t, s, batchOf(1, 3, 10))

	b0, err := s.Peek()
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Peek()
	if err != nil || again.First != b0.First || len(again.Messages) != 2 {
		t.Fatalf("second Peek = %+v, %v; want the same batch", again, err)
	}
	if err := s.Ack(Batch{First: 2, Messages: make([]Message, 3)}); !errors.Is(err, ErrNotHead) {
		t.Fatalf("Ack of the second batch first: %v, want ErrNotHead", err)
	}
	if err := s.Ack(b0); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(b0); err != nil {
		t.Fatalf("second Ack of the same batch: %v, want nil", err)
	}
	// The batch after the head, never peeked, is not the head.
	if err := s.Ack(Batch{First: 2, Messages: make([]Message, 3)}); !errors.Is(err, ErrNotHead) {
		t.Fatalf("Ack without Peek: %v, want ErrNotHead", err)
	}
	b1, err := s.Peek()
	if err != nil || b1.First != 2 || batchID(t, b1, 10) != 1 {
		t.Fatalf("Peek after Ack = %+v, %v", b1, err)
	}
	if n, _ := s.Len(); n != 1 {
		t.Fatalf("Len with the peeked batch unacknowledged = %d, want 1", n)
	}
}

// TestAppendedWakesReplayer runs the replayer loop the package documents:
// it must see every batch without polling and stop when the spool closes.
func TestAppendedWakesReplayer(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{MaxBytes: 1 << 20})
	got := make(chan int, 100)
	done := make(chan error, 1)
	go func() {
		for {
			b, err := s.Peek()
			if errors.Is(err, ErrEmpty) {
				if _, ok := <-s.Appended(); !ok {
					done <- nil
					return
				}
				continue
			}
			if errors.Is(err, ErrClosed) {
				done <- nil
				return
			}
			if err != nil {
				done <- err
				return
			}
			got <- batchID(t, b, 10)
			if err := s.Ack(b); err != nil && !errors.Is(err, ErrClosed) {
				done <- err
				return
			}
		}
	}()
	for i := range 50 {
		mustAppend(t, s, batchOf(i, 1, 10))
		if i%10 == 0 {
			time.Sleep(time.Millisecond) // let the replayer catch up and wait
		}
	}
	for i := range 50 {
		select {
		case id := <-got:
			if id != i {
				t.Fatalf("replayer got batch %d, want %d", id, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("replayer stuck before batch %d", i)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("replayer did not stop at Close")
	}
	if err := s.Append(batchOf(0, 1, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
}

func TestOpenIsExclusive(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{MaxBytes: 1 << 20})
	_, err := Open(dir, Options{MaxBytes: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "in use by another process") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second Open of %s: %v, want in use", dir, err)
	}
	s.Close()
	s = mustOpen(t, dir, Options{MaxBytes: 1 << 20})
	s.Close()
}

func TestOpenRefusesOptions(t *testing.T) {
	tests := []struct {
		opts Options
		want string
	}{
		{Options{}, "max bytes 0: must be positive"},
		{Options{MaxBytes: 1 << 20, FullPolicy: "drop_random"}, `full policy "drop_random": want drop_oldest or drop_newest`},
		{Options{MaxBytes: 1 << 20, Fsync: "sometimes"}, `fsync policy "sometimes": want always, batch or never`},
		{Options{MaxBytes: 1 << 20, SegmentBytes: -1}, "segment bytes -1"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "spool")
			_, err := Open(dir, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("Open: %v, want %q naming %s", err, tt.want, dir)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("refused options still created %s", dir)
			}
		})
	}
}

func TestDefaultSegmentBytes(t *testing.T) {
	for _, tt := range []struct{ max, want int64 }{
		{1 << 30, DefaultSegmentBytes},
		{64 << 20, 4 << 20},
		{4 << 10, 256},
	} {
		o, err := Options{MaxBytes: tt.max}.withDefaults()
		if err != nil || o.SegmentBytes != tt.want || o.FullPolicy != DropOldest || o.Fsync != FsyncBatch {
			t.Errorf("defaults for MaxBytes %d = %+v, %v; want SegmentBytes %d, drop_oldest, batch", tt.max, o, err, tt.want)
		}
	}
}

// TestAckFileSlots covers the torn-write protection of the ack file: the
// newer valid slot wins, a damaged one falls back to the other.
func TestAckFileSlots(t *testing.T) {
	file := func(slots ...ackSlot) []byte {
		b := make([]byte, ackFileSize)
		for _, s := range slots {
			e := encodeAckSlot(s)
			copy(b[int(s.generation%2)*ackSlotPitch:], e[:])
		}
		return b
	}
	damage := func(b []byte, off int) []byte { b[off] ^= 1; return b }
	tests := []struct {
		name string
		b    []byte
		want uint64
		ok   bool
	}{
		{"new file", make([]byte, ackFileSize), 0, false},
		{"empty", nil, 0, false},
		{"one slot", file(ackSlot{1, 10}), 10, true},
		{"newer wins", file(ackSlot{7, 70}, ackSlot{8, 80}), 80, true},
		{"newer in slot 0 wins", file(ackSlot{9, 90}, ackSlot{10, 100}), 100, true},
		{"torn newer falls back", damage(file(ackSlot{7, 70}, ackSlot{8, 80}), 16), 70, true},
		{"both torn", damage(damage(file(ackSlot{7, 70}, ackSlot{8, 80}), 16), ackSlotPitch+3), 0, false},
		{"short file keeps slot 0", file(ackSlot{2, 20})[:ackSlotSize], 20, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := parseAckFile(tt.b)
			if ok != tt.ok || s.next != tt.want {
				t.Fatalf("parseAckFile = %+v, %v; want next %d, %v", s, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestLostAckFileReplays: without an ack file everything on disk is
// unacknowledged; that is replay, not loss.
func TestLostAckFileReplays(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{MaxBytes: 1 << 20, SegmentBytes: 1})
	for i := range 4 {
		mustAppend(t, s, batchOf(i, 2, 10))
	}
	b, _ := s.Peek()
	s.Ack(b)
	s.Close()
	if err := os.Remove(filepath.Join(dir, ackFileName)); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, Options{MaxBytes: 1 << 20})
	defer s.Close()
	if got := drain(t, s, 10); !slices.Equal(got, seq(1, 3)) {
		t.Fatalf("replayed %v, want 1..3 (batch 0's segment was removed when acked)", got)
	}
	if st := s.Stats(); st.Dropped() != 0 {
		t.Fatalf("a lost ack file counted drops: %+v", st)
	}
}
