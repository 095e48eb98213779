package kafkasink

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/bindwatch/bindwatch/internal/kafkaconn"
)

// DefaultConfig is the producer the agent runs when its configuration sets
// nothing (internal/config composes its defaults from it), and what New
// puts in the zero optional fields of a Config.
func DefaultConfig() Config {
	return Config{
		Brokers:  []string{"127.0.0.1:9092"},
		Topic:    "bindwatch.bind-events",
		ClientID: "bindwatch",
		Acks:     AcksAll,
		// zstd: records of a batch repeat host, host id, boot id, comm
		// and addresses, and zstd packs that best. Measured on 500
		// encoded events (105614 bytes, kafka-go's codecs, one core):
		// zstd 8.2x at 285 MB/s, gzip 8.1x at 195 MB/s, lz4 6.4x at
		// 517 MB/s, snappy 5.3x at 641 MB/s. 0.4 ms of CPU per batch is
		// nothing at usual bind rates, while bytes cost on every host's
		// uplink and on the brokers' disks. Brokers need Kafka 2.1 (2018)
		// or later; set lz4 for older ones or to spend the least CPU.
		Compression: CompressionZstd,
		BatchSize:   DefaultBatchSize,
		// kafka-go's default of 1 s would add a second to every event
		// that does not fill a batch; the pipeline already batches.
		BatchTimeout: 10 * time.Millisecond,
		WriteTimeout: 10 * time.Second,
		SASL:         kafkaconn.SASL{Mechanism: kafkaconn.None},
	}
}

// DefaultBatchSize is the pipeline's default batch size, which the
// producer's batches follow.
const DefaultBatchSize = 500

// Acks is how many replicas must have a batch before Kafka answers.
type Acks string

// The values of Acks (kafka.acks).
const (
	AcksAll  Acks = "all"
	AcksOne  Acks = "one"
	AcksNone Acks = "none"
)

// Compression is the codec of produced batches.
type Compression string

// The values of Compression (kafka.compression).
const (
	CompressionNone   Compression = "none"
	CompressionGzip   Compression = "gzip"
	CompressionSnappy Compression = "snappy"
	CompressionLZ4    Compression = "lz4"
	CompressionZstd   Compression = "zstd"
)

// Allowed values, in the order error messages list them.
var (
	AcksValues        = []Acks{AcksAll, AcksOne, AcksNone}
	CompressionValues = []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd}
)

// Config says where and how to publish. The zero value of every optional
// field means DefaultConfig's.
//
// Topics are never created by the publisher: a mistyped topic name fails
// every Publish with "Unknown Topic Or Partition" instead of silently
// creating a topic with the broker's default partitions and replication.
type Config struct {
	Brokers  []string // host:port of one or more bootstrap brokers
	Topic    string
	ClientID string // brokers log and quota by it; DefaultConfig's when empty

	// Acks is "all" (the default: every in-sync replica has the batch),
	// "one" (the leader has it) or "none" (nothing is acknowledged, so
	// Publish cannot see a broker-side failure).
	Acks Acks
	// Compression is the codec of the record batches: "none", "gzip",
	// "snappy", "lz4" or "zstd" (the default).
	Compression Compression

	// BatchSize is the most messages one Publish call carries (the
	// pipeline's batch size), DefaultConfig's when zero. A call that fills
	// a partition's batch is sent at once; a smaller one is sent after
	// BatchTimeout, so a call never waits for the next one.
	BatchSize int
	// BatchTimeout is how long a partition batch smaller than BatchSize
	// waits before it is sent; DefaultConfig's (10ms) when zero. Publish is
	// synchronous, so this is latency added to every partial batch and
	// should stay small: the pipeline has batched already.
	BatchTimeout time.Duration
	// WriteTimeout bounds one Publish call, retries included;
	// DefaultConfig's when zero.
	WriteTimeout time.Duration

	TLS  kafkaconn.TLS
	SASL kafkaconn.SASL
}

// withDefaults fills the zero optional fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ClientID == "" {
		c.ClientID = d.ClientID
	}
	if c.Acks == "" {
		c.Acks = d.Acks
	}
	if c.Compression == "" {
		c.Compression = d.Compression
	}
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = d.BatchTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.SASL.Mechanism == "" {
		c.SASL.Mechanism = d.SASL.Mechanism
	}
	return c
}

// Validate reports every invalid field of c at once, as New would refuse
// them (zero optional fields take their defaults). It reads no file: the
// TLS files are read by New.
func (c Config) Validate() error { return c.withDefaults().validate() }

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
		bad("acks", fmt.Sprintf("%q", c.Acks), "want one of "+join(AcksValues))
	}
	if !slices.Contains(CompressionValues, c.Compression) {
		bad("compression", fmt.Sprintf("%q", c.Compression), "want one of "+join(CompressionValues))
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
	if !slices.Contains(kafkaconn.Mechanisms, c.SASL.Mechanism) {
		bad("sasl.mechanism", fmt.Sprintf("%q", c.SASL.Mechanism), "want one of "+join(kafkaconn.Mechanisms))
	} else if c.SASL.Mechanism != kafkaconn.None && c.SASL.Username == "" {
		bad("sasl.username", `""`, "must be set for mechanism "+string(c.SASL.Mechanism))
	}
	return errors.Join(errs...)
}

func join[S ~string](vs []S) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// String prints the configuration with the password redacted, for %v and %+v.
func (c Config) String() string {
	return fmt.Sprintf("{Brokers:%v Topic:%s ClientID:%s Acks:%s Compression:%s BatchSize:%d BatchTimeout:%v WriteTimeout:%v TLS:%+v SASL:%v}",
		c.Brokers, c.Topic, c.ClientID, c.Acks, c.Compression, c.BatchSize, c.BatchTimeout, c.WriteTimeout, c.TLS, c.SASL)
}

// GoString keeps %#v from printing the password.
func (c Config) GoString() string { return "kafkasink.Config" + c.String() }

// LogValue lets slog print the configuration without the password.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Any("brokers", c.Brokers),
		slog.String("topic", c.Topic),
		slog.String("client_id", c.ClientID),
		slog.String("acks", string(c.Acks)),
		slog.String("compression", string(c.Compression)),
		slog.Int("batch_size", c.BatchSize),
		slog.Duration("batch_timeout", c.BatchTimeout),
		slog.Duration("write_timeout", c.WriteTimeout),
		slog.Bool("tls", c.TLS.Enabled),
		slog.Any("sasl", c.SASL),
	)
}
