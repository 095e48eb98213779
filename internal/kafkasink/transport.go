package kafkasink

import (
	"crypto/tls"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
)

// metadataTTL is how stale the writer's view of partition leaders may get.
// kafka-go refreshes it only on this timer (at a random point within it), not
// when a broker answers "not leader", so after a leader move produce retries
// fail until the refresh: it must be well inside the retry budget (about 7 s
// over kafka-go's 10 attempts). Only our topic is refreshed, which keeps it
// cheap for the brokers.
const metadataTTL = 2 * time.Second

// newTransport builds the connection settings shared by the writer and Ping.
func newTransport(c Config, tc *tls.Config, mech sasl.Mechanism) *kafka.Transport {
	return &kafka.Transport{
		ClientID:       c.ClientID,
		TLS:            tc,
		SASL:           mech,
		DialTimeout:    min(5*time.Second, c.WriteTimeout),
		MetadataTTL:    metadataTTL,
		MetadataTopics: []string{c.Topic},
	}
}
