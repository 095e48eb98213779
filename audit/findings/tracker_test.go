package findings

import (
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/audit/policy"
	"github.com/bindwatch/bindwatch/audit/state"
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

// The policy sees a listener's workload: an image rule allows a container
// of that image, and a finding for another names its workload.
func TestPolicySeesWorkload(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte("rules:\n- {name: nginx, action: allow, match: {image: \"docker.io/library/nginx:*\", port: 80}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	tb, tr := state.New(), New(p)
	seq := int64(0)
	listen := func(cookie int64, w state.Workload) []Finding {
		seq++
		ev := &state.Event{Kind: state.KindListen, Host: "h1", HostID: "id1", BootID: "b1", Seq: seq, Time: time.Unix(1000+seq, 0),
			Protocol: "TCP", Addr: "0.0.0.0", Port: 80, Cookie: cookie, NetNS: cookie, Exe: "/usr/sbin/nginx", Exposure: "wildcard",
			ContainerID: "abc", Runtime: "docker", Workload: w}
		res := tb.Apply(ev)
		out, _ := tr.Apply(tb.Hosts["id1"], res, ev)
		return out
	}
	if out := listen(1, state.Workload{Image: "docker.io/library/nginx:1.27", Source: "docker"}); len(out) != 0 {
		t.Errorf("nginx's image raised %v", out)
	}
	httpd := state.Workload{Image: "docker.io/library/httpd:2.4", ContainerName: "web-2", PodNamespace: "shop", Source: "docker"}
	out := listen(2, httpd)
	if states(out) != "open " || out[0].Workload.Image != httpd.Image || out[0].Workload.ContainerName != "web-2" || out[0].Workload.PodNamespace != "shop" {
		t.Errorf("httpd's image: %+v", out)
	}
}

// A container whose workload was pending when it listened is a finding
// (nothing says it is nginx yet), resolved when a later record of the
// container brings its image; one whose image is not allowed stays open,
// without a second transition.
func TestLateWorkloadResolves(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte("rules:\n- {name: nginx, action: allow, match: {image: \"docker.io/library/nginx:*\"}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	tb, tr := state.New(), New(p)
	seq := int64(0)
	apply := func(kind, id string, port int32, cookie int64, w state.Workload) []Finding {
		seq++
		ev := &state.Event{Kind: kind, Host: "h1", HostID: "id1", BootID: "b1", Seq: seq, Time: time.Unix(1000+seq, 0),
			Protocol: "TCP", Addr: "0.0.0.0", Port: port, Cookie: cookie, NetNS: cookie, Exe: "/usr/sbin/nginx", Exposure: "wildcard",
			ContainerID: id, Runtime: "docker", Workload: w}
		res := tb.Apply(ev)
		out, _ := tr.Apply(tb.Hosts["id1"], res, ev)
		return out
	}
	pending := state.Workload{Source: state.SourcePending}
	nginx := apply(state.KindListen, "c1", 80, 1, pending)
	httpd := apply(state.KindListen, "c2", 80, 2, pending)
	if states(nginx) != "open " || states(httpd) != "open " {
		t.Fatalf("pending listeners: %v %v", nginx, httpd)
	}
	// A bind of each container, with the workload the agent found since.
	if out := apply(state.KindBind, "c1", 0, 3, state.Workload{Image: "docker.io/library/nginx:1.27", Source: "docker"}); states(out) != "resolved " || out[0].ID != nginx[0].ID {
		t.Errorf("nginx's image arrived: %v", out)
	}
	if out := apply(state.KindBind, "c2", 0, 4, state.Workload{Image: "docker.io/library/httpd:2.4", Source: "docker"}); len(out) != 0 {
		t.Errorf("httpd's image arrived: %v, want its finding left open", out)
	}
	if out := apply(state.KindClose, "c2", 80, 2, state.Workload{}); states(out) != "resolved " || out[0].ID != httpd[0].ID {
		t.Errorf("httpd closed: %v", out)
	}
}
