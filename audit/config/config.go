// Package config reads `bindwatch audit`'s configuration file: the Kafka
// connection (the agent's kafka.* and schema.* keys, same meanings), the
// audit's topics, group and policy file, and its metrics address. Like the
// agent's, it refuses unknown keys and bad values, naming the file, the key
// and what is allowed.
package config

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"github.com/bindwatch/bindwatch/audit/state"
	"time"

	"github.com/segmentio/kafka-go"

	agentconfig "github.com/bindwatch/bindwatch/internal/config"
)

// Config is everything `bindwatch audit` reads.
type Config struct {
	Brokers     []string
	ClientID    string
	TLS         agentconfig.KafkaTLS
	SASL        agentconfig.KafkaSASL
	RegistryURL string

	Group          string
	EventsTopic    string
	StateTopic     string
	FindingsTopic  string
	OCSFTopic      string
	Policy         string
	CreateTopics   bool
	SessionTimeout time.Duration
	BatchSize      int
	BatchTimeout   time.Duration
	PrintFindings  bool
	// HostExpiry is how long a host may send nothing before it expires.
	HostExpiry time.Duration
	// MaxHosts is the most hosts one partition's table keeps, and
	// MaxListeners the most listeners it keeps of one host.
	MaxHosts, MaxListeners int
	// HostKeys are the only host keys believed, by host id (base64 of the
	// 32 bytes); empty: trust on first use.
	HostKeys map[string]string

	MetricsListen string
	LogLevel      string
}

// Bounds of audit.host_expiry. A host is silent (a coverage finding,
// which stays open) after three heartbeat intervals, at most 3h (the
// agent's heartbeat.interval is 1s to 1h); expiry is final, so it waits
// far longer: at least a day, a week by default (a machine powered off
// over a long weekend or a holiday week comes back as the same host), at
// most 90 days.
const (
	DefaultHostExpiry = 7 * 24 * time.Hour
	MinHostExpiry     = 24 * time.Hour
	MaxHostExpiry     = 90 * 24 * time.Hour
)

// Bounds of audit.max_hosts and audit.max_listeners. The table's heap is
// about 2 KB a host and 700 bytes a listener (audit/stream's
// TestHostCapAtScale: 481 MiB at 250 000 hosts; state's TestListenerCap:
// 46 MiB for one host at 65 536 listeners).
const (
	MinMaxHosts, MaxMaxHosts         = 1000, 5000000
	MinMaxListeners, MaxMaxListeners = 1024, 1 << 20
)

// Defaults is the configuration of an empty file.
func Defaults() Config {
	return Config{
		Brokers:        []string{"127.0.0.1:9092"},
		ClientID:       "bindwatch-audit",
		SASL:           agentconfig.KafkaSASL{Mechanism: agentconfig.SASLNone},
		Group:          "bindwatch-audit",
		EventsTopic:    "bindwatch.bind-events",
		StateTopic:     "bindwatch.listeners",
		FindingsTopic:  "bindwatch.findings",
		Policy:         "/etc/bindwatch/policy.yaml",
		CreateTopics:   true,
		SessionTimeout: 10 * time.Second,
		BatchSize:      1000,
		BatchTimeout:   50 * time.Millisecond,
		PrintFindings:  true,
		HostExpiry:     DefaultHostExpiry,
		MaxHosts:       state.MaxHosts,
		MaxListeners:   state.MaxListeners,
		MetricsListen:  "127.0.0.1:9465",
		LogLevel:       "info",
	}
}

// Agent returns an agent configuration carrying the Kafka connection, so
// the audit dials brokers through the agent's own code path (TLS, SASL).
func (c *Config) Agent() *agentconfig.Config {
	a := agentconfig.Defaults()
	a.Kafka.Brokers = c.Brokers
	a.Kafka.ClientID = c.ClientID
	a.Kafka.TLS = c.TLS
	a.Kafka.SASL = c.SASL
	a.Schema.RegistryURL = c.RegistryURL
	return &a
}

// Dialer dials the brokers with the audit's TLS and SASL settings, through
// the same code as the agent's producer (internal/kafkaconn).
func (c *Config) Dialer(environ []string) (*kafka.Dialer, error) {
	return agentconfig.KafkaDialer(c.ClientID, c.TLS, c.SASL, environ)
}

// PublicKeys decodes HostKeys; nil when none is set.
func (c *Config) PublicKeys() (map[string]ed25519.PublicKey, error) {
	if len(c.HostKeys) == 0 {
		return nil, nil
	}
	out := make(map[string]ed25519.PublicKey, len(c.HostKeys))
	for id, k := range c.HostKeys {
		b, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("audit.host_keys: %s: %q is not the base64 of a 32-byte Ed25519 public key", id, k)
		}
		out[id] = b
	}
	return out, nil
}
