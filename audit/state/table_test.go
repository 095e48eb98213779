package state

import (
	"fmt"
	"runtime"
	"strings"
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
		switch c.Op {
		case Added:
			s += "+"
		case Removed:
			s += "-"
		case Updated:
			s += "~"
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

// A snapshot sweeps only when every seq from its first record to its end
// arrived: a lost snapshot record reads as a socket that is gone, and the
// sweep would remove a live listener (and resolve its finding).
func TestSnapshotWithLostRecordDoesNotSweep(t *testing.T) {
	tb := New()
	tl := &timeline{boot: "b1", t0: time.Unix(1000, 0)}
	snap := func(port int32, cookie int64) *Event {
		e := tl.ev(KindSnapshot, "TCP", "0.0.0.0", port, cookie)
		e.SnapshotID = "s1"
		return e
	}
	tb.Apply(tl.ev(KindListen, "TCP", "0.0.0.0", 80, 7))
	tb.Apply(tl.ev(KindListen, "TCP", "0.0.0.0", 443, 8))
	tb.Apply(snap(22, 9))
	snap(80, 7) // lost between the agent and the audit
	r := tb.Apply(snap(443, 8))
	if r.Gap == nil || r.Gap.From != 4 || r.Gap.To != 4 {
		t.Fatalf("gap %+v, want 4..4", r.Gap)
	}
	end := tl.ev(KindSnapshotEnd, "", "", 0, 0)
	end.SnapshotID, end.SnapshotSockets = "s1", 3
	if r := tb.Apply(end); r.Swept || len(r.Changes) != 0 {
		t.Fatalf("a snapshot with a lost record swept: %s", ops(r))
	}
	if len(tb.Hosts["id1"].Listeners) != 3 {
		t.Fatalf("listeners %d, want 80, 443 and 22", len(tb.Hosts["id1"].Listeners))
	}
	// The next whole snapshot sweeps again.
	s2 := func(port int32, cookie int64) {
		e := tl.ev(KindSnapshot, "TCP", "0.0.0.0", port, cookie)
		e.SnapshotID = "s2"
		tb.Apply(e)
	}
	s2(22, 9)
	s2(80, 7)
	end = tl.ev(KindSnapshotEnd, "", "", 0, 0)
	end.SnapshotID, end.SnapshotSockets = "s2", 2
	if r := tb.Apply(end); !r.Swept || ops(r) != "-4026531840/8 " || r.Gap != nil {
		t.Fatalf("whole snapshot: swept %v %s gap %+v", r.Swept, ops(r), r.Gap)
	}
}

// Gaps are seen within a boot, not at its start (an audit that starts
// mid-stream cannot tell a loss from retention), and heartbeats and stops
// set the host's liveness.
func TestGapsAndLiveness(t *testing.T) {
	tb := New()
	tl := &timeline{boot: "b1", t0: time.Unix(1000, 0)}
	tl.seq = 40
	if r := tb.Apply(tl.ev(KindListen, "TCP", "0.0.0.0", 80, 7)); r.Gap != nil {
		t.Fatalf("first record of a host: gap %+v", r.Gap)
	}
	hb := tl.ev(KindHeartbeat, "", "", 0, 0)
	hb.HeartbeatInterval = 30 * time.Second
	tb.Apply(hb)
	h := tb.Hosts["id1"]
	if h.HeartbeatInterval != 30*time.Second || h.Stopped {
		t.Fatalf("after heartbeat: %+v", h.Liveness)
	}
	tl.seq += 10
	r := tb.Apply(tl.ev(KindStop, "", "", 0, 0))
	if r.Gap != nil || !h.Stopped {
		t.Fatalf("a stop ahead of records numbered before it: gap %+v (it may overtake them), stopped %v", r.Gap, h.Stopped)
	}
	r = tb.Apply(tl.ev(KindBind, "TCP", "0.0.0.0", 81, 9))
	if h.Stopped {
		t.Fatal("a record after a stop left the host stopped")
	}
	if r.Gap == nil || r.Gap.From != 43 || r.Gap.To < 52 {
		t.Fatalf("records 43..52 never came: gap %+v", r.Gap)
	}
	nb := &timeline{boot: "b2", t0: time.Unix(5000, 0), seq: 100}
	if r := tb.Apply(nb.ev(KindListen, "TCP", "0.0.0.0", 80, 7)); !r.NewBoot || r.Gap != nil {
		t.Fatalf("first record of a new boot: new %v gap %+v", r.NewBoot, r.Gap)
	}
}

// The agent's own records (heartbeat, suppressed, stop) reach the stream
// beside the ring's and may overtake records numbered before them: those
// are applied when they come, not skipped, and no gap is seen.
func TestOutOfBandRecordsMayOvertake(t *testing.T) {
	tb := New()
	tl := &timeline{boot: "b1", t0: time.Unix(1000, 0)}
	tb.Apply(tl.ev(KindBind, "TCP", "0.0.0.0", 80, 1)) // seq 1
	listen := tl.ev(KindListen, "TCP", "0.0.0.0", 4444, 2)
	hb := tl.ev(KindHeartbeat, "", "", 0, 0)
	hb.HeartbeatInterval = time.Second
	if r := tb.Apply(hb); r.Gap != nil || r.Skipped {
		t.Fatalf("heartbeat ahead of seq 2: %+v", r)
	}
	if tb.Hosts["id1"].HeartbeatInterval != time.Second {
		t.Fatal("the heartbeat's interval was not taken")
	}
	if r := tb.Apply(listen); r.Skipped || r.Gap != nil || ops(r) != "+4026531840/2 " {
		t.Fatalf("the listen it overtook: skipped %v gap %+v %s", r.Skipped, r.Gap, ops(r))
	}
	if r := tb.Apply(tl.ev(KindClose, "TCP", "0.0.0.0", 4444, 2)); r.Gap != nil || ops(r) != "-4026531840/2 " {
		t.Fatalf("the next record: gap %+v %s", r.Gap, ops(r))
	}
	if r := tb.Apply(hb); !r.Skipped {
		t.Fatal("the heartbeat again was not a duplicate")
	}
}

// The first record of a snapshot lost: no gap follows it inside the
// snapshot, but its end announces more records than arrived.
func TestSnapshotWithLostFirstRecordDoesNotSweep(t *testing.T) {
	tb := New()
	tl := &timeline{boot: "b1", t0: time.Unix(1000, 0)}
	tb.Apply(tl.ev(KindListen, "TCP", "0.0.0.0", 80, 7))
	first := tl.ev(KindSnapshot, "TCP", "0.0.0.0", 80, 7) // lost
	first.SnapshotID = "s1"
	second := tl.ev(KindSnapshot, "TCP", "0.0.0.0", 22, 9)
	second.SnapshotID = "s1"
	tb.Apply(second)
	end := tl.ev(KindSnapshotEnd, "", "", 0, 0)
	end.SnapshotID, end.SnapshotSockets = "s1", 2
	if r := tb.Apply(end); r.Swept || len(r.Changes) != 0 {
		t.Fatalf("a snapshot missing its first record swept: %s", ops(r))
	}
}

// A container's workload the agent could not read yet (workload_source
// pending) is filled in by a later record of the same container that
// carries it: its listeners are Updated, once. Another container's
// record, or a user's container with the same id, changes nothing.
func TestLateWorkload(t *testing.T) {
	tb := New()
	tl := &timeline{boot: "b1", t0: time.Unix(1000, 0)}
	owner := int64(1000)
	in := func(e *Event, id, runtime string, w Workload) *Event {
		e.ContainerID, e.Runtime, e.Workload = id, runtime, w
		return e
	}
	pending := Workload{Source: SourcePending}
	nginx := Workload{Image: "docker.io/library/nginx:1.27", ContainerName: "web", Source: "docker"}
	if r := tb.Apply(in(tl.ev(KindListen, "TCP", "0.0.0.0", 80, 1), "c1", "docker", pending)); ops(r) != "+4026531840/1 " {
		t.Fatalf("listen: %s", ops(r))
	}
	tb.Apply(in(tl.ev(KindListen, "TCP", "0.0.0.0", 443, 2), "c1", "docker", pending))
	// A rootless container of user 1000 named like it, pending too.
	forged := in(tl.ev(KindListen, "TCP", "0.0.0.0", 8080, 3), "c1", "podman-rootless", pending)
	forged.CgroupOwnerUID = &owner
	tb.Apply(forged)
	// Records of another container, and of the user's, with a workload.
	if r := tb.Apply(in(tl.ev(KindBind, "UDP", "0.0.0.0", 0, 4), "c2", "docker", nginx)); len(r.Changes) != 0 {
		t.Errorf("another container's record: %s", ops(r))
	}
	user := in(tl.ev(KindBind, "UDP", "0.0.0.0", 0, 5), "c1", "podman-rootless", Workload{Image: "evil", Source: "podman"})
	user.CgroupOwnerUID = &owner
	tb.Apply(user)
	h := tb.Hosts["id1"]
	if w := h.Listeners[Key{NetNS: 4026531840, Cookie: 1}].Workload; w.Source != SourcePending {
		t.Errorf("docker listener's workload after a user's record: %+v", w)
	}
	if w := h.Listeners[Key{NetNS: 4026531840, Cookie: 3}].Workload; w.Image != "evil" {
		t.Errorf("the user's own pending listener: %+v, want its user's later word", w)
	}
	// The container's own record with its workload: both its listeners.
	r := tb.Apply(in(tl.ev(KindBind, "UDP", "0.0.0.0", 0, 6), "c1", "docker", nginx))
	if ops(r) != "~4026531840/1 ~4026531840/2 " {
		t.Errorf("late workload: %s", ops(r))
	}
	for _, c := range []int64{1, 2} {
		if w := h.Listeners[Key{NetNS: 4026531840, Cookie: c}].Workload; w.Image != nginx.Image || w.Source != "docker" {
			t.Errorf("listener %d: %+v", c, w)
		}
	}
	// Once known, later records change nothing.
	if r := tb.Apply(in(tl.ev(KindBind, "UDP", "0.0.0.0", 0, 7), "c1", "docker", Workload{Image: "other", Source: "docker"})); len(r.Changes) != 0 {
		t.Errorf("a second workload: %s", ops(r))
	}
	if h.pendingWorkloads != 0 {
		t.Errorf("%d pending listeners counted, want 0", h.pendingWorkloads)
	}
	// A pending listener that closes is no longer counted.
	tb.Apply(in(tl.ev(KindListen, "TCP", "0.0.0.0", 81, 8), "c3", "docker", pending))
	tb.Apply(in(tl.ev(KindClose, "TCP", "0.0.0.0", 81, 8), "c3", "docker", pending))
	if h.pendingWorkloads != 0 {
		t.Errorf("%d pending listeners counted after the close, want 0", h.pendingWorkloads)
	}
}

// A host stops at MaxListeners: the next listener is not kept and the
// result says so; a close still frees room.
func TestListenerCap(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tb := New()
	ev := Event{Kind: KindListen, HostID: "h", BootID: "b", Protocol: "TCP", Addr: "0.0.0.0", NetNS: 1}
	for i := range MaxListeners {
		ev.Seq, ev.Cookie, ev.Port = int64(i+1), int64(i+1), int32(i%60000+1)
		if res := tb.Apply(&ev); res.OverCap != "" || len(res.Changes) != 1 {
			t.Fatalf("listener %d: %+v", i, res)
		}
	}
	ev.Seq, ev.Cookie = MaxListeners+1, MaxListeners+1
	if res := tb.Apply(&ev); res.OverCap != "listeners" || len(res.Changes) != 0 {
		t.Fatalf("over the cap: %+v", res)
	}
	if n := len(tb.Hosts["h"].Listeners); n != MaxListeners {
		t.Fatalf("%d listeners kept", n)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("a host at the cap (%d listeners): %.1f MiB of heap", MaxListeners, float64(after.HeapAlloc-before.HeapAlloc)/(1<<20))
	runtime.KeepAlive(tb)
	cl := Event{Kind: KindClose, HostID: "h", BootID: "b", Seq: MaxListeners + 2, Cookie: 1, NetNS: 1}
	tb.Apply(&cl)
	ev.Seq = MaxListeners + 3
	if res := tb.Apply(&ev); res.OverCap != "" || len(res.Changes) != 1 {
		t.Fatalf("after a close: %+v", res)
	}
}

// Cap cuts what a record brings to what the table keeps, and names it.
func TestCapCutsLongStrings(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	labels := map[string]string{}
	for i := range 100 {
		labels[fmt.Sprint(i)] = "v"
	}
	ev := Event{Comm: long, Exe: long, Host: "web-1", Workload: Workload{PodLabels: labels}, CaptureBlind: []string{long}}
	cut := Cap(&ev)
	if len(ev.Comm) != maxShort || len(ev.Exe) != maxPath || ev.Host != "web-1" || len(ev.Workload.PodLabels) != maxList || len(ev.CaptureBlind[0]) != maxDetail {
		t.Fatalf("after Cap: comm %d, exe %d, labels %d", len(ev.Comm), len(ev.Exe), len(ev.Workload.PodLabels))
	}
	if strings.Join(cut, ",") != "comm,exe,pod_labels,capture_blind" {
		t.Fatalf("cut %v", cut)
	}
	if Cap(&Event{Comm: "sshd", Exe: "/usr/sbin/sshd"}) != nil {
		t.Fatal("a normal record was cut")
	}
}

// A seq noted before its host's first record (the agent's host key comes
// first in its first batch) is not taken for a gap later.
func TestNoteBeforeFirstRecord(t *testing.T) {
	tb := New()
	tb.Note(&Event{Kind: KindHostKey, HostID: "h", BootID: "b", Seq: 12})
	for _, seq := range []int64{10, 11} {
		if res := tb.Apply(&Event{Kind: KindHeartbeat, HostID: "h", BootID: "b", Seq: seq}); res.Gap != nil {
			t.Fatalf("seq %d: gap %+v", seq, res.Gap)
		}
	}
	tb.Note(&Event{Kind: KindSeal, HostID: "h", BootID: "b", Seq: 13})
	if res := tb.Apply(&Event{Kind: KindHeartbeat, HostID: "h", BootID: "b", Seq: 14}); res.Gap != nil {
		t.Fatalf("after the host key and the seal: gap %+v", res.Gap)
	}
	// The same on a new boot.
	tb.Note(&Event{Kind: KindHostKey, HostID: "h", BootID: "b2", Seq: 3})
	tb.Apply(&Event{Kind: KindHeartbeat, HostID: "h", BootID: "b2", Seq: 1, Time: time.Now()})
	tb.Apply(&Event{Kind: KindHeartbeat, HostID: "h", BootID: "b2", Seq: 2, Time: time.Now()})
	if res := tb.Apply(&Event{Kind: KindHeartbeat, HostID: "h", BootID: "b2", Seq: 4, Time: time.Now()}); res.Gap != nil {
		t.Fatalf("new boot: gap %+v", res.Gap)
	}
}

// A table's ListenerCap (audit.max_listeners) replaces MaxListeners.
func TestListenerCapConfigured(t *testing.T) {
	tb := New()
	tb.ListenerCap = 3
	ev := Event{Kind: KindListen, HostID: "h", BootID: "b", Protocol: "TCP", Addr: "0.0.0.0", NetNS: 1}
	for i := range 4 {
		ev.Seq, ev.Cookie, ev.Port = int64(i+1), int64(i+1), int32(i+1)
		res := tb.Apply(&ev)
		if over := i >= 3; (res.OverCap == "listeners") != over || (len(res.Changes) == 1) == over {
			t.Fatalf("listener %d of a cap of 3: %+v", i+1, res)
		}
	}
	if n := len(tb.Hosts["h"].Listeners); n != 3 {
		t.Fatalf("%d listeners kept, want 3", n)
	}
}
