package spool

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// python is Debian's interpreter; the pyenv one first on PATH would do as
// well here, but one interpreter for every test is simpler to reason about.
const python = "/usr/bin/python3"

// TestPythonReader reads a damaged, partly acknowledged spool with
// testdata/read_spool.py, written from the package documentation alone,
// and expects what the spool itself replays and counts: the documentation
// is enough to write a reader.
func TestPythonReader(t *testing.T) {
	if _, err := os.Stat(python); err != nil {
		testenv.Unavailable(t, "needs %s (Debian package python3)", python)
	}
	const msgs, size = 3, 60
	dir := t.TempDir()
	batch := func(i int) []Message {
		b := batchOf(i, msgs, size)
		b[1].Time = time.Unix(1700000000+int64(i), 7)
		b[2].Key = nil
		b[0].Kind, b[1].Kind = Kind(i%3), kindBind
		return b
	}
	rec := recordSize(batch(0))
	s := mustOpen(t, dir, Options{MaxBytes: 1 << 20, SegmentBytes: 4 * rec})
	for i := range 14 {
		mustAppend(t, s, batch(i))
	}
	for range 5 {
		b, err := s.Peek()
		if err != nil {
			t.Fatal(err)
		}
		s.Ack(b)
	}
	s.Close()
	// Segments hold batches 0-3 (removed), 4-7, 8-11, 12-13. Damage a
	// payload in batch 6, a header in batch 9 and cut batch 13 short.
	segs := segmentFiles(t, dir)
	flipByte(t, segs[0], 2*rec+headerSize+10)
	flipByte(t, segs[1], 1*rec+3)
	if err := os.Truncate(segs[2], 2*rec-1); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(python, filepath.Join("testdata", "read_spool.py"), dir).Output()
	if err != nil {
		t.Fatalf("read_spool.py: %v", err)
	}
	var py struct {
		Records []struct {
			First    uint64
			Messages []struct {
				Key, Value string
				Time       int64
				Kind       Kind
			}
		}
		Lost, Regions uint64
	}
	if err := json.Unmarshal(out, &py); err != nil {
		t.Fatalf("read_spool.py printed %s: %v", out, err)
	}

	s = mustOpen(t, dir, Options{MaxBytes: 1 << 20})
	defer s.Close()
	var got []Batch
	for {
		b, err := s.Peek()
		if err != nil {
			break
		}
		got = append(got, b)
		s.Ack(b)
	}
	st := s.Stats()
	if len(got) != 6 || st.DroppedMessages[Corrupt] != 3*msgs || st.CorruptRegions != 3 {
		t.Fatalf("spool replayed %d batches, %d corrupt messages in %d regions; want 6, %d, 3", len(got), st.DroppedMessages[Corrupt], st.CorruptRegions, 3*msgs)
	}
	if len(py.Records) != len(got) || py.Lost != st.DroppedMessages[Corrupt] || py.Regions != st.CorruptRegions {
		t.Fatalf("python read %d records, %d lost, %d regions; the spool %d, %d, %d",
			len(py.Records), py.Lost, py.Regions, len(got), st.DroppedMessages[Corrupt], st.CorruptRegions)
	}
	for i, b := range got {
		p := py.Records[i]
		if p.First != b.First || len(p.Messages) != len(b.Messages) {
			t.Fatalf("record %d: python first %d with %d messages, spool %d with %d", i, p.First, len(p.Messages), b.First, len(b.Messages))
		}
		for j, m := range b.Messages {
			var ns int64
			if !m.Time.IsZero() {
				ns = m.Time.UnixNano()
			}
			if pm := p.Messages[j]; pm.Key != string(m.Key) || pm.Value != string(m.Value) || pm.Time != ns || pm.Kind != m.Kind {
				t.Fatalf("record %d message %d: python %+v, spool %q %q %d kind %d", i, j, pm, m.Key, m.Value, ns, m.Kind)
			}
		}
	}
}
