package stream

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/integrity"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// stateKeys reads the state topic's latest value per key, and returns the
// keys whose latest value is not a tombstone.
func stateKeys(t *testing.T, brokers []string, topic string) map[string]bool {
	t.Helper()
	live := map[string]bool{}
	for p := range 3 {
		err := readPartition(context.Background(), &kafka.Dialer{Timeout: 5 * time.Second}, brokers, topic, p, func(m kafka.Message) error {
			live[string(m.Key)] = m.Value != nil
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range live {
		if !v {
			delete(live, k)
		}
	}
	return live
}

// hostKeys lists the live state keys of one host (its host record and
// listeners).
func hostKeys(live map[string]bool, hostID string) []string {
	var ks []string
	for k := range live {
		if k == hostID || strings.HasPrefix(k, hostID+"/") {
			ks = append(ks, k)
		}
	}
	return ks
}

// Through Kafka, with a short audit.host_expiry: a host gone silent, a
// host stopped cleanly and a sealing host all expire (tombstones for their
// listeners and host record, every open finding resolved saying why,
// counted); a host that keeps sending does not. A host back after expiry
// starts fresh: its findings open again, and a sealing host's new key is
// pinned (the pin expired with it).
func TestHostsExpireThroughKafka(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	cfg.HostExpiry = 4 * time.Second
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)
	in := startInstance(t, cfg)

	nc := func(h *fakeHost, port int32, cookie int64) *schemas.BindEvent {
		return h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", port, cookie)
	}
	lid := func(h string) string { return findings.ListenerID(h, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4444) }
	interval := int64(500)
	heartbeat := func(h *fakeHost) *schemas.BindEvent {
		e := h.ev(schemas.KindHeartbeat, "", "", "", 0, 0)
		e.HeartbeatIntervalMS = &interval
		return e
	}

	// alive keeps sending, from its own producer.
	alive := &fakeHost{id: "alive-host", name: "web-1", boot: "boot-1"}
	prod.send(nc(alive, 4444, 1))
	keep := newProducer(t, cl.Addrs, cfg.EventsTopic)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				v, err := keep.enc.Append(nil, heartbeat(alive))
				if err == nil {
					keep.w.WriteMessages(context.Background(), kafka.Message{Key: []byte(alive.id), Value: v})
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })

	gone := &fakeHost{id: "gone-host", name: "db-1", boot: "boot-1"}
	prod.send(heartbeat(gone), nc(gone, 4444, 1), gone.ev("listen", "/usr/sbin/sshd", "TCP", "0.0.0.0", 22, 2))
	stopped := &fakeHost{id: "stopped-host", name: "db-2", boot: "boot-1"}
	prod.send(heartbeat(stopped), nc(stopped, 4444, 1), stopped.ev(schemas.KindStop, "", "", "", 0, 0))
	sealed := newSealingHost(t, "sealed-host", "app-1")
	prod.write(sealed.batch(t, prod.enc, nc(sealed.fakeHost, 4444, 1))...)

	silent := findings.CoverageID(gone.id, findings.ReasonSilent)
	unsigned := findings.IntegrityID(gone.id, integrity.ReasonUnsigned)
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "the silent host called silent first", func(log map[string][]findings.Finding) error {
		if s := states(log[silent]); !strings.HasPrefix(s, "open ") {
			return fmt.Errorf("silent: %q", s)
		}
		return nil
	})
	if live := stateKeys(t, cl.Addrs, cfg.StateTopic); len(hostKeys(live, gone.id)) != 3 || len(hostKeys(live, sealed.id)) != 2 {
		t.Fatalf("state before expiry: %v", live)
	}
	log := waitFindings(t, cl.Addrs, cfg.FindingsTopic, "hosts expired", func(log map[string][]findings.Finding) error {
		for _, id := range []string{lid(gone.id), silent, unsigned, lid(stopped.id), findings.IntegrityID(stopped.id, integrity.ReasonUnsigned), lid(sealed.id)} {
			if s := states(log[id]); s != "open resolved " {
				return fmt.Errorf("finding %s: %q", id, s)
			}
		}
		return nil
	})
	for _, id := range []string{lid(gone.id), silent, unsigned, lid(stopped.id), lid(sealed.id)} {
		f := log[id][1]
		if !strings.Contains(f.Detail, "Resolved: host expired: no record since ") || !strings.HasSuffix(f.Detail, "(audit.host_expiry 4s)") {
			t.Errorf("%s resolved: %q", f.Kind, f.Detail)
		}
	}
	if s := states(log[lid(alive.id)]); s != "open " {
		t.Errorf("the host that keeps sending: %q", s)
	}
	if n := counter(t, in.p, "bindwatch_audit_hosts_expired_total", ""); n != 3 {
		t.Errorf("hosts_expired_total %v, want 3", n)
	}
	live := stateKeys(t, cl.Addrs, cfg.StateTopic)
	for _, h := range []string{gone.id, stopped.id, sealed.id} {
		if ks := hostKeys(live, h); len(ks) != 0 {
			t.Errorf("state topic still has %v", ks)
		}
	}
	if ks := hostKeys(live, alive.id); len(ks) != 2 {
		t.Errorf("the live host's state: %v", ks)
	}

	// Back after expiry: fresh. The unsigned host's findings open again; the
	// sealing host seals with a new key, pinned as a new host's would be.
	prod.send(nc(gone, 4444, 1))
	again := newSealingHost(t, sealed.id, "app-1")
	again.seq = sealed.seq
	prod.write(again.batch(t, prod.enc, nc(again.fakeHost, 5555, 7))...)
	log = waitFindings(t, cl.Addrs, cfg.FindingsTopic, "hosts back", func(log map[string][]findings.Finding) error {
		for _, id := range []string{lid(gone.id), unsigned} {
			if s := states(log[id]); s != "open resolved open " {
				return fmt.Errorf("finding %s: %q", id, s)
			}
		}
		if s := states(log[findings.ListenerID(sealed.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 5555)]); s != "open " {
			return fmt.Errorf("the sealing host's new listener: %q", s)
		}
		return nil
	})
	for _, r := range []string{integrity.ReasonUnknownKey, integrity.ReasonCloned} {
		if s := states(log[findings.IntegrityID(sealed.id, r)]); s != "" {
			t.Errorf("%s after expiry: %q", r, s)
		}
	}
}

// A host's last record time is kept in the state topic: a host that went
// quiet while no instance held its partition expires at the next owner's
// first walk, and the owner after that finds nothing left to expire or
// resolve.
func TestExpiryAcrossRestarts(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	cfg.HostExpiry = 3 * time.Second
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)
	first := startInstance(t, cfg)

	h := &fakeHost{id: "quiet-host", name: "db-3", boot: "boot-1"}
	prod.send(h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 1))
	lid := findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4444)
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "open", func(log map[string][]findings.Finding) error {
		if s := states(log[lid]); s != "open " {
			return fmt.Errorf("listener: %q", s)
		}
		return nil
	})
	first.stop()
	time.Sleep(cfg.HostExpiry + time.Second)

	started := time.Now()
	second := startInstance(t, cfg)
	log := waitFindings(t, cl.Addrs, cfg.FindingsTopic, "expired by the next owner", func(log map[string][]findings.Finding) error {
		if s := states(log[lid]); s != "open resolved " {
			return fmt.Errorf("listener: %q", s)
		}
		return nil
	})
	// Timed from the record before the restart, not from the new owner's
	// start.
	if at := log[lid][1].Time; at.Sub(started) >= cfg.HostExpiry {
		t.Errorf("expired %s after the new owner started: timed from its start", at.Sub(started))
	}
	if n := counter(t, second.p, "bindwatch_audit_hosts_expired_total", ""); n != 1 {
		t.Errorf("hosts_expired_total %v", n)
	}
	testenvEventuallyNoKeys(t, cl.Addrs, cfg.StateTopic, h.id)
	second.stop()

	third := startInstance(t, cfg)
	time.Sleep(2500 * time.Millisecond) // two walks, caught up
	log = findingsLog(t, cl.Addrs, cfg.FindingsTopic)
	if s := states(log[lid]) + states(log[findings.IntegrityID(h.id, integrity.ReasonUnsigned)]); s != "open resolved open resolved " {
		t.Errorf("after a third owner: %q", s)
	}
	if n := counter(t, third.p, "bindwatch_audit_hosts_expired_total", ""); n != 0 {
		t.Errorf("the third owner expired %v hosts", n)
	}
}

func testenvEventuallyNoKeys(t *testing.T, brokers []string, topic, hostID string) {
	t.Helper()
	testenv.Eventually(t, "the host's state tombstoned", 30*time.Second, func() error {
		if ks := hostKeys(stateKeys(t, brokers, topic), hostID); len(ks) != 0 {
			return fmt.Errorf("state keys left: %v", ks)
		}
		return nil
	})
}
