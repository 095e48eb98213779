package spool

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// Kinds in these tests: 1 is expendable (a bind), 2 is not (a listen).
const (
	kindBind   Kind = 1
	kindListen Kind = 2
)

// benchKinds makes binds expendable.
func benchKinds(o *Options) { o.Expendable = Kinds(kindBind) }

// setKinds makes plain all binds, and protected binds but for one listen.
func setKinds(plain, protected []Message) {
	for i := range plain {
		plain[i].Kind = kindBind
	}
	for i := range protected {
		protected[i].Kind = kindBind
	}
	protected[len(protected)/2].Kind = kindListen
}

// kindsBatch is batchOf(id, n, size), all binds, but for one listen when
// listen is set.
func kindsBatch(id, n, size int, listen bool) []Message {
	b := batchOf(id, n, size)
	for i := range b {
		b[i].Kind = kindBind
	}
	if listen {
		b[n/2].Kind = kindListen
	}
	return b
}

// peekAll reads the spool to its end, acknowledging, and returns the
// batch ids and the kinds seen.
func peekAll(t *testing.T, s *Spool, size int) ([]int, [NumKinds]int) {
	t.Helper()
	var ids []int
	var kinds [NumKinds]int
	for {
		b, err := s.Peek()
		if errors.Is(err, ErrEmpty) {
			return ids, kinds
		}
		if err != nil {
			t.Fatalf("Peek: %v", err)
		}
		ids = append(ids, batchID(t, b, size))
		for _, m := range b.Messages {
			kinds[m.Kind]++
		}
		if err := s.Ack(b); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
}

// TestFullKeepsProtected: a full spool (DropOldest) under mixed batches
// drops bind-only batches, oldest first, wherever they are, and keeps every
// batch holding a listen; its drops say they were binds. The drops made in
// place survive a restart: nothing dropped is replayed, nothing counted
// twice.
func TestFullKeepsProtected(t *testing.T) {
	for _, policy := range policies {
		t.Run(string(policy), func(t *testing.T) {
			// The agent's batch: 500 events of about 200 bytes.
			const n, size, capacity, total = 500, 200, 12, 40
			rec := recordSize(kindsBatch(0, n, size, false))
			dir := t.TempDir()
			var log dropLog
			opts := Options{MaxBytes: capacity * rec, SegmentBytes: 4 * rec, Fsync: policy,
				Expendable: Kinds(kindBind), OnDrop: log.add, Logger: testLogger(t)}
			s := mustOpen(t, dir, opts)
			var listens []int
			for i := range total {
				listen := i%4 == 0
				if listen {
					listens = append(listens, i)
				}
				mustAppend(t, s, kindsBatch(i, n, size, listen))
			}
			st := s.Stats()
			kept := st.Batches
			dropped := total - kept
			if kept != capacity || st.DroppedBatches[FullOldest] != uint64(dropped) {
				t.Fatalf("spool holds %d batches, dropped %d; want %d, %d", kept, st.DroppedBatches[FullOldest], capacity, dropped)
			}
			if st.DroppedByKind[FullOldest][kindBind] != uint64(dropped*n) || st.DroppedByKind[FullOldest][kindListen] != 0 ||
				st.DroppedMessages[FullOldest] != uint64(dropped*n) {
				t.Fatalf("dropped by kind %v, messages %d; want %d binds, no listen", st.DroppedByKind[FullOldest], st.DroppedMessages[FullOldest], dropped*n)
			}
			var logged uint64
			for _, d := range log.drops {
				logged += d.Kinds[kindBind]
			}
			if logged != uint64(dropped*n) {
				t.Fatalf("OnDrop told %d binds, want %d", logged, dropped*n)
			}
			// On disk: what was dropped in place was punched out.
			var du int64
			for _, p := range segmentFiles(t, dir) {
				var sst unix.Stat_t
				if err := unix.Stat(p, &sst); err != nil {
					t.Fatal(err)
				}
				du += sst.Blocks * 512
			}
			t.Logf("%d bytes of records kept, %d of dropped ones, %d allocated on disk, max %d", st.Bytes, st.DeadBytes, du, opts.MaxBytes)
			if st.DeadBytes <= 0 || st.DeadBytes > opts.MaxBytes/deadShare {
				t.Errorf("dead bytes %d, want some, at most %d", st.DeadBytes, opts.MaxBytes/deadShare)
			}
			if du > opts.MaxBytes+opts.MaxBytes/deadShare+punchBlock {
				t.Errorf("segments take %d bytes on disk, max bytes %d: dropped records were not freed", du, opts.MaxBytes)
			}
			s.Close()
			// A reader written from the documentation skips the records
			// dropped in place, and sees no loss in them.
			var py struct {
				Records []struct{ First uint64 }
				Lost    uint64
			}
			if _, err := os.Stat(python); err == nil {
				out, err := exec.Command(python, filepath.Join("testdata", "read_spool.py"), dir).Output()
				if err != nil {
					t.Fatalf("read_spool.py: %v", err)
				}
				if err := json.Unmarshal(out, &py); err != nil {
					t.Fatal(err)
				}
				if py.Lost != 0 || len(py.Records) != kept {
					t.Fatalf("read_spool.py found %d records, %d lost; want %d, 0", len(py.Records), py.Lost, kept)
				}
			}

			// Every listen batch, and the newest bind-only batches.
			s = mustOpen(t, dir, opts)
			defer s.Close()
			if again := s.Stats(); again.Bytes != st.Bytes || again.DeadBytes != st.DeadBytes || again.Batches != st.Batches {
				t.Fatalf("reopened: %d batches, %d bytes, %d dead; before: %d, %d, %d", again.Batches, again.Bytes, again.DeadBytes, st.Batches, st.Bytes, st.DeadBytes)
			}
			ids, kinds := peekAll(t, s, size)
			for i, r := range py.Records {
				if r.First != uint64(ids[i]*n) {
					t.Fatalf("read_spool.py's record %d starts at %d, the spool's batch %d", i, r.First, ids[i])
				}
			}
			want := slices.Clone(listens)
			for i := total - 1; len(want) < kept; i-- {
				if i%4 != 0 {
					want = append(want, i)
				}
			}
			slices.Sort(want)
			if !slices.Equal(ids, want) {
				t.Fatalf("after a restart the spool holds %v, want %v", ids, want)
			}
			if kinds[kindListen] != len(listens) {
				t.Fatalf("replayed %d listens, want %d", kinds[kindListen], len(listens))
			}
			if st := s.Stats(); st.Dropped() != 0 || st.CorruptRegions != 0 || st.DeadBytes != 0 || st.Bytes != 0 {
				t.Fatalf("the restarted spool counted drops %v, %d corrupt regions", st.DroppedMessages, st.CorruptRegions)
			}
		})
	}
}

// TestFullOfProtectedDropsThem: with nothing expendable left, a full spool
// drops the oldest protected batch as before, and counts its kinds.
func TestFullOfProtectedDropsThem(t *testing.T) {
	const n, size = 10, 100
	rec := recordSize(kindsBatch(0, n, size, true))
	s := mustOpen(t, t.TempDir(), Options{MaxBytes: 3 * rec, Expendable: Kinds(kindBind), OnDrop: func(Drop) {}})
	defer s.Close()
	for i := range 5 {
		mustAppend(t, s, kindsBatch(i, n, size, true))
	}
	st := s.Stats()
	if got := st.DroppedByKind[FullOldest]; got[kindListen] != 2 || got[kindBind] != 2*(n-1) {
		t.Fatalf("dropped by kind %v, want 2 listens and %d binds", got, 2*(n-1))
	}
	if ids := drain(t, s, size); !slices.Equal(ids, []int{2, 3, 4}) {
		t.Fatalf("spool holds %v, want [2 3 4]", ids)
	}
}

// TestDropNewestKinds: under DropNewest a batch holding a listen takes the
// place of the newest bind-only one; a bind-only batch is refused.
func TestDropNewestKinds(t *testing.T) {
	const n, size = 500, 200
	rec := recordSize(kindsBatch(0, n, size, false))
	s := mustOpen(t, t.TempDir(), Options{MaxBytes: 4 * rec, FullPolicy: DropNewest, Expendable: Kinds(kindBind), OnDrop: func(Drop) {}})
	defer s.Close()
	for i := range 4 {
		mustAppend(t, s, kindsBatch(i, n, size, false))
	}
	mustAppend(t, s, kindsBatch(4, n, size, true)) // drops 3
	mustAppend(t, s, kindsBatch(5, n, size, true)) // drops 2
	if err := s.Append(kindsBatch(6, n, size, false)); !errors.Is(err, ErrFull) {
		t.Fatalf("Append of a bind-only batch to a full spool: %v, want ErrFull", err)
	}
	st := s.Stats()
	if st.DroppedByKind[FullNewest][kindBind] != 3*n || st.DroppedBatches[FullNewest] != 3 || st.Dropped() != 3*n {
		t.Fatalf("dropped by kind %v, want %d binds, newest", st.DroppedByKind, 3*n)
	}
	if ids := drain(t, s, size); !slices.Equal(ids, []int{0, 1, 4, 5}) {
		t.Fatalf("spool holds %v, want [0 1 4 5]", ids)
	}
}

// TestVersion1Records: records an older agent spooled (version 1, no
// kinds) are replayed, of KindUnknown, and never taken for expendable.
func TestVersion1Records(t *testing.T) {
	// Batches large enough that a drop in place frees most of one, and
	// the bound on what drops keep on disk (MaxBytes/8) allows two.
	const n, size = 500, 200
	dir := t.TempDir()
	var seg []byte
	for i := range 2 {
		seg = appendRecordVersion(seg, recordV1, uint64(i*n), kindsBatch(i, n, size, false))
	}
	writeFile(t, filepath.Join(dir, segmentName(1)), seg)
	rec := recordSize(kindsBatch(0, n, size, false))
	s := mustOpen(t, dir, Options{MaxBytes: 4 * rec, Expendable: Kinds(kindBind), OnDrop: func(Drop) {}})
	defer s.Close()
	mustAppend(t, s, kindsBatch(2, n, size, false))
	mustAppend(t, s, kindsBatch(3, n, size, false))
	mustAppend(t, s, kindsBatch(4, n, size, true)) // drops batch 2, not 0
	mustAppend(t, s, kindsBatch(5, n, size, true)) // drops batch 3, not 0
	st := s.Stats()
	if st.DroppedByKind[FullOldest][kindBind] != 2*n || st.Dropped() != 2*n {
		t.Fatalf("dropped by kind %v, want the two bind batches", st.DroppedByKind[FullOldest])
	}
	mustAppend(t, s, kindsBatch(6, n, size, true)) // nothing expendable: drops batch 0
	if st := s.Stats(); st.DroppedByKind[FullOldest][KindUnknown] != n {
		t.Fatalf("dropped by kind %v, want the version 1 batch as unknown", st.DroppedByKind[FullOldest])
	}
	ids, kinds := peekAll(t, s, size)
	if !slices.Equal(ids, []int{1, 4, 5, 6}) || kinds[KindUnknown] != n {
		t.Fatalf("spool holds %v with kinds %v, want [1 4 5 6], %d unknown", ids, kinds, n)
	}
}

// TestDroppedInPlaceAcrossAcks: records dropped in place, some batches
// replayed and acknowledged past them, then a restart: the reopened spool
// counts the same batches and bytes, and replays the rest, no drop counted
// again.
func TestDroppedInPlaceAcrossAcks(t *testing.T) {
	const n, size = 500, 200
	rec := recordSize(kindsBatch(0, n, size, false))
	dir := t.TempDir()
	opts := Options{MaxBytes: 6 * rec, SegmentBytes: 3 * rec, Expendable: Kinds(kindBind), OnDrop: func(Drop) {}}
	s := mustOpen(t, dir, opts)
	// Listens at 0, 2, 4; binds between; the binds 1 and 3 go for 6 and 7.
	for i := range 8 {
		mustAppend(t, s, kindsBatch(i, n, size, i%2 == 0 && i < 6))
	}
	if st := s.Stats(); st.DroppedByKind[FullOldest][kindBind] != 2*n || st.DeadBytes == 0 {
		t.Fatalf("dropped by kind %v, %d dead bytes; want two bind batches dropped in place", st.DroppedByKind[FullOldest], st.DeadBytes)
	}
	var got []int
	for range 3 {
		b, err := s.Peek()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, batchID(t, b, size))
		if err := s.Ack(b); err != nil {
			t.Fatal(err)
		}
	}
	before := s.Stats()
	s.Close()
	s = mustOpen(t, dir, opts)
	defer s.Close()
	after := s.Stats()
	if after.Batches != before.Batches || after.Bytes != before.Bytes || after.DeadBytes != before.DeadBytes {
		t.Fatalf("reopened: %d batches, %d bytes, %d dead; before: %d, %d, %d", after.Batches, after.Bytes, after.DeadBytes, before.Batches, before.Bytes, before.DeadBytes)
	}
	rest, _ := peekAll(t, s, size)
	got = append(got, rest...)
	if !slices.Equal(got, []int{0, 2, 4, 5, 6, 7}) {
		t.Fatalf("replayed %v, want [0 2 4 5 6 7]", got)
	}
	if st := s.Stats(); st.Dropped() != 0 || st.DeadBytes != 0 || st.Segments > 1 {
		t.Fatalf("after the replay: drops %v, %d dead bytes, %d segments", st.DroppedMessages, st.DeadBytes, st.Segments)
	}
}

// TestSplitMixedKeepsListens: every batch holds a listen among its binds,
// so no batch is expendable whole. With SplitMixed, once the spool is past
// half full, batches are cut into runs of binds and the listens between;
// a full spool drops the binds and keeps every listen, in order, and a
// restart replays the same. (Within the bound on what drops in place keep
// on disk, MaxBytes/8, about 4 KiB a run: a longer outage than this test's
// drops the oldest records whatever they hold.)
func TestSplitMixedKeepsListens(t *testing.T) {
	const n, size, capacity, total = 500, 200, 16, 24
	rec := recordSize(kindsBatch(0, n, size, false))
	dir := t.TempDir()
	opts := Options{MaxBytes: capacity * rec, SegmentBytes: 4 * rec, Expendable: Kinds(kindBind),
		SplitMixed: true, OnDrop: func(Drop) {}}
	s := mustOpen(t, dir, opts)
	for i := range total {
		mustAppend(t, s, kindsBatch(i, n, size, true))
	}
	st := s.Stats()
	if st.DroppedByKind[FullOldest][kindListen] != 0 || st.DroppedByKind[FullOldest][kindBind] == 0 {
		t.Fatalf("dropped by kind %v: want binds, no listen", st.DroppedByKind[FullOldest])
	}
	s.Close()
	s = mustOpen(t, dir, opts)
	defer s.Close()
	var listens []uint64
	var last uint64
	for {
		b, err := s.Peek()
		if errors.Is(err, ErrEmpty) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if b.First < last {
			t.Fatalf("batch from %d after %d", b.First, last)
		}
		last = b.First
		for j, m := range b.Messages {
			if m.Kind == kindListen {
				listens = append(listens, b.First+uint64(j))
			}
		}
		if err := s.Ack(b); err != nil {
			t.Fatal(err)
		}
	}
	if len(listens) != total {
		t.Fatalf("replayed %d listens, want %d: %v", len(listens), total, listens)
	}
	for i, seq := range listens {
		if want := uint64(i*n + n/2); seq != want {
			t.Fatalf("listen %d has sequence number %d, want %d", i, seq, want)
		}
	}
	if st := s.Stats(); st.Dropped() != 0 || st.CorruptRegions != 0 {
		t.Fatalf("the restarted spool counted drops %v, %d corrupt regions", st.DroppedMessages, st.CorruptRegions)
	}

	// Without SplitMixed the same storm loses listens: every batch is
	// kept or dropped whole.
	s2 := mustOpen(t, t.TempDir(), Options{MaxBytes: capacity * rec, SegmentBytes: 4 * rec, Expendable: Kinds(kindBind), OnDrop: func(Drop) {}})
	defer s2.Close()
	for i := range total {
		mustAppend(t, s2, kindsBatch(i, n, size, true))
	}
	if got := s2.Stats().DroppedByKind[FullOldest][kindListen]; got == 0 {
		t.Fatalf("without SplitMixed no listen was dropped")
	}
}
