package findings

import (
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/internal/audit/policy"
	"github.com/bindwatch/bindwatch/internal/audit/state"
)

const pol = `
rules:
  - {name: ssh, action: allow, match: {port: 22, exe: /usr/sbin/sshd}}
  - {name: sshd-running, action: require, match: {port: 22, exe: /usr/sbin/sshd}}
`

type run struct {
	t   *testing.T
	tb  *state.Table
	tr  *Tracker
	seq int64
	// snapshotted counts the snapshot records since the last end, which
	// the end announces as the agent's does.
	snapshotted int64
}

func newRun(t *testing.T) *run {
	p, err := policy.Parse("p.yaml", []byte(pol))
	if err != nil {
		t.Fatal(err)
	}
	return &run{t: t, tb: state.New(), tr: New(p)}
}

func (r *run) do(kind, exe string, port int32, cookie int64) []Finding {
	r.seq++
	ev := &state.Event{Kind: kind, Host: "h1", HostID: "id1", BootID: "b1", Seq: r.seq, Time: time.Unix(1000+r.seq, 0),
		Protocol: "TCP", Addr: "0.0.0.0", Port: port, Cookie: cookie, NetNS: 1, Exe: exe, Exposure: "wildcard", SnapshotID: "s"}
	switch kind {
	case state.KindSnapshot:
		r.snapshotted++
	case state.KindSnapshotEnd:
		ev.SnapshotSockets, r.snapshotted = r.snapshotted, 0
	}
	res := r.tb.Apply(ev)
	out, replayed := r.tr.Apply(r.tb.Hosts["id1"], res, ev)
	if replayed {
		r.t.Fatalf("seq %d counted as replayed", r.seq)
	}
	return out
}

func states(fs []Finding) string {
	s := ""
	for _, f := range fs {
		s += f.State
		if f.Rule != "" {
			s += "(" + f.Rule + ")"
		}
		s += " "
	}
	return s
}

func TestShortLivedListenerOpensAndResolves(t *testing.T) {
	r := newRun(t)
	open := r.do(state.KindListen, "/usr/bin/nc", 4444, 5)
	res := r.do(state.KindClose, "/usr/bin/nc", 4444, 5)
	if states(open) != "open " || states(res) != "resolved " || open[0].ID != res[0].ID {
		t.Fatalf("open %v resolved %v", open, res)
	}
	if open[0].Exe != "/usr/bin/nc" || open[0].Port != 4444 || open[0].FirstSeen.IsZero() {
		t.Errorf("finding %+v", open[0])
	}
}

func TestExpectedListenerRaisesNothing(t *testing.T) {
	r := newRun(t)
	if out := r.do(state.KindListen, "/usr/sbin/sshd", 22, 5); len(out) != 0 {
		t.Fatalf("sshd raised %v", out)
	}
}

func TestServiceIsOneFinding(t *testing.T) {
	r := newRun(t)
	if s := states(r.do(state.KindListen, "/usr/bin/nc", 80, 5)); s != "open " {
		t.Fatal(s)
	}
	if s := states(r.do(state.KindListen, "/usr/bin/nc", 80, 6)); s != "" {
		t.Fatalf("second member: %s", s)
	}
	if s := states(r.do(state.KindClose, "/usr/bin/nc", 80, 5)); s != "" {
		t.Fatalf("first member closed: %s", s)
	}
	if s := states(r.do(state.KindClose, "/usr/bin/nc", 80, 6)); s != "resolved " {
		t.Fatalf("last member closed: %s", s)
	}
}

func TestRequire(t *testing.T) {
	r := newRun(t)
	r.do(state.KindSnapshot, "/usr/sbin/sshd", 22, 5)
	if s := states(r.do(state.KindSnapshotEnd, "", 0, 0)); s != "" {
		t.Fatalf("sshd there: %s", s)
	}
	if s := states(r.do(state.KindClose, "/usr/sbin/sshd", 22, 5)); s != "open(sshd-running) " {
		t.Fatalf("sshd stopped: %s", s)
	}
	if s := states(r.do(state.KindListen, "/usr/sbin/sshd", 22, 6)); s != "resolved(sshd-running) " {
		t.Fatalf("sshd back: %s", s)
	}
}

func TestReplayAfterRestore(t *testing.T) {
	r := newRun(t)
	open := r.do(state.KindListen, "/usr/bin/nc", 4444, 5)
	// A new instance: findings restored, table without the listener (the
	// state write was lost), then the record replayed.
	r2 := newRun(t)
	r2.tr.Restore(open[0])
	ev := &state.Event{Kind: state.KindListen, Host: "h1", HostID: "id1", BootID: "b1", Seq: 1, Time: time.Unix(1001, 0),
		Protocol: "TCP", Addr: "0.0.0.0", Port: 4444, Cookie: 5, NetNS: 1, Exe: "/usr/bin/nc"}
	res := r2.tb.Apply(ev)
	out, replayed := r2.tr.Apply(r2.tb.Hosts["id1"], res, ev)
	if !replayed {
		t.Error("a record the findings topic covers is not marked replayed")
	}
	if len(out) != 0 {
		t.Fatalf("replay raised again: %v", out)
	}
}

func TestReevaluate(t *testing.T) {
	r := newRun(t)
	r.do(state.KindListen, "/usr/bin/nc", 4444, 5)
	p, _ := policy.Parse("p.yaml", []byte("rules:\n- {name: nc, action: allow, match: {exe: /usr/bin/nc}}\n"))
	if s := states(r.tr.Reevaluate(p, r.tb, time.Unix(2000, 0))); s != "resolved " {
		t.Fatalf("reload: %s", s)
	}
	p2, _ := policy.Parse("p.yaml", []byte(pol))
	if s := states(r.tr.Reevaluate(p2, r.tb, time.Unix(2001, 0))); s != "open " {
		t.Fatalf("reload back: %s", s)
	}
}
