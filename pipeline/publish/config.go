package publish

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultAcks         = "all"
	DefaultCompression  = "none"
	DefaultBatchSize    = 500
	DefaultBatchTimeout = time.Millisecond
	DefaultWriteTimeout = 10 * time.Second
	DefaultClientID     = "bindwatch"
)

// Allowed values, in the order error messages list them.
var (
	AcksValues        = []string{"all", "one", "none"}
	CompressionValues = []string{"none", "gzip", "snappy", "lz4", "zstd"}
	SASLMechanisms    = []string{"none", "plain", "scram-sha-256", "scram-sha-512"}
)

// Config says where and how to publish. The zero value of every optional
// field means its default.
//
// Topics are never created by the publisher: a mistyped topic name fails
// every Publish with "Unknown Topic Or Partition" instead of silently
// creating a topic with the broker's default partitions and replication.
type Config struct {
	Brokers  []string // host:port of one or more bootstrap brokers
	Topic    string
	ClientID string // DefaultClientID when empty; brokers log and quota by it

	// Acks is "all" (the default: every in-sync replica has the batch),
	// "one" (the leader has it) or "none" (nothing is acknowledged, so
	// Publish cannot see a broker-side failure).
	Acks string
	// Compression is the codec of the record batches: "none" (the default),
	// "gzip", "snappy", "lz4" or "zstd".
	Compression string

	// BatchSize is the most messages one Publish call carries (the
	// pipeline's batch size), DefaultBatchSize when zero. A call that fills
	// a partition's batch is sent at once; a smaller one is sent after
	// BatchTimeout, so a call never waits for the next one.
	BatchSize int
	// BatchTimeout is how long a partition batch smaller than BatchSize
	// waits before it is sent; DefaultBatchTimeout when zero. Publish is
	// synchronous, so this is latency added to every partial batch and
	// should stay small: the pipeline has batched already.
	BatchTimeout time.Duration
	// WriteTimeout bounds one Publish call, retries included;
	// DefaultWriteTimeout when zero.
	WriteTimeout time.Duration

	TLS  TLSConfig
	SASL SASLConfig
}

// TLSConfig is the client side of TLS to the brokers.
type TLSConfig struct {
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

// SASLConfig authenticates the client.
type SASLConfig struct {
	Mechanism string // "none" (or empty), "plain", "scram-sha-256", "scram-sha-512"
	Username  string
	Password  string // never printed: see String and LogValue
}

// withDefaults fills the zero values.
func (c Config) withDefaults() Config {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.Acks == "" {
		c.Acks = DefaultAcks
	}
	if c.Compression == "" {
		c.Compression = DefaultCompression
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = DefaultBatchTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.SASL.Mechanism == "" {
		c.SASL.Mechanism = "none"
	}
	return c
}

// validate reports every invalid field of a defaulted Config at once.
func (c Config) validate() error {
	var errs []error
	bad := func(field string, value any, allowed string) {
		errs = append(errs, fmt.Errorf("%s %v: %s", field, value, allowed))
	}
	if len(c.Brokers) == 0 {
		bad("brokers", "[]", "need at least one host:port")
	}
	for _, b := range c.Brokers {
		if host, port, err := net.SplitHostPort(b); err != nil || host == "" || port == "" {
			bad("brokers", fmt.Sprintf("%q", b), "want host:port")
		}
	}
	if c.Topic == "" {
		bad("topic", `""`, "must be set")
	}
	if !slices.Contains(AcksValues, c.Acks) {
		bad("acks", fmt.Sprintf("%q", c.Acks), "want one of "+strings.Join(AcksValues, ", "))
	}
	if !slices.Contains(CompressionValues, c.Compression) {
		bad("compression", fmt.Sprintf("%q", c.Compression), "want one of "+strings.Join(CompressionValues, ", "))
	}
	if c.BatchSize < 0 {
		bad("batch_size", c.BatchSize, "must not be negative")
	}
	if c.BatchTimeout < 0 {
		bad("batch_timeout", c.BatchTimeout, "must not be negative")
	}
	if c.WriteTimeout < 0 {
		bad("write_timeout", c.WriteTimeout, "must not be negative")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls.cert_file/tls.key_file", fmt.Sprintf("%q/%q", c.TLS.CertFile, c.TLS.KeyFile), "set both or neither")
	}
	if !c.TLS.Enabled && (c.TLS.CAFile != "" || c.TLS.CertFile != "" || c.TLS.ServerName != "" || c.TLS.InsecureSkipVerify) {
		bad("tls.enabled", false, "TLS settings are given but TLS is off")
	}
	if !slices.Contains(SASLMechanisms, c.SASL.Mechanism) {
		bad("sasl.mechanism", fmt.Sprintf("%q", c.SASL.Mechanism), "want one of "+strings.Join(SASLMechanisms, ", "))
	} else if c.SASL.Mechanism != "none" && c.SASL.Username == "" {
		bad("sasl.username", `""`, "must be set for mechanism "+c.SASL.Mechanism)
	}
	return errors.Join(errs...)
}

// redacted stands in for a secret that is set; an unset one prints as "".
func redacted(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// String prints the configuration with the password redacted, for %v and %+v.
func (c Config) String() string {
	return fmt.Sprintf("{Brokers:%v Topic:%s ClientID:%s Acks:%s Compression:%s BatchSize:%d BatchTimeout:%v WriteTimeout:%v TLS:%+v SASL:%v}",
		c.Brokers, c.Topic, c.ClientID, c.Acks, c.Compression, c.BatchSize, c.BatchTimeout, c.WriteTimeout, c.TLS, c.SASL)
}

// GoString keeps %#v from printing the password.
func (c Config) GoString() string { return "publish.Config" + c.String() }

// LogValue lets slog print the configuration without the password.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("brokers", c.Brokers),
		slog.String("topic", c.Topic),
		slog.String("client_id", c.ClientID),
		slog.String("acks", c.Acks),
		slog.String("compression", c.Compression),
		slog.Int("batch_size", c.BatchSize),
		slog.Duration("batch_timeout", c.BatchTimeout),
		slog.Duration("write_timeout", c.WriteTimeout),
		slog.Bool("tls", c.TLS.Enabled),
		slog.Any("sasl", c.SASL),
	)
}

// String prints the SASL settings with the password redacted.
func (s SASLConfig) String() string {
	return fmt.Sprintf("{Mechanism:%s Username:%s Password:%s}", s.Mechanism, s.Username, redacted(s.Password))
}

// GoString keeps %#v from printing the password.
func (s SASLConfig) GoString() string { return "publish.SASLConfig" + s.String() }

// LogValue lets slog print the SASL settings without the password.
func (s SASLConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("mechanism", s.Mechanism),
		slog.String("username", s.Username),
		slog.String("password", redacted(s.Password)),
	)
}
