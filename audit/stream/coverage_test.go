package stream

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/test/kafkatest"
)

// Each coverage finding is raised and resolved through Kafka: a seq gap, a
// user's suppressed records, a blind spot, a silent host; and a snapshot
// with a lost record sweeps no live listener.
func TestCoverageFindings(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)
	startInstance(t, cfg)

	h := &fakeHost{id: "cov-host", name: "db-1", boot: "boot-1"}
	id := func(reason string, detail ...string) string { return findings.CoverageID(h.id, reason, detail...) }
	listenerID := findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4444)
	interval := int64(1000)
	heartbeat := func(blind ...string) *schemas.BindEvent {
		e := h.ev(schemas.KindHeartbeat, "", "", "", 0, 0)
		e.HeartbeatIntervalMS, e.CaptureBlind = &interval, blind
		return e
	}
	snapshot := func(snapID string, lose bool) []*schemas.BindEvent {
		s := h.ev(schemas.KindSnapshot, "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 3)
		ssh := h.ev(schemas.KindSnapshot, "/usr/sbin/sshd", "TCP", "0.0.0.0", 22, 1)
		end := h.ev(schemas.KindSnapshotEnd, "", "", "", 0, 0)
		for _, e := range []*schemas.BindEvent{s, ssh, end} {
			e.SnapshotID = &snapID
		}
		end.SnapshotSockets = 2
		if lose {
			return []*schemas.BindEvent{ssh, end} // the nc record never arrives
		}
		return []*schemas.BindEvent{s, ssh, end}
	}

	prod.send(heartbeat("binds not made by the bind system call (io_uring IORING_OP_BIND, 32-bit compat)"),
		h.ev("listen", "/usr/sbin/sshd", "TCP", "0.0.0.0", 22, 1),
		h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 3))
	h.seq += 5 // five records lost upstream
	flood := h.ev(schemas.KindSuppressed, "", "", "", 0, 0)
	flood.UID, flood.Suppressed = 1000, 40000
	prod.send(flood)
	// A snapshot whose record of the live listener on 4444 was lost.
	prod.send(snapshot("snap-1", true)...)

	log := waitFindings(t, cl.Addrs, cfg.FindingsTopic, "coverage findings open", func(log map[string][]findings.Finding) error {
		for _, want := range []string{id(findings.ReasonCaptureBlind), id(findings.ReasonSeqGap, "boot-1"), id(findings.ReasonSuppressed, "1000"), listenerID} {
			if s := states(log[want]); !strings.HasPrefix(s, "open") {
				return fmt.Errorf("finding %s: %q", want, s)
			}
		}
		if gap := log[id(findings.ReasonSeqGap, "boot-1")]; *gap[len(gap)-1].MissingTo != 10 {
			return fmt.Errorf("the gap reaches %d, want the lost snapshot record too", *gap[len(gap)-1].MissingTo)
		}
		return nil
	})
	gap := log[id(findings.ReasonSeqGap, "boot-1")]
	g := gap[len(gap)-1]
	// 1 heartbeat, 2 listens, then seqs 4..8 lost; the snapshot's nc
	// record (seq 10) was lost too.
	if g.Kind != findings.KindCoverage || *g.MissingFrom != 4 || *g.MissingTo != 10 || g.Host != "db-1" {
		t.Errorf("seq_gap finding: %+v", g)
	}
	if s := log[id(findings.ReasonSuppressed, "1000")][0]; s.UID != 1000 || *s.Suppressed != 40000 || !strings.Contains(s.Detail, "user 1000") {
		t.Errorf("suppressed finding: %+v", s)
	}
	if s := states(log[listenerID]); s != "open " {
		t.Fatalf("the live listener's finding after a snapshot with a lost record: %q (swept?)", s)
	}

	// The host goes silent: three heartbeat intervals without a record.
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "silent host", func(log map[string][]findings.Finding) error {
		if s := states(log[id(findings.ReasonSilent)]); s != "open " {
			return fmt.Errorf("silent: %q", s)
		}
		return nil
	})
	// It comes back, whole: no blind spot, the flood over, a complete
	// snapshot after everything lost.
	back := heartbeat()
	over := h.ev(schemas.KindSuppressed, "", "", "", 0, 0)
	over.UID = 1000
	prod.send(back, over)
	prod.send(snapshot("snap-2", false)...)
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "coverage findings resolved", func(log map[string][]findings.Finding) error {
		for _, want := range []string{id(findings.ReasonCaptureBlind), id(findings.ReasonSeqGap, "boot-1"), id(findings.ReasonSuppressed, "1000"), id(findings.ReasonSilent)} {
			if fs := log[want]; len(fs) == 0 || fs[len(fs)-1].State != findings.Resolved {
				return fmt.Errorf("finding %s: %q %+v", want, states(fs), fs)
			}
		}
		return nil
	})
	log = findingsLog(t, cl.Addrs, cfg.FindingsTopic)
	if s := states(log[listenerID]); s != "open " {
		t.Errorf("the live listener's finding: %q", s)
	}
	// A clean stop, then silence: no finding.
	prod.send(h.ev(schemas.KindStop, "", "", "", 0, 0))
	time.Sleep(5 * time.Second)
	if s := states(findingsLog(t, cl.Addrs, cfg.FindingsTopic)[id(findings.ReasonSilent)]); s != "open resolved " {
		t.Errorf("silent after a clean stop: %q", s)
	}
}
