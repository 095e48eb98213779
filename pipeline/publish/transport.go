package publish

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
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

// tlsConfig turns TLSConfig into a client configuration; nil when disabled.
func (t TLSConfig) tlsConfig() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // opt-in, documented as tests only
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificate in it", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file %s, tls.key_file %s: %w", t.CertFile, t.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// mechanism turns SASLConfig into kafka-go's; nil for "none".
func (s SASLConfig) mechanism() (sasl.Mechanism, error) {
	switch s.Mechanism {
	case "none":
		return nil, nil
	case "plain":
		return plain.Mechanism{Username: s.Username, Password: s.Password}, nil
	case "scram-sha-256", "scram-sha-512":
		algo := scram.SHA256
		if s.Mechanism == "scram-sha-512" {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, s.Username, s.Password)
		if err != nil {
			// The error may quote the offending input: keep only the
			// mechanism and user.
			return nil, fmt.Errorf("sasl %s for user %q: credentials rejected by SASLprep", s.Mechanism, s.Username)
		}
		return m, nil
	}
	return nil, fmt.Errorf("sasl.mechanism %q: want one of none, plain, scram-sha-256, scram-sha-512", s.Mechanism)
}

// Dialer returns a kafka-go dialer with c's TLS and SASL settings, for
// reading the topic back (bindwatch consume) as the agent would write it.
func (c Config) Dialer() (*kafka.Dialer, error) {
	c = c.withDefaults()
	tc, err := c.TLS.tlsConfig()
	if err != nil {
		return nil, err
	}
	mech, err := c.SASL.mechanism()
	if err != nil {
		return nil, err
	}
	return &kafka.Dialer{ClientID: c.ClientID, Timeout: 10 * time.Second, DualStack: true, TLS: tc, SASLMechanism: mech}, nil
}
