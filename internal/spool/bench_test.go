package spool

import (
	"fmt"
	"log/slog"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// benchDir is a directory on a real disk: /var/tmp unless
// SPOOL_BENCH_DIR says otherwise. fsync on tmpfs costs nothing and would
// make the policies look alike.
func benchDir(b *testing.B) string {
	b.Helper()
	base := os.Getenv("SPOOL_BENCH_DIR")
	if base == "" {
		base = "/var/tmp"
	}
	dir, err := os.MkdirTemp(base, "spool-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil && st.Type == unix.TMPFS_MAGIC {
		b.Logf("%s is on tmpfs: fsync is free there, the numbers say nothing about a disk", dir)
	}
	return dir
}

// BenchmarkAppendPeekAck spools 500-message batches of 200-byte values (the
// agent's batch) and replays them, per fsync policy, in two shapes:
// interleaved, one batch appended then replayed (the replayer keeps up, so
// under FsyncBatch every Peek syncs the segment still taking appends), and
// 64 batches appended then replayed (an outage, then the drain).
//
// Measured on this project's 2-core VM, ext4 on virtio in /var/tmp
// (go test -run XXX -bench AppendPeekAck -benchmem -benchtime 2s -count 3),
// in messages appended, replayed and acknowledged per second:
//
//	          depth=1     depth=64
//	always    0.74-0.83M  0.71-0.81M   (two syncs a batch: segment, ack)
//	batch     1.16-1.24M  1.93-2.08M
//	never     3.7-4.3M    3.0-3.1M
//
// 164 KB and 4 allocations a batch, all in Peek (the batch's own memory).
// An fsync costs about 0.2 ms on this virtual disk; on a disk without a
// volatile write cache always and batch will be slower.
func BenchmarkAppendPeekAck(b *testing.B) {
	const msgs, size = 500, 200
	batch := batchOf(0, msgs, size)
	for _, depth := range []int{1, 64} {
		for _, policy := range policies {
			b.Run(fmt.Sprintf("depth=%d/fsync=%s", depth, policy), func(b *testing.B) {
				s, err := Open(benchDir(b), Options{MaxBytes: 1 << 30, Fsync: policy, Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				b.SetBytes(recordSize(batch))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i += depth {
					n := min(depth, b.N-i)
					for range n {
						if err := s.Append(batch); err != nil {
							b.Fatal(err)
						}
					}
					for range n {
						p, err := s.Peek()
						if err != nil {
							b.Fatal(err)
						}
						if err := s.Ack(p); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N*msgs)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}

// BenchmarkAppendFull appends the agent's batch (500 messages of 200 bytes)
// to a spool kept full (DropOldest, fsync never, MaxBytes 64 batches,
// segments of 8 batches): every append drops a batch to make room. All
// batches are binds (expendable, benchKinds); with mixed=true one in eight
// holds a listen (setKinds), so makeRoom must step over those and drop
// binds in place, not at the head.
func BenchmarkAppendFull(b *testing.B) {
	const msgs, size = 500, 200
	for _, mixed := range []bool{false, true} {
		b.Run(fmt.Sprintf("mixed=%v", mixed), func(b *testing.B) {
			plain := batchOf(0, msgs, size)
			protected := batchOf(1, msgs, size)
			setKinds(plain, protected)
			if !mixed {
				protected = plain
			}
			rs := recordSize(plain) + 1024
			opts := Options{MaxBytes: 64 * rs, SegmentBytes: 8 * rs, Fsync: FsyncNever,
				FullPolicy: DropOldest, Logger: slog.New(slog.DiscardHandler), OnDrop: func(Drop) {}}
			benchKinds(&opts)
			s, err := Open(benchDir(b), opts)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.SetBytes(recordSize(plain))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				batch := plain
				if i%8 == 0 {
					batch = protected
				}
				if err := s.Append(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*msgs)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
