package enrich

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/schemas"
)

// fixtureEnricher works on testdata/proc and a temporary cgroup tree holding
// the cgroups the fixture processes 4242 (docker) and 4343 (nginx) are in.
func fixtureEnricher(t testing.TB) (e *Enricher, dockerID, nginxID uint64) {
	t.Helper()
	e, tr := fixtureEnricherTree(t)
	return e, tr.id(dockerScope), tr.id(nginx)
}

// A user's systemd instance, delegated to uid 1999, with a rootless Podman
// container and a cgroup named like a Docker container.
var (
	userService   = "user.slice/user-1999.slice/user@1999.service"
	rootlessPod   = userService + "/user.slice/libpod-" + idB + ".scope"
	forgedDocker  = userService + "/app.slice/docker-" + idA + ".scope"
	forgedKubePod = userService + "/kubepods/pod1234/" + idA
)

func fixtureEnricherTree(t testing.TB) (*Enricher, *cgroupTree) {
	t.Helper()
	tr := newCgroupTree(t, dockerScope, nginx, rootlessPod, forgedDocker, forgedKubePod)
	tr.delegate(userService, 1999)
	e, err := New(Config{
		Hostname:   "edge-17.example",
		RootFS:     "testdata/host",
		ProcRoot:   "testdata/proc",
		CgroupRoot: tr.mount,
		Logger:     testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.clock = &Clock{offsetNS: fixtureOffset, sample: func() (int64, error) { return fixtureOffset, nil }}
	tr.useIn(e)
	return e, tr
}

func i64p(i int64) *int64 { return &i }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Boot at 2024-05-01T00:00:00Z.
var fixtureOffset = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC).UnixNano()

func comm(s string) (c [16]byte) {
	copy(c[:], s)
	return c
}

func addr16(s string) (a [16]byte) {
	copy(a[:], netip.MustParseAddr(s).AsSlice())
	return a
}

func strp(s string) *string { return &s }
func i32p(i int32) *int32   { return &i }

func TestEnrich(t *testing.T) {
	e, dockerID, nginxID := fixtureEnricher(t)
	tests := []struct {
		name string
		ev   bpf.Event
		want schemas.BindEvent
	}{
		{
			name: "IPv6 TCP in a container, every option, bound to a device",
			ev: bpf.Event{
				BootNS: 3_600_000_123_456, Seq: 41, CgroupID: dockerID,
				PID: 4242, TID: 4243, PPID: 4200, UID: 1000, GID: 1001,
				MntNS: 4026532176, NetNS: fixtureNetNS, Ret: 0, BoundIf: 3,
				Protocol: bpf.ProtoTCP, Family: bpf.AFInet6, Port: 8443,
				ReqPort: 8443, ReqFamily: bpf.AFInet6,
				Opts: bpf.OptFreebind | bpf.OptTransparent | bpf.OptBindAddressNoPort |
					bpf.OptReuseAddr | bpf.OptReusePort | bpf.OptV6Only,
				Reuse: 1, Addr: addr16("fd00::5"), ReqAddr: addr16("fd00::5"), Comm: comm("envoy"),
				Kind: bpf.KindListen, Cookie: 77, Backlog: 511,
			},
			want: schemas.BindEvent{
				Host: "edge-17.example", HostID: "4c4c4544004a3610804bb4c04f4e3233",
				BootID: "7c3a1f0e-2b5d-4e8a-9c6f-1d2e3f4a5b6c", Seq: 41,
				Time: time.Date(2024, 5, 1, 1, 0, 0, 123_456, time.UTC),
				PID:  4242, TID: 4243, PPID: 4200, UID: 1000, GID: 1001, Comm: "envoy",
				CgroupID: int64(dockerID), ContainerID: strp(idA), ContainerRuntime: strp("docker"),
				MntNSID: 4026532176, NetNSID: fixtureNetNS, Protocol: "TCP", Family: "AF_INET6",
				Addr: "fd00::5", Port: 8443, RequestedAddr: strp("fd00::5"), RequestedPort: i32p(8443),
				Freebind: true, Transparent: true, BindAddressNoPort: true, ReuseAddr: true,
				ReusePort: true, V6Only: true, BoundIf: 3, BoundIfName: strp("veth0"), Error: 0,
				Kind: "listen", Cookie: 77, Backlog: 511, Exposure: strp("specific"), HostNetNS: &falseValue,
				Exe: strp("/usr/local/bin/envoy"), CgroupPath: strp("/" + dockerScope),
			},
		},
		{
			name: "IPv4 UDP failing with EADDRINUSE outside containers",
			ev: bpf.Event{
				BootNS: 5_000_000_000, Seq: 42, CgroupID: nginxID,
				PID: 4343, TID: 4343, PPID: 1, UID: 33, GID: 33,
				MntNS: 4026531841, NetNS: fixtureNoV6NetNS, Ret: -98,
				Protocol: bpf.ProtoUDP, Family: bpf.AFInet, Port: 0,
				ReqPort: 53, ReqFamily: bpf.AFInet, Addr: addr16("0.0.0.0"), ReqAddr: addr16("10.0.0.5"),
				Comm: comm("nginx"), Kind: bpf.KindBind,
			},
			want: schemas.BindEvent{
				Host: "edge-17.example", HostID: "4c4c4544004a3610804bb4c04f4e3233",
				BootID: "7c3a1f0e-2b5d-4e8a-9c6f-1d2e3f4a5b6c", Seq: 42,
				Time: time.Date(2024, 5, 1, 0, 0, 5, 0, time.UTC),
				PID:  4343, TID: 4343, PPID: 1, UID: 33, GID: 33, Comm: "nginx",
				CgroupID: int64(nginxID), MntNSID: 4026531841, NetNSID: fixtureNoV6NetNS,
				Protocol: "UDP", Family: "AF_INET", Addr: "0.0.0.0", Port: 0,
				RequestedAddr: strp("10.0.0.5"), RequestedPort: i32p(53), Error: 98,
				Kind: "bind", HostNetNS: &falseValue, CgroupPath: strp("/" + nginx),
			},
		},
		{
			name: "AF_UNSPEC sockaddr reads as IPv4, MPTCP, ephemeral port, full comm, high ids",
			ev: bpf.Event{
				BootNS: 1, Seq: 1 << 40, CgroupID: 1 << 33, PID: 1 << 22, TID: 1<<22 + 1,
				UID: 4294967294, GID: 4294967294, MntNS: 4294967295, NetNS: fixtureSelfNetNS,
				Protocol: bpf.ProtoMPTCP, Family: bpf.AFInet, Port: 40123, ReqPort: 0,
				ReqFamily: bpf.AFUnspec, Addr: addr16("127.0.0.1"), Comm: comm("0123456789abcdef"),
				Kind: bpf.KindClose, ListenNS: 1500,
			},
			want: schemas.BindEvent{
				Host: "edge-17.example", HostID: "4c4c4544004a3610804bb4c04f4e3233",
				BootID: "7c3a1f0e-2b5d-4e8a-9c6f-1d2e3f4a5b6c", Seq: 1 << 40,
				Time: time.Date(2024, 5, 1, 0, 0, 0, 1, time.UTC),
				PID:  1 << 22, TID: 1<<22 + 1, UID: 4294967294, GID: 4294967294,
				Comm: "0123456789abcdef", CgroupID: 1 << 33, MntNSID: 4294967295,
				NetNSID: fixtureSelfNetNS, Protocol: "MPTCP", Family: "AF_INET", Addr: "127.0.0.1",
				Port: 40123, RequestedAddr: strp("0.0.0.0"), RequestedPort: i32p(0),
				Kind: "close", ListenDurationNS: 1500, Exposure: strp("loopback"), HostNetNS: &trueValue,
			},
		},
		{
			name: "a sockaddr of another family has no requested address; unknown protocol",
			ev: bpf.Event{
				Seq: 7, CgroupID: nginxID, PID: 4343, Ret: -97, Protocol: 99, Family: bpf.AFInet6,
				ReqFamily: 1, ReqPort: 80, ReqAddr: addr16("::1"), Addr: addr16("::"),
				BoundIf: 9, NetNS: fixtureSelfNetNS + 1, Comm: comm("probe"), Kind: bpf.KindBind,
			},
			want: schemas.BindEvent{
				Host: "edge-17.example", HostID: "4c4c4544004a3610804bb4c04f4e3233",
				BootID: "7c3a1f0e-2b5d-4e8a-9c6f-1d2e3f4a5b6c", Seq: 7,
				Time: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), PID: 4343, Comm: "probe",
				CgroupID: int64(nginxID), NetNSID: fixtureSelfNetNS + 1, Protocol: "99",
				Family: "AF_INET6", Addr: "::", BoundIf: 9, Error: 97, Kind: "bind", HostNetNS: &falseValue,
				CgroupPath: strp("/" + nginx),
			},
		},
	}
	// One record reused throughout, as Run does: nothing may leak from one
	// event into the next.
	var out schemas.BindEvent
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.Enrich(&tt.ev, &out)
			compareRecords(t, out, tt.want)
		})
	}
}

func compareRecords(t *testing.T, got, want schemas.BindEvent) {
	t.Helper()
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		if gt, ok := g.(time.Time); ok {
			if !gt.Equal(w.(time.Time)) {
				t.Errorf("%s = %v, want %v", name, gt, w)
			}
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s = %s, want %s", name, show(gv.Field(i)), show(wv.Field(i)))
		}
	}
}

func show(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "null"
		}
		v = v.Elem()
	}
	return fmt.Sprintf("%#v", v.Interface())
}

// Guards against a schema field the enricher forgets: with every input set,
// no output field may keep its zero value.
func TestEnrichSetsEveryField(t *testing.T) {
	// A rootless Podman container: the one kind with an owner and a runtime.
	e, tr := fixtureEnricherTree(t)
	ev := bpf.Event{
		BootNS: 1, Seq: 1, CgroupID: tr.id(rootlessPod), PID: 4242, TID: 1, PPID: 1, UID: 1, GID: 1,
		MntNS: 1, NetNS: fixtureNetNS, Ret: -1, BoundIf: 3, Protocol: bpf.ProtoTCP,
		Family: bpf.AFInet, Port: 1, ReqPort: 1, ReqFamily: bpf.AFInet, Opts: 0x3f,
		Addr: addr16("1.2.3.4"), ReqAddr: addr16("1.2.3.4"), Comm: comm("x"),
		Kind: bpf.KindListen, Cookie: 1, Backlog: 1, ListenNS: 1,
	}
	var out schemas.BindEvent
	e.Enrich(&ev, &out)
	// Exposure is of a successful call only; the snapshot fields are the
	// inventory's, not an event's.
	inventoryOnly := map[string]bool{"SnapshotID": true, "Holders": true, "PortExplicit": true,
		"SnapshotSockets": true, "SnapshotSource": true, "SnapshotIncomplete": true, "Exposure": true,
		"Suppressed": true,                                        // the agent's report of budget drops, not an event's
		"PublicKey":  true, "SealedSeqs": true, "Signature": true} // the encode stage's seal and host key records
	v := reflect.ValueOf(out)
	for i := range v.NumField() {
		if inventoryOnly[v.Type().Field(i).Name] {
			continue
		}
		if v.Field(i).IsZero() {
			t.Errorf("field %s left unset", v.Type().Field(i).Name)
		}
	}
}

func TestNewErrors(t *testing.T) {
	_, err := New(Config{RootFS: "testdata/host-uninitialized", ProcRoot: "testdata/proc", Logger: testLogger(t)})
	if err == nil {
		t.Fatal("an uninitialized machine-id was accepted")
	}
	// No cgroup2 mount is not fatal: records just carry no container.
	dir := t.TempDir()
	proc := filepath.Join(dir, "proc")
	if err := os.MkdirAll(filepath.Join(proc, "sys/kernel/random"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proc, "sys/kernel/random/boot_id"),
		[]byte("7c3a1f0e-2b5d-4e8a-9c6f-1d2e3f4a5b6c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{RootFS: "testdata/host", ProcRoot: proc, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var out schemas.BindEvent
	e.Enrich(&bpf.Event{CgroupID: 5, PID: 1, Family: bpf.AFInet}, &out)
	if out.ContainerID != nil || out.HostID == "" {
		t.Errorf("got %+v", out)
	}
}

// Each option bit must land in its own field and no other.
func TestEnrichOptions(t *testing.T) {
	e, _, nginxID := fixtureEnricher(t)
	tests := []struct {
		opt  bpf.Opts
		want string
	}{
		{bpf.OptFreebind, "Freebind"},
		{bpf.OptTransparent, "Transparent"},
		{bpf.OptBindAddressNoPort, "BindAddressNoPort"},
		{bpf.OptReuseAddr, "ReuseAddr"},
		{bpf.OptReusePort, "ReusePort"},
		{bpf.OptV6Only, "V6Only"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			var out schemas.BindEvent
			e.Enrich(&bpf.Event{CgroupID: nginxID, PID: 4343, Family: bpf.AFInet6, Opts: tt.opt}, &out)
			v := reflect.ValueOf(out)
			for _, f := range []string{"Freebind", "Transparent", "BindAddressNoPort", "ReuseAddr", "ReusePort", "V6Only"} {
				if got := v.FieldByName(f).Bool(); got != (f == tt.want) {
					t.Errorf("%s = %v with only %s set", f, got, tt.want)
				}
			}
		})
	}
}

// A user's cgroups named like containers: the record shows the path and
// whose subtree it is, and no runtime it could have forged.
func TestEnrichDelegatedCgroups(t *testing.T) {
	e, tr := fixtureEnricherTree(t)
	dockerID := tr.id(dockerScope)
	tests := []struct {
		rel         string
		runtime, id string
		owner       *int64
	}{
		{dockerScope, RuntimeDocker, idA, nil},
		{forgedDocker, "", "", i64p(1999)},
		{forgedKubePod, "", "", i64p(1999)},
		{rootlessPod, RuntimePodmanRootless, idB, i64p(1999)},
		{userService, "", "", i64p(1999)},
	}
	var out schemas.BindEvent
	for _, tt := range tests {
		t.Run(tt.rel, func(t *testing.T) {
			// pid 200 has no /proc entry: the index answers, as for a
			// process that exited.
			e.Enrich(&bpf.Event{CgroupID: tr.id(tt.rel), PID: 200, Family: bpf.AFInet}, &out)
			if deref(out.ContainerRuntime) != tt.runtime || deref(out.ContainerID) != tt.id {
				t.Errorf("runtime %q id %q, want %q %q", deref(out.ContainerRuntime), deref(out.ContainerID), tt.runtime, tt.id)
			}
			if ownerText(out.CgroupOwnerUID) != ownerText(tt.owner) || deref(out.CgroupPath) != "/"+tt.rel {
				t.Errorf("owner %s path %q, want %s %q", ownerText(out.CgroupOwnerUID), deref(out.CgroupPath), ownerText(tt.owner), "/"+tt.rel)
			}
			// The next record of another cgroup carries nothing of this one.
			e.Enrich(&bpf.Event{CgroupID: dockerID, PID: 200, Family: bpf.AFInet}, &out)
			if out.CgroupOwnerUID != nil || deref(out.CgroupPath) != "/"+dockerScope {
				t.Errorf("next record: owner %s path %q", ownerText(out.CgroupOwnerUID), deref(out.CgroupPath))
			}
		})
	}
}

// A snapshot record's cgroup path and owner are its first holder's.
func TestCompleteSnapshotCgroup(t *testing.T) {
	e, tr := fixtureEnricherTree(t)
	rec := schemas.BindEvent{Kind: schemas.KindSnapshot, Addr: "127.0.0.1", Holders: []schemas.Holder{
		{PID: 200, CgroupID: int64(tr.id(forgedDocker))},
		{PID: 201, CgroupID: int64(tr.id(dockerScope))},
	}}
	e.CompleteSnapshot(&rec)
	if deref(rec.CgroupPath) != "/"+forgedDocker || ownerText(rec.CgroupOwnerUID) != "1999" {
		t.Errorf("record: path %q owner %s, want the first holder's", deref(rec.CgroupPath), ownerText(rec.CgroupOwnerUID))
	}
	if rec.ContainerRuntime != nil || rec.ContainerID != nil || rec.Holders[0].ContainerID != nil {
		t.Errorf("forged container believed: runtime %q id %q holder id %q", deref(rec.ContainerRuntime),
			deref(rec.ContainerID), deref(rec.Holders[0].ContainerID))
	}
	if deref(rec.Holders[1].ContainerID) != idA {
		t.Errorf("second holder's container %q, want %s", deref(rec.Holders[1].ContainerID), idA)
	}

	rec = schemas.BindEvent{Kind: schemas.KindSnapshot, Addr: "0.0.0.0", Holders: []schemas.Holder{
		{PID: 200, CgroupID: int64(tr.id(rootlessPod))}}}
	e.CompleteSnapshot(&rec)
	if deref(rec.ContainerRuntime) != RuntimePodmanRootless || deref(rec.ContainerID) != idB ||
		ownerText(rec.CgroupOwnerUID) != "1999" || deref(rec.CgroupPath) != "/"+rootlessPod {
		t.Errorf("rootless podman snapshot: runtime %q id %q owner %s path %q", deref(rec.ContainerRuntime),
			deref(rec.ContainerID), ownerText(rec.CgroupOwnerUID), deref(rec.CgroupPath))
	}
}
