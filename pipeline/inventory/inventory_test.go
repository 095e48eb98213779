package inventory

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/schemas"
)

// fakeSource hands out fixed entries and numbers from 1000.
type fakeSource struct {
	entries []bpf.InventoryEntry
	stopAt  int // stop with an error after this many entries; 0 never
	next    uint64
}

func (f *fakeSource) Name() string { return SourceBPFIter }

func (f *fakeSource) Inventory(fn func(*bpf.InventoryEntry) error) error {
	for i := range f.entries {
		if f.stopAt > 0 && i == f.stopAt {
			return errors.New("iterator read: interrupted")
		}
		e := f.entries[i]
		if err := fn(&e); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeSource) ReserveSeq(n uint64) (uint64, error) {
	first := 1000 + f.next
	f.next += n
	return first, nil
}

func entry(cookie uint64, pid, fd uint32, proto uint16, port uint16, explicit bool) bpf.InventoryEntry {
	e := bpf.InventoryEntry{Cookie: cookie, PID: pid, FD: fd, UID: pid * 10, NetNS: 4026531840,
		Protocol: proto, Family: bpf.AFInet, Port: port, State: bpf.TCPListen, ExplicitPort: explicit, Backlog: 128}
	copy(e.Addr[:], []byte{127, 0, 0, 1})
	copy(e.Comm[:], "svc")
	return e
}

func TestTake(t *testing.T) {
	src := &fakeSource{entries: []bpf.InventoryEntry{
		entry(7, 300, 4, bpf.ProtoTCP, 8080, true),
		entry(9, 50, 3, bpf.ProtoUDP, 53, true),
		entry(7, 200, 9, bpf.ProtoTCP, 8080, true),   // a second holder
		entry(11, 60, 5, bpf.ProtoUDP, 40000, false), // a client's autobound socket
	}}
	now := time.Unix(1700000000, 0)
	snap, err := Take(src, src, bpf.Filter{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Records) != 3 {
		t.Fatalf("%d records, want 2 sockets and the end: %+v", len(snap.Records), snap.Records)
	}
	udp, tcp, end := snap.Records[0], snap.Records[1], snap.Records[2]
	for i, r := range snap.Records {
		if r.Seq != int64(1000+i) || !r.Time.Equal(now) || *r.SnapshotID != snap.ID || *r.SnapshotSource != SourceBPFIter {
			t.Errorf("record %d: seq %d time %v snapshot %v", i, r.Seq, r.Time, *r.SnapshotID)
		}
	}
	if udp.Kind != schemas.KindSnapshot || udp.Protocol != "UDP" || udp.Port != 53 || udp.PortExplicit == nil || !*udp.PortExplicit || udp.Backlog != 0 {
		t.Errorf("UDP server record %+v", udp)
	}
	if tcp.Cookie != 7 || tcp.Backlog != 128 || tcp.PID != 200 || tcp.UID != 2000 || tcp.PortExplicit != nil {
		t.Errorf("TCP record %+v", tcp)
	}
	var pids []int32
	for _, h := range tcp.Holders {
		pids = append(pids, h.PID)
	}
	if !slices.Equal(pids, []int32{200, 300}) {
		t.Errorf("holders %v, want 200 and 300 in order", pids)
	}
	if end.Kind != schemas.KindSnapshotEnd || end.SnapshotSockets != 2 || len(end.SnapshotIncomplete) != 0 {
		t.Errorf("end %+v", end)
	}
}

func TestTakeFilterAndEarlyStop(t *testing.T) {
	src := &fakeSource{stopAt: 2, entries: []bpf.InventoryEntry{
		entry(7, 300, 4, bpf.ProtoTCP, 8080, true),
		entry(8, 301, 4, bpf.ProtoTCP, 9090, true),
		entry(9, 302, 4, bpf.ProtoTCP, 7070, true),
	}}
	snap, err := Take(src, src, bpf.Filter{Ports: []uint16{9090, 7070}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Records) != 2 || snap.Records[0].Port != 9090 {
		t.Fatalf("records %+v: want the 9090 listener and the end", snap.Records)
	}
	end := snap.Records[1]
	if end.SnapshotSockets != 1 || len(end.SnapshotIncomplete) != 1 || end.SnapshotIncomplete[0] != "the walk stopped early: iterator read: interrupted" {
		t.Fatalf("end %+v", end)
	}
}

func TestTakeWithoutIterator(t *testing.T) {
	if _, err := Take(noIterator{}, noIterator{}, bpf.Filter{}, time.Now()); !errors.Is(err, bpf.ErrNoIterator) {
		t.Fatalf("Take = %v, want ErrNoIterator", err)
	}
}

type noIterator struct{}

func (noIterator) Name() string                                    { return SourceBPFIter }
func (noIterator) Inventory(func(*bpf.InventoryEntry) error) error { return bpf.ErrNoIterator }
func (noIterator) ReserveSeq(uint64) (uint64, error)               { return 0, nil }
