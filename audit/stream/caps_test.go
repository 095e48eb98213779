package stream

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/integrity"
	"github.com/bindwatch/bindwatch/audit/policy"
	"github.com/bindwatch/bindwatch/audit/state"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// offlinePartition is a partition of an instance that never dials: its
// records go through the same apply as a running one's.
func offlinePartition(t testing.TB) *partition {
	t.Helper()
	pol, err := policy.Parse("test.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(testConfig([]string{"127.0.0.1:1"}), &kafka.Dialer{}, pol, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return &partition{p: p, id: 0, label: "0", table: state.New(), tracker: findings.New(pol), verifier: integrity.New(nil)}
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// One partition filled to its cap of hosts (state.MaxHosts, each with a
// heartbeat and an allowed listener) refuses the next hosts' records: one
// integrity finding host_cap, each counted; a host it holds still applies;
// a host expiring makes room and resolves the finding. The heap of the
// table and tracker at the cap is logged.
func TestHostCapAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a partition to 250 000 hosts")
	}
	start := time.Now()
	before := heapInUse()
	pc := offlinePartition(t)
	now := time.Now()
	interval := 30 * time.Second
	rec := integrity.Record{At: now}
	ev := &rec.Event
	apply := func(hostID string, seq int64, kind string) []findings.Finding {
		*ev = state.Event{Kind: kind, Host: "node-" + hostID[24:], HostID: hostID, BootID: "6b1c0d3e-0000-4000-8000-000000000000", Seq: seq, Time: now,
			HeartbeatInterval: interval, PID: 1, Comm: "sshd", Exe: "/usr/sbin/sshd", Protocol: "TCP", Family: "AF_INET", Addr: "0.0.0.0", Port: 22,
			Cookie: 1, NetNS: 4026531840, Exposure: "wildcard", HostNetNS: ptrTrue()}
		out, _, err := pc.apply(&rec, now, true, nil, nil, map[string]*state.Host{})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	id := func(i int) string { return fmt.Sprintf("%032x", i) }
	for i := range state.MaxHosts {
		hid := id(i)
		if out := apply(hid, 1, state.KindHeartbeat); len(out) != 0 {
			t.Fatalf("host %d: %+v", i, out)
		}
		if out := apply(hid, 2, state.KindListen); len(out) != 0 {
			t.Fatalf("host %d's listener: %+v", i, out)
		}
	}
	filled := time.Since(start)
	heap := heapInUse() - before
	if n := len(pc.table.Hosts); n != state.MaxHosts {
		t.Fatalf("%d hosts", n)
	}
	over := id(state.MaxHosts)
	out := apply(over, 1, state.KindHeartbeat)
	if len(out) != 1 || out[0].Kind != findings.KindIntegrity || out[0].Reason != integrity.ReasonHostCap || out[0].HostID != over || out[0].State != findings.Open {
		t.Fatalf("the host over the cap: %+v", out)
	}
	capID := out[0].ID
	// Other new hosts are refused and counted under the one finding: a
	// flood of host ids opens no finding per id.
	for i := range 1000 {
		if out := apply(id(state.MaxHosts+1+i), 1, state.KindListen); len(out) != 0 {
			t.Fatalf("another host over the cap: %+v", out)
		}
	}
	if pc.table.Hosts[over] != nil || len(pc.table.Hosts) != state.MaxHosts || pc.tracker.OpenCount() != 1 {
		t.Fatalf("hosts over the cap were kept: %d hosts, %d findings open", len(pc.table.Hosts), pc.tracker.OpenCount())
	}
	if n := counter(t, pc.p, "bindwatch_audit_refused_total", integrity.ReasonHostCap); n != 1001 {
		t.Fatalf("refused host_cap %v, want 1001", n)
	}
	if out := apply(id(7), 3, state.KindHeartbeat); len(out) != 0 || pc.table.Hosts[id(7)].LastSeq != 3 {
		t.Fatalf("a host the partition holds, at the cap: %+v", out)
	}
	// The walk the partition makes each second once caught up, with no
	// host to expire.
	walk := time.Now()
	if out, _ := pc.expire(now, nil, nil, map[string]*state.Host{}); len(out) != 0 {
		t.Fatalf("nothing to expire: %+v", out)
	}
	walked := time.Since(walk)
	// A host expires: room again, the finding resolved, a new host taken.
	pc.table.Hosts[id(3)].LastSeen = now.Add(-pc.p.cfg.HostExpiry - time.Second)
	if out, _ := pc.expire(now.Add(time.Second), nil, nil, map[string]*state.Host{}); len(out) != 0 {
		t.Fatalf("expiry walks a second apart: %+v", out)
	}
	out, _ = pc.expire(now.Add(time.Minute), nil, nil, map[string]*state.Host{})
	var resolved bool
	for _, f := range out {
		resolved = resolved || f.ID == capID && f.State == findings.Resolved
	}
	if !resolved || pc.tracker.IsOpen(capID) {
		t.Fatalf("host_cap after a host expired: %+v", out)
	}
	if out := apply(over, 1, state.KindHeartbeat); len(out) != 0 || pc.table.Hosts[over] == nil {
		t.Fatalf("a new host under the cap again: %+v", out)
	}
	t.Logf("a partition at the cap of %d hosts (a heartbeat and one listener each): %.0f MiB of heap (%.0f bytes a host); filled in %s; an expiry walk over them: %s",
		state.MaxHosts, float64(heap)/(1<<20), float64(heap)/state.MaxHosts, filled.Round(time.Millisecond), walked.Round(time.Microsecond))
	runtime.KeepAlive(pc)
}

// capListeners is how many listeners TestListenerCapThroughKafka's host
// sends: just over the cap by default; BINDWATCH_CAP_LISTENERS (say
// 1000000) for the full run.
func capListeners(t *testing.T) int {
	if s := os.Getenv("BINDWATCH_CAP_LISTENERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= state.MaxListeners {
			t.Fatalf("BINDWATCH_CAP_LISTENERS=%q: want a number over %d", s, state.MaxListeners)
		}
		return n
	}
	return state.MaxListeners + 1000
}

// Through Kafka, one (unsigned) host opens more listeners than the cap:
// the table stops at state.MaxListeners, the host has one listener_cap
// integrity finding, every refused record is counted, and the state topic
// holds the cap's worth of the host's listeners.
func TestListenerCapThroughKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 66 536 records")
	}
	n := capListeners(t)
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	cfg.BatchSize = 10000
	text, _ := schemas.BindEventSchema(schemas.Latest)
	enc, err := codec.NewSingleObject([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(cl.Addrs...), Topic: cfg.EventsTopic, Balancer: &kafka.Murmur2Balancer{}, BatchSize: 10000,
		BatchBytes: 1000000, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	heap0 := heapInUse()
	in := startInstance(t, cfg)
	h := &fakeHost{id: "flood-host", name: "flood-1", boot: "boot-1"}
	start := time.Now()
	msgs := make([]kafka.Message, 0, 20000)
	for i := range n {
		// One SO_REUSEPORT service of sshd on 22, allowed: no listener
		// finding per socket, only the cap's.
		v, err := enc.Append(nil, h.ev("listen", "/usr/sbin/sshd", "TCP", "0.0.0.0", 22, int64(i+1)))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(h.id), Value: v})
		if len(msgs) == cap(msgs) || i == n-1 {
			if err := w.WriteMessages(context.Background(), msgs...); err != nil {
				t.Fatal(err)
			}
			msgs = msgs[:0]
		}
	}
	sent := time.Since(start)
	want := float64(n - state.MaxListeners)
	deadline := time.Now().Add(10*time.Minute + time.Duration(n)*time.Millisecond)
	for counter(t, in.p, "bindwatch_audit_refused_total", integrity.ReasonListenerCap) < want {
		if time.Now().After(deadline) {
			t.Fatalf("listener_cap refusals: %v of %v", counter(t, in.p, "bindwatch_audit_refused_total", integrity.ReasonListenerCap), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	heap := heapInUse() - heap0
	if got := counter(t, in.p, "bindwatch_audit_events_total", "applied"); got != float64(n) {
		t.Errorf("applied %v, want %d (a record over the cap is applied, its listener not added)", got, n)
	}
	capID := findings.IntegrityID(h.id, integrity.ReasonListenerCap)
	log := waitFindings(t, cl.Addrs, cfg.FindingsTopic, "listener_cap", func(log map[string][]findings.Finding) error {
		if s := states(log[capID]); s != "open " {
			return fmt.Errorf("listener_cap: %q", s)
		}
		return nil
	})
	if len(log) != 2 {
		t.Errorf("%d findings, want listener_cap and unsigned", len(log))
	}
	if s := states(log[findings.IntegrityID(h.id, integrity.ReasonUnsigned)]); s != "open " {
		t.Errorf("unsigned: %q", s)
	}
	keys := 0
	testEventually := time.Now().Add(30 * time.Second)
	for {
		keys = len(hostKeys(stateKeys(t, cl.Addrs, cfg.StateTopic), h.id))
		if keys == state.MaxListeners+1 || time.Now().After(testEventually) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if keys != state.MaxListeners+1 {
		t.Errorf("the state topic holds %d keys of the host, want %d listeners and its host record", keys, state.MaxListeners)
	}
	t.Logf("%d listeners of one host through Kafka: sent in %s, all applied (%d kept, %.0f refused at the cap) in %s, %.0f records/s; "+
		"heap of the test process after GC (audit and in-process broker with every record): +%.0f MiB",
		n, sent.Round(time.Millisecond), state.MaxListeners, want, took.Round(time.Millisecond), float64(n)/took.Seconds(), float64(heap)/(1<<20))
}

// Through Kafka, with a partition cap of 3 hosts: records of new hosts
// over it are refused before anything keeps them (no unsigned finding, no
// verifier entry), counted, and reported by one host_cap finding; once the
// hosts expire the finding is resolved and a new host is taken.
func TestHostCapThroughKafka(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	cfg.HostExpiry = 3 * time.Second
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)
	cfg.MaxHosts = 3 // under audit.max_hosts' minimum: this test only
	p := newProcessor(t, cfg, testPolicy, nil)
	runInstance(t, p)

	// Five hosts of one partition.
	var hosts []*fakeHost
	for i := 0; len(hosts) < 5; i++ {
		if id := fmt.Sprintf("host-%d", i); partitionOf([]byte(id), 3) == 0 {
			hosts = append(hosts, &fakeHost{id: id, name: fmt.Sprintf("n%d", i), boot: "boot-1"})
		}
	}
	for _, h := range hosts[:3] {
		prod.send(h.ev("listen", "/usr/sbin/sshd", "TCP", "0.0.0.0", 22, 1))
	}
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "three hosts in", func(log map[string][]findings.Finding) error {
		for _, h := range hosts[:3] {
			if s := states(log[findings.IntegrityID(h.id, integrity.ReasonUnsigned)]); s != "open " {
				return fmt.Errorf("%s unsigned: %q", h.id, s)
			}
		}
		return nil
	})
	for _, h := range hosts[3:] {
		prod.send(h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 1), h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4445, 2))
	}
	capID := findings.IntegrityID(hosts[3].id, integrity.ReasonHostCap)
	log := waitFindings(t, cl.Addrs, cfg.FindingsTopic, "host_cap", func(log map[string][]findings.Finding) error {
		if s := states(log[capID]); !strings.HasPrefix(s, "open ") {
			return fmt.Errorf("host_cap: %q", s)
		}
		return nil
	})
	for _, id := range []string{findings.IntegrityID(hosts[3].id, integrity.ReasonUnsigned), findings.IntegrityID(hosts[4].id, integrity.ReasonUnsigned),
		findings.IntegrityID(hosts[4].id, integrity.ReasonHostCap), findings.ListenerID(hosts[3].id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4444)} {
		if s := states(log[id]); s != "" {
			t.Errorf("a refused host's finding %s: %q", id, s)
		}
	}
	testenv.Eventually(t, "refusals counted", 30*time.Second, func() error {
		if n := counter(t, p, "bindwatch_audit_refused_total", integrity.ReasonHostCap); n != 4 {
			return fmt.Errorf("refused host_cap %v, want 4", n)
		}
		return nil
	})
	// The three hosts expire (the first walk that finds one resolves it):
	// room again.
	log = waitFindings(t, cl.Addrs, cfg.FindingsTopic, "host_cap resolved", func(log map[string][]findings.Finding) error {
		if s := states(log[capID]); s != "open resolved " {
			return fmt.Errorf("host_cap: %q", s)
		}
		return nil
	})
	if d := log[capID][1].Detail; !strings.Contains(d, "Resolved: partition 0 holds ") || !strings.Contains(d, "hosts, under the cap of 3: new hosts are taken again") {
		t.Errorf("host_cap resolved: %q", d)
	}
	prod.send(hosts[4].ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4446, 3))
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "a new host taken", func(log map[string][]findings.Finding) error {
		if s := states(log[findings.ListenerID(hosts[4].id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4446)]); s != "open " {
			return fmt.Errorf("the new host's listener: %q", s)
		}
		return nil
	})
}

// host_cap findings restored open (a restart, a rebalance; several from
// before one finding per partition) are the partition's: resolved once it
// is under its cap, and a new one is not opened while they are open.
func TestRestoredHostCapFindings(t *testing.T) {
	pc := offlinePartition(t)
	pc.table.HostCap = 1
	now := time.Now()
	for _, h := range []string{"a", "b"} {
		pc.tracker.Restore(findings.Finding{ID: findings.IntegrityID(h, integrity.ReasonHostCap), Kind: findings.KindIntegrity, State: findings.Open,
			Reason: integrity.ReasonHostCap, HostID: h, BootID: "b", Seq: 1, Time: now})
	}
	rec := integrity.Record{At: now, Event: state.Event{Kind: state.KindHeartbeat, HostID: "in", BootID: "b", Seq: 1, Time: now}}
	if out, _, _ := pc.apply(&rec, now, true, nil, nil, map[string]*state.Host{}); len(out) != 0 {
		t.Fatalf("first host: %+v", out)
	}
	rec.Event.HostID = "over"
	if out, _, _ := pc.apply(&rec, now, true, nil, nil, map[string]*state.Host{}); len(out) != 0 {
		t.Fatalf("a host over the cap opened a finding while two are open: %+v", out)
	}
	if out, _ := pc.expire(now, nil, nil, map[string]*state.Host{}); len(out) != 0 {
		t.Fatalf("at the cap: %+v", out)
	}
	pc.table.HostCap = 2
	out, _ := pc.expire(now, nil, nil, map[string]*state.Host{})
	if states(out) != "resolved resolved " || pc.tracker.OpenCount() != 0 {
		t.Fatalf("under the cap: %+v", out)
	}
}
