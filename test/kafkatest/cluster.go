// Package kafkatest gives tests a real Kafka-protocol cluster on loopback and
// two independent ways to read back what was produced to it.
//
// The cluster is kfake (github.com/twmb/franz-go/pkg/kfake), an in-process
// implementation of the Kafka wire protocol: clients reach it over TCP on
// 127.0.0.1, through TLS and SASL when asked, exactly as they would reach a
// broker. Reading back goes through kafka-go (ReadAll) or Debian's kcat, which
// is librdkafka and shares no code with the producer side (KcatConsume).
package kafkatest

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SASL mechanism names as kfake and Kafka spell them.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// User is a SASL account the cluster accepts.
type User struct {
	Mechanism string // Plain, ScramSHA256 or ScramSHA512
	Name      string
	Password  string
}

// Options shapes a test cluster. The zero value is three brokers on random
// loopback ports, no topic, no TLS, no authentication, in memory.
type Options struct {
	// Brokers is how many brokers to run; 3 when zero. Ignored when Ports
	// is set.
	Brokers int
	// Ports fixes the broker ports, one per broker.
	Ports []int
	// Topic, when set, is created with Partitions partitions (3 when zero).
	Topic      string
	Partitions int32
	// TLS makes every broker listen with this server configuration; set
	// ClientAuth in it to require client certificates.
	TLS *tls.Config
	// Users enables SASL and seeds these accounts.
	Users []User
	// DataDir makes the cluster persist its logs there, so Restart keeps
	// what was produced.
	DataDir string
	// BrokerConfigs seeds broker settings such as "message.max.bytes".
	BrokerConfigs map[string]string
	// NoAutoCreate refuses metadata requests for missing topics. By
	// default a metadata request that asks to creates a missing topic with
	// the broker's defaults (10 partitions here, delete cleanup), as Apache
	// Kafka does with auto.create.topics.enable=true, its default: code
	// that looks a topic up before creating it is caught here.
	NoAutoCreate bool
}

// Cluster is a running kfake cluster. The embedded *kfake.Cluster gives tests
// its controls (MoveTopicPartition, Fault, TopicInfo...); it changes on
// Restart.
type Cluster struct {
	*kfake.Cluster
	// Addrs are the brokers' host:port, stable across Restart.
	Addrs []string

	opts    Options
	ports   []int
	stopped bool
}

// Start runs a cluster and stops it when the test ends.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	c := &Cluster{opts: o, ports: o.Ports}
	if err := c.start(); err != nil {
		t.Fatalf("start kfake cluster: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

func (c *Cluster) start() error {
	o := c.opts
	opts := []kfake.Opt{kfake.NumBrokers(3)}
	if !o.NoAutoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if o.Brokers > 0 {
		opts = append(opts, kfake.NumBrokers(o.Brokers))
	}
	if len(c.ports) > 0 {
		opts = append(opts, kfake.Ports(c.ports...))
	}
	if o.TLS != nil {
		opts = append(opts, kfake.TLS(o.TLS))
	}
	if len(o.Users) > 0 {
		opts = append(opts, kfake.EnableSASL())
		for _, u := range o.Users {
			opts = append(opts, kfake.Superuser(u.Mechanism, u.Name, u.Password))
		}
	}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	if len(o.BrokerConfigs) > 0 {
		opts = append(opts, kfake.BrokerConfigs(o.BrokerConfigs))
	}
	kc, err := kfake.NewCluster(opts...)
	if err != nil {
		return err
	}
	addrs := kc.ListenAddrs()
	ports := make([]int, len(addrs))
	for i, a := range addrs {
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			kc.Close()
			return fmt.Errorf("broker address %q: %w", a, err)
		}
		if ports[i], err = strconv.Atoi(p); err != nil {
			kc.Close()
			return fmt.Errorf("broker address %q: %w", a, err)
		}
	}
	if len(o.Users) > 0 && (o.TLS == nil || o.TLS.ClientAuth < tls.RequireAnyClientCert) {
		if err := advertiseHandshakeV0(kc, addrs[0], o.TLS != nil); err != nil {
			kc.Close()
			return err
		}
	}
	// A cluster reloaded from DataDir already has its topic.
	if o.Topic != "" && kc.TopicInfo(o.Topic) == nil {
		parts := o.Partitions
		if parts <= 0 {
			parts = 3
		}
		if err := kc.CreateTopic(o.Topic, parts, nil); err != nil {
			kc.Close()
			return fmt.Errorf("create topic %s: %w", o.Topic, err)
		}
	}
	c.Cluster, c.Addrs, c.ports, c.stopped = kc, addrs, ports, false
	return nil
}

// Stop shuts every broker down, as a crash of the whole cluster would look to
// clients; with DataDir the logs are saved first. Stop is idempotent.
func (c *Cluster) Stop() {
	if c.stopped {
		return
	}
	c.stopped = true
	c.Cluster.Close()
}

// Restart stops the cluster if it runs and starts it again on the same
// ports, with the same options. Without DataDir it comes back empty.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	c.Stop()
	if err := c.start(); err != nil {
		t.Fatalf("restart kfake cluster on ports %v: %v", c.ports, err)
	}
}

// advertiseHandshakeV0 makes the cluster list SaslHandshake from version 0.
// kfake, like Kafka 4, serves only v1; librdkafka 2.0.2 (Debian 12's kcat)
// refuses to authenticate unless v0 is listed, and then sends v1 anyway. The
// rest of the ApiVersions answer is the cluster's own, read once over an
// unauthenticated connection (ApiVersions needs no authentication). With
// client certificates required that read cannot be made, so kcat cannot use
// SASL on such a cluster.
func advertiseHandshakeV0(kc *kfake.Cluster, addr string, useTLS bool) error {
	d := &kafka.Dialer{Timeout: 5 * time.Second}
	if useTLS {
		d.TLS = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // reads the API list of our own test broker
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return fmt.Errorf("read api versions: %w", err)
	}
	defer conn.Close()
	vs, err := conn.ApiVersions()
	if err != nil {
		return fmt.Errorf("read api versions: %w", err)
	}
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(vs))
	for _, v := range vs {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = v.ApiKey, v.MinVersion, v.MaxVersion
		if k.ApiKey == int16(kmsg.SASLHandshake) {
			k.MinVersion = 0
		}
		keys = append(keys, k)
	}
	kc.ControlKey(int16(kmsg.ApiVersions), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		resp.ApiKeys = keys
		return resp, nil, true
	})
	return nil
}
