// Package inventory finds what already listens on the host: every TCP,
// MPTCP and SCTP socket in LISTEN and every UDP socket bound to an explicit
// port and not connected, in every network namespace, with every process
// holding it. One pass makes one snapshot: a snapshot record per socket and
// a snapshot_end record, all numbered from the kernel's sequence, so a
// consumer sweeps whatever the snapshot no longer holds.
package inventory

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/schemas"
)

// Source walks the sockets, calling fn for each (process, fd) holding one;
// Name says how, for snapshot_source.
type Source interface {
	Name() string
	Inventory(fn func(*bpf.InventoryEntry) error) error
}

// Sequencer numbers records from the kernel's sequence: a loaded bpf.Probe.
type Sequencer interface {
	ReserveSeq(n uint64) (uint64, error)
}

// SourceBPFIter names the one-pass walk of every process's open files.
const SourceBPFIter = "bpf_iter"

// IterSource is the BPF task_file iterator of a loaded probe.
type IterSource struct{ Probe *bpf.Probe }

// Name is SourceBPFIter.
func (IterSource) Name() string { return SourceBPFIter }

// Inventory runs the iterator.
func (s IterSource) Inventory(fn func(*bpf.InventoryEntry) error) error { return s.Probe.Inventory(fn) }

// Snapshot is one inventory pass.
type Snapshot struct {
	ID string
	// Records are the snapshot records, then the snapshot_end record.
	Records []schemas.BindEvent
	// Incomplete says what the pass could not walk.
	Incomplete []string
}

// socket is one socket and everyone holding it.
type socket struct {
	entry   bpf.InventoryEntry // the first holder's entry
	holders []bpf.InventoryEntry
}

// Take walks the host once. Sockets whose cookie nobody asked for yet get
// one through a copy of a holder's fd; those it cannot get (the agent may
// not copy that process's fds) are listed with cookie 0 and counted in
// snapshot_end. The capture filter's process, user and port apply as they
// do to events: a socket is listed when one of its holders passes. now
// stamps every record.
func Take(src Source, seq Sequencer, f bpf.Filter, now time.Time) (*Snapshot, error) {
	snap := &Snapshot{ID: newID()}
	byCookie := map[uint64]*socket{}
	byInode := map[[2]uint64]*socket{} // (netns, inode) of sockets without a cookie
	var uncookied []*socket
	var noCookie int
	walkErr := src.Inventory(func(e *bpf.InventoryEntry) error {
		if e.Protocol == bpf.ProtoUDP && !e.ExplicitPort {
			return nil // a client's socket, autobound at its first send
		}
		if !wanted(f, e) {
			return nil
		}
		if e.Cookie == 0 {
			if c, err := askCookie(e.PID, e.FD); err == nil {
				e.Cookie = c
			}
		}
		if e.Cookie == 0 {
			key := [2]uint64{uint64(e.NetNS), e.Inode}
			if s, ok := byInode[key]; ok && e.Inode != 0 {
				s.holders = append(s.holders, *e)
				return nil
			}
			noCookie++
			s := &socket{entry: *e, holders: []bpf.InventoryEntry{*e}}
			byInode[key] = s
			uncookied = append(uncookied, s)
			return nil
		}
		s, ok := byCookie[e.Cookie]
		if !ok {
			s = &socket{entry: *e}
			byCookie[e.Cookie] = s
		}
		s.holders = append(s.holders, *e)
		return nil
	})
	if errors.Is(walkErr, bpf.ErrNoIterator) {
		return nil, walkErr
	}
	if walkErr != nil {
		// What was walked is still reported; the end record says the rest.
		snap.Incomplete = append(snap.Incomplete, fmt.Sprintf("the walk stopped early: %v", walkErr))
	}
	if noCookie > 0 {
		snap.Incomplete = append(snap.Incomplete, fmt.Sprintf("%d sockets without a cookie: not allowed to ask their holders", noCookie))
	}
	sockets := make([]*socket, 0, len(byCookie)+len(uncookied))
	for _, s := range byCookie {
		sockets = append(sockets, s)
	}
	sockets = append(sockets, uncookied...)
	slices.SortFunc(sockets, func(a, b *socket) int {
		return cmp.Or(cmp.Compare(a.entry.NetNS, b.entry.NetNS), cmp.Compare(a.entry.Port, b.entry.Port),
			cmp.Compare(a.entry.Cookie, b.entry.Cookie), cmp.Compare(a.entry.PID, b.entry.PID))
	})
	first, err := seq.ReserveSeq(uint64(len(sockets)) + 1)
	if err != nil {
		return nil, err
	}
	source := src.Name()
	for i, s := range sockets {
		snap.Records = append(snap.Records, s.record(first+uint64(i), now, &snap.ID, &source))
	}
	snap.Records = append(snap.Records, schemas.BindEvent{
		Kind: schemas.KindSnapshotEnd, Seq: int64(first + uint64(len(sockets))), Time: now,
		SnapshotID: &snap.ID, SnapshotSource: &source, SnapshotSockets: int64(len(sockets)),
		SnapshotIncomplete: snap.Incomplete,
	})
	return snap, nil
}

// wanted applies the capture filter's process, user and port parts.
func wanted(f bpf.Filter, e *bpf.InventoryEntry) bool {
	if f.PID != 0 && e.PID != f.PID {
		return false
	}
	if f.HasUID && e.UID != f.UID {
		return false
	}
	return len(f.Ports) == 0 || slices.Contains(f.Ports, e.Port)
}

var trueValue, falseValue = true, false

// record is the snapshot record of s. Holders are ordered by pid and fd;
// the record's own process fields are the first holder's.
func (s *socket) record(seq uint64, now time.Time, id, source *string) schemas.BindEvent {
	slices.SortFunc(s.holders, func(a, b bpf.InventoryEntry) int {
		return cmp.Or(cmp.Compare(a.PID, b.PID), cmp.Compare(a.FD, b.FD))
	})
	h0 := s.holders[0]
	e := s.entry
	rec := schemas.BindEvent{
		Kind: schemas.KindSnapshot, Seq: int64(seq), Time: now,
		PID: int32(h0.PID), UID: int64(h0.UID), Comm: h0.CommString(), CgroupID: int64(h0.CgroupID),
		MntNSID: int64(h0.MntNS), NetNSID: int64(e.NetNS),
		Protocol: bpf.ProtocolName(e.Protocol), Family: bpf.FamilyName(e.Family),
		Addr: e.EffectiveAddr().String(), Port: int32(e.Port),
		Freebind: e.Opts.Has(bpf.OptFreebind), Transparent: e.Opts.Has(bpf.OptTransparent),
		BindAddressNoPort: e.Opts.Has(bpf.OptBindAddressNoPort), ReuseAddr: e.Opts.Has(bpf.OptReuseAddr),
		ReusePort: e.Opts.Has(bpf.OptReusePort), V6Only: e.Opts.Has(bpf.OptV6Only),
		BoundIf: int32(e.BoundIf), Cookie: int64(e.Cookie), SnapshotID: id, SnapshotSource: source,
	}
	if e.Protocol == bpf.ProtoUDP {
		rec.PortExplicit = &falseValue
		if e.ExplicitPort {
			rec.PortExplicit = &trueValue
		}
	} else {
		rec.Backlog = int32(e.Backlog)
	}
	for _, h := range s.holders {
		rec.Holders = append(rec.Holders, schemas.Holder{
			PID: int32(h.PID), FD: int32(h.FD), UID: int64(h.UID), Comm: h.CommString(), CgroupID: int64(h.CgroupID),
		})
	}
	return rec
}

// askCookie gets the cookie of another process's socket by copying its fd
// (pidfd_getfd, which needs the right to ptrace that process) and asking
// SO_COOKIE, which makes the kernel assign it for good.
func askCookie(pid, fd uint32) (uint64, error) {
	pidfd, err := unix.PidfdOpen(int(pid), 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(pidfd)
	sock, err := unix.PidfdGetfd(pidfd, int(fd), 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(sock)
	return unix.GetsockoptUint64(sock, unix.SOL_SOCKET, unix.SO_COOKIE)
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
