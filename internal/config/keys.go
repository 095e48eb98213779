package config

import (
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/internal/kafkaconn"
	"github.com/bindwatch/bindwatch/internal/kafkasink"
	"github.com/bindwatch/bindwatch/internal/keytable"
	"github.com/bindwatch/bindwatch/internal/spool"
	"github.com/bindwatch/bindwatch/schemas"
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

// key is one configuration key, and the only description of it. The
// table below is the single list every layer (file, environment, flags),
// Validate, Reload, the reference in docs/operating.md, the sample file test and
// LogValue walk, so a key added here is known everywhere at once.
type key struct {
	name  string
	kind  kind
	help  string
	field func(c *Config) any // pointer to the field the key sets
	// check refuses a bad value of the field alone (v is what field
	// returns), naming the key; nil accepts any value of the field's
	// type. Checks that span keys are in checkAcross.
	check func(name string, v any) *FieldError
	// live says a running agent applies a new value on reload (SIGHUP);
	// the others shape connections, files and kernel objects opened at
	// start and need a restart.
	live bool
}

// keys lists every key in the order of configs/bindwatch.yaml.
var keys = []key{
	{name: "capture.hook", kind: kindString, live: false,
		help:  "kernel hook: " + strings.Join(hookValues, ", "),
		field: func(c *Config) any { return &c.Capture.Hook },
		check: isOneOf(hookValues)},
	{name: "capture.errors", kind: kindBool, live: true,
		help:  "report failed binds too",
		field: func(c *Config) any { return &c.Capture.Errors }},
	{name: "capture.ring_buffer_bytes", kind: kindSize, live: false,
		help:  "BPF ring buffer size: a power of two, at least 4KiB",
		field: func(c *Config) any { return &c.Capture.RingBufferBytes },
		check: func(name string, v any) *FieldError {
			if n := *v.(*int64); n < minRingBufferBytes || n > maxRingBufferBytes || n&(n-1) != 0 {
				return fieldErr(name, "%d is not allowed; want a power of two from %s to %s", n, formatSize(minRingBufferBytes), formatSize(maxRingBufferBytes))
			}
			return nil
		}},
	{name: "capture.pid", kind: kindInt, live: true,
		help:  "report this process's binds only; -1 for all",
		field: func(c *Config) any { return &c.Capture.PID },
		check: func(name string, v any) *FieldError {
			if p := *v.(*int); p != -1 && (p < 1 || p > maxPID) {
				return fieldErr(name, "%d is out of range; want -1 (all) or 1 to %d", p, maxPID)
			}
			return nil
		}},
	{name: "capture.uid", kind: kindInt, live: true,
		help:  "report this user's binds only; -1 for all",
		field: func(c *Config) any { return &c.Capture.UID },
		check: func(name string, v any) *FieldError {
			if u := *v.(*int64); u != -1 && (u < 0 || u > maxUID) {
				return fieldErr(name, "%d is out of range; want -1 (all) or 0 to %d", u, int64(maxUID))
			}
			return nil
		}},
	{name: "capture.ports", kind: kindPorts, live: true,
		help:  "report binds to these ports only; empty for all",
		field: func(c *Config) any { return &c.Capture.Ports },
		check: func(name string, v any) *FieldError {
			ports := *v.(*[]uint16)
			if slices.Contains(ports, 0) {
				return fieldErr(name, "0 is not a port (want 1-65535)")
			}
			if n := len(ports); n > maxFilterPorts {
				return fieldErr(name, "%d ports are too many; want at most %d", n, maxFilterPorts)
			}
			return nil
		}},
	{name: "capture.pin_dir", kind: kindString, live: false,
		help:  "bpffs directory where capture is pinned to survive restarts; empty pins nothing",
		field: func(c *Config) any { return &c.Capture.PinDir },
		check: func(name string, v any) *FieldError {
			if d := *v.(*string); d != "" && (!filepath.IsAbs(d) || filepath.Clean(d) != d) {
				return fieldErr(name, "%q is not allowed; want an absolute, clean path on bpffs (e.g. /sys/fs/bpf/bindwatch), or empty", d)
			}
			return nil
		}},
	{name: "capture.uid_budget", kind: kindInt, live: false,
		help:  "bind records a non-root user may have per second on each CPU, and as many listen and close records apart; over it they are counted, not sent; 0: no budget",
		field: func(c *Config) any { return &c.Capture.UIDBudget },
		check: inRange(0, 1_000_000)},
	{name: "capture.orphan_timeout", kind: kindDuration, live: false,
		help:  "how long pinned capture goes on with no agent running; 0: until unpinned",
		field: func(c *Config) any { return &c.Capture.OrphanTimeout },
		check: func(name string, v any) *FieldError {
			// The agent renews the lease every monitor tick (5s).
			if d := *v.(*time.Duration); d != 0 && d < 30*time.Second {
				return fieldErr(name, "%s is not allowed; want 0 (capture goes on until unpinned) or at least 30s", d)
			}
			return nil
		}},

	{name: "host.name", kind: kindString, live: false,
		help:  "host name in events; empty for the OS host name",
		field: func(c *Config) any { return &c.Host.Name },
		check: func(name string, v any) *FieldError {
			if n := *v.(*string); len(n) > maxHostName || strings.IndexFunc(n, notInName) >= 0 {
				return fieldErr(name, "%q is not allowed; want at most %d characters, no spaces or control characters, or empty for the OS host name", n, maxHostName)
			}
			return nil
		}},

	{name: "host.key_file", kind: kindString, live: false,
		help:  "Ed25519 private key (PEM, PKCS #8) the agent seals its records with; created 0600 at first start when missing; empty: host.key in spool.dir's parent directory",
		field: func(c *Config) any { return &c.Host.KeyFile },
		check: func(name string, v any) *FieldError {
			if f := *v.(*string); f != "" && !filepath.IsAbs(f) {
				return fieldErr(name, "%q is not allowed; want an absolute path, or empty for host.key beside the spool directory", f)
			}
			return nil
		}},

	{name: "kafka.brokers", kind: kindList, live: false,
		help:  "bootstrap brokers, host:port",
		field: func(c *Config) any { return &c.Kafka.Brokers },
		check: func(name string, v any) *FieldError {
			brokers := *v.(*[]string)
			if len(brokers) == 0 {
				return fieldErr(name, "no broker; want at least one host:port")
			}
			for _, b := range brokers {
				if !hostPort(b, false) {
					return fieldErr(name, "%q is not allowed; want host:port with a port 1-65535", b)
				}
			}
			return nil
		}},
	{name: "kafka.topic", kind: kindString, live: false,
		help:  "topic events are published to",
		field: func(c *Config) any { return &c.Kafka.Topic },
		check: func(name string, v any) *FieldError {
			if t := *v.(*string); !topicName.MatchString(t) || t == "." || t == ".." {
				return fieldErr(name, `%q is not allowed; want 1 to 249 of a-z, A-Z, 0-9, ".", "_", "-" (not "." or "..")`, t)
			}
			return nil
		}},
	{name: "kafka.client_id", kind: kindString, live: false,
		help:  "Kafka client id, for broker logs and quotas",
		field: func(c *Config) any { return &c.Kafka.ClientID },
		check: func(name string, v any) *FieldError {
			if id := *v.(*string); id == "" || strings.IndexFunc(id, unicode.IsControl) >= 0 {
				return fieldErr(name, "%q is not allowed; want a name without control characters", id)
			}
			return nil
		}},
	{name: "kafka.acks", kind: kindString, live: false,
		help:  "replicas that must have a batch: " + joinValues(acksValues),
		field: func(c *Config) any { return &c.Kafka.Acks },
		check: isOneOf(acksValues)},
	{name: "kafka.compression", kind: kindString, live: false,
		help:  "batch codec: " + joinValues(compressionValues),
		field: func(c *Config) any { return &c.Kafka.Compression },
		check: isOneOf(compressionValues)},
	{name: "kafka.batch_timeout", kind: kindDuration, live: false,
		help:  "longest a partial batch waits in the producer",
		field: func(c *Config) any { return &c.Kafka.BatchTimeout },
		check: isPositive},
	{name: "kafka.write_timeout", kind: kindDuration, live: false,
		help:  "longest one produce request may take",
		field: func(c *Config) any { return &c.Kafka.WriteTimeout },
		check: isPositive},
	{name: "kafka.spool_after", kind: kindDuration, live: false,
		help:  "longest a write may wait for Kafka before it and what follows go to the spool",
		field: func(c *Config) any { return &c.Kafka.SpoolAfter },
		check: isPositive},
	{name: "kafka.tls.enabled", kind: kindBool, live: false,
		help:  "connect to the brokers with TLS",
		field: func(c *Config) any { return &c.Kafka.TLS.Enabled }},
	{name: "kafka.tls.ca_file", kind: kindString, live: false,
		help:  "PEM CA bundle to verify brokers; empty for the system roots",
		field: func(c *Config) any { return &c.Kafka.TLS.CAFile }},
	{name: "kafka.tls.cert_file", kind: kindString, live: false,
		help:  "PEM client certificate, with key_file",
		field: func(c *Config) any { return &c.Kafka.TLS.CertFile }},
	{name: "kafka.tls.key_file", kind: kindString, live: false,
		help:  "PEM client key, with cert_file",
		field: func(c *Config) any { return &c.Kafka.TLS.KeyFile }},
	{name: "kafka.tls.server_name", kind: kindString, live: false,
		help:  "name to verify in broker certificates; empty for the broker host",
		field: func(c *Config) any { return &c.Kafka.TLS.ServerName }},
	{name: "kafka.tls.insecure_skip_verify", kind: kindBool, live: false,
		help:  "accept any broker certificate (tests only)",
		field: func(c *Config) any { return &c.Kafka.TLS.InsecureSkipVerify }},
	{name: "kafka.sasl.mechanism", kind: kindString, live: false,
		help:  "SASL mechanism: " + joinValues(saslValues),
		field: func(c *Config) any { return &c.Kafka.SASL.Mechanism },
		check: isOneOf(saslValues)},
	{name: "kafka.sasl.username", kind: kindString, live: false,
		help:  "SASL user name",
		field: func(c *Config) any { return &c.Kafka.SASL.Username }},
	{name: "kafka.sasl.password_file", kind: kindString, live: false,
		help:  "file holding the SASL password (or use password_env)",
		field: func(c *Config) any { return &c.Kafka.SASL.PasswordFile }},
	{name: "kafka.sasl.password_env", kind: kindString, live: false,
		help:  "environment variable holding the SASL password (or use password_file)",
		field: func(c *Config) any { return &c.Kafka.SASL.PasswordEnv },
		check: func(name string, v any) *FieldError {
			env := *v.(*string)
			if env != "" && !envVarName.MatchString(env) {
				return fieldErr(name, "%q is not allowed; want an environment variable name ([A-Za-z_][A-Za-z0-9_]*)", env)
			}
			if k, ok := keyOfEnv[env]; ok {
				return fieldErr(name, "%q is the variable of key %s; want a variable of its own", env, k)
			}
			return nil
		}},

	{name: "schema.registry_url", kind: kindString, live: false,
		help:  "schema registry URL; empty for Avro single-object encoding",
		field: func(c *Config) any { return &c.Schema.RegistryURL },
		check: func(name string, v any) *FieldError {
			if u := *v.(*string); u != "" {
				p, err := url.Parse(u)
				if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
					return fieldErr(name, "%q is not allowed; want an http:// or https:// URL, or empty for no registry", u)
				}
			}
			return nil
		}},
	{name: "schema.version", kind: kindInt, live: false,
		help:  "BindEvent schema version to publish",
		field: func(c *Config) any { return &c.Schema.Version },
		check: inRange(1, schemas.Latest)},

	{name: "pipeline.batch_size", kind: kindInt, live: true,
		help:  "events per batch, 1 to 100000",
		field: func(c *Config) any { return &c.Pipeline.BatchSize },
		check: inRange(1, maxBatchSize)},
	{name: "pipeline.batch_timeout", kind: kindDuration, live: true,
		help:  "longest a partial batch waits before it is sent",
		field: func(c *Config) any { return &c.Pipeline.BatchTimeout },
		check: isPositive},
	{name: "pipeline.queue_size", kind: kindInt, live: false,
		help:  "events buffered between the ring-buffer reader and the pipeline",
		field: func(c *Config) any { return &c.Pipeline.QueueSize },
		check: inRange(1, maxQueueSize)},

	{name: "spool.dir", kind: kindString, live: false,
		help:  "directory of the on-disk spool (absolute)",
		field: func(c *Config) any { return &c.Spool.Dir },
		check: func(name string, v any) *FieldError {
			if d := *v.(*string); !filepath.IsAbs(d) {
				return fieldErr(name, "%q is not allowed; want an absolute directory", d)
			}
			return nil
		}},
	{name: "spool.max_bytes", kind: kindSize, live: false,
		help:  "largest the spool may grow",
		field: func(c *Config) any { return &c.Spool.MaxBytes },
		check: func(name string, v any) *FieldError {
			if n := *v.(*int64); n < minSpoolBytes {
				return fieldErr(name, "%d is too small; want at least %s", n, formatSize(minSpoolBytes))
			}
			return nil
		}},
	{name: "spool.full_policy", kind: kindString, live: false,
		help:  "what a full spool gives up: " + joinValues(fullPolicyValues),
		field: func(c *Config) any { return &c.Spool.FullPolicy },
		check: isOneOf(fullPolicyValues)},
	{name: "spool.fsync", kind: kindString, live: false,
		help:  "when spool writes reach the disk: " + joinValues(fsyncValues),
		field: func(c *Config) any { return &c.Spool.Fsync },
		check: isOneOf(fsyncValues)},

	{name: "metrics.listen", kind: kindString, live: false,
		help:  "where /metrics and /healthz listen: host:port, unix:/path (mode 0660), systemd (socket activation); empty disables",
		field: func(c *Config) any { return &c.Metrics.Listen },
		check: func(name string, v any) *FieldError {
			if l := *v.(*string); l != "" && !metricsListen(l) {
				return fieldErr(name, "%q is not allowed; want host:port (port 0 picks a free one), unix:/absolute/path, systemd (socket activation), or empty to disable", l)
			}
			return nil
		}},

	{name: "log.level", kind: kindString, live: true,
		help:  "log level: " + strings.Join(logLevelValues, ", "),
		field: func(c *Config) any { return &c.Log.Level },
		check: isOneOf(logLevelValues)},
	{name: "log.format", kind: kindString, live: false,
		help:  "log format: " + strings.Join(logFormatValues, ", "),
		field: func(c *Config) any { return &c.Log.Format },
		check: isOneOf(logFormatValues)},

	{name: "shutdown.timeout", kind: kindDuration, live: false,
		help:  "longest SIGTERM may spend flushing to Kafka",
		field: func(c *Config) any { return &c.Shutdown.Timeout },
		check: isPositive},

	{name: "inventory.interval", kind: kindDuration, live: false,
		help:  "how often what already listens is listed again; 0: at start and after losses only",
		field: func(c *Config) any { return &c.Inventory.Interval },
		check: func(name string, v any) *FieldError {
			if d := *v.(*time.Duration); d != 0 && d < time.Minute {
				return fieldErr(name, "%s is not allowed; want 0 (at start and after losses only) or at least 1m", d)
			}
			return nil
		}},

	{name: "heartbeat.interval", kind: kindDuration, live: false,
		help:  "how often the agent sends a heartbeat record (blind spots, drops, lease); the audit calls a host silent after three without any record",
		field: func(c *Config) any { return &c.Heartbeat.Interval },
		check: func(name string, v any) *FieldError {
			if d := *v.(*time.Duration); d < time.Second || d > time.Hour {
				return fieldErr(name, "%s is not allowed; want 1s to 1h", d)
			}
			return nil
		}},
	{name: "workload.docker_root", kind: kindString, live: false,
		help:  "Docker's data root, where containers/<id>/config.v2.json names a container and its image",
		field: func(c *Config) any { return &c.Workload.DockerRoot }, check: isCleanAbsPath},
	{name: "workload.containerd_state", kind: kindString, live: false,
		help:  "containerd's state directory, where task bundles carry the CRI's pod and image annotations",
		field: func(c *Config) any { return &c.Workload.ContainerdState }, check: isCleanAbsPath},
	{name: "workload.storage_root", kind: kindString, live: false,
		help:  "containers/storage graph root (Podman, CRI-O)",
		field: func(c *Config) any { return &c.Workload.StorageRoot }, check: isCleanAbsPath},
	{name: "workload.storage_run_root", kind: kindString, live: false,
		help:  "containers/storage run root (Podman, CRI-O)",
		field: func(c *Config) any { return &c.Workload.StorageRunRoot }, check: isCleanAbsPath},
	{name: "workload.cri_socket", kind: kindString, live: false,
		help:  "containerd's socket, asked once a pod for CRI pods' labels (kept nowhere on disk); empty asks nothing",
		field: func(c *Config) any { return &c.Workload.CRISocket },
		check: func(name string, v any) *FieldError {
			if *v.(*string) == "" {
				return nil
			}
			return isCleanAbsPath(name, v)
		}},
}

// isCleanAbsPath accepts an absolute, clean path.
func isCleanAbsPath(name string, v any) *FieldError {
	if d := *v.(*string); !filepath.IsAbs(d) || filepath.Clean(d) != d {
		return fieldErr(name, "%q is not allowed; want an absolute, clean path", d)
	}
	return nil
}

// The allowed values of the enumerated keys, in the order messages list
// them. Each list belongs to the package that acts on the value.
var (
	hookValues        = hookNames()
	acksValues        = kafkasink.AcksValues
	compressionValues = kafkasink.CompressionValues
	saslValues        = kafkaconn.Mechanisms
	fullPolicyValues  = spool.FullPolicies
	fsyncValues       = spool.FsyncPolicies
	logLevelValues    = []string{LogDebug, LogInfo, LogWarn, LogError}
	logFormatValues   = []string{LogJSON, LogText}
)

// keyOfEnv maps each key's environment variable back to the key, for the
// check of kafka.sasl.password_env (which cannot read keys itself: keys
// holds that check).
var keyOfEnv = map[string]string{}

func init() {
	for _, k := range keys {
		keyOfEnv[EnvName(k.name)] = k.name
	}
}

// hookNames are the values of capture.hook: auto and bpf's hooks.
func hookNames() []string {
	names := []string{string(bpf.HookAuto)}
	for _, h := range bpf.Hooks {
		names = append(names, string(h))
	}
	return names
}

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
func sections() []string { return keytable.Sections(Keys()) }

// children lists the names allowed directly under section ("" is the top).
func children(section string) []string { return keytable.Children(Keys(), section) }
