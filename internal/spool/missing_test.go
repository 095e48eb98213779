package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestMissingSegmentSkipped (issue item 5): a segment file removed while
// the spool is open (an operator, a cleaner, a disk error) must not wedge
// the replay: its batches are skipped and counted, every intact batch after
// it is replayed, and appends that need room still work.
func TestMissingSegmentSkipped(t *testing.T) {
	const msgs, size = 4, 100
	rec := recordSize(batchOf(0, msgs, size))
	for _, tc := range []struct {
		name   string
		remove int // which segment file, oldest first
	}{{"middle", 1}, {"head", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var drops dropLog
			// Two records a segment; room for ten.
			s := mustOpen(t, dir, Options{MaxBytes: 10 * rec, SegmentBytes: 2 * rec, OnDrop: drops.add})
			defer s.Close()
			for i := range 8 {
				mustAppend(t, s, batchOf(i, msgs, size))
			}
			segs := segmentFiles(t, dir)
			if len(segs) != 4 {
				t.Fatalf("segments %v, want 4", segs)
			}
			if err := os.Remove(segs[tc.remove]); err != nil {
				t.Fatal(err)
			}
			lost := []int{2 * tc.remove, 2*tc.remove + 1}

			// The replay goes on past the missing segment.
			done := make(chan []int, 1)
			go func() {
				var ids []int
				for {
					b, err := s.Peek()
					if errors.Is(err, ErrEmpty) {
						break
					}
					if err != nil {
						t.Errorf("Peek: %v", err)
						break
					}
					ids = append(ids, batchID(t, b, size))
					if err := s.Ack(b); err != nil {
						t.Errorf("Ack: %v", err)
						break
					}
				}
				done <- ids
			}()
			var got []int
			select {
			case got = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("replay stuck at the missing segment")
			}
			var want []int
			for i := range 8 {
				if !slices.Contains(lost, i) {
					want = append(want, i)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("replayed %v, want %v", got, want)
			}
			st := s.Stats()
			if st.DroppedMessages[Corrupt] != 2*msgs || drops.messages(Corrupt) != 2*msgs {
				t.Errorf("counted %d (reported %d) corrupt messages, want the %d of the missing segment",
					st.DroppedMessages[Corrupt], drops.messages(Corrupt), 2*msgs)
			}
			if n, b := s.Len(); n != 0 || b != 0 {
				t.Errorf("Len = %d batches %d bytes after the replay", n, b)
			}
			for i := 8; i < 20; i++ {
				mustAppend(t, s, batchOf(i, msgs, size))
			}
		})
	}
}

// TestMissingHeadSegmentMakesRoom: with the oldest segment gone and the
// spool full, drop_oldest must still make room instead of failing every
// append.
func TestMissingHeadSegmentMakesRoom(t *testing.T) {
	const msgs, size = 4, 100
	rec := recordSize(batchOf(0, msgs, size))
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{MaxBytes: 6 * rec, SegmentBytes: 2 * rec})
	defer s.Close()
	for i := range 6 {
		mustAppend(t, s, batchOf(i, msgs, size))
	}
	if err := os.Remove(segmentFiles(t, dir)[0]); err != nil {
		t.Fatal(err)
	}
	for i := 6; i < 10; i++ {
		if err := s.Append(batchOf(i, msgs, size)); err != nil {
			t.Fatalf("append %d to a full spool whose oldest segment is gone: %v", i, err)
		}
	}
	if st := s.Stats(); st.DroppedMessages[WriteError] != 0 {
		t.Errorf("%d messages dropped as write errors", st.DroppedMessages[WriteError])
	}
}

// TestUnreadableSegmentAtOpen: a segment that cannot be opened when the
// spool opens (no read permission, for the agent's unprivileged user) is
// skipped and counted, not a reason to refuse to start. Root ignores
// permissions, so as root the check runs in a child with the nobody uid.
func TestUnreadableSegmentAtOpen(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "spool")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if err := checkUnreadableSegment(dir); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	runChildAsNobody(t, base, "unreadable", "DIR="+dir)
}

func unreadableChild() error {
	if os.Geteuid() == 0 {
		return errors.New("runs as root: permissions would not apply")
	}
	return checkUnreadableSegment(os.Getenv("DIR"))
}

func checkUnreadableSegment(dir string) error {
	const msgs, size = 4, 100
	rec := recordSize(batchOf(0, msgs, size))
	opts := Options{MaxBytes: 10 * rec, SegmentBytes: 2 * rec, Logger: slog.New(slog.DiscardHandler)}
	s, err := Open(dir, opts)
	if err != nil {
		return err
	}
	for i := range 6 {
		if err := s.Append(batchOf(i, msgs, size)); err != nil {
			return err
		}
	}
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 3 {
		return fmt.Errorf("segments %v, want 3", segs)
	}
	if err := os.Chmod(segs[1], 0); err != nil {
		return err
	}
	s, err = Open(dir, opts)
	if err != nil {
		return fmt.Errorf("open with an unreadable segment: %w", err)
	}
	defer s.Close()
	var got []int
	for {
		b, err := s.Peek()
		if errors.Is(err, ErrEmpty) {
			break
		}
		if err != nil {
			return fmt.Errorf("Peek: %w", err)
		}
		id, err := parseBatchID(b)
		if err != nil {
			return err
		}
		got = append(got, id)
		if err := s.Ack(b); err != nil {
			return err
		}
	}
	fmt.Printf("replayed %v, corrupt %d\n", got, s.Stats().DroppedMessages[Corrupt])
	if !slices.Equal(got, []int{0, 1, 4, 5}) {
		return fmt.Errorf("replayed %v, want [0 1 4 5]", got)
	}
	if n := s.Stats().DroppedMessages[Corrupt]; n != 2*msgs {
		return fmt.Errorf("counted %d corrupt messages, want %d", n, 2*msgs)
	}
	return nil
}
