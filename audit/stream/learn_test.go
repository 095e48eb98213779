package stream

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/audit/learn"
	"github.com/bindwatch/bindwatch/audit/policy"
	"github.com/bindwatch/bindwatch/test/kafkatest"
)

// Learning watches the events topic (no group) and the learned policy
// allows what it saw.
func TestLearn(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)
	l := learn.New(policy.DefaultEphemeral)
	done := make(chan error, 1)
	go func() {
		_, err := Learn(context.Background(), &kafka.Dialer{Timeout: 5 * time.Second}, cfg, 3*time.Second, l)
		done <- err
	}()
	time.Sleep(time.Second) // Learn starts at the end of the topic
	for _, name := range []string{"a", "b"} {
		h := &fakeHost{id: "id-" + name, name: name, boot: "b"}
		prod.send(h.ev("listen", "/usr/sbin/sshd", "TCP", "0.0.0.0", 22, 1), h.ev("listen", "/usr/sbin/nginx", "TCP", "0.0.0.0", 80, 2))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := l.Write(&b, "test"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# seen on 2 hosts: a, b\n  - name: \"nginx-tcp-80\"", "name: \"sshd-tcp-22\""} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("learned policy lacks %q:\n%s", want, b.String())
		}
	}
}
