package findings

import (
	"strings"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/audit/state"
)

// cov applies ev (its seq taken from r unless set) and returns the
// coverage transitions.
func (r *run) cov(ev state.Event) []Finding {
	r.t.Helper()
	if ev.Seq == 0 {
		r.seq++
		ev.Seq = r.seq
	}
	r.seq = ev.Seq
	ev.Host, ev.HostID, ev.Time = "h1", "id1", time.Unix(1000+ev.Seq, 0)
	if ev.BootID == "" {
		ev.BootID = "b1"
	}
	res := r.tb.Apply(&ev)
	out, _ := r.tr.Apply(r.tb.Hosts["id1"], res, &ev)
	var cs []Finding
	for _, f := range out {
		if f.Kind == KindCoverage {
			cs = append(cs, f)
		}
	}
	return cs
}

func reasons(fs []Finding) string {
	var s []string
	for _, f := range fs {
		s = append(s, f.State+":"+f.Reason)
	}
	return strings.Join(s, " ")
}

// snapshot applies a complete inventory of no listener starting at the
// next seq.
func (r *run) snapshot(id string) []Finding {
	return r.cov(state.Event{Kind: state.KindSnapshotEnd, SnapshotID: id})
}

func TestSeqGapOpensAndAnInventoryAfterItResolves(t *testing.T) {
	r := newRun(t)
	r.cov(state.Event{Kind: state.KindBind, Protocol: "TCP"})
	if got := r.cov(state.Event{Kind: state.KindBind, Protocol: "TCP", Seq: 10}); reasons(got) != "open:seq_gap" ||
		*got[0].MissingFrom != 2 || *got[0].MissingTo != 9 || !got[0].AwaitingInventory {
		t.Fatalf("gap 2..9: %+v", got)
	}
	// A second gap extends the same finding.
	got := r.cov(state.Event{Kind: state.KindBind, Protocol: "TCP", Seq: 20})
	if reasons(got) != "open:seq_gap" || *got[0].MissingFrom != 2 || *got[0].MissingTo != 19 || !strings.Contains(got[0].Detail, "between seq 2 and 19") {
		t.Fatalf("second gap: %+v", got)
	}
	// An inventory with a lost record of its own sweeps nothing and
	// resolves nothing: what the lost records said is still unknown.
	snap := state.Event{Kind: state.KindSnapshot, SnapshotID: "s1", Protocol: "TCP", Addr: "0.0.0.0", Port: 22, Cookie: 3, Exe: "/usr/sbin/sshd"}
	r.cov(snap)
	got = r.cov(state.Event{Kind: state.KindSnapshotEnd, SnapshotID: "s1", SnapshotSockets: 2, Seq: 25})
	if reasons(got) != "open:seq_gap" || *got[0].MissingTo != 24 {
		t.Fatalf("inventory with a lost record: %+v", got)
	}
	snap.SnapshotID = "s2"
	r.cov(snap)
	got = r.cov(state.Event{Kind: state.KindSnapshotEnd, SnapshotID: "s2", SnapshotSockets: 1})
	if reasons(got) != "resolved:seq_gap" || !strings.Contains(got[0].Detail, "Resolved: a complete inventory (from seq 26)") {
		t.Fatalf("inventory after the gaps: %+v", got)
	}
}

func TestSuppressedOpensUntilTheFloodEndsAndAnInventoryFollows(t *testing.T) {
	r := newRun(t)
	got := r.cov(state.Event{Kind: state.KindSuppressed, UID: 1000, Suppressed: 500})
	if reasons(got) != "open:suppressed" || *got[0].Suppressed != 500 || got[0].UID != 1000 || got[0].AwaitingInventory {
		t.Fatalf("first report: %+v", got)
	}
	got = r.cov(state.Event{Kind: state.KindSuppressed, UID: 1000, Suppressed: 250})
	if reasons(got) != "open:suppressed" || *got[0].Suppressed != 750 || !got[0].FirstSeen.Equal(time.Unix(1001, 0)) {
		t.Fatalf("second report: %+v", got)
	}
	// An inventory while the flood goes on resolves nothing.
	if got := r.snapshot("s1"); len(got) != 0 {
		t.Fatalf("inventory during the flood: %+v", got)
	}
	got = r.cov(state.Event{Kind: state.KindSuppressed, UID: 1000})
	if reasons(got) != "open:suppressed" || !got[0].AwaitingInventory || *got[0].Suppressed != 750 {
		t.Fatalf("flood over: %+v", got)
	}
	if got := r.snapshot("s2"); reasons(got) != "resolved:suppressed" {
		t.Fatalf("inventory after the flood: %+v", got)
	}
	// Another user's flood is its own finding.
	a := r.cov(state.Event{Kind: state.KindSuppressed, UID: 1000, Suppressed: 1})
	b := r.cov(state.Event{Kind: state.KindSuppressed, UID: 1001, Suppressed: 1})
	if reasons(a) != "open:suppressed" || reasons(b) != "open:suppressed" || a[0].ID == b[0].ID {
		t.Fatalf("two users: %+v %+v", a, b)
	}
}

func TestBlindSpotsAndIncompleteInventory(t *testing.T) {
	r := newRun(t)
	hb := state.Event{Kind: state.KindHeartbeat, HeartbeatInterval: time.Second, CaptureBlind: []string{"io_uring binds"}}
	if got := r.cov(hb); reasons(got) != "open:capture_blind" || !strings.Contains(got[0].Detail, "io_uring binds") {
		t.Fatalf("blind heartbeat: %+v", got)
	}
	if got := r.cov(hb); len(got) != 0 {
		t.Fatalf("the same blind spots again: %+v", got)
	}
	hb.CaptureBlind = nil
	if got := r.cov(hb); reasons(got) != "resolved:capture_blind" {
		t.Fatalf("no blind spot: %+v", got)
	}
	got := r.cov(state.Event{Kind: state.KindSnapshotEnd, SnapshotID: "s1", SnapshotIncomplete: []string{"netns 5 vanished"}})
	if reasons(got) != "open:inventory_incomplete" || !strings.Contains(got[0].Detail, "netns 5 vanished") {
		t.Fatalf("incomplete inventory: %+v", got)
	}
	if got := r.snapshot("s2"); reasons(got) != "resolved:inventory_incomplete" {
		t.Fatalf("complete inventory: %+v", got)
	}
}

func TestSilentHost(t *testing.T) {
	r := newRun(t)
	r.cov(state.Event{Kind: state.KindHeartbeat, HeartbeatInterval: time.Second})
	h := r.tb.Hosts["id1"]
	h.LastSeen = time.Unix(2000, 0)
	if got := r.tr.Silent(r.tb, h.LastSeen.Add(3*time.Second)); len(got) != 0 {
		t.Fatalf("silent after 3 intervals exactly: %+v", got)
	}
	got := r.tr.Silent(r.tb, h.LastSeen.Add(3*time.Second+time.Millisecond))
	if reasons(got) != "open:silent" || !got[0].FirstSeen.Equal(h.LastSeen) || got[0].Seq != h.LastSeq {
		t.Fatalf("silent: %+v", got)
	}
	if got := r.tr.Silent(r.tb, h.LastSeen.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("silent twice: %+v", got)
	}
	if got := r.cov(state.Event{Kind: state.KindBind, Protocol: "TCP"}); reasons(got) != "resolved:silent" {
		t.Fatalf("a record after the silence: %+v", got)
	}
	// A clean stop is no silence.
	r.cov(state.Event{Kind: state.KindStop, HeartbeatInterval: time.Second})
	if got := r.tr.Silent(r.tb, h.LastSeen.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("silent after a clean stop: %+v", got)
	}
}

// A policy reload re-judges listeners, never coverage: it knows nothing of
// lost records.
func TestReevaluateKeepsCoverage(t *testing.T) {
	r := newRun(t)
	r.cov(state.Event{Kind: state.KindSuppressed, UID: 1000, Suppressed: 5})
	out := r.tr.Reevaluate(r.tr.pol, r.tb, time.Unix(5000, 0))
	for _, f := range out {
		if f.Kind == KindCoverage {
			t.Fatalf("reevaluate touched a coverage finding: %+v", f)
		}
	}
	if r.tr.OpenCount() != 1 {
		t.Fatalf("open %d, want the suppressed finding", r.tr.OpenCount())
	}
}

// A listener finding says whose words its container and workload are: the
// runtime's, or a user's (the cgroup's owner).
func TestListenerFindingNamesRuntimeAndOwner(t *testing.T) {
	r := newRun(t)
	owner := int64(1000)
	ev := &state.Event{Kind: state.KindListen, Host: "h1", HostID: "id1", BootID: "b1", Seq: 1, Time: time.Unix(1000, 0),
		Protocol: "TCP", Addr: "0.0.0.0", Port: 4444, Cookie: 9, NetNS: 1, Exe: "/bin/x", ContainerID: "abc", Runtime: "podman-rootless",
		CgroupOwnerUID: &owner, Workload: state.Workload{Image: "docker.io/library/nginx:1.27"}}
	res := r.tb.Apply(ev)
	out, _ := r.tr.Apply(r.tb.Hosts["id1"], res, ev)
	if len(out) != 1 || out[0].Runtime != "podman-rootless" || out[0].CgroupOwnerUID == nil || *out[0].CgroupOwnerUID != 1000 || out[0].Workload.Image == "" {
		t.Fatalf("finding %+v", out)
	}
}

// An inventory whose first record overtook ring records numbered before
// the walk: those are skipped, but a snapshot that sweeps shows the host as
// it is, so no gap is raised; one that does not sweep raises it.
func TestGapBeforeASnapshotThatSweeps(t *testing.T) {
	r := newRun(t)
	r.cov(state.Event{Kind: state.KindBind, Protocol: "TCP"})
	snap := state.Event{Kind: state.KindSnapshot, SnapshotID: "s1", Protocol: "TCP", Addr: "0.0.0.0", Port: 22, Cookie: 3, Exe: "/usr/sbin/sshd", Seq: 5}
	if got := r.cov(snap); len(got) != 0 {
		t.Fatalf("gap before a snapshot's first record: %+v", got)
	}
	if got := r.cov(state.Event{Kind: state.KindSnapshotEnd, SnapshotID: "s1", SnapshotSockets: 1}); len(got) != 0 {
		t.Fatalf("the snapshot swept: %+v", got)
	}
	snap.SnapshotID, snap.Seq = "s2", 10
	r.cov(snap)
	got := r.cov(state.Event{Kind: state.KindSnapshotEnd, SnapshotID: "s2", SnapshotSockets: 2}) // one record lost: no sweep
	if reasons(got) != "open:seq_gap" || *got[0].MissingFrom != 7 || *got[0].MissingTo != 9 {
		t.Fatalf("the snapshot did not sweep: %+v", got)
	}
}
