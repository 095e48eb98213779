package config

import (
	"slices"
	"strings"
)

// kind is how a key's text is parsed and printed.
type kind int

const (
	kindString   kind = iota
	kindBool          // true or false
	kindInt           // decimal integer
	kindDuration      // time.ParseDuration syntax; a bare number is refused
	kindSize          // bytes, or a number with a unit: 512MiB, 1GB
	kindList          // YAML list, or comma-separated text
	kindPorts         // like kindList, of ports
)

// key is one configuration key. The table below is the single list every
// layer (file, environment, flags), the sample file test and LogValue walk,
// so a key added here is known everywhere at once.
type key struct {
	name  string
	kind  kind
	help  string
	field func(c *Config) any // pointer to the field the key sets
}

// keys lists every key in the order of configs/bindwatch.yaml.
var keys = []key{
	{"capture.hook", kindString, "kernel hook: " + strings.Join(hookValues, ", "), func(c *Config) any { return &c.Capture.Hook }},
	{"capture.errors", kindBool, "report failed binds too", func(c *Config) any { return &c.Capture.Errors }},
	{"capture.ring_buffer_bytes", kindSize, "BPF ring buffer size: a power of two, at least 4KiB", func(c *Config) any { return &c.Capture.RingBufferBytes }},
	{"capture.pid", kindInt, "report this process's binds only; -1 for all", func(c *Config) any { return &c.Capture.PID }},
	{"capture.uid", kindInt, "report this user's binds only; -1 for all", func(c *Config) any { return &c.Capture.UID }},
	{"capture.ports", kindPorts, "report binds to these ports only; empty for all", func(c *Config) any { return &c.Capture.Ports }},
	{"capture.pin_dir", kindString, "bpffs directory where capture is pinned to survive restarts; empty pins nothing", func(c *Config) any { return &c.Capture.PinDir }},
	{"capture.uid_budget", kindInt, "records a non-root user may have per second on each CPU; over it they are counted, not sent; 0: no budget", func(c *Config) any { return &c.Capture.UIDBudget }},
	{"capture.orphan_timeout", kindDuration, "how long pinned capture goes on with no agent running; 0: until unpinned", func(c *Config) any { return &c.Capture.OrphanTimeout }},

	{"host.name", kindString, "host name in events; empty for the OS host name", func(c *Config) any { return &c.Host.Name }},

	{"kafka.brokers", kindList, "bootstrap brokers, host:port", func(c *Config) any { return &c.Kafka.Brokers }},
	{"kafka.topic", kindString, "topic events are published to", func(c *Config) any { return &c.Kafka.Topic }},
	{"kafka.client_id", kindString, "Kafka client id, for broker logs and quotas", func(c *Config) any { return &c.Kafka.ClientID }},
	{"kafka.acks", kindString, "replicas that must have a batch: " + joinValues(acksValues), func(c *Config) any { return &c.Kafka.Acks }},
	{"kafka.compression", kindString, "batch codec: " + joinValues(compressionValues), func(c *Config) any { return &c.Kafka.Compression }},
	{"kafka.batch_timeout", kindDuration, "longest a partial batch waits in the producer", func(c *Config) any { return &c.Kafka.BatchTimeout }},
	{"kafka.write_timeout", kindDuration, "longest one produce request may take", func(c *Config) any { return &c.Kafka.WriteTimeout }},
	{"kafka.spool_after", kindDuration, "longest a write may wait for Kafka before it and what follows go to the spool", func(c *Config) any { return &c.Kafka.SpoolAfter }},
	{"kafka.tls.enabled", kindBool, "connect to the brokers with TLS", func(c *Config) any { return &c.Kafka.TLS.Enabled }},
	{"kafka.tls.ca_file", kindString, "PEM CA bundle to verify brokers; empty for the system roots", func(c *Config) any { return &c.Kafka.TLS.CAFile }},
	{"kafka.tls.cert_file", kindString, "PEM client certificate, with key_file", func(c *Config) any { return &c.Kafka.TLS.CertFile }},
	{"kafka.tls.key_file", kindString, "PEM client key, with cert_file", func(c *Config) any { return &c.Kafka.TLS.KeyFile }},
	{"kafka.tls.server_name", kindString, "name to verify in broker certificates; empty for the broker host", func(c *Config) any { return &c.Kafka.TLS.ServerName }},
	{"kafka.tls.insecure_skip_verify", kindBool, "accept any broker certificate (tests only)", func(c *Config) any { return &c.Kafka.TLS.InsecureSkipVerify }},
	{"kafka.sasl.mechanism", kindString, "SASL mechanism: " + joinValues(saslValues), func(c *Config) any { return &c.Kafka.SASL.Mechanism }},
	{"kafka.sasl.username", kindString, "SASL user name", func(c *Config) any { return &c.Kafka.SASL.Username }},
	{"kafka.sasl.password_file", kindString, "file holding the SASL password (or use password_env)", func(c *Config) any { return &c.Kafka.SASL.PasswordFile }},
	{"kafka.sasl.password_env", kindString, "environment variable holding the SASL password (or use password_file)", func(c *Config) any { return &c.Kafka.SASL.PasswordEnv }},

	{"schema.registry_url", kindString, "schema registry URL; empty for Avro single-object encoding", func(c *Config) any { return &c.Schema.RegistryURL }},
	{"schema.version", kindInt, "BindEvent schema version to publish", func(c *Config) any { return &c.Schema.Version }},

	{"pipeline.batch_size", kindInt, "events per batch, 1 to 100000", func(c *Config) any { return &c.Pipeline.BatchSize }},
	{"pipeline.batch_timeout", kindDuration, "longest a partial batch waits before it is sent", func(c *Config) any { return &c.Pipeline.BatchTimeout }},
	{"pipeline.queue_size", kindInt, "events buffered between the ring-buffer reader and the pipeline", func(c *Config) any { return &c.Pipeline.QueueSize }},

	{"spool.dir", kindString, "directory of the on-disk spool (absolute)", func(c *Config) any { return &c.Spool.Dir }},
	{"spool.max_bytes", kindSize, "largest the spool may grow", func(c *Config) any { return &c.Spool.MaxBytes }},
	{"spool.full_policy", kindString, "what a full spool gives up: " + joinValues(fullPolicyValues), func(c *Config) any { return &c.Spool.FullPolicy }},
	{"spool.fsync", kindString, "when spool writes reach the disk: " + joinValues(fsyncValues), func(c *Config) any { return &c.Spool.Fsync }},

	{"metrics.listen", kindString, "where /metrics and /healthz listen: host:port, unix:/path (mode 0660), systemd (socket activation); empty disables", func(c *Config) any { return &c.Metrics.Listen }},

	{"log.level", kindString, "log level: " + strings.Join(logLevelValues, ", "), func(c *Config) any { return &c.Log.Level }},
	{"log.format", kindString, "log format: " + strings.Join(logFormatValues, ", "), func(c *Config) any { return &c.Log.Format }},

	{"shutdown.timeout", kindDuration, "longest SIGTERM may spend flushing to Kafka", func(c *Config) any { return &c.Shutdown.Timeout }},

	{"inventory.interval", kindDuration, "how often what already listens is listed again; 0: at start and after losses only", func(c *Config) any { return &c.Inventory.Interval }},
}

// The allowed values of the enumerated keys, in the order messages list them.
var (
	hookValues        = []string{"auto", "fexit", "kprobe", "tracepoint"}
	acksValues        = []Acks{AcksAll, AcksOne, AcksNone}
	compressionValues = []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd}
	saslValues        = []SASLMechanism{SASLNone, SASLPlain, SASLScramSHA256, SASLScramSHA512}
	fullPolicyValues  = []FullPolicy{DropOldest, DropNewest}
	fsyncValues       = []FsyncPolicy{FsyncAlways, FsyncBatch, FsyncNever}
	logLevelValues    = []string{LogDebug, LogInfo, LogWarn, LogError}
	logFormatValues   = []string{LogJSON, LogText}
)

func joinValues[S ~string](vs []S) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// Keys returns every configuration key, dotted, in file order.
func Keys() []string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.name
	}
	return names
}

func lookupKey(name string) (key, bool) {
	i := slices.IndexFunc(keys, func(k key) bool { return k.name == name })
	if i < 0 {
		return key{}, false
	}
	return keys[i], true
}

// EnvName is the environment variable that sets key: BINDWATCH_ and the key
// in upper case with dots as underscores. Keys contain underscores too, so
// the mapping only runs this way: known keys are looked up by their derived
// names, a variable is never split back into a key.
func EnvName(key string) string {
	return "BINDWATCH_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// sections returns every dotted prefix of a key ("kafka", "kafka.tls").
func sections() []string {
	var out []string
	for _, k := range keys {
		parts := strings.Split(k.name, ".")
		for i := 1; i < len(parts); i++ {
			s := strings.Join(parts[:i], ".")
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// children lists the names allowed directly under section ("" is the top).
func children(section string) []string {
	prefix := section + "."
	if section == "" {
		prefix = ""
	}
	var out []string
	for _, k := range keys {
		rest, ok := strings.CutPrefix(k.name, prefix)
		if !ok {
			continue
		}
		child, _, _ := strings.Cut(rest, ".")
		if !slices.Contains(out, child) {
			out = append(out, child)
		}
	}
	return out
}
