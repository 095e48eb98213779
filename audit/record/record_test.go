package record

import (
	"github.com/bindwatch/bindwatch/schemas/codec"
	"reflect"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/state"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/test/avrotest"
)

func TestRoundTripAndPython(t *testing.T) {
	c, err := NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	owner := int64(1000)
	l := &state.Listener{
		Key: state.Key{NetNS: 4026531840, Cookie: 77}, Host: "h", HostID: "id", BootID: "b", Seq: 9,
		Since: time.Date(2026, 12, 1, 10, 0, 0, 123000, time.UTC), PID: 5, UID: 1000, Comm: "nc", Exe: "/usr/bin/nc",
		Protocol: "TCP", Family: "AF_INET", Addr: "0.0.0.0", Port: 4444, Exposure: "wildcard", HostNetNS: &yes,
		CgroupOwnerUID: &owner,
		Workload:       state.Workload{Image: "docker.io/library/nginx:1.27", PodNamespace: "shop", PodLabels: map[string]string{"app": "web"}, Source: "containerd-cri"},
	}
	lm, err := c.EncodeListener(l)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.DecodeState(lm)
	if err != nil {
		t.Fatal(err)
	}
	back := ListenerFrom(&s, ListenerKey("id", l.Key))
	if back.Key != l.Key || back.Exe != l.Exe || !back.Since.Equal(l.Since) || *back.CgroupOwnerUID != 1000 || back.ContainerID != "" ||
		!reflect.DeepEqual(back.Workload, l.Workload) {
		t.Errorf("listener back %+v", back)
	}
	meta := state.HostMeta{HostID: "id", BootID: "b", LastSeq: 12, Complete: true, BootTime: l.Since,
		Liveness: state.Liveness{LastSeen: l.Since.Add(time.Minute), HeartbeatInterval: 30 * time.Second, Stopped: true}}
	hm, err := c.EncodeHost(meta)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := c.DecodeState(hm)
	if err != nil {
		t.Fatal(err)
	}
	if got := HostFrom(&hs); !reflect.DeepEqual(got, meta) {
		t.Errorf("host back %+v, want %+v", got, meta)
	}
	missing := int64(120)
	f := &findings.Finding{ID: "abc", Kind: findings.KindCoverage, State: findings.Open, HostID: "id", Host: "h", Exe: "/usr/bin/nc", Port: 4444,
		Protocol: "TCP", Addr: "0.0.0.0", FirstSeen: l.Since, Time: l.Since.Add(time.Second), Seq: 9, BootID: "b",
		Reason: "seq_gap", Detail: "records 120-130 never arrived", MissingFrom: &missing, AwaitingInventory: true, Workload: l.Workload,
		Runtime: "podman-rootless", CgroupOwnerUID: &owner}
	fm, err := c.EncodeFinding(f)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := c.DecodeFinding(fm)
	if err != nil {
		t.Fatal(err)
	}
	if fb.ID != "abc" || fb.Exe != "/usr/bin/nc" || !fb.FirstSeen.Equal(f.FirstSeen) || fb.ContainerID != "" ||
		fb.Kind != f.Kind || fb.Reason != f.Reason || fb.Detail != f.Detail || *fb.MissingFrom != 120 || fb.MissingTo != nil ||
		!fb.AwaitingInventory || !reflect.DeepEqual(fb.Workload, f.Workload) || fb.Runtime != "podman-rootless" || *fb.CgroupOwnerUID != 1000 {
		t.Errorf("finding back %+v", fb)
	}
	if _, err := c.DecodeFinding(lm); err == nil {
		t.Error("a state record decoded as a finding")
	}

	// Apache Avro's own implementation reads what we wrote.
	avrotest.Require(t)
	st, _ := schemas.ListenerStateSchema(schemas.ListenerStateLatest)
	got := avrotest.Decode(t, st, [][]byte{lm, hm})
	if got[0].Record["exe"] != "/usr/bin/nc" || got[0].Record["record"] != "listener" || got[1].Record["snapshot_complete"] != true ||
		got[0].Record["image"] != "docker.io/library/nginx:1.27" || got[1].Record["stopped"] != true {
		t.Errorf("python3-avro read %+v", got)
	}
	fs, _ := schemas.FindingSchema(schemas.FindingLatest)
	gf := avrotest.Decode(t, fs, [][]byte{fm})
	if gf[0].Record["finding_id"] != "abc" || gf[0].Record["state"] != "open" || gf[0].Record["kind"] != "coverage" ||
		gf[0].Record["reason"] != "seq_gap" || gf[0].Record["pod_namespace"] != "shop" {
		t.Errorf("python3-avro read %+v", gf)
	}
}

// Records an older audit wrote (a compacted topic keeps them for ever) are
// read as the newest version: new fields at their defaults, and a v1
// finding naming a rule is a require finding.
func TestReadsOlderVersions(t *testing.T) {
	c, err := NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	old := func(text func(int) (string, error)) *codec.Versioned {
		oc, err := codec.NewVersioned("old", func(int) (string, error) { return text(1) }, 1)
		if err != nil {
			t.Fatal(err)
		}
		return oc
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	fm, err := old(schemas.FindingSchema).Marshal(&schemas.Finding{FindingID: "r", State: "open", Rule: "sshd", HostID: "id", FirstSeen: at, Time: at})
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.DecodeFinding(fm)
	if err != nil {
		t.Fatal(err)
	}
	if f.Kind != findings.KindRequire || f.Rule != "sshd" || f.Reason != "" || f.AwaitingInventory {
		t.Errorf("v1 require finding read as %+v", f)
	}
	fm, _ = old(schemas.FindingSchema).Marshal(&schemas.Finding{FindingID: "l", State: "open", HostID: "id", Port: 80, FirstSeen: at, Time: at})
	if f, err = c.DecodeFinding(fm); err != nil || f.Kind != findings.KindListener || f.Port != 80 {
		t.Errorf("v1 listener finding read as %+v, %v", f, err)
	}
	hm, err := old(schemas.ListenerStateSchema).Marshal(&schemas.ListenerState{Record: schemas.StateHost, HostID: "id", Seq: 5, Time: at, SnapshotComplete: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.DecodeState(hm)
	if err != nil {
		t.Fatal(err)
	}
	if m := HostFrom(&s); m.LastSeq != 5 || !m.Complete || m.Stopped || !m.LastSeen.IsZero() || m.HeartbeatInterval != 0 {
		t.Errorf("v1 host record read as %+v", m)
	}
}
