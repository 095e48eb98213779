package siem

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/record"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
)

var at = time.Date(2026, 12, 6, 18, 0, 0, 123456000, time.UTC)

func ptr[T any](v T) *T { return &v }

// sampleEvents are BindEvents of every kind, as the agent writes them.
func sampleEvents() map[string]*schemas.BindEvent {
	base := func(kind string, seq int64) *schemas.BindEvent {
		return &schemas.BindEvent{
			Host: "node-1", HostID: "4c4c4544004d3610804cb4c04f4d4e32", BootID: "0f5e3c1a-5b7e-4c9a-9d1e-2b8f7a6c5d4e", Seq: seq, Time: at,
			PID: 4242, TID: 4243, PPID: 1, UID: 1000, GID: 1000, Comm: "nc", NetNSID: 4026531840, MntNSID: 4026531841, CgroupID: 9,
			Protocol: "TCP", Family: "AF_INET", Addr: "0.0.0.0", Port: 4444, Kind: kind, Cookie: 77, Exe: ptr("/usr/bin/nc.openbsd"),
			Exposure: ptr("wildcard"), HostNetNS: ptr(true), Holders: []schemas.Holder{}, SnapshotIncomplete: []string{},
		}
	}
	pod := func(e *schemas.BindEvent) *schemas.BindEvent {
		e.ContainerID, e.ContainerRuntime = ptr("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), ptr("containerd")
		e.ContainerName, e.Image, e.ImageDigest = ptr("web"), ptr("docker.io/library/nginx:1.27"), ptr("sha256:"+strings.Repeat("ab", 32))
		e.PodName, e.PodNamespace, e.PodUID = ptr("web-7f9c"), ptr("shop"), ptr("6a1f7a52-3c1e-4d0f-9a7b-2f0c9d1e8b11")
		e.PodLabels, e.WorkloadSource = map[string]string{"app": "web", "tier": "front"}, ptr("cri")
		return e
	}
	failed := base("bind", 2)
	failed.Error, failed.Port, failed.RequestedPort = 98, 0, ptr(int32(22))
	v6 := pod(base("listen", 3))
	v6.Family, v6.Addr, v6.Protocol, v6.Backlog, v6.BoundIfName = "AF_INET6", "::1", "MPTCP", 128, ptr("lo")
	snap := pod(base("snapshot", 5))
	snap.SnapshotID, snap.Protocol, snap.Addr = ptr("snap-1"), "UDP", "127.0.0.53"
	snap.Holders = []schemas.Holder{{PID: 4242, FD: 3, UID: 1000, Comm: "nc", Exe: ptr("/usr/bin/nc.openbsd")}}
	end := base("snapshot_end", 6)
	end.SnapshotID, end.SnapshotSockets = ptr("snap-1"), 12
	supp := base("suppressed", 0)
	supp.Suppressed = 5000
	hb := base("heartbeat", 7)
	hb.CaptureBlind, hb.Drops, hb.LeaseExpires, hb.HeartbeatIntervalMS = []string{"io_uring binds"}, map[string]int64{"ring_full": 3}, ptr(at.Add(time.Minute)), ptr(int64(10000))
	key := base("host_key", 8)
	key.PublicKey = []byte{1, 2, 3}
	seal := base("seal", 9)
	seal.SealedSeqs, seal.Signature = []int64{1, 2, 3}, []byte{4, 5}
	rot := base("key_rotation", 10)
	rot.PublicKey, rot.Signature = []byte{6}, []byte{7}
	return map[string]*schemas.BindEvent{
		"bind": base("bind", 1), "bind failed": failed, "listen ipv6 mptcp in a pod": v6, "close": base("close", 4),
		"snapshot": snap, "snapshot_end": end, "suppressed": supp, "heartbeat": hb, "stop": base("stop", 11),
		"host_key": key, "seal": seal, "key_rotation": rot,
	}
}

// sampleFindings are findings of every kind and state.
func sampleFindings() map[string]*findings.Finding {
	listener := func() *findings.Finding {
		return &findings.Finding{
			ID: "25e8c6cf122a93cdd53207972e9a3f8e", State: findings.Open, Kind: findings.KindListener, Host: "node-1", HostID: "4c4c4544004d3610804cb4c04f4d4e32",
			BootID: "0f5e3c1a-5b7e-4c9a-9d1e-2b8f7a6c5d4e", Seq: 3, ContainerID: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			Exe: "/bin/busybox", Comm: "nc", PID: 4242, UID: 0, Protocol: "TCP", Addr: "0.0.0.0", Port: 4444, Exposure: "wildcard",
			NetNS: 4026531840, HostNetNS: ptr(true), FirstSeen: at, Time: at,
		}
	}
	l := listener()
	l.Workload.ContainerName, l.Workload.Image, l.Workload.ImageDigest = "shell", "docker.io/library/busybox:1.36", "sha256:"+strings.Repeat("ab", 32)
	l.Workload.PodName, l.Workload.PodNamespace, l.Workload.PodUID = "debug-7f9c", "shop", "6a1f7a52-3c1e-4d0f-9a7b-2f0c9d1e8b11"
	l.Workload.PodLabels, l.Workload.Source = map[string]string{"app": "debug"}, "cri"
	resolved := listener()
	resolved.State, resolved.Time, resolved.Seq, resolved.ContainerID, resolved.Addr, resolved.Exposure = findings.Resolved, at.Add(time.Hour), 9, "", "::1", "loopback"
	require := &findings.Finding{ID: "r1", State: findings.Open, Kind: findings.KindRequire, Rule: "sshd", Host: "node-1", HostID: "h", BootID: "b", Seq: 4, FirstSeen: at, Time: at,
		Detail: "no listener matches require rule sshd"}
	gap := &findings.Finding{ID: "c1", State: findings.Open, Kind: findings.KindCoverage, Reason: findings.ReasonSeqGap, Host: "node-1", HostID: "h", BootID: "b", Seq: 40,
		FirstSeen: at, Time: at.Add(time.Minute), MissingFrom: ptr(int64(10)), MissingTo: ptr(int64(30)), AwaitingInventory: true,
		Detail: "records of boot b between seq 10 and 30 never reached the audit"}
	supp := &findings.Finding{ID: "c2", State: findings.Open, Kind: findings.KindCoverage, Reason: findings.ReasonSuppressed, Host: "node-1", HostID: "h", BootID: "b", Seq: 41,
		UID: 1000, FirstSeen: at, Time: at, Suppressed: ptr(int64(5000)), Detail: "user 1000 went over its budget"}
	integ := &findings.Finding{ID: "i1", State: findings.Open, Kind: "integrity", Reason: "bad_seal", Host: "node-1", HostID: "h", BootID: "b", Seq: 42,
		FirstSeen: at, Time: at, Detail: "seal of seqs 1-3 does not verify"}
	return map[string]*findings.Finding{"listener open in a pod": l, "listener resolved": resolved, "require": require,
		"coverage seq_gap update": gap, "coverage suppressed": supp, "integrity": integ}
}

func avroNames(t *testing.T, text func(int) (string, error), v int) []string {
	t.Helper()
	s, _ := text(v)
	var rec struct{ Fields []struct{ Name string } }
	if err := json.Unmarshal([]byte(s), &rec); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range rec.Fields {
		out = append(out, f.Name)
	}
	return out
}

// eventFields is ev as consume reads it: encoded, decoded generically.
func eventFields(t *testing.T, ev *schemas.BindEvent) Fields {
	t.Helper()
	text, _ := schemas.BindEventSchema(schemas.Latest)
	enc, err := codec.NewSingleObject([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := enc.Append(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := codec.NewDecoder("")
	rec, err := dec.Decode(t.Context(), msg)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Map()
}

// Every field of every kind of event and finding, in both mappings, is a
// field of the published definitions (testdata, with their versions) of
// the type they give it; OCSF's required attributes are there; and every
// definition in testdata is used (it holds what we emit, nothing else).
func TestMappingsMatchDefinitions(t *testing.T) {
	ecs := loadECS(t, "testdata/ecs-8.17.0-fields.txt")
	ocsf := loadOCSF(t, "testdata/ocsf-1.8.0.txt")
	eventNames := avroNames(t, schemas.BindEventSchema, schemas.Latest)
	findingNames := avroNames(t, schemas.FindingSchema, schemas.FindingLatest)
	ecsSeen, ocsfSeen := map[string]bool{}, map[string]bool{}
	mark := func(m map[string]bool, names []string) {
		for _, n := range names {
			m[n] = true
		}
	}
	for name, ev := range sampleEvents() {
		f := eventFields(t, ev)
		doc := ECSEvent(f)
		mark(ecsSeen, checkECS(t, ecs, "ECS "+name, doc, eventNames))
		o, ok := OCSFEvent(f)
		socket := slices.Contains([]string{"bind", "listen", "close", "snapshot"}, ev.Kind)
		if ok != socket {
			t.Errorf("OCSF %s: mapped %v, want %v (Network Activity is for sockets)", name, ok, socket)
		}
		if ok {
			mark(ocsfSeen, checkOCSF(t, ocsf, "OCSF "+name, "class:network_activity", asJSON(t, o), ""))
		}
	}
	rc, _ := record.NewCodec()
	dec, _ := codec.NewDecoder("")
	for name, fd := range sampleFindings() {
		direct := FindingFields(record.ToSchema(fd))
		msg, err := rc.EncodeFinding(fd)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := dec.Decode(t.Context(), msg)
		if err != nil || rec.Source.Name != schemas.FindingName {
			t.Fatalf("%s: decoded as %q: %v", name, rec.Source.Name, err)
		}
		read := Fields(rec.Map())
		doc, o := ECSFinding(direct), OCSFFinding(direct)
		// The audit (its findings) and consume (a record from Kafka) map alike.
		if a, b := asJSON(t, doc), asJSON(t, ECSFinding(read)); !reflect.DeepEqual(a, b) {
			t.Errorf("ECS %s: from the audit\n%v\nfrom Kafka\n%v", name, a, b)
		}
		if a, b := asJSON(t, o), asJSON(t, OCSFFinding(read)); !reflect.DeepEqual(a, b) {
			t.Errorf("OCSF %s: from the audit\n%v\nfrom Kafka\n%v", name, a, b)
		}
		mark(ecsSeen, checkECS(t, ecs, "ECS finding "+name, doc, findingNames))
		mark(ocsfSeen, checkOCSF(t, ocsf, "OCSF finding "+name, "class:detection_finding", asJSON(t, o), ""))
	}
	for n := range ecs.fields {
		if !ecsSeen[n] {
			t.Errorf("ECS test data lists %s, which no sample emits", n)
		}
	}
	for scope, s := range ocsf.scopes {
		for n := range s.attrs {
			if !ocsfSeen[scope+" "+n] {
				t.Errorf("OCSF test data lists %s's %s, which no sample emits", scope, n)
			}
		}
	}
}
