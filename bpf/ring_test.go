package bpf

import (
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"
	"unsafe"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// readSeqs reads n events and returns their sequence numbers.
func readSeqs(t *testing.T, rd *Reader, n int) []uint64 {
	t.Helper()
	rd.SetDeadline(time.Now().Add(5 * time.Second))
	var seqs []uint64
	for range n {
		var ev Event
		if err := rd.Read(&ev); err != nil {
			t.Fatalf("read %d of %d: %v", len(seqs), n, err)
		}
		seqs = append(seqs, ev.Seq)
	}
	return seqs
}

func bindN(t *testing.T, n int) {
	t.Helper()
	for range n {
		if err := bindOnce(t, udp4, "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRingCommit: reading does not free a record, Commit does; a new reader
// starts at the last commit, which is how a restarted agent picks up what
// its predecessor read but never delivered.
func TestRingCommit(t *testing.T) {
	testenv.RequireRoot(t)
	p, err := Load(Options{Filter: Filter{PID: uint32(os.Getpid())}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	first := must(p.NextSeq())
	bindN(t, 3)

	want := []uint64{first, first + 1, first + 2}
	rd, err := p.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	if got := readSeqs(t, rd, 3); !equal(got, want) {
		t.Fatalf("first reader read %v, want %v", got, want)
	}
	rd.Close() // nothing committed

	rd, err = p.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	if got := readSeqs(t, rd, 2); !equal(got, want[:2]) {
		t.Fatalf("a second reader read %v, want %v again", got, want[:2])
	}
	rd.Commit(rd.Position())
	rd.Close()

	rd, err = p.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if again := readSeqs(t, rd, 1); again[0] != first+2 {
		t.Fatalf("after committing two, a new reader starts at seq %d, want %d", again[0], first+2)
	}
	if rd.Uncommitted() == 0 || rd.Pending() != 0 {
		t.Fatalf("uncommitted %d, pending %d after reading the last record", rd.Uncommitted(), rd.Pending())
	}
	rd.CommitAll()
	if rd.Uncommitted() != 0 {
		t.Fatalf("uncommitted %d after CommitAll", rd.Uncommitted())
	}
}

// TestRingFullUntilCommit: uncommitted records hold their space, so the
// kernel counts drops once the ring is full, and a commit makes room.
func TestRingFullUntilCommit(t *testing.T) {
	testenv.RequireRoot(t)
	p, err := Load(Options{Filter: Filter{PID: uint32(os.Getpid())}, RingBufferBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rd, err := p.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	// Binds fill the ring until it holds bind_limit bytes (the rest is
	// kept for listen and close records): 23 records of 160 bytes in 4096.
	const record = 8 + uint64(EventSize)
	const bindLimit = 4096 - 4096/ListenerReserve
	const perRing = (bindLimit + record - 1) / record
	first := must(p.NextSeq())
	bindN(t, int(perRing))
	readSeqs(t, rd, int(perRing)) // read, not committed
	bindN(t, 5)
	if d := must(p.Drops()); d.RingReserved != 5 || d.RingBufferFull != 0 {
		t.Fatalf("drops %+v with the ring full of uncommitted records, want 5 binds refused", d)
	}
	rd.CommitAll()
	bindN(t, 5)
	if got := readSeqs(t, rd, 5); got[0] != first+perRing+5 {
		t.Fatalf("after the commit, read seqs %v: want them numbered from %d (the dropped ones leave a gap)", got, first+perRing+5)
	}
}

func TestReaderFlushAndClose(t *testing.T) {
	testenv.RequireRoot(t)
	p, err := Load(Options{Filter: Filter{PID: uint32(os.Getpid())}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rd, err := p.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	bindN(t, 2)
	rd.Flush()
	readSeqs(t, rd, 2)
	var ev Event
	if err := rd.Read(&ev); !errors.Is(err, ErrFlushed) {
		t.Fatalf("after the flushed records: %v, want ErrFlushed", err)
	}
	done := make(chan error, 1)
	rd.SetDeadline(time.Time{})
	go func() { done <- rd.Read(&ev) }()
	time.Sleep(50 * time.Millisecond)
	rd.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("blocked Read after Close: %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not interrupt a blocked Read")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRingWindow: the reader maps a window of the data and moves it along,
// reading a record that wraps around the end from the kernel's second copy
// of the data pages. With a one-page ring every few dozen records wrap; with
// eight pages seen through a one-page window the window moves every few
// dozen and records straddle its edge. Every record must decode to the bind
// that made it (its port), in order.
func TestRingWindow(t *testing.T) {
	testenv.RequireRoot(t)
	page := os.Getpagesize()
	for _, tc := range []struct {
		name         string
		ring, window int
		moves        bool // the window must move (it covers the whole one-page ring)
	}{
		{"one-page ring", page, int(ringWindowBytes), false},
		{"eight pages through a one-page window", 8 * page, page, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(w uint64) { ringWindowBytes = w }(ringWindowBytes)
			ringWindowBytes = uint64(tc.window)
			// One record per Read: the test looks at the ring's read
			// position before each.
			defer func(n int) { readAhead = n }(readAhead)
			readAhead = 1
			rd := loadCapturer(t, Options{Filter: Filter{PID: uint32(os.Getpid())}, RingBufferBytes: uint32(tc.ring)}).rd
			// Three times round the ring, a few records at a time so it
			// never fills: every record's start lands at a different offset.
			recordSize := uint64(unsafe.Sizeof(bindwatchSockEvent{}))
			perRound := uint64(tc.ring) / 3 / (ringHeaderSize + recordSize)
			wrapped, moved := 0, 0
			for round := range 3 * 3 {
				var ports []uint16
				for range perRound {
					fd := udp4.open(t)
					if err := bindAddr(fd, udp4.family, netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
						t.Fatal(err)
					}
					ports = append(ports, localAddr(t, fd).Port())
				}
				rd.SetDeadline(time.Now().Add(5 * time.Second))
				for i, want := range ports {
					dataStart := (rd.ring.read & rd.ring.mask) + ringHeaderSize
					winStart := rd.ring.winStart
					var ev Event
					if err := rd.Read(&ev); err != nil {
						t.Fatalf("round %d, record %d: %v", round, i, err)
					}
					if dataStart+recordSize > rd.ring.size {
						wrapped++
					}
					if rd.ring.winStart != winStart {
						moved++
					}
					if ev.Port != want || ev.Kind != KindBind {
						t.Fatalf("round %d, record %d: kind %v port %d, want a bind of port %d", round, i, ev.Kind, ev.Port, want)
					}
				}
				rd.CommitAll()
			}
			if wrapped == 0 || tc.moves && moved == 0 {
				t.Fatalf("%d records wrapped around the end, the window moved %d times: the test proves nothing without both", wrapped, moved)
			}
			t.Logf("%d records wrapped around the end of the ring; the window moved %d times", wrapped, moved)
		})
	}
}
