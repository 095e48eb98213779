package record

import (
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/internal/audit/findings"
	"github.com/bindwatch/bindwatch/internal/audit/state"
	"github.com/bindwatch/bindwatch/internal/avrotest"
	"github.com/bindwatch/bindwatch/schemas"
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
	if back.Key != l.Key || back.Exe != l.Exe || !back.Since.Equal(l.Since) || *back.CgroupOwnerUID != 1000 || back.ContainerID != "" {
		t.Errorf("listener back %+v", back)
	}
	hm, err := c.EncodeHost(state.HostMeta{HostID: "id", BootID: "b", LastSeq: 12, Complete: true, BootTime: l.Since})
	if err != nil {
		t.Fatal(err)
	}
	f := &findings.Finding{ID: "abc", State: findings.Open, HostID: "id", Host: "h", Exe: "/usr/bin/nc", Port: 4444,
		Protocol: "TCP", Addr: "0.0.0.0", FirstSeen: l.Since, Time: l.Since.Add(time.Second), Seq: 9, BootID: "b"}
	fm, err := c.EncodeFinding(f)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := c.DecodeFinding(fm)
	if err != nil {
		t.Fatal(err)
	}
	if fb.ID != "abc" || fb.Exe != "/usr/bin/nc" || !fb.FirstSeen.Equal(f.FirstSeen) || fb.ContainerID != "" {
		t.Errorf("finding back %+v", fb)
	}
	if _, err := c.DecodeFinding(lm); err == nil {
		t.Error("a state record decoded as a finding")
	}

	// Apache Avro's own implementation reads what we wrote.
	avrotest.Require(t)
	st, _ := schemas.ListenerStateSchema(1)
	got := avrotest.Decode(t, st, [][]byte{lm, hm})
	if got[0].Record["exe"] != "/usr/bin/nc" || got[0].Record["record"] != "listener" || got[1].Record["snapshot_complete"] != true {
		t.Errorf("python3-avro read %+v", got)
	}
	fs, _ := schemas.FindingSchema(1)
	gf := avrotest.Decode(t, fs, [][]byte{fm})
	if gf[0].Record["finding_id"] != "abc" || gf[0].Record["state"] != "open" {
		t.Errorf("python3-avro read %+v", gf)
	}
}
