package snoop

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bindwatch/bindwatch/bpf"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fixtureEvents covers the cases whose printing differs: IPv4 and IPv6,
// long comms and addresses, failed binds, MPTCP, raw sockets, options, IF.
func fixtureEvents() []bpf.Event {
	mk := func(bootNS uint64, pid, uid uint32, comm string, proto, family uint16, addr string, port uint16, opts bpf.Opts, boundIf uint32, ret int32, reqAddr string, reqPort uint16) bpf.Event {
		ev := bpf.Event{BootNS: bootNS, PID: pid, TID: pid, PPID: 1, UID: uid, GID: uid, Protocol: proto,
			Family: family, Port: port, Opts: opts, BoundIf: boundIf, Ret: ret, ReqFamily: family, ReqPort: reqPort,
			CgroupID: 4242, MntNS: 4026531841, NetNS: 4026531840, Seq: uint64(bootNS / 1000)}
		copy(ev.Addr[:], netip.MustParseAddr(addr).AsSlice())
		copy(ev.ReqAddr[:], netip.MustParseAddr(reqAddr).AsSlice())
		copy(ev.Comm[:], comm)
		return ev
	}
	// A bind whose sockaddr pointer was bad: the request is unknown.
	unreadable := mk(9_600_000_000, 4001, 0, "fuzzer", bpf.ProtoUDP, bpf.AFInet, "0.0.0.0", 0, 0, 0, -14, "0.0.0.0", 0)
	unreadable.ReqFamily = bpf.AFUnreadable
	return []bpf.Event{
		mk(5_000_000_000, 3941081, 0, "test_bind_op", bpf.ProtoTCP, bpf.AFInet, "192.168.1.102", 0, bpf.OptFreebind|bpf.OptBindAddressNoPort, 0, 0, "192.168.1.102", 0),
		mk(5_011_045_000, 3940194, 127072, "dig", bpf.ProtoUDP, bpf.AFInet6, "::", 62087, 0, 0, 0, "::", 0),
		mk(5_500_000_000, 12, 0, "Acceptor Thread", bpf.ProtoTCP, bpf.AFInet6, "fe80::2000:bff:fe01:203", 35343, bpf.OptReuseAddr|bpf.OptV6Only, 2, 0, "fe80::2000:bff:fe01:203", 35343),
		mk(6_000_000_000, 4000, 1000, "nginx", bpf.ProtoTCP, bpf.AFInet, "0.0.0.0", 0, bpf.OptReuseAddr, 0, -98, "0.0.0.0", 80),
		mk(7_310_629_000, 3956498, 1000, "mptcpd", bpf.ProtoMPTCP, bpf.AFInet, "127.0.0.1", 39609, bpf.OptFreebind|bpf.OptReusePort, 0, 0, "127.0.0.1", 0),
		mk(8_000_000_000, 77, 0, "ping", 1, bpf.AFInet, "127.0.0.1", 1, bpf.OptReuseAddr, 1, 0, "127.0.0.1", 0),
		mk(9_000_000_001, 4000, 1000, "nginx", bpf.ProtoTCP, bpf.AFInet6, "::", 0, 0, 0, -99, "2001:db8::1", 443),
		mk(9_500_000_000, 4000, 1000, "nginx", bpf.ProtoTCP, bpf.AFInet, "0.0.0.0", 0, bpf.OptReuseAddr, 0, -98, "0.0.0.0", 80),
		unreadable,
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

func TestTextColumns(t *testing.T) {
	for _, tt := range []struct {
		name string
		cols Columns
	}{
		{"plain", Columns{}},
		{"timestamp", Columns{Timestamp: true}},
		{"uid", Columns{UID: true}},
		{"errors", Columns{Errors: true}},
		{"wide", Columns{Wide: true}},
		{"wide_errors", Columns{Wide: true, Errors: true}},
		{"all", Columns{Timestamp: true, UID: true, Errors: true, Wide: true}},
		{"t_E_U", Columns{Timestamp: true, UID: true, Errors: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			tw := NewTextWriter(&b, tt.cols)
			if err := tw.Header(); err != nil {
				t.Fatal(err)
			}
			for _, ev := range fixtureEvents() {
				if err := tw.Write(&ev); err != nil {
					t.Fatal(err)
				}
			}
			golden(t, "text_"+tt.name, b.Bytes())
		})
	}
}

func TestCountTable(t *testing.T) {
	c := NewCounter()
	for _, ev := range fixtureEvents() {
		c.Add(&ev)
	}
	var b bytes.Buffer
	if err := c.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "count", b.Bytes())
}

func TestJSONLines(t *testing.T) {
	var b bytes.Buffer
	wall := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	jw := NewJSONWriter(&b, func(ns uint64) time.Time { return wall.Add(time.Duration(ns)) })
	evs := fixtureEvents()
	evs[0].Comm = [16]byte{}
	copy(evs[0].Comm[:], "quo\"te\\\x01\xff")
	for _, ev := range evs {
		if err := jw.Write(&ev); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "json", b.Bytes())

	// Every line is valid JSON carrying every field.
	want := []string{"time", "boot_ns", "seq", "pid", "tid", "ppid", "uid", "gid", "comm", "cgroup_id", "mntns_id",
		"netns_id", "protocol", "protocol_number", "family", "addr", "port", "requested_family", "requested_addr",
		"requested_port", "opts", "freebind", "transparent", "bind_address_no_port", "reuseaddr", "reuseport",
		"v6only", "reuse", "bound_if", "ret", "error", "error_name", "kind", "cookie", "backlog", "listen_duration_ns"}
	for i, line := range bytes.Split(bytes.TrimSpace(b.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i, err, line)
		}
		if len(m) != len(want) {
			t.Errorf("line %d has %d fields, want %d", i, len(m), len(want))
		}
		for _, k := range want {
			if _, ok := m[k]; !ok {
				t.Errorf("line %d lacks %q", i, k)
			}
		}
		// Lossless: the same escaped text as the Avro record's comm.
		if i == 0 && m["comm"] != `quo"te\\\x01\xff` {
			t.Errorf("comm escaped wrong: %q", m["comm"])
		}
	}
}

func BenchmarkJSON(b *testing.B) {
	ev := fixtureEvents()[2]
	jw := NewJSONWriter(discard{}, nil)
	b.ReportAllocs()
	for b.Loop() {
		if err := jw.Write(&ev); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// A thread may name itself anything (prctl PR_SET_NAME): the row must stay
// one row, with no byte a terminal acts on, and the comm must stay whole
// and valid UTF-8 in JSON.
func TestHostileComm(t *testing.T) {
	ev := fixtureEvents()[1]
	ev.Comm = [16]byte{}
	copy(ev.Comm[:], "\xff\xfe\x1b[2J\n\u009b\\")
	for _, cols := range []Columns{{}, {Wide: true, Timestamp: true, UID: true, Errors: true}} {
		var b bytes.Buffer
		tw := NewTextWriter(&b, cols)
		if err := tw.Write(&ev); err != nil {
			t.Fatal(err)
		}
		row := b.String()
		if strings.Count(row, "\n") != 1 || !strings.HasSuffix(row, "\n") {
			t.Errorf("%+v: row split: %q", cols, row)
		}
		for _, c := range []byte(strings.TrimSuffix(row, "\n")) {
			if c < 0x20 || c >= 0x7f {
				t.Errorf("%+v: row carries byte %#x: %q", cols, c, row)
			}
		}
		if !strings.Contains(row, ` \xff\xfe\x1b `) {
			t.Errorf("%+v: comm not shown escaped and cut whole: %q", cols, row)
		}
	}
	var b bytes.Buffer
	if err := NewJSONWriter(&b, nil).Write(&ev); err != nil {
		t.Fatal(err)
	}
	if !utf8.Valid(b.Bytes()) {
		t.Fatalf("JSON line is not UTF-8: %q", b.Bytes())
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if want := `\xff\xfe\x1b[2J\x0a\xc2\x9b\\`; m["comm"] != want {
		t.Errorf("JSON comm %q, want %q", m["comm"], want)
	}
}
