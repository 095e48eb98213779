package spool

import (
	"testing"
)

// TestFsyncPolicies pins when each policy syncs, step by step, by the
// number of fsync/fdatasync calls (segments, ack file, directory) so far.
func TestFsyncPolicies(t *testing.T) {
	const msgs, size = 2, 40
	rec := recordSize(batchOf(0, msgs, size))
	var s *Spool
	var peeked Batch
	peek := func(t *testing.T, _ string, _ FsyncPolicy) {
		var err error
		if peeked, err = s.Peek(); err != nil {
			t.Fatal(err)
		}
	}
	ack := func(t *testing.T, _ string, _ FsyncPolicy) {
		if err := s.Ack(peeked); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		what                 string
		do                   func(t *testing.T, dir string, policy FsyncPolicy)
		always, batch, never uint64
	}{
		// The ack file and, as it is new, the directory.
		{"open a new spool", func(t *testing.T, dir string, p FsyncPolicy) {
			s = mustOpen(t, dir, Options{MaxBytes: 1 << 20, Fsync: p, SegmentBytes: 2 * rec})
		}, 2, 2, 0},
		// A new segment: the directory; always also the record.
		{"append to a new segment", func(t *testing.T, _ string, _ FsyncPolicy) { mustAppend(t, s, batchOf(0, msgs, size)) }, 4, 3, 0},
		{"append to the same segment", func(t *testing.T, _ string, _ FsyncPolicy) { mustAppend(t, s, batchOf(1, msgs, size)) }, 5, 3, 0},
		// Rotation: batch syncs the closed segment; both the directory.
		{"append that rotates", func(t *testing.T, _ string, _ FsyncPolicy) { mustAppend(t, s, batchOf(2, msgs, size)) }, 7, 5, 0},
		{"peek a closed segment", peek, 7, 5, 0},
		// always syncs every acknowledgement.
		{"ack", ack, 8, 5, 0},
		{"peek", peek, 8, 5, 0},
		// The segment is spent: the ack file is synced before it goes;
		// always syncs the directory at once.
		{"ack that removes a segment", ack, 11, 6, 0},
		// Replay reaching the segment still taking appends syncs it.
		{"peek the open segment", peek, 11, 7, 0},
		{"ack in the open segment", ack, 12, 7, 0},
		// Close: the ack file, and the directory if a change is pending.
		{"close", func(t *testing.T, _ string, _ FsyncPolicy) {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}, 13, 9, 0},
	}
	for _, policy := range policies {
		t.Run(string(policy), func(t *testing.T) {
			dir := t.TempDir()
			for _, st := range steps {
				st.do(t, dir, policy)
				syncs := s.Stats().Syncs
				want := map[FsyncPolicy]uint64{FsyncAlways: st.always, FsyncBatch: st.batch, FsyncNever: st.never}[policy]
				if syncs != want {
					t.Fatalf("after %q: %d syncs, want %d", st.what, syncs, want)
				}
			}
			// Reopening finds the last segment spent and removes it.
			s = mustOpen(t, dir, Options{MaxBytes: 1 << 20, Fsync: policy})
			defer s.Close()
			want := map[FsyncPolicy]uint64{FsyncAlways: 2, FsyncBatch: 2, FsyncNever: 0}[policy]
			if got := s.Stats().Syncs; got != want {
				t.Fatalf("reopening: %d syncs, want %d", got, want)
			}
			if segs := segmentFiles(t, dir); len(segs) != 0 {
				t.Fatalf("segments left: %v", segs)
			}
		})
	}
}

// TestFsyncBatchSyncsFoundSegments: under batch and always, segments left
// by a process that died are synced at Open, since from then on they are
// closed segments, which the policy promises to keep.
func TestFsyncBatchSyncsFoundSegments(t *testing.T) {
	for _, tt := range []struct {
		policy FsyncPolicy
		want   uint64
	}{{FsyncAlways, 4}, {FsyncBatch, 4}, {FsyncNever, 0}} {
		t.Run(string(tt.policy), func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpen(t, dir, Options{MaxBytes: 1 << 20, Fsync: FsyncNever, SegmentBytes: 1})
			for i := range 3 {
				mustAppend(t, s, batchOf(i, 1, 10))
			}
			s.Close()
			// Three segments, the ack file; the directory is not new.
			s = mustOpen(t, dir, Options{MaxBytes: 1 << 20, Fsync: tt.policy})
			defer s.Close()
			if got := s.Stats().Syncs; got != tt.want {
				t.Fatalf("%d syncs at Open, want %d", got, tt.want)
			}
		})
	}
}
