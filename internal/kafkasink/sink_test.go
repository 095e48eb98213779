package kafkasink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/internal/kafkaconn"
	"github.com/bindwatch/bindwatch/internal/sink"
	"github.com/bindwatch/bindwatch/internal/spool"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

const topic = "bind-events"

// TestPublishReadBack publishes batches for several hosts to a 3-broker
// cluster and reads them back with kafka-go and with kcat: every key's values
// byte-exact and in order, nothing more in the topic.
func TestPublishReadBack(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{Topic: topic, Partitions: 6})
	p := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic})
	if err := p.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	var sent []spool.Message
	for i := range 3 {
		msgs := batch(uint64(i+1), 5, 500, 200)
		failed, err := p.Publish(t.Context(), msgs)
		if err != nil || len(failed) != 0 {
			t.Fatalf("Publish batch %d: failed %v, %v", i, failed, err)
		}
		sent = append(sent, msgs...)
	}
	want := perKey(sent, sentKV)

	got := kafkatest.ReadAll(t, c.Addrs, topic, len(sent), 20*time.Second)
	if d, ok := diffPerKey(want, perKey(got, msgKV)); !ok {
		t.Errorf("kafka-go read back: %s", d)
	}
	partOf := map[string]int{}
	for _, m := range got {
		if p, ok := partOf[string(m.Key)]; ok && p != m.Partition {
			t.Errorf("key %q in partitions %d and %d: per-key order is lost", m.Key, p, m.Partition)
		}
		partOf[string(m.Key)] = m.Partition
		if time.Since(m.Time) > time.Minute || time.Until(m.Time) > time.Minute {
			t.Errorf("message timestamp %v is not now: Publish must set it", m.Time)
		}
	}
	if len(slices.Compact(slices.Sorted(func(yield func(int) bool) {
		for _, p := range partOf {
			if !yield(p) {
				return
			}
		}
	}))) < 2 {
		t.Errorf("5 hosts all landed in one partition %v: keys are not spread", partOf)
	}

	recs := kafkatest.KcatConsume(t, c.Addrs, topic, len(sent), 30*time.Second)
	if d, ok := diffPerKey(want, perKey(recs, kcatKV)); !ok {
		t.Errorf("kcat read back: %s", d)
	}
	if n := kafkatest.Count(t, c.Addrs, topic); n != int64(len(sent)) {
		t.Errorf("topic holds %d messages, published %d", n, len(sent))
	}
}

// TestAcks checks each setting reaches the wire and the messages arrive.
func TestAcks(t *testing.T) {
	for _, tt := range []struct {
		acks string
		wire int16
	}{{"", -1}, {"all", -1}, {"one", 1}, {"none", 0}} {
		t.Run(fmt.Sprintf("acks=%q", tt.acks), func(t *testing.T) {
			c := kafkatest.Start(t, kafkatest.Options{Topic: topic})
			obs := observeProduce(c)
			p := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic, Acks: Acks(tt.acks)})
			msgs := batch(7, 3, 100, 200)
			if failed, err := p.Publish(t.Context(), msgs); err != nil {
				t.Fatalf("Publish: failed %v, %v", failed, err)
			}
			got := kafkatest.ReadAll(t, c.Addrs, topic, len(msgs), 10*time.Second)
			if d, ok := diffPerKey(perKey(msgs, sentKV), perKey(got, msgKV)); !ok {
				t.Errorf("read back: %s", d)
			}
			acks, _ := obs.seen()
			if len(acks) == 0 {
				t.Fatal("no produce request seen")
			}
			for _, a := range acks {
				if a != tt.wire {
					t.Errorf("produce request with acks %d, want %d", a, tt.wire)
				}
			}
		})
	}
}

// TestCompression checks each codec is on the wire and kcat (librdkafka)
// decompresses it to the same bytes: the batches are standard.
func TestCompression(t *testing.T) {
	for _, tt := range []struct {
		name string
		attr int8
	}{{"none", 0}, {"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}} {
		t.Run(tt.name, func(t *testing.T) {
			c := kafkatest.Start(t, kafkatest.Options{Topic: topic})
			obs := observeProduce(c)
			p := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic, Compression: Compression(tt.name)})
			msgs := batch(11, 3, 300, 200)
			if failed, err := p.Publish(t.Context(), msgs); err != nil {
				t.Fatalf("Publish: failed %v, %v", failed, err)
			}
			recs := kafkatest.KcatConsume(t, c.Addrs, topic, len(msgs), 20*time.Second)
			if d, ok := diffPerKey(perKey(msgs, sentKV), perKey(recs, kcatKV)); !ok {
				t.Errorf("kcat read back: %s", d)
			}
			_, codecs := obs.seen()
			if len(codecs) == 0 {
				t.Fatal("no record batch seen")
			}
			for _, cd := range codecs {
				if cd != tt.attr {
					t.Errorf("record batch compressed with codec %d, want %d", cd, tt.attr)
				}
			}
		})
	}
}

// TestTLS runs against brokers that require a client certificate.
func TestTLS(t *testing.T) {
	pki := kafkatest.NewPKI(t)
	other := kafkatest.NewPKI(t)
	c := kafkatest.Start(t, kafkatest.Options{Topic: topic, TLS: pki.ServerTLS(true)})
	good := kafkaconn.TLS{Enabled: true, CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}

	tests := []struct {
		name    string
		tls     func() kafkaconn.TLS
		wantErr string // "" means it must work
	}{
		{"mutual", func() kafkaconn.TLS { return good }, ""},
		{"server name set", func() kafkaconn.TLS { g := good; g.ServerName = "localhost"; return g }, ""},
		{"skip verify", func() kafkaconn.TLS { g := good; g.CAFile = ""; g.InsecureSkipVerify = true; return g }, ""},
		{"no client certificate", func() kafkaconn.TLS { g := good; g.CertFile, g.KeyFile = "", ""; return g }, "certificate required"},
		{"other CA", func() kafkaconn.TLS { g := good; g.CAFile = other.CAFile; return g }, "unknown authority"},
		{"client certificate of another CA", func() kafkaconn.TLS {
			g := good
			g.CertFile, g.KeyFile = other.ClientCertFile, other.ClientKeyFile
			return g
		}, "unknown certificate authority"},
		{"wrong server name", func() kafkaconn.TLS { g := good; g.ServerName = "kafka.example"; return g }, "kafka.example"},
		{"plaintext to a TLS broker", func() kafkaconn.TLS { return kafkaconn.TLS{} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic, TLS: tt.tls(), WriteTimeout: 3 * time.Second})
			msgs := batch(21, 2, 50, 200)
			pingErr := p.Ping(t.Context())
			failed, err := p.Publish(t.Context(), msgs)
			if !tt.tls().Enabled {
				// A plaintext client cannot speak to a TLS listener.
				if pingErr == nil || err == nil || len(failed) != len(msgs) {
					t.Fatalf("plaintext to TLS brokers: Ping %v, Publish failed %d, %v; want errors", pingErr, len(failed), err)
				}
				return
			}
			if tt.wantErr == "" {
				if pingErr != nil || err != nil {
					t.Fatalf("Ping %v, Publish failed %v, %v", pingErr, failed, err)
				}
				return
			}
			if pingErr == nil || !strings.Contains(pingErr.Error(), tt.wantErr) {
				t.Errorf("Ping error %v, want one containing %q", pingErr, tt.wantErr)
			}
			if err == nil || len(failed) != len(msgs) {
				t.Errorf("Publish failed %d of %d, %v; want all failed", len(failed), len(msgs), err)
			}
		})
	}

	// What the good configurations wrote reads back through TLS with kcat.
	n := int64(3 * 50)
	if got := kafkatest.CountWith(t, &kafka.Dialer{TLS: pki.ClientTLS()}, c.Addrs, topic); got != n {
		t.Fatalf("topic holds %d messages, want %d", got, n)
	}
	recs := kafkatest.KcatConsume(t, c.Addrs, topic, int(n), 20*time.Second, pki.KcatArgs()...)
	if len(recs) != int(n) {
		t.Errorf("kcat over TLS read %d messages, want %d", len(recs), n)
	}
}

// TestSASL authenticates with every mechanism, and fails with a wrong
// password without revealing it.
func TestSASL(t *testing.T) {
	const pass = "correct horse battery staple"
	users := []kafkatest.User{
		{Mechanism: kafkatest.Plain, Name: "agent-plain", Password: pass},
		{Mechanism: kafkatest.ScramSHA256, Name: "agent-256", Password: pass},
		{Mechanism: kafkatest.ScramSHA512, Name: "agent-512", Password: pass},
	}
	c := kafkatest.Start(t, kafkatest.Options{Topic: topic, Users: users})
	mechs := map[string]kafkaconn.Mechanism{kafkatest.Plain: "plain", kafkatest.ScramSHA256: "scram-sha-256", kafkatest.ScramSHA512: "scram-sha-512"}
	for _, u := range users {
		for _, password := range []string{pass, "Tr0ub4dor&3-wrong"} {
			right := password == pass
			t.Run(fmt.Sprintf("%s/right=%v", u.Mechanism, right), func(t *testing.T) {
				sc := kafkaconn.SASL{Mechanism: mechs[u.Mechanism], Username: u.Name, Password: password}
				p := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic, SASL: sc, WriteTimeout: 3 * time.Second})
				msgs := batch(31, 2, 20, 100)
				pingErr := p.Ping(t.Context())
				failed, err := p.Publish(t.Context(), msgs)
				if right {
					if pingErr != nil || err != nil {
						t.Fatalf("Ping %v, Publish failed %v, %v", pingErr, failed, err)
					}
					kcat := []string{"-X", "security.protocol=sasl_plaintext", "-X", "sasl.mechanisms=" + u.Mechanism,
						"-X", "sasl.username=" + u.Name, "-X", "sasl.password=" + pass}
					kafkatest.KcatConsume(t, c.Addrs, topic, len(msgs), 20*time.Second, kcat...)
					return
				}
				if pingErr == nil || err == nil || len(failed) != len(msgs) {
					t.Fatalf("wrong password: Ping %v, Publish failed %d, %v; want errors", pingErr, len(failed), err)
				}
				// kfake drops the connection on a bad password where Kafka
				// first answers SASL_AUTHENTICATION_FAILED, so the error
				// reads "unexpected EOF" here; the right-password case
				// shows the rest of the path works.
				for _, e := range []error{pingErr, err} {
					if strings.Contains(e.Error(), password) || strings.Contains(fmt.Sprintf("%+v %#v", e, e), password) {
						t.Errorf("error reveals the password: %v", e)
					}
				}
			})
		}
	}
}

// TestOversizedMessagesFailAlone mixes messages over MaxMessageBytes with
// good ones: only those fail, as rejected, and the rest arrive in order.
func TestOversizedMessagesFailAlone(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{Topic: topic})
	p := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic})
	msgs := batch(41, 1, 10, 200)
	big := []int{2, 3, 7}
	for _, i := range big {
		msgs[i].Value = make([]byte, MaxMessageBytes)
	}
	failed, err := p.Publish(t.Context(), msgs)
	if !slices.Equal(failed, big) {
		t.Fatalf("failed %v, want %v (error %v)", failed, big, err)
	}
	var perr *sink.Error
	if !errors.As(err, &perr) || perr.Total != len(msgs) || !slices.Equal(perr.Failed, big) {
		t.Fatalf("error %#v, want *Error for %v of %d", err, big, len(msgs))
	}
	for _, e := range perr.Errs {
		if !Rejected(e) || !errors.Is(e, ErrMessageTooLarge) {
			t.Errorf("failure %v: want a rejected ErrMessageTooLarge", e)
		}
	}
	var good []spool.Message
	for i, m := range msgs {
		if !slices.Contains(big, i) {
			good = append(good, m)
		}
	}
	got := kafkatest.ReadAll(t, c.Addrs, topic, len(good), 10*time.Second)
	if d, ok := diffPerKey(perKey(good, sentKV), perKey(got, msgKV)); !ok {
		t.Errorf("read back: %s", d)
	}
	if n := kafkatest.Count(t, c.Addrs, topic); n != int64(len(good)) {
		t.Errorf("topic holds %d, want %d", n, len(good))
	}
}

// TestBrokerRefusesOnePartition makes the brokers refuse produce to one
// partition: exactly the messages whose key lives there fail, with the
// broker's error, and the others are written.
func TestBrokerRefusesOnePartition(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{Topic: topic, Partitions: 3})
	p := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic})

	// Learn from the brokers, not from our partitioner, where each key goes.
	const hosts = 9
	probe := batch(51, hosts, hosts, 50)
	if _, err := p.Publish(t.Context(), probe); err != nil {
		t.Fatalf("probe Publish: %v", err)
	}
	partOf := map[string]int{}
	for _, m := range kafkatest.ReadAll(t, c.Addrs, topic, hosts, 10*time.Second) {
		partOf[string(m.Key)] = m.Partition
	}
	refused := partOf[string(probe[0].Key)]

	c.Fault(kfake.Fault{
		Keys:       []kmsg.Key{kmsg.Produce},
		Topic:      topic,
		Partitions: []int32{int32(refused)},
		Err:        kerr.InvalidRecord,
		Count:      -1,
	})
	msgs := batch(52, hosts, 200, 150)
	var want, good []int
	for i, m := range msgs {
		if partOf[string(m.Key)] == refused {
			want = append(want, i)
		} else {
			good = append(good, i)
		}
	}
	if len(want) == 0 || len(good) == 0 {
		t.Fatalf("keys spread badly: %v", partOf)
	}
	failed, err := p.Publish(t.Context(), msgs)
	if !slices.Equal(failed, want) {
		t.Fatalf("failed %v\nwant   %v\n(error %v)", failed, want, err)
	}
	var perr *sink.Error
	if !errors.As(err, &perr) || !errors.Is(err, kafka.InvalidRecord) {
		t.Fatalf("error %v: want *Error wrapping InvalidRecord", err)
	}
	for _, e := range perr.Errs {
		if !Rejected(e) {
			t.Errorf("failure %v: InvalidRecord must count as rejected", e)
		}
	}
	if n := kafkatest.Count(t, c.Addrs, topic); n != int64(hosts+len(good)) {
		t.Errorf("topic holds %d messages, want %d probes + %d good", n, hosts, len(good))
	}
}

// TestBrokersDown stops the cluster: Publish fails every message within
// WriteTimeout, Close returns by its deadline although the writer is still
// retrying, and a publisher recovers once the brokers are back.
func TestBrokersDown(t *testing.T) {
	const writeTimeout = 2 * time.Second
	c := kafkatest.Start(t, kafkatest.Options{Topic: topic})
	p := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic, WriteTimeout: writeTimeout})
	if _, err := p.Publish(t.Context(), batch(61, 2, 10, 100)); err != nil {
		t.Fatalf("Publish before the outage: %v", err)
	}
	c.Stop()

	msgs := batch(62, 2, 100, 100)
	start := time.Now()
	failed, err := p.Publish(t.Context(), msgs)
	took := time.Since(start)
	if err == nil || len(failed) != len(msgs) {
		t.Fatalf("Publish with brokers down: failed %d of %d, %v", len(failed), len(msgs), err)
	}
	if took > writeTimeout+time.Second {
		t.Errorf("Publish took %v, WriteTimeout is %v", took, writeTimeout)
	}
	for _, e := range err.(*sink.Error).Errs {
		if Rejected(e) {
			t.Errorf("outage failure %v counted as rejected: the spool would drop it", e)
		}
	}
	t.Logf("Publish failed after %v: %v", took, err)

	// The writer keeps retrying the batch for ~7 s: Close must not wait.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start = time.Now()
	err = p.Close(ctx)
	took = time.Since(start)
	if took > time.Second {
		t.Errorf("Close took %v with a 500ms deadline", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want the deadline reported", err)
	}
	if _, err := p.Publish(t.Context(), msgs[:1]); err == nil {
		t.Error("Publish after Close succeeded")
	}

	// Brokers back on the same ports: a long-lived publisher recovers.
	c.Restart(t)
	q := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic, WriteTimeout: writeTimeout})
	if _, err := q.Publish(t.Context(), msgs); err != nil {
		t.Fatalf("Publish after restart: %v", err)
	}
}

// TestRecoversAfterOutage keeps one publisher through an outage: once the
// brokers are back, the same publisher writes again.
func TestRecoversAfterOutage(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{Topic: topic, DataDir: t.TempDir()})
	p := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic, WriteTimeout: 2 * time.Second})
	first := batch(71, 2, 50, 100)
	if _, err := p.Publish(t.Context(), first); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	c.Stop()
	if _, err := p.Publish(t.Context(), batch(72, 2, 50, 100)); err == nil {
		t.Fatal("Publish with brokers down succeeded")
	}
	c.Restart(t)
	second := batch(73, 2, 50, 100)
	start := time.Now()
	testenv.Eventually(t, "a publish after the restart", 15*time.Second, func() error {
		failed, err := p.Publish(t.Context(), second)
		if err != nil {
			return fmt.Errorf("failed %d: %w", len(failed), err)
		}
		return nil
	})
	t.Logf("recovered %v after restart", time.Since(start))
	// The batch published while down may also land, late, from the
	// writer's background retries: count only what must be there.
	got := kafkatest.ReadAll(t, c.Addrs, topic, int(kafkatest.Count(t, c.Addrs, topic)), 10*time.Second)
	keys := perKey(got, msgKV)
	for k, vs := range perKey(append(first, second...), sentKV) {
		for _, v := range vs {
			if !slices.ContainsFunc(keys[k], func(g []byte) bool { return string(g) == string(v) }) {
				t.Fatalf("key %q: value %x... missing after recovery", k, head(v))
			}
		}
	}
}

// TestLeaderMove moves a partition's leadership between Publish calls:
// the writer finds the new leader within one call.
func TestLeaderMove(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{Topic: topic, Partitions: 1})
	p := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic})
	first := batch(81, 3, 100, 200)
	if _, err := p.Publish(t.Context(), first); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	old := c.LeaderFor(topic, 0)
	if err := c.MoveTopicPartition(topic, 0, (old+1)%3); err != nil {
		t.Fatal(err)
	}
	if now := c.LeaderFor(topic, 0); now == old {
		t.Fatalf("leader still %d", now)
	}
	second := batch(82, 3, 100, 200)
	start := time.Now()
	if failed, err := p.Publish(t.Context(), second); err != nil {
		t.Fatalf("Publish after the move: failed %d, %v", len(failed), err)
	}
	t.Logf("Publish across a leader move took %v", time.Since(start))
	all := append(first, second...)
	got := kafkatest.ReadAll(t, c.Addrs, topic, len(all), 10*time.Second)
	if d, ok := diffPerKey(perKey(all, sentKV), perKey(got, msgKV)); !ok {
		t.Errorf("read back: %s", d)
	}
}

// TestPing fails on a missing topic and on dead brokers.
func TestPing(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.Options{Topic: topic})
	if err := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic}).Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	missing := newPublisher(t, Config{Brokers: c.Addrs, Topic: "no-such-topic"})
	if err := missing.Ping(t.Context()); err == nil || !strings.Contains(err.Error(), "no-such-topic") {
		t.Errorf("Ping of a missing topic = %v", err)
	}
	if _, err := missing.Publish(t.Context(), batch(91, 1, 1, 10)); !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Errorf("Publish to a missing topic = %v, want UnknownTopicOrPartition (no auto-creation)", err)
	}
	if c.TopicInfo("no-such-topic") != nil {
		t.Error("the publisher created the topic")
	}
	c.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := newPublisher(t, Config{Brokers: c.Addrs, Topic: topic}).Ping(ctx); err == nil {
		t.Error("Ping with brokers down succeeded")
	}
}
