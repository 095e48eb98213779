package stream

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/integrity"
	"github.com/bindwatch/bindwatch/internal/seal"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/schemas/codec"
	"github.com/bindwatch/bindwatch/test/kafkatest"
)

// sealingHost writes one host's timeline as a sealing agent does: a
// host_key record first, then each batch followed by its seal.
type sealingHost struct {
	*fakeHost
	key       ed25519.PrivateKey
	announced bool
}

func newSealingHost(t *testing.T, id, name string) *sealingHost {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &sealingHost{fakeHost: &fakeHost{id: id, name: name, boot: "boot-1"}, key: key}
}

func (h *sealingHost) pub() ed25519.PublicKey { return h.key.Public().(ed25519.PublicKey) }

// batch is evs as the agent publishes them: the host key first (once), the
// records, the seal.
func (h *sealingHost) batch(t testing.TB, enc codec.Encoder, evs ...*schemas.BindEvent) []kafka.Message {
	t.Helper()
	if !h.announced {
		h.announced = true
		k := h.ev(schemas.KindHostKey, "", "", "", 0, 0)
		k.PublicKey = h.pub()
		evs = append([]*schemas.BindEvent{k}, evs...)
	}
	s := h.ev(schemas.KindSeal, "", "", "", 0, 0)
	m := seal.NewMessage(nil, h.id, h.boot, s.Seq)
	var msgs []kafka.Message
	for _, e := range evs {
		v, err := enc.Append(nil, e)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := codec.Body(v)
		m.Add(e.Seq, body)
		s.SealedSeqs = append(s.SealedSeqs, e.Seq)
		msgs = append(msgs, kafka.Message{Key: []byte(h.id), Value: v})
	}
	s.Signature = ed25519.Sign(h.key, m.Bytes())
	v, _ := enc.Append(nil, s)
	return append(msgs, kafka.Message{Key: []byte(h.id), Value: v})
}

func (p *producer) write(msgs ...kafka.Message) {
	p.t.Helper()
	if err := p.w.WriteMessages(context.Background(), msgs...); err != nil {
		p.t.Fatal(err)
	}
}

// F1 through Kafka, against a sealing host: a second producer forging a
// new boot, a seq jump and an empty sweep in the host's name changes
// nothing and raises an integrity finding; a host sealing with a new key
// and no rotation is refused; a record under another Kafka key is refused;
// a rotation signed by the old key is followed.
func TestForgedRecordsChangeNothing(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	real := newProducer(t, cl.Addrs, cfg.EventsTopic)
	forger := newProducer(t, cl.Addrs, cfg.EventsTopic) // "a second host process"
	startInstance(t, cfg)

	h := newSealingHost(t, "victim-host", "db-1")
	lid := func(port int32) string {
		return findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", port)
	}
	iid := func(reason string) string { return findings.IntegrityID(h.id, reason) }

	real.write(h.batch(t, real.enc, h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 1))...)
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "the live listener's finding", func(log map[string][]findings.Finding) error {
		if s := states(log[lid(4444)]); s != "open " {
			return fmt.Errorf("4444: %q", s)
		}
		return nil
	})

	// The forger: F1's three records, unsealed, for the victim's id.
	f := &fakeHost{id: h.id, name: "db-1", boot: "forged-boot"}
	boot := f.ev("listen", "/usr/sbin/sshd", "TCP", "0.0.0.0", 22, 9)
	boot.Time = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	jump := f.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 6666, 10)
	jump.BootID, jump.Seq = h.boot, math.MaxInt64
	sweep := f.ev(schemas.KindSnapshotEnd, "", "", "", 0, 0)
	sweep.BootID, sweep.Seq = h.boot, h.seq+1
	snap := "forged-snapshot"
	sweep.SnapshotID = &snap
	forger.send(boot, jump, sweep)
	// And the same, sealed by the forger's own key, announced as the
	// victim's: a new key without rotation.
	other := newSealingHost(t, h.id, "db-1")
	other.seq = 5000
	forger.write(other.batch(t, forger.enc, other.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 7777, 11))...)
	// A record under another Kafka key.
	v, _ := forger.enc.Append(nil, f.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 8888, 12))
	forger.write(kafka.Message{Key: []byte("not-" + h.id), Value: v})

	// The real host goes on: a new listener, sealed.
	real.write(h.batch(t, real.enc, h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 5555, 2))...)
	log := waitFindings(t, cl.Addrs, cfg.FindingsTopic, "integrity findings and the real host's next listener", func(log map[string][]findings.Finding) error {
		for _, r := range []string{integrity.ReasonUnsealed, integrity.ReasonCloned, integrity.ReasonWrongKey} {
			if s := states(log[iid(r)]); s != "open " {
				return fmt.Errorf("integrity %s: %q", r, s)
			}
		}
		if s := states(log[lid(5555)]); s != "open " {
			return fmt.Errorf("5555 (after the forgery): %q", s)
		}
		return nil
	})
	if s := states(log[lid(4444)]); s != "open " {
		t.Errorf("the live listener's finding after the forged boot and sweep: %q (resolved by a forgery)", s)
	}
	for _, port := range []int32{22, 6666, 7777, 8888} {
		if s := states(log[lid(port)]); s != "" {
			t.Errorf("a forged listener on %d: %q", port, s)
		}
	}
	for _, r := range []string{integrity.ReasonUnsealed, integrity.ReasonCloned, integrity.ReasonWrongKey} {
		f := log[iid(r)][0]
		if f.Kind != findings.KindIntegrity || f.HostID != h.id || f.Host != "db-1" || f.Detail == "" {
			t.Errorf("integrity finding %s: %+v", r, f)
		}
		t.Logf("%s: %s", r, f.Detail)
	}
	if s := states(log[iid(integrity.ReasonUnsigned)]); s != "" {
		t.Errorf("a sealing host reported unsigned: %q", s)
	}

	// Rotation: the old key signs the new one; what the new key seals is
	// believed from then on.
	_, next, _ := ed25519.GenerateKey(nil)
	rot := h.ev(schemas.KindKeyRotation, "", "", "", 0, 0)
	rot.PublicKey = next.Public().(ed25519.PublicKey)
	rot.Signature = ed25519.Sign(h.key, seal.RotationMessage(h.id, h.boot, rot.Seq, rot.PublicKey))
	h.key = next
	real.write(h.batch(t, real.enc, rot, h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 9999, 3))...)
	log = waitFindings(t, cl.Addrs, cfg.FindingsTopic, "a listener sealed by the rotated key", func(log map[string][]findings.Finding) error {
		if s := states(log[lid(9999)]); s != "open " {
			return fmt.Errorf("9999: %q", s)
		}
		return nil
	})
	if s := states(log[iid(integrity.ReasonBadRotation)]); s != "" {
		t.Errorf("a rotation signed by the old key: %q", s)
	}
}

// A host that does not seal (an agent from before) is applied as before
// and reported once as unsigned; once it seals, its key is pinned and the
// finding resolved.
func TestUnsignedHostThenSealing(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)
	startInstance(t, cfg)

	h := newSealingHost(t, "old-host", "legacy-1")
	prod.send(h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 1), h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4445, 2))
	unsigned := findings.IntegrityID(h.id, integrity.ReasonUnsigned)
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "unsigned, applied", func(log map[string][]findings.Finding) error {
		if s := states(log[unsigned]); s != "open " {
			return fmt.Errorf("unsigned: %q", s)
		}
		if s := states(log[findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4445)]); s != "open " {
			return fmt.Errorf("4445: %q", s)
		}
		return nil
	})
	// The agent is upgraded: it seals from now on.
	prod.write(h.batch(t, prod.enc, h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 5555, 3))...)
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "sealing, unsigned resolved", func(log map[string][]findings.Finding) error {
		if s := states(log[unsigned]); s != "open resolved " {
			return fmt.Errorf("unsigned: %q", s)
		}
		if s := states(log[findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 5555)]); s != "open " {
			return fmt.Errorf("5555: %q", s)
		}
		return nil
	})
	// From now on an unsealed record in its name is refused.
	prod.send(h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 6666, 4))
	prod.write(h.batch(t, prod.enc, h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 7777, 5))...)
	log := waitFindings(t, cl.Addrs, cfg.FindingsTopic, "unsealed refused", func(log map[string][]findings.Finding) error {
		if s := states(log[findings.IntegrityID(h.id, integrity.ReasonUnsealed)]); s != "open " {
			return fmt.Errorf("unsealed: %q", s)
		}
		if s := states(log[findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 7777)]); s != "open " {
			return fmt.Errorf("7777: %q", s)
		}
		return nil
	})
	if s := states(log[findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 6666)]); s != "" {
		t.Errorf("an unsealed record of a sealing host was applied: %q", s)
	}
}

// With audit.host_keys set, only the listed keys are believed: a host it
// does not list is refused.
func TestConfiguredKeys(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	listed := newSealingHost(t, "listed-host", "web-1")
	cfg.HostKeys = map[string]string{listed.id: base64.StdEncoding.EncodeToString(listed.pub())}
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)
	startInstance(t, cfg)

	stranger := newSealingHost(t, "stranger", "x-1")
	prod.write(stranger.batch(t, prod.enc, stranger.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 1))...)
	prod.write(listed.batch(t, prod.enc, listed.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 1))...)
	log := waitFindings(t, cl.Addrs, cfg.FindingsTopic, "the listed host's listener", func(log map[string][]findings.Finding) error {
		if s := states(log[findings.ListenerID(listed.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4444)]); s != "open " {
			return fmt.Errorf("listed host: %q", s)
		}
		if s := states(log[findings.IntegrityID("stranger", integrity.ReasonUnlisted)]); s != "open " {
			return fmt.Errorf("unlisted: %q", s)
		}
		return nil
	})
	if s := states(log[findings.ListenerID("stranger", ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4444)]); s != "" {
		t.Errorf("the unlisted host's listener: %q", s)
	}
}

// The pinned key is kept in the state topic: an instance that takes the
// partition over (a restart) still refuses a second key for the host
// instead of pinning it.
func TestPinnedKeySurvivesRestart(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)
	first := startInstance(t, cfg)

	h := newSealingHost(t, "pinned-host", "app-1")
	lid := func(port int32) string {
		return findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", port)
	}
	prod.write(h.batch(t, prod.enc, h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 1))...)
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "the first listener", func(log map[string][]findings.Finding) error {
		if s := states(log[lid(4444)]); s != "open " {
			return fmt.Errorf("4444: %q", s)
		}
		return nil
	})
	first.stop()
	startInstance(t, cfg)

	other := newSealingHost(t, h.id, "app-1")
	other.seq = 100
	prod.write(other.batch(t, prod.enc, other.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 5555, 2))...)
	prod.write(h.batch(t, prod.enc, h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 6666, 3))...)
	log := waitFindings(t, cl.Addrs, cfg.FindingsTopic, "after the restart", func(log map[string][]findings.Finding) error {
		if s := states(log[lid(6666)]); s != "open " {
			return fmt.Errorf("6666, sealed by the pinned key: %q", s)
		}
		if s := states(log[findings.IntegrityID(h.id, integrity.ReasonUnknownKey)]) + states(log[findings.IntegrityID(h.id, integrity.ReasonCloned)]); s != "open " {
			return fmt.Errorf("the second key: %q", s)
		}
		return nil
	})
	if s := states(log[lid(5555)]); s != "" {
		t.Errorf("a record sealed by a second key after a restart was applied: %q", s)
	}
}
