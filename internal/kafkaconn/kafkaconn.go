// Package kafkaconn is how every bindwatch client reaches the brokers: TLS,
// SASL and the kafka-go Dialer and Transport built from them. The agent's
// producer, `bindwatch consume`, the audit and `listeners --brokers` all
// dial through it, so one configuration reaches the brokers the same way
// whichever command reads it.
package kafkaconn

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// DialTimeout is how long a Dialer waits for one connection.
const DialTimeout = 10 * time.Second

// TLS is the client side of TLS to the brokers.
type TLS struct {
	Enabled bool
	// CAFile is a PEM bundle of the authorities that sign the brokers'
	// certificates; the system pool when empty.
	CAFile string
	// CertFile and KeyFile are the PEM client certificate and key, for
	// brokers that require one (mutual TLS); both or neither.
	CertFile, KeyFile string
	// ServerName overrides the name checked in the broker certificates,
	// which is otherwise each broker's advertised host.
	ServerName string
	// InsecureSkipVerify accepts any broker certificate. For tests only:
	// it gives up on knowing who receives the events.
	InsecureSkipVerify bool
}

// Mechanism names a SASL mechanism, or none.
type Mechanism string

// The SASL mechanisms, the values of kafka.sasl.mechanism.
const (
	None        Mechanism = "none"
	Plain       Mechanism = "plain"
	ScramSHA256 Mechanism = "scram-sha-256"
	ScramSHA512 Mechanism = "scram-sha-512"
)

// Mechanisms lists every Mechanism, in the order error messages list them.
var Mechanisms = []Mechanism{None, Plain, ScramSHA256, ScramSHA512}

// MechanismNames is Mechanisms as text.
func MechanismNames() []string {
	s := make([]string, len(Mechanisms))
	for i, m := range Mechanisms {
		s[i] = string(m)
	}
	return s
}

// SASL authenticates the client.
type SASL struct {
	Mechanism Mechanism // None (or empty), Plain, ScramSHA256, ScramSHA512
	Username  string
	Password  string // never printed: see String and LogValue
}

// Config builds the client TLS configuration; nil when disabled.
func (t TLS) Config() (*tls.Config, error) {
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

// SASLMechanism builds kafka-go's mechanism; nil for none.
func (s SASL) SASLMechanism() (sasl.Mechanism, error) {
	switch s.Mechanism {
	case None, "":
		return nil, nil
	case Plain:
		return plain.Mechanism{Username: s.Username, Password: s.Password}, nil
	case ScramSHA256, ScramSHA512:
		algo := scram.SHA256
		if s.Mechanism == ScramSHA512 {
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
	return nil, fmt.Errorf("sasl.mechanism %q: want one of %s", s.Mechanism, strings.Join(MechanismNames(), ", "))
}

// Dialer returns a kafka-go dialer with these TLS and SASL settings, for
// the readers (bindwatch consume, the audit, listeners --brokers).
func Dialer(clientID string, t TLS, s SASL) (*kafka.Dialer, error) {
	tc, err := t.Config()
	if err != nil {
		return nil, err
	}
	mech, err := s.SASLMechanism()
	if err != nil {
		return nil, err
	}
	return &kafka.Dialer{ClientID: clientID, Timeout: DialTimeout, DualStack: true, TLS: tc, SASLMechanism: mech}, nil
}

// TransportOf is a Transport (for kafka.Writer and kafka.Client) that
// connects as d does.
func TransportOf(d *kafka.Dialer) *kafka.Transport {
	return &kafka.Transport{ClientID: d.ClientID, TLS: d.TLS, SASL: d.SASLMechanism, DialTimeout: d.Timeout}
}

// redacted stands in for a secret that is set; an unset one prints as "".
func redacted(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// String prints the SASL settings with the password redacted.
func (s SASL) String() string {
	return fmt.Sprintf("{Mechanism:%s Username:%s Password:%s}", s.Mechanism, s.Username, redacted(s.Password))
}

// GoString keeps %#v from printing the password.
func (s SASL) GoString() string { return "kafkaconn.SASL" + s.String() }

// LogValue lets slog print the SASL settings without the password.
func (s SASL) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("mechanism", string(s.Mechanism)),
		slog.String("username", s.Username),
		slog.String("password", redacted(s.Password)),
	)
}
