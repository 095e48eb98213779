package state

import (
	"testing"
	"time"
)

func tr() *bool { v := true; return &v }

// timeline builds one host's records with gapless seqs.
type timeline struct {
	boot string
	seq  int64
	t0   time.Time
}

func (tl *timeline) ev(kind, proto, addr string, port int32, cookie int64) *Event {
	tl.seq++
	return &Event{
		Kind: kind, Host: "h1", HostID: "id1", BootID: tl.boot, Seq: tl.seq, Time: tl.t0.Add(time.Duration(tl.seq) * time.Millisecond),
		PID: 100, Protocol: proto, Family: "AF_INET", Addr: addr, Port: port, Cookie: cookie, NetNS: 4026531840, Exe: "/usr/bin/x",
	}
}

func ops(r Result) string {
	s := ""
	for _, c := range r.Changes {
		if c.Op == Added {
			s += "+"
		} else {
			s += "-"
		}
		s += c.L.Key.String() + " "
	}
	return s
}

func TestListenClose(t *testing.T) {
	tb := New()
	tl := &timeline{boot: "b1", t0: time.Unix(1000, 0)}
	if r := tb.Apply(tl.ev(KindListen, "TCP", "0.0.0.0", 80, 7)); ops(r) != "+4026531840/7 " {
		t.Fatalf("listen: %s", ops(r))
	}
	if r := tb.Apply(tl.ev(KindClose, "TCP", "0.0.0.0", 80, 7)); ops(r) != "-4026531840/7 " {
		t.Fatalf("close: %s", ops(r))
	}
	// A failed listen: the undo close, then a listen with an error.
	if r := tb.Apply(tl.ev(KindClose, "TCP", "0.0.0.0", 81, 8)); len(r.Changes) != 0 {
		t.Fatalf("undo close of an unknown socket: %s", ops(r))
	}
	e := tl.ev(KindListen, "TCP", "0.0.0.0", 81, 8)
	e.Error = 98
	if r := tb.Apply(e); len(r.Changes) != 0 {
		t.Fatalf("failed listen: %s", ops(r))
	}
	// A TCP bind is no listener; a UDP bind to an explicit port is.
	if r := tb.Apply(tl.ev(KindBind, "TCP", "0.0.0.0", 82, 9)); len(r.Changes) != 0 {
		t.Fatalf("tcp bind: %s", ops(r))
	}
	u := tl.ev(KindBind, "UDP", "0.0.0.0", 5353, 10)
	u.RequestedPort = 5353
	if r := tb.Apply(u); ops(r) != "+4026531840/10 " {
		t.Fatalf("udp server bind: %s", ops(r))
	}
	c := tl.ev(KindBind, "UDP", "0.0.0.0", 40000, 11)
	if r := tb.Apply(c); len(r.Changes) != 0 {
		t.Fatalf("udp client bind (port 0): %s", ops(r))
	}
	if r := tb.Apply(tl.ev(KindClose, "UDP", "0.0.0.0", 5353, 10)); ops(r) != "-4026531840/10 " {
		t.Fatalf("udp close: %s", ops(r))
	}
}

func TestDuplicatesSkipped(t *testing.T) {
	tb := New()
	tl := &timeline{boot: "b1", t0: time.Unix(1000, 0)}
	e := tl.ev(KindListen, "TCP", "0.0.0.0", 80, 7)
	tb.Apply(e)
	tb.Apply(tl.ev(KindClose, "TCP", "0.0.0.0", 80, 7))
	if r := tb.Apply(e); !r.Skipped || len(r.Changes) != 0 {
		t.Fatalf("replayed listen applied again: %+v", r)
	}
}

func TestReusePortIsOneService(t *testing.T) {
	tb := New()
	tl := &timeline{boot: "b1", t0: time.Unix(1000, 0)}
	tb.Apply(tl.ev(KindListen, "TCP", "0.0.0.0", 80, 7))
	tb.Apply(tl.ev(KindListen, "TCP", "0.0.0.0", 80, 8))
	h := tb.Hosts["id1"]
	if len(h.Services) != 1 || len(h.Members(ServiceKey{4026531840, "TCP", "0.0.0.0", 80})) != 2 {
		t.Fatalf("services %v", h.Services)
	}
	tb.Apply(tl.ev(KindClose, "TCP", "0.0.0.0", 80, 7))
	if len(h.Services) != 1 {
		t.Fatal("service gone with a member left")
	}
	tb.Apply(tl.ev(KindClose, "TCP", "0.0.0.0", 80, 8))
	if len(h.Services) != 0 {
		t.Fatal("service left after its last member closed")
	}
}

func TestSnapshotSweeps(t *testing.T) {
	tb := New()
	tl := &timeline{boot: "b1", t0: time.Unix(1000, 0)}
	tb.Apply(tl.ev(KindListen, "TCP", "0.0.0.0", 80, 7))
	tb.Apply(tl.ev(KindListen, "TCP", "0.0.0.0", 81, 8)) // its close was lost
	s := tl.ev(KindSnapshot, "TCP", "0.0.0.0", 80, 7)
	s.SnapshotID = "s1"
	tb.Apply(s)
	udp := tl.ev(KindSnapshot, "UDP", "0.0.0.0", 41000, 20) // a client socket
	udp.SnapshotID = "s1"
	if r := tb.Apply(udp); len(r.Changes) != 0 {
		t.Fatalf("UDP client in snapshot: %s", ops(r))
	}
	srv := tl.ev(KindSnapshot, "UDP", "0.0.0.0", 53, 21)
	srv.SnapshotID, srv.PortExplicit = "s1", tr()
	if r := tb.Apply(srv); ops(r) != "+4026531840/21 " {
		t.Fatalf("UDP server in snapshot: %s", ops(r))
	}
	tb.Apply(tl.ev(KindListen, "TCP", "0.0.0.0", 82, 9)) // during the snapshot
	end := tl.ev(KindSnapshotEnd, "", "", 0, 0)
	end.SnapshotID, end.SnapshotSockets = "s1", 3
	r := tb.Apply(end)
	if ops(r) != "-4026531840/8 " || !r.Completed {
		t.Fatalf("sweep: %s completed %v", ops(r), r.Completed)
	}
	// An incomplete snapshot sweeps nothing.
	s2 := tl.ev(KindSnapshot, "TCP", "0.0.0.0", 80, 7)
	s2.SnapshotID = "s2"
	tb.Apply(s2)
	end2 := tl.ev(KindSnapshotEnd, "", "", 0, 0)
	end2.SnapshotID, end2.SnapshotIncomplete = "s2", []string{"netns 4026532000"}
	if r := tb.Apply(end2); len(r.Changes) != 0 {
		t.Fatalf("incomplete snapshot swept: %s", ops(r))
	}
	// An empty snapshot sweeps everything.
	end3 := tl.ev(KindSnapshotEnd, "", "", 0, 0)
	end3.SnapshotID = "s3"
	if r := tb.Apply(end3); len(r.Changes) != 3 {
		t.Fatalf("empty snapshot left listeners: %s", ops(r))
	}
}

func TestRestoredMidSnapshotDoesNotSweep(t *testing.T) {
	tb := New()
	h := tb.Restore(HostMeta{HostID: "id1", BootID: "b1", LastSeq: 5, SnapshotID: "s1", SnapshotStart: 3, BootTime: time.Unix(1000, 0)})
	h.Put(&Listener{Key: Key{NetNS: 1, Cookie: 7}, Seq: 2, Protocol: "TCP", Addr: "0.0.0.0", Port: 80})
	tl := &timeline{boot: "b1", seq: 5, t0: time.Unix(1000, 0)}
	end := tl.ev(KindSnapshotEnd, "", "", 0, 0)
	end.SnapshotID, end.SnapshotSockets = "s1", 1
	if r := tb.Apply(end); len(r.Changes) != 0 {
		t.Fatalf("swept after a rebuild mid-snapshot: %s", ops(r))
	}
}

func TestNewBootClears(t *testing.T) {
	tb := New()
	tl := &timeline{boot: "b1", t0: time.Unix(1000, 0)}
	tb.Apply(tl.ev(KindListen, "TCP", "0.0.0.0", 80, 7))
	tb.Apply(tl.ev(KindListen, "TCP", "0.0.0.0", 81, 8))
	late := tl.ev(KindListen, "TCP", "0.0.0.0", 83, 10)
	tl2 := &timeline{boot: "b2", t0: time.Unix(2000, 0)}
	r := tb.Apply(tl2.ev(KindListen, "TCP", "0.0.0.0", 22, 3))
	if !r.NewBoot || ops(r) != "-4026531840/7 -4026531840/8 +4026531840/3 " {
		t.Fatalf("new boot: %s", ops(r))
	}
	if r := tb.Apply(late); !r.Skipped {
		t.Fatalf("late record of the old boot applied: %s", ops(r))
	}
	if h := tb.Hosts["id1"]; len(h.Listeners) != 1 || h.BootID != "b2" {
		t.Fatalf("host after reboot: %+v", h)
	}
}
