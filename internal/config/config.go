// Package config is the agent's configuration: its keys and defaults, the
// layering defaults < YAML file < BINDWATCH_* environment < command-line
// flags, and the validation that refuses unknown keys and bad values at start
// with the key, the value and what is allowed.
//
// configs/bindwatch.yaml is the annotated default file; a test keeps it equal
// to Defaults so the two cannot drift.
package config

import (
	"path/filepath"
	"time"

	"github.com/bindwatch/bindwatch/internal/kafkaconn"
	"github.com/bindwatch/bindwatch/internal/kafkasink"
	"github.com/bindwatch/bindwatch/internal/spool"
	"github.com/bindwatch/bindwatch/schemas"
)

// Config is everything `bindwatch run` reads. It holds no secret: the SASL
// password is read at use time by KafkaSASL.Secret, so a Config can be
// logged, compared on reload and printed whole.
type Config struct {
	Capture   Capture
	Host      Host
	Kafka     Kafka
	Schema    Schema
	Pipeline  Pipeline
	Spool     Spool
	Metrics   Metrics
	Log       Log
	Shutdown  Shutdown
	Inventory Inventory
	Heartbeat Heartbeat
	Workload  Workload
}

// Capture is what the kernel side sees and filters.
type Capture struct {
	// Hook is auto, fexit, kprobe or tracepoint (bpf.ParseHook accepts it).
	Hook string
	// Errors reports failed binds too.
	Errors bool
	// RingBufferBytes is a power of two of at least 4096.
	RingBufferBytes int64
	// PID keeps one process's binds; -1 keeps all.
	PID int
	// UID keeps one user's binds; -1 keeps all (0 is root, a real filter).
	UID int64
	// Ports keeps binds to these ports; empty keeps all.
	Ports []uint16
	// PinDir is where the BPF maps and links are pinned (on bpffs) so that
	// binds made while the agent restarts wait in the ring buffer for the
	// next one; empty pins nothing.
	PinDir string
	// OrphanTimeout is how long pinned capture goes on with no agent
	// renewing its lease; 0 keeps it on until unpinned.
	OrphanTimeout time.Duration
	// UIDBudget is how many records a non-root user may have per second on
	// each CPU (bursts of a tenth of it); 0: no budget.
	UIDBudget int
}

// Host names the host in every event.
type Host struct {
	// Name overrides os.Hostname when not empty.
	Name string
	// KeyFile is the Ed25519 key that seals the host's records; empty:
	// host.key in the state directory (spool.dir's parent).
	KeyFile string
}

// HostKeyFile is where the host's key is: host.key_file, or host.key in
// the agent's state directory, the spool directory's parent
// (/var/lib/bindwatch with the packaged unit, which keeps it across
// upgrades and removes it on purge).
func (c *Config) HostKeyFile() string {
	if c.Host.KeyFile != "" {
		return c.Host.KeyFile
	}
	return filepath.Join(filepath.Dir(c.Spool.Dir), "host.key")
}

// Kafka is where events go and how the producer talks to the brokers: the
// producer's own settings (internal/kafkasink owns their types, values and
// defaults), how long a write may wait before the spool takes over, and
// where the SASL password is. KafkaSink makes the producer's Config of it.
type Kafka struct {
	Brokers     []string
	Topic       string
	ClientID    string
	Acks        Acks
	Compression Compression
	// BatchTimeout is the producer's (kafka-go's Writer.BatchTimeout).
	BatchTimeout time.Duration
	WriteTimeout time.Duration
	// SpoolAfter is how long a write may wait for its acknowledgement
	// before its batch, and every batch behind it, goes to the spool.
	SpoolAfter time.Duration
	TLS        KafkaTLS
	SASL       KafkaSASL
}

// KafkaTLS configures TLS to the brokers. The files are read when the
// producer starts, not here, so that Validate stays free of I/O.
type KafkaTLS = kafkaconn.TLS

// KafkaSASL configures SASL authentication. It names where the password is
// (a file or an environment variable), never the password itself.
type KafkaSASL struct {
	Mechanism    SASLMechanism
	Username     string
	PasswordFile string
	PasswordEnv  string
}

// Schema selects the Avro schema and its framing.
type Schema struct {
	// RegistryURL empty means Avro single-object encoding, no registry.
	RegistryURL string
	// Version is a BindEvent schema version, 1..schemas.Latest.
	Version int
}

// Pipeline sizes the queue and the batches between capture and Kafka.
type Pipeline struct {
	BatchSize    int
	BatchTimeout time.Duration
	// QueueSize is how many events wait between the ring-buffer reader and
	// the pipeline; when it is full the reader drops and counts. The ring
	// (capture.ring_buffer_bytes, 50 000 records by default) is the buffer
	// that absorbs a storm: this queue only decouples the reader, and at
	// 65536 its preallocated 11 MB took the storm's peak RSS from 83-93 MiB
	// to 163 MiB (test/overhead.sh 0 1 10).
	QueueSize int
}

// Spool is where batches wait on disk while Kafka is unreachable.
type Spool struct {
	Dir        string
	MaxBytes   int64
	FullPolicy FullPolicy
	Fsync      FsyncPolicy
}

// Metrics serves Prometheus metrics and /healthz.
type Metrics struct {
	// Listen is host:port, MetricsUnixPrefix and a socket path, or
	// MetricsSystemd; empty disables the endpoint.
	Listen string
}

// Forms of metrics.listen besides host:port.
const (
	// MetricsUnixPrefix starts a unix socket path: only those the socket's
	// mode (0660) lets in can scrape, and no other user can take the name.
	MetricsUnixPrefix = "unix:"
	// MetricsSystemd takes the listening socket the service manager passes
	// (LISTEN_FDS), bound before any user could take the port.
	MetricsSystemd = "systemd"
)

// Log configures the agent's own log/slog output.
type Log struct {
	Level  string
	Format string
}

// Heartbeat is how the agent tells it is alive and what it cannot see.
type Heartbeat struct {
	// Interval is how often a heartbeat record is sent.
	Interval time.Duration
}

// Inventory is when the agent walks what already listens.
type Inventory struct {
	// Interval is how often the inventory is taken again after the one at
	// start; 0 takes it at start and after losses only.
	Interval time.Duration
}

// Workload is where the container runtimes keep the state files a
// container's name, image and pod are read from (pipeline/enrich's
// RuntimeRoots). A runtime that is not installed costs nothing.
type Workload struct {
	// DockerRoot is dockerd's --data-root.
	DockerRoot string
	// ContainerdState is containerd's state directory (its task bundles).
	ContainerdState string
	// StorageRoot and StorageRunRoot are containers/storage's graph root
	// and run root (Podman, CRI-O).
	StorageRoot, StorageRunRoot string
	// CRISocket is containerd's socket, asked (off the event path, once a
	// pod) for CRI pods' labels, which containerd writes nowhere else;
	// empty asks nothing.
	CRISocket string
}

// Shutdown bounds the drain on SIGTERM.
type Shutdown struct {
	// Timeout is how long SIGTERM may spend flushing to Kafka (and spooling
	// what did not go) before the agent exits anyway.
	Timeout time.Duration
}

// Acks, Compression and SASLMechanism are the producer's and the
// connection's own types: internal/kafkasink and internal/kafkaconn list
// their values.
type (
	Acks          = kafkasink.Acks
	Compression   = kafkasink.Compression
	SASLMechanism = kafkaconn.Mechanism
)

// The values of kafka.acks, kafka.compression and kafka.sasl.mechanism.
const (
	AcksAll           = kafkasink.AcksAll
	AcksOne           = kafkasink.AcksOne
	AcksNone          = kafkasink.AcksNone
	CompressionNone   = kafkasink.CompressionNone
	CompressionGzip   = kafkasink.CompressionGzip
	CompressionSnappy = kafkasink.CompressionSnappy
	CompressionLZ4    = kafkasink.CompressionLZ4
	CompressionZstd   = kafkasink.CompressionZstd
	SASLNone          = kafkaconn.None
	SASLPlain         = kafkaconn.Plain
	SASLScramSHA256   = kafkaconn.ScramSHA256
	SASLScramSHA512   = kafkaconn.ScramSHA512
)

// FullPolicy and FsyncPolicy are the spool's own types: internal/spool
// documents what each value does, and these are the values of
// spool.full_policy and spool.fsync.
type (
	FullPolicy  = spool.FullPolicy
	FsyncPolicy = spool.FsyncPolicy
)

// The values of spool.full_policy and spool.fsync.
const (
	DropOldest  = spool.DropOldest
	DropNewest  = spool.DropNewest
	FsyncAlways = spool.FsyncAlways
	FsyncBatch  = spool.FsyncBatch
	FsyncNever  = spool.FsyncNever
)

// The values of log.level and log.format.
const (
	LogDebug = "debug"
	LogInfo  = "info"
	LogWarn  = "warn"
	LogError = "error"
	LogJSON  = "json"
	LogText  = "text"
)

// Defaults returns the configuration used for every key no layer sets.
func Defaults() Config {
	// The producer and the spool own their defaults; the agent's are theirs.
	sink, spooled := kafkasink.DefaultConfig(), spool.DefaultOptions()
	return Config{
		Capture: Capture{
			Hook: "auto",
			// Auditing is about who tried to listen where, and a refused
			// bind (EACCES on a low port, EADDRINUSE) is part of that.
			Errors: true,
			// Events stay in the ring until Kafka or the spool has them,
			// so it holds what is in flight: 65536 events of 128 bytes.
			RingBufferBytes: 8 << 20,
			PID:             -1,
			UID:             -1,
			PinDir:          "/sys/fs/bpf/bindwatch",
			OrphanTimeout:   5 * time.Minute,
			UIDBudget:       20000,
		},
		Kafka: Kafka{
			Brokers:      sink.Brokers,
			Topic:        sink.Topic,
			ClientID:     sink.ClientID,
			Acks:         sink.Acks,
			Compression:  sink.Compression,
			BatchTimeout: sink.BatchTimeout,
			WriteTimeout: sink.WriteTimeout,
			SpoolAfter:   time.Second,
			TLS:          sink.TLS,
			SASL:         KafkaSASL{Mechanism: sink.SASL.Mechanism},
		},
		Schema: Schema{Version: schemas.Latest},
		Pipeline: Pipeline{
			// One pipeline batch is one producer record batch.
			BatchSize:    sink.BatchSize,
			BatchTimeout: 50 * time.Millisecond,
			QueueSize:    8192,
		},
		Spool: Spool{
			Dir:        "/var/lib/bindwatch/spool",
			MaxBytes:   spooled.MaxBytes,
			FullPolicy: spooled.FullPolicy,
			Fsync:      spooled.Fsync,
		},
		Metrics:   Metrics{Listen: "127.0.0.1:9464"},
		Log:       Log{Level: LogInfo, Format: LogJSON},
		Shutdown:  Shutdown{Timeout: 10 * time.Second},
		Inventory: Inventory{Interval: time.Hour},
		Heartbeat: Heartbeat{Interval: 30 * time.Second},
		Workload: Workload{
			DockerRoot:      "/var/lib/docker",
			ContainerdState: "/run/containerd",
			StorageRoot:     "/var/lib/containers/storage",
			StorageRunRoot:  "/run/containers/storage",
			CRISocket:       "/run/containerd/containerd.sock",
		},
	}
}
