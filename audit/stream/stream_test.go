package stream

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	auditconfig "github.com/bindwatch/bindwatch/audit/config"
	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/policy"
	"github.com/bindwatch/bindwatch/audit/record"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

const testPolicy = `
rules:
  - {name: sshd, action: allow, match: {exe: /usr/sbin/sshd, port: 22, protocol: TCP}}
  - {name: resolved, action: allow, match: {exe: /usr/lib/systemd/systemd-resolved, addr: [127.0.0.53, 127.0.0.54], port: 53}}
`

// fakeHost writes one host's timeline as the agent would.
type fakeHost struct {
	id, name, boot string
	seq            int64
}

func (h *fakeHost) ev(kind, exe string, proto string, addr string, port int32, cookie int64) *schemas.BindEvent {
	h.seq++
	e := &schemas.BindEvent{
		Host: h.name, HostID: h.id, BootID: h.boot, Seq: h.seq, Time: time.Now().UTC().Truncate(time.Microsecond),
		PID: 100 + int32(port), Comm: "x", Protocol: proto, Family: "AF_INET", Addr: addr, Port: port, Kind: kind,
		Cookie: cookie, NetNSID: 4026531840, Holders: []schemas.Holder{}, SnapshotIncomplete: []string{},
	}
	exp := "wildcard"
	if addr != "0.0.0.0" {
		exp = "loopback"
	}
	hn := true
	e.Exposure, e.HostNetNS, e.Exe = &exp, &hn, &exe
	return e
}

type producer struct {
	t   *testing.T
	w   *kafka.Writer
	enc codec.Encoder
}

func newProducer(t *testing.T, brokers []string, topicName string) *producer {
	text, _ := schemas.BindEventSchema(schemas.Latest)
	enc, err := codec.NewSingleObject([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topicName, Balancer: &kafka.Murmur2Balancer{}, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
	t.Cleanup(func() { w.Close() })
	return &producer{t: t, w: w, enc: enc}
}

func (p *producer) send(evs ...*schemas.BindEvent) {
	p.t.Helper()
	msgs := make([]kafka.Message, len(evs))
	for i, e := range evs {
		b, err := p.enc.Append(nil, e)
		if err != nil {
			p.t.Fatal(err)
		}
		msgs[i] = kafka.Message{Key: []byte(e.HostID), Value: b}
	}
	if err := p.w.WriteMessages(context.Background(), msgs...); err != nil {
		p.t.Fatal(err)
	}
}

func testConfig(brokers []string) *auditconfig.Config {
	c := auditconfig.Defaults()
	c.Brokers = brokers
	c.SessionTimeout = 6 * time.Second
	c.BatchTimeout = 20 * time.Millisecond
	return &c
}

// instance runs one Processor until stopped.
type instance struct {
	p      *Processor
	cancel context.CancelFunc
	done   chan error
}

func startInstance(t *testing.T, cfg *auditconfig.Config) *instance {
	t.Helper()
	return startInstanceWith(t, cfg, testPolicy, io.Discard)
}

// startInstanceWith runs one Processor with the policy text given,
// printing its findings' JSON lines to out.
func startInstanceWith(t *testing.T, cfg *auditconfig.Config, policyText string, out io.Writer) *instance {
	t.Helper()
	return runInstance(t, newProcessor(t, cfg, policyText, out))
}

// newProcessor makes a Processor with the policy text given, for a test to
// change before runInstance runs it.
func newProcessor(t *testing.T, cfg *auditconfig.Config, policyText string, out io.Writer) *Processor {
	t.Helper()
	pol, err := policy.Parse("test.yaml", []byte(policyText))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg, &kafka.Dialer{Timeout: 5 * time.Second}, pol, out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// runInstance runs p until the test ends, once it is ready.
func runInstance(t *testing.T, p *Processor) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{p: p, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- p.Run(ctx) }()
	t.Cleanup(in.stop)
	select {
	case <-p.Ready():
	case err := <-in.done:
		t.Fatalf("instance ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("instance not ready after 30s")
	}
	return in
}

func (in *instance) stop() {
	in.cancel()
	<-in.done
	in.done <- nil // stop is idempotent
}

// findingsLog reads the findings topic from the start, by finding id.
// registry, when given, resolves Confluent-framed findings.
func findingsLog(t *testing.T, brokers []string, name string, registry ...string) map[string][]findings.Finding {
	t.Helper()
	codec, _ := record.NewCodec()
	for _, url := range registry {
		if err := codec.ReadRegistry(url); err != nil {
			t.Fatal(err)
		}
	}
	out := map[string][]findings.Finding{}
	parts := 3
	for p := 0; p < parts; p++ {
		err := readPartition(context.Background(), &kafka.Dialer{Timeout: 5 * time.Second}, brokers, name, p, func(m kafka.Message) error {
			f, err := codec.DecodeFinding(m.Value)
			if err != nil {
				return err
			}
			out[f.ID] = append(out[f.ID], f)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func states(fs []findings.Finding) string {
	s := ""
	for _, f := range fs {
		s += f.State + " "
	}
	return s
}

// waitFindings polls until check passes on the findings log.
func waitFindings(t *testing.T, brokers []string, name string, what string, check func(map[string][]findings.Finding) error, registry ...string) map[string][]findings.Finding {
	t.Helper()
	var log map[string][]findings.Finding
	testenv.Eventually(t, what, 30*time.Second, func() error {
		log = findingsLog(t, brokers, name, registry...)
		return check(log)
	})
	return log
}

func TestGroupRebalanceRestartAndReboot(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)

	var hosts []*fakeHost
	for i := range 6 {
		hosts = append(hosts, &fakeHost{id: fmt.Sprintf("host-id-%02d", i), name: fmt.Sprintf("web-%d", i), boot: "boot-1"})
	}
	unexpected := func(h *fakeHost) string {
		return findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4444)
	}
	shortID := func(h *fakeHost) string {
		return findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 5555)
	}
	laterID := func(h *fakeHost) string {
		return findings.ListenerID(h.id, ptrTrue(), 4026531840, "UDP", "0.0.0.0", 6666)
	}

	a := startInstance(t, cfg)
	b := startInstance(t, cfg)
	// Expected listeners, one unexpected, one that lives a millisecond.
	var firstBatch []*schemas.BindEvent
	for _, h := range hosts {
		evs := []*schemas.BindEvent{
			h.ev("listen", "/usr/sbin/sshd", "TCP", "0.0.0.0", 22, 1),
			h.ev("listen", "/usr/lib/systemd/systemd-resolved", "UDP", "127.0.0.53", 53, 2),
			h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 3),
			h.ev("listen", "/usr/bin/python3", "TCP", "0.0.0.0", 5555, 4),
			h.ev("close", "/usr/bin/python3", "TCP", "0.0.0.0", 5555, 4),
		}
		firstBatch = append(firstBatch, evs...)
		prod.send(evs...)
	}
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "first findings", func(log map[string][]findings.Finding) error {
		for _, h := range hosts {
			if s := states(log[unexpected(h)]); s != "open " {
				return fmt.Errorf("%s unexpected listener: %q", h.name, s)
			}
			if s := states(log[shortID(h)]); s != "open resolved " {
				return fmt.Errorf("%s short-lived listener: %q", h.name, s)
			}
		}
		return nil
	})

	// One instance goes; the other takes its partitions and goes on.
	a.stop()
	for _, h := range hosts {
		closed := h.ev("close", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 3)
		udp := h.ev("bind", "/usr/bin/socat", "UDP", "0.0.0.0", 6666, 5)
		rp := int32(6666)
		udp.RequestedPort = &rp
		prod.send(closed, udp)
	}
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "after rebalance", func(log map[string][]findings.Finding) error {
		for _, h := range hosts {
			if s := states(log[unexpected(h)]); s != "open resolved " {
				return fmt.Errorf("%s unexpected listener after close: %q", h.name, s)
			}
			if s := states(log[laterID(h)]); s != "open " {
				return fmt.Errorf("%s UDP server: %q", h.name, s)
			}
		}
		return nil
	})

	// A late instance knows the listeners from the state topic.
	b.stop()
	c := startInstance(t, cfg)
	ls, err := ReadListeners(context.Background(), &kafka.Dialer{}, cl.Addrs, cfg.StateTopic, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 3*len(hosts) {
		t.Errorf("state topic has %d listeners, want %d (sshd, resolved and the UDP server per host)", len(ls), 3*len(hosts))
	}
	// At-least-once delivery: the agent sends its first records again.
	prod.send(firstBatch...)

	// A new boot id clears the host's listeners: the unexpected one of the
	// new boot is raised; the old boot's are gone.
	h0 := hosts[0]
	prod.send(h0.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 7777, 9))
	h0.boot, h0.seq = "boot-2", 0
	prod.send(h0.ev("listen", "/usr/sbin/sshd", "TCP", "0.0.0.0", 22, 1))
	id7777 := findings.ListenerID(h0.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 7777)
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "reboot", func(log map[string][]findings.Finding) error {
		if s := states(log[id7777]); s != "open resolved " {
			return fmt.Errorf("listener of the old boot: %q", s)
		}
		return nil
	})
	testenv.Eventually(t, "one listener of the host after the reboot", 10*time.Second, func() error {
		ls, err = ReadListeners(context.Background(), &kafka.Dialer{}, cl.Addrs, cfg.StateTopic, "")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, l := range ls {
			if l.HostID == h0.id {
				n++
				if l.BootID != "boot-2" || l.Port != 22 {
					t.Errorf("after reboot: %+v", l)
				}
			}
		}
		if n != 1 {
			return fmt.Errorf("host has %d listeners, want 1", n)
		}
		return nil
	})
	c.stop()

	// Nothing was raised twice, and expected listeners raised nothing.
	final := findingsLog(t, cl.Addrs, cfg.FindingsTopic)
	for id, fs := range final {
		for i := range fs {
			want := findings.Open
			if i%2 == 1 {
				want = findings.Resolved
			}
			if fs[i].State != want {
				t.Errorf("finding %s (%s:%d on %s): states %q", id, fs[i].Addr, fs[i].Port, fs[i].Host, states(fs))
				break
			}
		}
		if fs[0].Port == 22 || fs[0].Port == 53 {
			t.Errorf("expected listener raised %+v", fs[0])
		}
	}
}

func ptrTrue() *bool { v := true; return &v }
