package config

import (
	"errors"
	"strings"
	"testing"
)

// TestLoadRefuses checks the exact message of each refusal Load makes
// before or after Validate. <file> in a wanted line stands for the path of
// the config file the case writes.
func TestLoadRefuses(t *testing.T) {
	const topKeys = "capture, host, kafka, schema, pipeline, spool, metrics, log, shutdown, inventory, heartbeat, workload"
	const kafkaKeys = "brokers, topic, client_id, acks, compression, batch_timeout, write_timeout, spool_after, tls, sasl"
	for _, tc := range []struct {
		name      string
		yaml      string
		env, args []string
		want      []string
	}{
		{
			name: "unknown key with a typo",
			yaml: "kafka:\n  tls:\n    cafile: /etc/ca.pem\n",
			want: []string{`config: kafka.tls.cafile: unknown key (did you mean "kafka.tls.ca_file"?); allowed in kafka.tls: enabled, ca_file, cert_file, key_file, server_name, insecure_skip_verify (in <file>)`},
		},
		{
			name: "unknown section",
			yaml: "kafak:\n  brokers: [k:9092]\n",
			want: []string{`config: kafak: unknown key (did you mean "kafka"?); allowed at the top: ` + topKeys + ` (in <file>)`},
		},
		{
			name: "key in the wrong section",
			yaml: "kafka:\n  batch_size: 100\n",
			want: []string{`config: kafka.batch_size: unknown key (did you mean "pipeline.batch_size"?); allowed in kafka: ` + kafkaKeys + ` (in <file>)`},
		},
		{
			name: "unknown key with nothing close",
			yaml: "kafka:\n  partitions: 3\n",
			want: []string{`config: kafka.partitions: unknown key; allowed in kafka: ` + kafkaKeys + ` (in <file>)`},
		},
		{
			name: "key spelt twice",
			yaml: "kafka:\n  topic: a\nkafka.topic: b\n",
			want: []string{`config: kafka.topic: set twice (in <file>)`},
		},
		{
			name: "a map where a string belongs",
			yaml: "kafka:\n  topic:\n    name: x\n",
			want: []string{`config: kafka.topic: a map is not allowed; want a string (in <file>)`},
		},
		{
			name: "a string where a section belongs",
			yaml: "kafka: k1:9092\n",
			want: []string{`config: kafka: "k1:9092" is not allowed; want a section with keys ` + kafkaKeys + ` (in <file>)`},
		},
		{
			name: "a list where a string belongs",
			yaml: "log:\n  level: [info]\n",
			want: []string{`config: log.level: a list is not allowed; want a string (in <file>)`},
		},
		{
			name: "null",
			yaml: "host:\n  name:\n",
			want: []string{`config: host.name: null is not allowed; want a string (write "" for empty, or remove the key for the default) (in <file>)`},
		},
		{
			name: "a bool where a string belongs",
			yaml: "kafka:\n  client_id: true\n",
			want: []string{`config: kafka.client_id: true is not a string (quote it in YAML) (in <file>)`},
		},
		{
			name: "enumerated value",
			yaml: "kafka:\n  acks: two\n",
			want: []string{`config: kafka.acks: "two" is not allowed; want one of all, one, none (in <file>)`},
		},
		{
			name: "duration",
			yaml: "pipeline:\n  batch_timeout: fast\n",
			want: []string{`config: pipeline.batch_timeout: "fast" is not a duration (want e.g. 50ms, 1s) (in <file>)`},
		},
		{
			name: "duration without a unit",
			yaml: "shutdown:\n  timeout: 10\n",
			want: []string{`config: shutdown.timeout: 10 is not a duration (want e.g. 50ms, 1s) (in <file>)`},
		},
		{
			name: "integer",
			yaml: "pipeline:\n  batch_size: 1.5\n",
			want: []string{`config: pipeline.batch_size: 1.5 is not an integer (in <file>)`},
		},
		{
			name: "bool from the environment",
			env:  []string{"BINDWATCH_CAPTURE_ERRORS=maybe"},
			want: []string{`config: capture.errors: "maybe" is not a bool (want true or false) (from BINDWATCH_CAPTURE_ERRORS)`},
		},
		{
			name: "port from the environment",
			env:  []string{"BINDWATCH_CAPTURE_PORTS=80,http"},
			want: []string{`config: capture.ports: "http" is not a port (want 1-65535) (from BINDWATCH_CAPTURE_PORTS)`},
		},
		{
			name: "port out of range",
			yaml: "capture:\n  ports: [70000]\n",
			want: []string{`config: capture.ports: "70000" is not a port (want 1-65535) (in <file>)`},
		},
		{
			name: "size from a flag",
			args: []string{"--spool.max_bytes=lots"},
			want: []string{`config: spool.max_bytes: "lots" is not a size (want bytes or e.g. 512MiB, 1GB) (from --spool.max_bytes)`},
		},
		{
			name: "ambiguous size unit",
			yaml: "spool:\n  max_bytes: 1G\n",
			want: []string{`config: spool.max_bytes: "1G" is not a size (want bytes or e.g. 512MiB, 1GB) (in <file>)`},
		},
		{
			name: "Validate's refusal names the layer that set the value",
			env:  []string{"BINDWATCH_KAFKA_COMPRESSION=brotli"},
			want: []string{`config: kafka.compression: "brotli" is not allowed; want one of none, gzip, snappy, lz4, zstd (from BINDWATCH_KAFKA_COMPRESSION)`},
		},
		{
			name: "a bad file value overridden by the environment is still refused",
			yaml: "kafka:\n  acks: two\n",
			env:  []string{"BINDWATCH_KAFKA_ACKS=all"},
			want: []string{`config: kafka.acks: "two" is not allowed; want one of all, one, none (in <file>)`},
		},
		{
			name: "a problem across keys names the layer of the key it names",
			env:  []string{"BINDWATCH_KAFKA_TLS_CA_FILE=/etc/ca.pem"},
			want: []string{`config: kafka.tls.ca_file: "/etc/ca.pem" is set but kafka.tls.enabled is false; enable TLS or remove it (from BINDWATCH_KAFKA_TLS_CA_FILE)`},
		},
		{
			name: "unknown variable",
			env:  []string{"BINDWATCH_KAFKA_BROKER=k:9092", "BINDWATCH_FOO=1"},
			want: []string{
				`config: BINDWATCH_FOO: environment variable matches no key`,
				`config: BINDWATCH_KAFKA_BROKER: environment variable matches no key (did you mean "BINDWATCH_KAFKA_BROKERS"?)`,
			},
		},
		{
			name: "every problem at once, from every layer",
			yaml: "kafka:\n  acks: two\n  tls:\n    cafile: x\npipeline:\n  batch_timeout: fast\n  batch_size: 0\n",
			env:  []string{"BINDWATCH_LOG_LEVL=debug", "BINDWATCH_SPOOL_DIR=spool"},
			args: []string{"--metrics.listen=9464"},
			want: []string{
				`config: kafka.tls.cafile: unknown key (did you mean "kafka.tls.ca_file"?); allowed in kafka.tls: enabled, ca_file, cert_file, key_file, server_name, insecure_skip_verify (in <file>)`,
				`config: kafka.acks: "two" is not allowed; want one of all, one, none (in <file>)`,
				`config: pipeline.batch_size: 0 is out of range; want 1 to 100000 (in <file>)`,
				`config: pipeline.batch_timeout: "fast" is not a duration (want e.g. 50ms, 1s) (in <file>)`,
				`config: spool.dir: "spool" is not allowed; want an absolute directory (from BINDWATCH_SPOOL_DIR)`,
				`config: metrics.listen: "9464" is not allowed; want host:port (port 0 picks a free one), unix:/absolute/path, systemd (socket activation), or empty to disable (from --metrics.listen)`,
				`config: BINDWATCH_LOG_LEVL: environment variable matches no key (did you mean "BINDWATCH_LOG_LEVEL"?)`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.yaml)
			c, err := loadPath(t, path, tc.env, tc.args)
			if err == nil {
				t.Fatalf("loaded %+v, want an error", *c)
			}
			want := strings.ReplaceAll(strings.Join(tc.want, "\n"), "<file>", path)
			if got := err.Error(); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
			for _, e := range joined(err) {
				if fe := (*FieldError)(nil); !errors.As(e, &fe) {
					t.Errorf("%v is not a *FieldError", e)
				}
			}
		})
	}
}

func TestLoadRefusesUnreadableFiles(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		path       string
		want       string
	}{
		{name: "missing", path: "/nonexistent/bindwatch.yaml", want: "config: open /nonexistent/bindwatch.yaml: no such file or directory"},
		{name: "not YAML", yaml: "kafka:\n  brokers: [a\n", want: "config: <file>: yaml: "},
		{name: "not a map", yaml: "- kafka\n", want: "config: <file>: yaml: unmarshal errors:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = writeConfig(t, tc.yaml)
			}
			_, err := Load(path, nil, nil)
			// The YAML parser's own words follow the prefix.
			if want := strings.ReplaceAll(tc.want, "<file>", path); err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("got %v, want %s...", err, want)
			}
		})
	}
}

// joined splits an errors.Join result back into its errors.
func joined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
