package spool

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

// diskBytes is what the segment files take.
func diskBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, p := range segmentFiles(t, dir) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

func TestFullPolicies(t *testing.T) {
	const msgs, size = 4, 100
	rec := recordSize(batchOf(0, msgs, size))
	tests := []struct {
		name      string
		policy    FullPolicy
		segment   int64
		appendErr []bool // per batch 0..7: refused with ErrFull
		reason    Reason
		survivors []int
	}{
		{"drop_newest refuses", DropNewest, 0, []bool{false, false, false, false, false, true, true, true}, FullNewest, seq(0, 4)},
		{"drop_oldest drops records", DropOldest, 0, make([]bool, 8), FullOldest, seq(3, 7)},
		{"drop_oldest with several records a segment", DropOldest, 2 * rec, make([]bool, 8), FullOldest, seq(3, 7)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var log dropLog
			opts := Options{MaxBytes: 5 * rec, FullPolicy: tt.policy, SegmentBytes: tt.segment, OnDrop: log.add}
			s := mustOpen(t, dir, opts)
			for i := range 8 {
				err := s.Append(batchOf(i, msgs, size))
				if tt.appendErr[i] != errors.Is(err, ErrFull) || (!tt.appendErr[i] && err != nil) {
					t.Fatalf("Append %d: %v, want refused=%v", i, err, tt.appendErr[i])
				}
				if _, b := s.Len(); b > opts.MaxBytes {
					t.Fatalf("after append %d the spool holds %d bytes, max %d", i, b, opts.MaxBytes)
				}
				// On disk it may hold the acknowledged head of one segment
				// more.
				if d := diskBytes(t, dir); d > opts.MaxBytes+max(tt.segment, rec) {
					t.Fatalf("after append %d segments take %d bytes, max %d + one segment", i, d, opts.MaxBytes)
				}
			}
			st := s.Stats()
			if st.DroppedMessages[tt.reason] != 3*msgs || st.DroppedBatches[tt.reason] != 3 || st.Dropped() != 3*msgs {
				t.Fatalf("dropped %v messages %v batches, want %d and 3 as %v only", st.DroppedMessages, st.DroppedBatches, 3*msgs, tt.reason)
			}
			if got := log.messages(tt.reason); got != 3*msgs {
				t.Fatalf("OnDrop reported %d %v messages, want %d", got, tt.reason, 3*msgs)
			}
			// The drops outlive a restart: nothing dropped comes back.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, dir, opts)
			defer s.Close()
			if got := drain(t, s, size); !slices.Equal(got, tt.survivors) {
				t.Fatalf("spool kept %v, want %v", got, tt.survivors)
			}
			if st := s.Stats(); st.Dropped() != 0 {
				t.Fatalf("reopened spool counted drops again: %+v", st.DroppedMessages)
			}
			mustAppend(t, s, batchOf(8, msgs, size))
		})
	}
}

// TestDropOldestDropsNoMoreThanNeeded: a batch one and a half records big
// costs exactly the two oldest records.
func TestDropOldestDropsNoMoreThanNeeded(t *testing.T) {
	const msgs, size = 4, 100
	rec := recordSize(batchOf(0, msgs, size))
	s := mustOpen(t, t.TempDir(), Options{MaxBytes: 5 * rec})
	defer s.Close()
	for i := range 5 {
		mustAppend(t, s, batchOf(i, msgs, size))
	}
	big := batchOf(5, msgs+msgs/2, size)
	mustAppend(t, s, big)
	if got := drain(t, s, size); !slices.Equal(got, seq(2, 5)) {
		t.Fatalf("kept %v, want 2..5", got)
	}
	if st := s.Stats(); st.DroppedMessages[FullOldest] != 2*msgs || st.DroppedBatches[FullOldest] != 2 {
		t.Fatalf("dropped %v, want %d messages in 2 batches", st.DroppedMessages, 2*msgs)
	}
}

// TestDropOldestInFlight: the batch at the replayer is the oldest and goes
// first; its late Ack is harmless and the replayer moves on.
func TestDropOldestInFlight(t *testing.T) {
	const msgs, size = 2, 50
	rec := recordSize(batchOf(0, msgs, size))
	s := mustOpen(t, t.TempDir(), Options{MaxBytes: 3 * rec})
	defer s.Close()
	for i := range 3 {
		mustAppend(t, s, batchOf(i, msgs, size))
	}
	inFlight, err := s.Peek()
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, batchOf(3, msgs, size))
	if err := s.Ack(inFlight); err != nil {
		t.Fatalf("Ack of the dropped in-flight batch: %v", err)
	}
	if got := drain(t, s, size); !slices.Equal(got, seq(1, 3)) {
		t.Fatalf("after the in-flight batch was dropped: %v, want 1..3", got)
	}
	if st := s.Stats(); st.DroppedMessages[FullOldest] != msgs || st.AckedBatches != 3 {
		t.Fatalf("stats %+v: the in-flight batch counts as dropped, not acknowledged", st)
	}
}

func TestTooLarge(t *testing.T) {
	for _, policy := range []FullPolicy{DropOldest, DropNewest} {
		t.Run(string(policy), func(t *testing.T) {
			var log dropLog
			s := mustOpen(t, t.TempDir(), Options{MaxBytes: 4096, FullPolicy: policy, OnDrop: log.add})
			defer s.Close()
			mustAppend(t, s, batchOf(0, 2, 100))
			err := s.Append(batchOf(1, 20, 200))
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "20 messages in 4852 bytes, max 4096") {
				t.Fatalf("Append of a batch larger than the spool: %v", err)
			}
			st := s.Stats()
			if st.DroppedMessages[TooLarge] != 20 || st.DroppedBatches[TooLarge] != 1 || st.Dropped() != 20 || log.messages(TooLarge) != 20 {
				t.Fatalf("dropped %v, reported %d; want 20 too_large", st.DroppedMessages, log.messages(TooLarge))
			}
			// Refusing it cost nothing already spooled.
			if got := drain(t, s, 100); !slices.Equal(got, []int{0}) {
				t.Fatalf("spool holds %v, want [0]", got)
			}
		})
	}
}
