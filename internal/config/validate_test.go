package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(c *Config)
		want   []string // empty: valid
	}{
		{"hook", func(c *Config) { c.Capture.Hook = "uprobe" },
			[]string{`config: capture.hook: "uprobe" is not allowed; want one of auto, fexit, kprobe, tracepoint`}},
		{"ring buffer not a power of two", func(c *Config) { c.Capture.RingBufferBytes = 5000 },
			[]string{`config: capture.ring_buffer_bytes: 5000 is not allowed; want a power of two from 4KiB to 1GiB`}},
		{"ring buffer too small", func(c *Config) { c.Capture.RingBufferBytes = 2048 },
			[]string{`config: capture.ring_buffer_bytes: 2048 is not allowed; want a power of two from 4KiB to 1GiB`}},
		{"ring buffer too large", func(c *Config) { c.Capture.RingBufferBytes = 2 << 30 },
			[]string{`config: capture.ring_buffer_bytes: 2147483648 is not allowed; want a power of two from 4KiB to 1GiB`}},
		{"ring buffer smallest", func(c *Config) { c.Capture.RingBufferBytes = 4096 }, nil},
		{"pid 0", func(c *Config) { c.Capture.PID = 0 },
			[]string{`config: capture.pid: 0 is out of range; want -1 (all) or 1 to 4194304`}},
		{"pid above the kernel's limit", func(c *Config) { c.Capture.PID = 4194305 },
			[]string{`config: capture.pid: 4194305 is out of range; want -1 (all) or 1 to 4194304`}},
		{"uid -2", func(c *Config) { c.Capture.UID = -2 },
			[]string{`config: capture.uid: -2 is out of range; want -1 (all) or 0 to 4294967294`}},
		{"uid of nobody's -1", func(c *Config) { c.Capture.UID = 4294967295 },
			[]string{`config: capture.uid: 4294967295 is out of range; want -1 (all) or 0 to 4294967294`}},
		{"uid 0", func(c *Config) { c.Capture.UID = 0 }, nil},
		{"port 0", func(c *Config) { c.Capture.Ports = []uint16{80, 0} },
			[]string{`config: capture.ports: 0 is not a port (want 1-65535)`}},
		{"too many ports", func(c *Config) { c.Capture.Ports = make1025Ports() },
			[]string{`config: capture.ports: 1025 ports are too many; want at most 1024`}},
		{"host name with a space", func(c *Config) { c.Host.Name = "web 1" },
			[]string{`config: host.name: "web 1" is not allowed; want at most 253 characters, no spaces or control characters, or empty for the OS host name`}},
		{"no broker", func(c *Config) { c.Kafka.Brokers = nil },
			[]string{`config: kafka.brokers: no broker; want at least one host:port`}},
		{"broker without port", func(c *Config) { c.Kafka.Brokers = []string{"k1:9092", "kafka1"} },
			[]string{`config: kafka.brokers: "kafka1" is not allowed; want host:port with a port 1-65535`}},
		{"broker port 0", func(c *Config) { c.Kafka.Brokers = []string{"k1:0"} },
			[]string{`config: kafka.brokers: "k1:0" is not allowed; want host:port with a port 1-65535`}},
		{"broker without host", func(c *Config) { c.Kafka.Brokers = []string{":9092"} },
			[]string{`config: kafka.brokers: ":9092" is not allowed; want host:port with a port 1-65535`}},
		{"IPv6 broker", func(c *Config) { c.Kafka.Brokers = []string{"[::1]:9092"} }, nil},
		{"topic with a slash", func(c *Config) { c.Kafka.Topic = "bind/events" },
			[]string{`config: kafka.topic: "bind/events" is not allowed; want 1 to 249 of a-z, A-Z, 0-9, ".", "_", "-" (not "." or "..")`}},
		{"topic ..", func(c *Config) { c.Kafka.Topic = ".." },
			[]string{`config: kafka.topic: ".." is not allowed; want 1 to 249 of a-z, A-Z, 0-9, ".", "_", "-" (not "." or "..")`}},
		{"empty client id", func(c *Config) { c.Kafka.ClientID = "" },
			[]string{`config: kafka.client_id: "" is not allowed; want a name without control characters`}},
		{"acks", func(c *Config) { c.Kafka.Acks = "two" },
			[]string{`config: kafka.acks: "two" is not allowed; want one of all, one, none`}},
		{"compression", func(c *Config) { c.Kafka.Compression = "brotli" },
			[]string{`config: kafka.compression: "brotli" is not allowed; want one of none, gzip, snappy, lz4, zstd`}},
		{"batch timeout 0, which kafka-go reads as 1s", func(c *Config) { c.Kafka.BatchTimeout = 0 },
			[]string{`config: kafka.batch_timeout: 0s is not allowed; want a duration above 0`}},
		{"negative write timeout", func(c *Config) { c.Kafka.WriteTimeout = -time.Second },
			[]string{`config: kafka.write_timeout: -1s is not allowed; want a duration above 0`}},
		{"TLS settings with TLS off", func(c *Config) {
			c.Kafka.TLS = KafkaTLS{CAFile: "/ca.pem", ServerName: "k", InsecureSkipVerify: true}
		}, []string{
			`config: kafka.tls.ca_file: "/ca.pem" is set but kafka.tls.enabled is false; enable TLS or remove it`,
			`config: kafka.tls.server_name: "k" is set but kafka.tls.enabled is false; enable TLS or remove it`,
			`config: kafka.tls.insecure_skip_verify: true is set but kafka.tls.enabled is false; enable TLS or remove it`,
		}},
		{"client certificate without its key", func(c *Config) { c.Kafka.TLS = KafkaTLS{Enabled: true, CertFile: "/c.pem"} },
			[]string{`config: kafka.tls.key_file: "" is not allowed; kafka.tls.cert_file needs its key`}},
		{"client key without its certificate", func(c *Config) { c.Kafka.TLS = KafkaTLS{Enabled: true, KeyFile: "/k.pem"} },
			[]string{`config: kafka.tls.cert_file: "" is not allowed; kafka.tls.key_file needs its certificate`}},
		{"mutual TLS", func(c *Config) {
			c.Kafka.TLS = KafkaTLS{Enabled: true, CAFile: "/ca.pem", CertFile: "/c.pem", KeyFile: "/k.pem"}
		}, nil},
		{"SASL mechanism", func(c *Config) { c.Kafka.SASL.Mechanism = "gssapi" },
			[]string{`config: kafka.sasl.mechanism: "gssapi" is not allowed; want one of none, plain, scram-sha-256, scram-sha-512`}},
		{"SASL settings without a mechanism", func(c *Config) {
			c.Kafka.SASL = KafkaSASL{Mechanism: SASLNone, Username: "u", PasswordFile: "/pw"}
		}, []string{
			`config: kafka.sasl.username: "u" is set but kafka.sasl.mechanism is none; set a mechanism or remove it`,
			`config: kafka.sasl.password_file: "/pw" is set but kafka.sasl.mechanism is none; set a mechanism or remove it`,
		}},
		{"SASL without user or password", func(c *Config) { c.Kafka.SASL = KafkaSASL{Mechanism: SASLPlain} }, []string{
			`config: kafka.sasl.username: "" is not allowed; mechanism plain needs a user name`,
			`config: kafka.sasl: mechanism plain needs a password; want exactly one of password_file, password_env`,
		}},
		{"SASL with two password sources", func(c *Config) {
			c.Kafka.SASL = KafkaSASL{Mechanism: SASLScramSHA256, Username: "u", PasswordFile: "/pw", PasswordEnv: "PW"}
		}, []string{`config: kafka.sasl: password_file and password_env are both set; want exactly one`}},
		{"SASL password variable not a name", func(c *Config) {
			c.Kafka.SASL = KafkaSASL{Mechanism: SASLPlain, Username: "u", PasswordEnv: "1PW"}
		}, []string{`config: kafka.sasl.password_env: "1PW" is not allowed; want an environment variable name ([A-Za-z_][A-Za-z0-9_]*)`}},
		{"SASL password variable of a key", func(c *Config) {
			c.Kafka.SASL = KafkaSASL{Mechanism: SASLPlain, Username: "u", PasswordEnv: "BINDWATCH_KAFKA_SASL_USERNAME"}
		}, []string{`config: kafka.sasl.password_env: "BINDWATCH_KAFKA_SASL_USERNAME" is the variable of key kafka.sasl.username; want a variable of its own`}},
		{"SASL from a file", func(c *Config) {
			c.Kafka.SASL = KafkaSASL{Mechanism: SASLScramSHA512, Username: "u", PasswordFile: "/run/credentials/pw"}
		}, nil},
		{"registry without scheme", func(c *Config) { c.Schema.RegistryURL = "localhost:8081" },
			[]string{`config: schema.registry_url: "localhost:8081" is not allowed; want an http:// or https:// URL, or empty for no registry`}},
		{"registry", func(c *Config) { c.Schema.RegistryURL = "https://sr.example:8081/" }, nil},
		{"schema version", func(c *Config) { c.Schema.Version = 0 },
			[]string{`config: schema.version: 0 is out of range; want 1 to 3`}},
		{"orphan timeout too short", func(c *Config) { c.Capture.OrphanTimeout = 10 * time.Second },
			[]string{`config: capture.orphan_timeout: 10s is not allowed; want 0 (capture goes on until unpinned) or at least 30s`}},
		{"no orphan timeout", func(c *Config) { c.Capture.OrphanTimeout = 0 }, nil},
		{"inventory interval too short", func(c *Config) { c.Inventory.Interval = time.Second },
			[]string{`config: inventory.interval: 1s is not allowed; want 0 (at start and after losses only) or at least 1m`}},
		{"batch size 0", func(c *Config) { c.Pipeline.BatchSize = 0 },
			[]string{`config: pipeline.batch_size: 0 is out of range; want 1 to 100000`}},
		{"batch size too large", func(c *Config) { c.Pipeline.BatchSize = 100001 },
			[]string{`config: pipeline.batch_size: 100001 is out of range; want 1 to 100000`}},
		{"batch larger than the spool holds", func(c *Config) { c.Pipeline.BatchSize, c.Spool.MaxBytes = 100000, 1<<20 },
			[]string{`config: pipeline.batch_size: 100000 is too large for spool.max_bytes 1MiB; want at most 512 (the spool must hold 2 batches of up to 1KiB an event), or a larger spool`}},
		{"largest batch the smallest spool holds", func(c *Config) { c.Pipeline.BatchSize, c.Spool.MaxBytes = 512, 1<<20 }, nil},
		{"pipeline batch timeout", func(c *Config) { c.Pipeline.BatchTimeout = 0 },
			[]string{`config: pipeline.batch_timeout: 0s is not allowed; want a duration above 0`}},
		{"queue size", func(c *Config) { c.Pipeline.QueueSize = 0 },
			[]string{`config: pipeline.queue_size: 0 is out of range; want 1 to 16777216`}},
		{"relative spool", func(c *Config) { c.Spool.Dir = "spool" },
			[]string{`config: spool.dir: "spool" is not allowed; want an absolute directory`}},
		{"tiny spool", func(c *Config) { c.Spool.MaxBytes = 100 },
			[]string{`config: spool.max_bytes: 100 is too small; want at least 1MiB`}},
		{"full policy", func(c *Config) { c.Spool.FullPolicy = "block" },
			[]string{`config: spool.full_policy: "block" is not allowed; want one of drop_oldest, drop_newest`}},
		{"fsync", func(c *Config) { c.Spool.Fsync = "sometimes" },
			[]string{`config: spool.fsync: "sometimes" is not allowed; want one of always, batch, never`}},
		{"metrics without port", func(c *Config) { c.Metrics.Listen = "localhost" },
			[]string{`config: metrics.listen: "localhost" is not allowed; want host:port (port 0 picks a free one), unix:/absolute/path, systemd (socket activation), or empty to disable`}},
		{"metrics off", func(c *Config) { c.Metrics.Listen = "" }, nil},
		{"metrics on a free port", func(c *Config) { c.Metrics.Listen = "127.0.0.1:0" }, nil},
		{"metrics on a unix socket", func(c *Config) { c.Metrics.Listen = "unix:/run/bindwatch/metrics.sock" }, nil},
		{"metrics by socket activation", func(c *Config) { c.Metrics.Listen = "systemd" }, nil},
		{"metrics on a relative unix path", func(c *Config) { c.Metrics.Listen = "unix:metrics.sock" },
			[]string{`config: metrics.listen: "unix:metrics.sock" is not allowed; want host:port (port 0 picks a free one), unix:/absolute/path, systemd (socket activation), or empty to disable`}},
		{"log level", func(c *Config) { c.Log.Level = "trace" },
			[]string{`config: log.level: "trace" is not allowed; want one of debug, info, warn, error`}},
		{"log format", func(c *Config) { c.Log.Format = "logfmt" },
			[]string{`config: log.format: "logfmt" is not allowed; want one of json, text`}},
		{"shutdown timeout", func(c *Config) { c.Shutdown.Timeout = 0 },
			[]string{`config: shutdown.timeout: 0s is not allowed; want a duration above 0`}},
		{"several problems together, in key order", func(c *Config) {
			c.Log.Level = "trace"
			c.Kafka.Acks = "two"
			c.Capture.Hook = ""
		}, []string{
			`config: capture.hook: "" is not allowed; want one of auto, fexit, kprobe, tracepoint`,
			`config: kafka.acks: "two" is not allowed; want one of all, one, none`,
			`config: log.level: "trace" is not allowed; want one of debug, info, warn, error`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			tc.change(&c)
			err := c.Validate()
			switch {
			case len(tc.want) == 0 && err != nil:
				t.Errorf("want valid, got\n%v", err)
			case len(tc.want) > 0 && err == nil:
				t.Errorf("want\n%s\ngot valid", strings.Join(tc.want, "\n"))
			case err != nil && err.Error() != strings.Join(tc.want, "\n"):
				t.Errorf("got\n%v\nwant\n%s", err, strings.Join(tc.want, "\n"))
			}
		})
	}
}

func make1025Ports() []uint16 {
	ports := make([]uint16, 1025)
	for i := range ports {
		ports[i] = uint16(i + 1)
	}
	return ports
}
