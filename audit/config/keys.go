package config

import (
	"slices"
	"strings"

	"github.com/bindwatch/bindwatch/internal/kafkaconn"
	"github.com/bindwatch/bindwatch/internal/keytable"
)

type kind int

const (
	kindString kind = iota
	kindBool
	kindInt
	kindDuration
	kindList
	kindMap
)

// key is one configuration key: the audit's parallel of the agent's key
// table.
type key struct {
	name  string
	kind  kind
	help  string
	field func(c *Config) any
}

var (
	saslValues     = kafkaconn.MechanismNames()
	logLevelValues = []string{"debug", "info", "warn", "error"}
)

var keys = []key{
	{"kafka.brokers", kindList, "bootstrap brokers, host:port", func(c *Config) any { return &c.Brokers }},
	{"kafka.client_id", kindString, "Kafka client id", func(c *Config) any { return &c.ClientID }},
	{"kafka.tls.enabled", kindBool, "connect with TLS", func(c *Config) any { return &c.TLS.Enabled }},
	{"kafka.tls.ca_file", kindString, "PEM CA bundle; empty for the system roots", func(c *Config) any { return &c.TLS.CAFile }},
	{"kafka.tls.cert_file", kindString, "PEM client certificate", func(c *Config) any { return &c.TLS.CertFile }},
	{"kafka.tls.key_file", kindString, "PEM client key", func(c *Config) any { return &c.TLS.KeyFile }},
	{"kafka.tls.server_name", kindString, "name to verify in broker certificates", func(c *Config) any { return &c.TLS.ServerName }},
	{"kafka.tls.insecure_skip_verify", kindBool, "accept any broker certificate (tests only)", func(c *Config) any { return &c.TLS.InsecureSkipVerify }},
	{"kafka.sasl.mechanism", kindString, "SASL mechanism: " + strings.Join(saslValues, ", "), func(c *Config) any { return &c.SASL.Mechanism }},
	{"kafka.sasl.username", kindString, "SASL user name", func(c *Config) any { return &c.SASL.Username }},
	{"kafka.sasl.password_file", kindString, "file holding the SASL password", func(c *Config) any { return &c.SASL.PasswordFile }},
	{"kafka.sasl.password_env", kindString, "environment variable holding the SASL password", func(c *Config) any { return &c.SASL.PasswordEnv }},
	{"schema.registry_url", kindString, "schema registry URL: resolves Confluent-framed events; when set the state and findings topics are written in Confluent's wire format under <topic>-value", func(c *Config) any { return &c.RegistryURL }},

	{"audit.group", kindString, "consumer group the audit instances share", func(c *Config) any { return &c.Group }},
	{"audit.events_topic", kindString, "topic of the agents' events", func(c *Config) any { return &c.EventsTopic }},
	{"audit.state_topic", kindString, "compacted topic of the current listeners", func(c *Config) any { return &c.StateTopic }},
	{"audit.findings_topic", kindString, "topic findings are published to", func(c *Config) any { return &c.FindingsTopic }},
	{"audit.ocsf_topic", kindString, "topic findings are also published to as OCSF Detection Finding JSON; empty: none", func(c *Config) any { return &c.OCSFTopic }},
	{"audit.policy", kindString, "policy file", func(c *Config) any { return &c.Policy }},
	{"audit.create_topics", kindBool, "create the state and findings topics (compacted, as many partitions as the events topic) when missing", func(c *Config) any { return &c.CreateTopics }},
	{"audit.session_timeout", kindDuration, "how long a silent instance keeps its partitions", func(c *Config) any { return &c.SessionTimeout }},
	{"audit.batch_size", kindInt, "events applied between two commits, 1 to 100000", func(c *Config) any { return &c.BatchSize }},
	{"audit.batch_timeout", kindDuration, "longest a partial batch waits", func(c *Config) any { return &c.BatchTimeout }},
	{"audit.host_keys", kindMap, "host_id: base64 Ed25519 public key (the agent logs it at start as public_key); when set, only these keys are believed and other hosts are refused; empty: each host's first key is pinned (trust on first use)", func(c *Config) any { return &c.HostKeys }},
	{"audit.host_expiry", kindDuration, "how long a host may send no record before it expires, stopped or not (decommissioned): its listeners and host record leave the state topic, its open findings are resolved (\"host expired\"), and a host that sends again starts fresh, its key pinned anew; 24h to 2160h (90 days)", func(c *Config) any { return &c.HostExpiry }},
	{"audit.max_hosts", kindInt, "the most hosts one partition keeps; records of new hosts over it are refused under a host_cap finding (about 2 KB of heap a host); 1000 to 5000000", func(c *Config) any { return &c.MaxHosts }},
	{"audit.max_listeners", kindInt, "the most listeners kept of one host; listeners over it are refused under a listener_cap finding (about 700 bytes of heap each); 1024 to 1048576", func(c *Config) any { return &c.MaxListeners }},
	{"audit.print_findings", kindBool, "print findings as JSON lines on stdout", func(c *Config) any { return &c.PrintFindings }},

	{"metrics.listen", kindString, "where /metrics and /healthz listen, host:port; empty disables", func(c *Config) any { return &c.MetricsListen }},
	{"log.level", kindString, "log level: " + strings.Join(logLevelValues, ", "), func(c *Config) any { return &c.LogLevel }},
}

func lookup(name string) (key, bool) {
	i := slices.IndexFunc(keys, func(k key) bool { return k.name == name })
	if i < 0 {
		return key{}, false
	}
	return keys[i], true
}

// names lists the keys, in table order.
func names() []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.name
	}
	return out
}

// children lists the names allowed directly under section ("" is the top).
func children(section string) []string { return keytable.Children(names(), section) }

func isSection(name string) bool { return keytable.IsSection(names(), name) }
