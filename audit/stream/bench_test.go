package stream

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/policy"
	"github.com/bindwatch/bindwatch/audit/record"
	"github.com/bindwatch/bindwatch/audit/state"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
	"github.com/bindwatch/bindwatch/test/kafkatest"
)

// policy1000 is 1 000 allow rules like a fleet's: most pin an executable
// and a port or two, some a host glob and a CIDR, some ephemeral ports.
func policy1000() string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range 1000 {
		switch i % 10 {
		case 0:
			fmt.Fprintf(&b, "- {name: r%d, action: allow, match: {exe: \"/opt/app%d/*\", port: ephemeral, container: any}}\n", i, i)
		case 1:
			fmt.Fprintf(&b, "- {name: r%d, action: allow, match: {host: \"h%d-*\", addr: 10.%d.0.0/16, protocol: UDP}}\n", i, i, i%250)
		default:
			fmt.Fprintf(&b, "- {name: r%d, action: allow, match: {exe: /usr/sbin/d%d, port: [%d, %d], protocol: TCP, exposure: [wildcard, specific]}}\n", i, i, 1000+i, 20000+i)
		}
	}
	b.WriteString("- {name: need-sshd, action: require, match: {exe: /usr/sbin/sshd, port: 22}}\n")
	return b.String()
}

// BenchmarkEvaluate1000Rules is what one instance does per event, Kafka
// aside: decode the Avro record, apply it to the host's table, evaluate
// the listener against 1 000 rules, track its finding. The events are
// listen and close pairs on 1 000 hosts, half of them allowed.
func BenchmarkEvaluate1000Rules(b *testing.B) {
	pol, err := policy.Parse("bench.yaml", []byte(policy1000()))
	if err != nil {
		b.Fatal(err)
	}
	text, _ := schemas.BindEventSchema(schemas.Latest)
	enc, _ := codec.NewSingleObject([]byte(text))
	slow, _ := codec.NewDecoder("")
	dec, _ := record.NewEventDecoder(slow)
	const hosts, perHost = 1000, 64
	msgs := make([][]byte, 0, hosts*perHost)
	for h := range hosts {
		fh := &fakeHost{id: fmt.Sprintf("%032x", h), name: fmt.Sprintf("h%d-x", h), boot: "b"}
		for i := 0; i < perHost/2; i++ {
			exe, port := fmt.Sprintf("/usr/sbin/d%d", 2+(i%8)*10), int32(1002+(i%8)*10) // allowed
			if i%2 == 1 {
				exe, port = "/usr/bin/nc", int32(4000+i) // a finding
			}
			for _, kind := range []string{"listen", "close"} {
				m, err := enc.Append(nil, fh.ev(kind, exe, "TCP", "192.0.2.1", port, int64(i+1)))
				if err != nil {
					b.Fatal(err)
				}
				msgs = append(msgs, m)
			}
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	var ev state.Event
	var tb *state.Table
	var tr *findings.Tracker
	opened := 0
	for n := 0; n < b.N; n++ {
		i := n % len(msgs)
		if i == 0 {
			tb, tr = state.New(), findings.New(pol) // a fresh pass: seqs start again
		}
		if err := dec.Decode(ctx, msgs[i], &ev); err != nil {
			b.Fatal(err)
		}
		res := tb.Apply(&ev)
		fs, _ := tr.Apply(tb.Hosts[ev.HostID], res, &ev)
		opened += len(fs)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	// CPU time, GC included: what the work costs whatever else the
	// machine runs at the same time.
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
	if opened == 0 {
		b.Fatal("no findings")
	}
}

// BenchmarkRebuild100k rebuilds one partition holding 100 000 listeners
// of 1 000 hosts from the state topic on a kfake cluster, as an instance
// that gains the partition does.
func BenchmarkRebuild100k(b *testing.B) {
	cl := kafkatest.Start(b, kafkatest.Options{Topic: "events", Partitions: 1})
	cfg := testConfig(cl.Addrs)
	d := &kafka.Dialer{Timeout: 5 * time.Second}
	if _, err := ensureTopics(context.Background(), d, cl.Addrs, "events", true, cfg.StateTopic, cfg.FindingsTopic); err != nil {
		b.Fatal(err)
	}
	codec, _ := record.NewCodec()
	w := &kafka.Writer{Addr: kafka.TCP(cl.Addrs...), BatchSize: 10000, BatchBytes: 1000000, BatchTimeout: time.Millisecond,
		Balancer: kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 }), RequiredAcks: kafka.RequireAll}
	defer w.Close()
	const hosts, perHost = 1000, 100
	yes := true
	var msgs []kafka.Message
	flush := func() {
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			b.Fatal(err)
		}
		msgs = msgs[:0]
	}
	for h := range hosts {
		hid := fmt.Sprintf("%032x", h)
		hv, _ := codec.EncodeHost(state.HostMeta{HostID: hid, Host: fmt.Sprintf("host-%d", h), BootID: "boot", LastSeq: 1000, Complete: true, BootTime: time.Now()})
		msgs = append(msgs, kafka.Message{Topic: cfg.StateTopic, Key: []byte(record.HostKey(hid)), Value: hv})
		for i := range perHost {
			l := &state.Listener{Key: state.Key{NetNS: 4026531840, Cookie: int64(i + 1)}, Host: fmt.Sprintf("host-%d", h), HostID: hid,
				BootID: "boot", Seq: int64(i), Since: time.Now(), PID: int32(1000 + i), Comm: "daemon", Exe: fmt.Sprintf("/usr/sbin/d%d", i),
				Protocol: "TCP", Family: "AF_INET", Addr: "0.0.0.0", Port: int32(1000 + i), Exposure: "wildcard", HostNetNS: &yes}
			v, _ := codec.EncodeListener(l)
			msgs = append(msgs, kafka.Message{Topic: cfg.StateTopic, Key: []byte(record.ListenerKey(hid, l.Key)), Value: v})
		}
		if len(msgs) >= 10000 {
			flush()
		}
	}
	flush()
	pol, _ := policy.Parse("p.yaml", []byte(policy1000()))
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		tb, tr := state.New(), findings.New(pol)
		st, err := Rebuild(context.Background(), d, cl.Addrs, cfg.StateTopic, cfg.FindingsTopic, 0, codec, tb, tr)
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		allocated := after.TotalAlloc - before.TotalAlloc
		runtime.GC()
		runtime.ReadMemStats(&after)
		if st.Listeners != hosts*perHost {
			b.Fatalf("rebuilt %+v, want %d listeners", st, hosts*perHost)
		}
		b.ReportMetric(took.Seconds(), "rebuild-s")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "table-heap-MiB")
		b.ReportMetric(float64(allocated)/(1<<20), "allocated-MiB")
		runtime.KeepAlive(tb)
		runtime.KeepAlive(tr)
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
