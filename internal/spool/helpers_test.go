package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var testKey = []byte("host-id-0123456789abcdef")

// batchOf returns n messages whose values name batch id and their index,
// padded to size bytes, so a test can tell which batch it got back and
// that every byte came back.
func batchOf(id, n, size int) []Message {
	msgs := make([]Message, n)
	for i := range msgs {
		v := fmt.Appendf(nil, "batch=%d msg=%d;", id, i)
		for len(v) < size {
			v = append(v, byte('a'+(id+i+len(v))%26))
		}
		msgs[i] = Message{Key: testKey, Value: v[:max(size, len(v))]}
	}
	return msgs
}

// batchID checks that b is what batchOf(id, n, size) made and returns id.
func batchID(t testing.TB, b Batch, size int) int {
	t.Helper()
	if len(b.Messages) == 0 {
		t.Fatalf("batch %d has no messages", b.First)
	}
	id, err := parseBatchID(b)
	if err != nil {
		t.Fatal(err)
	}
	want := batchOf(id, len(b.Messages), size)
	for i, m := range b.Messages {
		if !bytes.Equal(m.Key, want[i].Key) || !bytes.Equal(m.Value, want[i].Value) {
			t.Fatalf("batch %d (id %d) message %d = %q/%q, want %q/%q", b.First, id, i, m.Key, m.Value, want[i].Key, want[i].Value)
		}
	}
	return id
}

// parseBatchID reads the batch id batchOf wrote into the first value.
func parseBatchID(b Batch) (int, error) {
	var id, idx int
	if len(b.Messages) == 0 {
		return 0, fmt.Errorf("batch %d has no messages", b.First)
	}
	if _, err := fmt.Sscanf(string(b.Messages[0].Value), "batch=%d msg=%d;", &id, &idx); err != nil || idx != 0 {
		return 0, fmt.Errorf("batch %d: first value %q names no batch", b.First, b.Messages[0].Value)
	}
	return id, nil
}

// drain peeks and acknowledges until the spool is empty and returns the
// batch ids in the order they came.
func drain(t testing.TB, s *Spool, size int) []int {
	t.Helper()
	var ids []int
	for {
		b, err := s.Peek()
		if errors.Is(err, ErrEmpty) {
			return ids
		}
		if err != nil {
			t.Fatalf("Peek: %v", err)
		}
		ids = append(ids, batchID(t, b, size))
		if err := s.Ack(b); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// dropLog collects what OnDrop reports.
type dropLog struct {
	mu    sync.Mutex
	drops []Drop
}

func (l *dropLog) add(d Drop) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drops = append(l.drops, d)
}

func (l *dropLog) messages(r Reason) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n uint64
	for _, d := range l.drops {
		if d.Reason == r {
			n += d.Messages
		}
	}
	return n
}

// testLogger sends the spool's logs to the test's log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func mustOpen(t testing.TB, dir string, opts Options) *Spool {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func mustAppend(t testing.TB, s *Spool, batch []Message) {
	t.Helper()
	if err := s.Append(batch); err != nil {
		t.Fatalf("Append: %v", err)
	}
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readerOf adapts bytes to what segmentReader reads.
func readerOf(b []byte) *segmentReader { return newSegmentReader(bytes.NewReader(b), int64(len(b))) }

// walk returns every span of a segment's bytes and checks that they tile
// it: each starts where the previous ended, the last ends at the end.
func walk(t testing.TB, seg []byte, verify bool) []span {
	t.Helper()
	sr := readerOf(seg)
	var spans []span
	var off int64
	for {
		sp, err := sr.next(off, verify)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("next(%d): %v", off, err)
		}
		if sp.off != off || sp.end <= sp.off {
			t.Fatalf("span %+v does not continue at %d", sp, off)
		}
		spans = append(spans, sp)
		off = sp.end
	}
	if off != int64(len(seg)) {
		t.Fatalf("spans end at %d of %d bytes", off, len(seg))
	}
	return spans
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
