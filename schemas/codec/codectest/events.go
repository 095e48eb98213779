// Package codectest holds the events the codec's tests and benchmarks
// write and read, in the agent and the audit alike.
package codectest

import (
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/schemas"
)

// Ptr returns a pointer to a copy of v.
func Ptr[T any](v T) *T { return &v }

// FullEvent has every field set, nullable ones included, with values that
// exercise the encoding: multi-byte varints, negative numbers, non-ASCII
// text, a time with microseconds.
func FullEvent() *schemas.BindEvent {
	return &schemas.BindEvent{
		Host:              "node-7.example",
		HostID:            "4c4c4544004d3510804cb3c04f4b3732",
		BootID:            "0e4f7c2a-9d1b-4c55-a0a8-2a6d7e0b91f3",
		Seq:               1<<40 + 17,
		Time:              time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC),
		PID:               4242,
		TID:               4243,
		PPID:              1,
		UID:               1000,
		GID:               4294967294,
		Comm:              "nginx: wörker",
		CgroupID:          12345678901,
		ContainerID:       Ptr("a3f1e5b2c4d6e8f0a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7"),
		ContainerRuntime:  Ptr("containerd"),
		MntNSID:           4026531841,
		NetNSID:           4026531840,
		Protocol:          "MPTCP",
		Family:            "AF_INET6",
		Addr:              "fd00::1",
		Port:              8443,
		RequestedAddr:     Ptr("::"),
		RequestedPort:     Ptr(int32(0)),
		Freebind:          true,
		Transparent:       false,
		BindAddressNoPort: true,
		ReuseAddr:         true,
		ReusePort:         false,
		V6Only:            true,
		BoundIf:           3,
		BoundIfName:       Ptr("eth0"),
		Error:             98,
		Kind:              "snapshot",
		Cookie:            1<<42 + 5,
		Backlog:           4096,
		ListenDurationNS:  -1,
		Exposure:          Ptr("specific"),
		HostNetNS:         Ptr(false),
		Exe:               Ptr("/usr/sbin/nginx"),
		SnapshotID:        Ptr("5b1c7e0a-snapshot"),
		Holders: []schemas.Holder{
			{PID: 4242, FD: 6, UID: 1000, Comm: "nginx", Exe: Ptr("/usr/sbin/nginx"), CgroupID: 12345678901, ContainerID: Ptr("a3f1")},
			{PID: 4250, FD: 3, UID: 33, Comm: "nginx: wörker", CgroupID: 7},
		},
		PortExplicit:        Ptr(true),
		SnapshotSockets:     3,
		SnapshotSource:      Ptr("bpf_iter"),
		SnapshotIncomplete:  []string{"netns 4026532200 vanished"},
		CgroupPath:          Ptr(`/user.slice/user-1999.slice/user@1999.service/app.slice/w\xc3rker\\.scope`),
		CgroupOwnerUID:      Ptr(int64(4294967294)),
		Suppressed:          1 << 33,
		Unit:                Ptr("nginx.service"),
		ContainerName:       Ptr("web-1"),
		Image:               Ptr("docker.io/library/nginx:1.27"),
		ImageDigest:         Ptr("sha256:0d6b1e2f"),
		PodName:             Ptr("web-7c9f"),
		PodNamespace:        Ptr("shop"),
		PodUID:              Ptr("5e1f3c2a-0b7d-4f4e-9a41-7d0c2e6b8a11"),
		PodLabels:           map[string]string{"app": "web", "tier": "frontënd", "a.b/c": ""},
		WorkloadSource:      Ptr("containerd-cri"),
		CaptureBlind:        []string{"binds not made by the bind system call"},
		Drops:               map[string]int64{"queue_full": 1 << 35, "budget": 7},
		LeaseExpires:        Ptr(time.Date(2026, 3, 14, 15, 10, 26, 1000, time.UTC)),
		HeartbeatIntervalMS: Ptr(int64(30000)),
		PublicKey:           []byte{0, 1, 2, 0xff},
		SealedSeqs:          []int64{1 << 40, 1<<40 + 1, -1},
		Signature:           []byte("sig"),
	}
}

// NullEvent has every nullable field null.
func NullEvent() *schemas.BindEvent {
	ev := FullEvent()
	ev.ContainerID = nil
	ev.ContainerRuntime = nil
	ev.RequestedAddr = nil
	ev.RequestedPort = nil
	ev.BoundIfName = nil
	ev.Exposure, ev.HostNetNS, ev.Exe, ev.SnapshotID, ev.PortExplicit, ev.SnapshotSource = nil, nil, nil, nil, nil, nil
	ev.Holders, ev.SnapshotIncomplete = nil, nil
	ev.CgroupPath, ev.CgroupOwnerUID = nil, nil
	ev.Unit, ev.ContainerName, ev.Image, ev.ImageDigest, ev.PodName, ev.PodNamespace, ev.PodUID = nil, nil, nil, nil, nil, nil, nil
	ev.PodLabels, ev.WorkloadSource, ev.CaptureBlind, ev.Drops = nil, nil, nil, nil
	ev.LeaseExpires, ev.HeartbeatIntervalMS = nil, nil
	ev.PublicKey, ev.SealedSeqs, ev.Signature = nil, nil, nil
	return ev
}

// SchemaText is BindEvent schema version v's text; it fails t without one.
func SchemaText(t testing.TB, v int) string {
	t.Helper()
	text, err := schemas.BindEventSchema(v)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// Int is a decoded int or long field's value (the generic decoder gives
// int, int32 or int64), or -1 for anything else, null included.
func Int(v any) int64 {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int32:
		return int64(n)
	case int64:
		return n
	}
	return -1
}
