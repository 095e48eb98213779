package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/knadh/koanf/maps"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/spf13/pflag"
)

// load runs Load on a config file holding yamlText (no file when empty),
// the environment env and the command line args, with the flags
// RegisterFlags adds.
func load(t *testing.T, yamlText string, env, args []string) (*Config, error) {
	t.Helper()
	return loadPath(t, writeConfig(t, yamlText), env, args)
}

// writeConfig returns the path of a file holding yamlText, or "" if empty.
func writeConfig(t *testing.T, yamlText string) string {
	t.Helper()
	if yamlText == "" {
		return ""
	}
	path := filepath.Join(t.TempDir(), "bindwatch.yaml")
	if err := os.WriteFile(path, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadPath(t *testing.T, path string, env, args []string) (*Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return Load(path, env, fs)
}

func TestEmptyPathIsDefaults(t *testing.T) {
	c, err := Load("", []string{"PATH=/usr/bin", "HOME=/root"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*c, Defaults()) {
		t.Errorf("got %+v, want Defaults()", *c)
	}
}

// TestEachLayerSetsEveryKey sets every key to other()'s value through one
// layer at a time: each key's name in the file, its variable and its flag
// all reach its field.
func TestEachLayerSetsEveryKey(t *testing.T) {
	want := other()
	flat := make(map[string]any)
	var env, args []string
	for _, k := range keys {
		flat[k.name] = valueOf(k, &want)
		env = append(env, EnvName(k.name)+"="+textOf(k, &want))
		args = append(args, "--"+k.name+"="+textOf(k, &want))
	}
	b, err := yaml.Parser().Marshal(maps.Unflatten(flat, "."))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		layer     string
		yaml      string
		env, args []string
	}{
		{layer: "file", yaml: string(b)},
		{layer: "environment", env: env},
		{layer: "flags", args: args},
	} {
		t.Run(tc.layer, func(t *testing.T) {
			got, err := load(t, tc.yaml, tc.env, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("\n got %+v\nwant %+v", *got, want)
			}
		})
	}
}

func TestLayering(t *testing.T) {
	for _, tc := range []struct {
		name      string
		yaml      string
		env, args []string
		get       func(c *Config) any
		want      any
	}{
		{
			name: "file over default",
			yaml: "kafka:\n  topic: from-file\n",
			get:  func(c *Config) any { return c.Kafka.Topic }, want: "from-file",
		},
		{
			name: "environment over file",
			yaml: "kafka:\n  topic: from-file\n",
			env:  []string{"BINDWATCH_KAFKA_TOPIC=from-env"},
			get:  func(c *Config) any { return c.Kafka.Topic }, want: "from-env",
		},
		{
			name: "flag over environment over file",
			yaml: "kafka:\n  topic: from-file\n",
			env:  []string{"BINDWATCH_KAFKA_TOPIC=from-env"},
			args: []string{"--kafka.topic=from-flag"},
			get:  func(c *Config) any { return c.Kafka.Topic }, want: "from-flag",
		},
		{
			name: "a flag not given leaves the file's value",
			yaml: "pipeline:\n  batch_size: 7\n",
			args: []string{"--kafka.topic=x"},
			get:  func(c *Config) any { return c.Pipeline.BatchSize }, want: 7,
		},
		{
			name: "a flag not given leaves the environment's value",
			env:  []string{"BINDWATCH_PIPELINE_BATCH_SIZE=9"},
			get:  func(c *Config) any { return c.Pipeline.BatchSize }, want: 9,
		},
		{
			name: "first of duplicate variables wins",
			env:  []string{"BINDWATCH_PIPELINE_BATCH_SIZE=9", "BINDWATCH_PIPELINE_BATCH_SIZE=10"},
			get:  func(c *Config) any { return c.Pipeline.BatchSize }, want: 9,
		},

		{
			name: "list from the file",
			yaml: "kafka:\n  brokers:\n    - a:1\n    - b:2\n",
			get:  func(c *Config) any { return c.Kafka.Brokers }, want: []string{"a:1", "b:2"},
		},
		{
			name: "list from the file as comma-separated text",
			yaml: "kafka:\n  brokers: \"a:1, b:2\"\n",
			get:  func(c *Config) any { return c.Kafka.Brokers }, want: []string{"a:1", "b:2"},
		},
		{
			name: "list from the environment replaces the file's",
			yaml: "kafka:\n  brokers: [a:1, b:2]\n",
			env:  []string{"BINDWATCH_KAFKA_BROKERS=c:3, d:4,"},
			get:  func(c *Config) any { return c.Kafka.Brokers }, want: []string{"c:3", "d:4"},
		},
		{
			name: "list flag repeated and comma-separated replaces the environment's",
			env:  []string{"BINDWATCH_KAFKA_BROKERS=c:3"},
			args: []string{"--kafka.brokers=e:5", "--kafka.brokers", "f:6,g:7"},
			get:  func(c *Config) any { return c.Kafka.Brokers }, want: []string{"e:5", "f:6", "g:7"},
		},
		{
			name: "ports from the file",
			yaml: "capture:\n  ports: [22, 80]\n",
			get:  func(c *Config) any { return c.Capture.Ports }, want: []uint16{22, 80},
		},
		{
			name: "one port from the file without a list",
			yaml: "capture:\n  ports: 53\n",
			get:  func(c *Config) any { return c.Capture.Ports }, want: []uint16{53},
		},
		{
			name: "ports from the environment",
			yaml: "capture:\n  ports: [22, 80]\n",
			env:  []string{"BINDWATCH_CAPTURE_PORTS=443,8443"},
			get:  func(c *Config) any { return c.Capture.Ports }, want: []uint16{443, 8443},
		},
		{
			name: "empty variable clears the file's ports",
			yaml: "capture:\n  ports: [22, 80]\n",
			env:  []string{"BINDWATCH_CAPTURE_PORTS="},
			get:  func(c *Config) any { return c.Capture.Ports }, want: []uint16(nil),
		},
		{
			name: "ports from a flag",
			env:  []string{"BINDWATCH_CAPTURE_PORTS=443"},
			args: []string{"--capture.ports=22"},
			get:  func(c *Config) any { return c.Capture.Ports }, want: []uint16{22},
		},

		{
			name: "duration from the file",
			yaml: "pipeline:\n  batch_timeout: 75ms\n",
			get:  func(c *Config) any { return c.Pipeline.BatchTimeout }, want: 75 * time.Millisecond,
		},
		{
			name: "duration from the environment",
			yaml: "pipeline:\n  batch_timeout: 75ms\n",
			env:  []string{"BINDWATCH_PIPELINE_BATCH_TIMEOUT=2s"},
			get:  func(c *Config) any { return c.Pipeline.BatchTimeout }, want: 2 * time.Second,
		},
		{
			name: "duration from a flag",
			env:  []string{"BINDWATCH_SHUTDOWN_TIMEOUT=2s"},
			args: []string{"--shutdown.timeout=1m30s"},
			get:  func(c *Config) any { return c.Shutdown.Timeout }, want: 90 * time.Second,
		},

		{
			name: "size in decimal units from the file",
			yaml: "spool:\n  max_bytes: 1GB\n",
			get:  func(c *Config) any { return c.Spool.MaxBytes }, want: int64(1e9),
		},
		{
			name: "size as a YAML number",
			yaml: "spool:\n  max_bytes: 2097152\n",
			get:  func(c *Config) any { return c.Spool.MaxBytes }, want: int64(2097152),
		},
		{
			name: "size in binary units from the environment",
			yaml: "spool:\n  max_bytes: 1GB\n",
			env:  []string{"BINDWATCH_SPOOL_MAX_BYTES=512MiB"},
			get:  func(c *Config) any { return c.Spool.MaxBytes }, want: int64(512 << 20),
		},
		{
			name: "size with a space from a flag",
			env:  []string{"BINDWATCH_SPOOL_MAX_BYTES=512MiB"},
			args: []string{"--spool.max_bytes=2 GiB"},
			get:  func(c *Config) any { return c.Spool.MaxBytes }, want: int64(2 << 30),
		},
		{
			name: "ring buffer size in KiB",
			yaml: "capture:\n  ring_buffer_bytes: 64KiB\n",
			get:  func(c *Config) any { return c.Capture.RingBufferBytes }, want: int64(64 << 10),
		},

		{
			name: "boolean flag alone means true",
			yaml: "capture:\n  errors: false\n",
			args: []string{"--capture.errors"},
			get:  func(c *Config) any { return c.Capture.Errors }, want: true,
		},
		{
			name: "boolean from the environment",
			env:  []string{"BINDWATCH_CAPTURE_ERRORS=false"},
			get:  func(c *Config) any { return c.Capture.Errors }, want: false,
		},
		{
			name: "uid 0 is a filter, not unset",
			env:  []string{"BINDWATCH_CAPTURE_UID=0"},
			get:  func(c *Config) any { return c.Capture.UID }, want: int64(0),
		},
		{
			name: "an empty section sets nothing",
			yaml: "kafka:\nlog:\n  level: warn\n",
			get:  func(c *Config) any { return [2]string{c.Kafka.Topic, c.Log.Level} }, want: [2]string{"bindwatch.bind-events", "warn"},
		},
		{
			name: "dotted keys in the file",
			yaml: "kafka.tls.enabled: true\n",
			get:  func(c *Config) any { return c.Kafka.TLS.Enabled }, want: true,
		},
		{
			name: "allow-listed test variables and the password's variable pass",
			yaml: "kafka:\n  sasl: {mechanism: plain, username: u, password_env: BINDWATCH_KAFKA_PASSWORD}\n",
			env: []string{"BINDWATCH_REQUIRE_ALL=1", "BINDWATCH_IN_VM=1", "BINDWATCH_TEST_HOOKS=fexit",
				"BINDWATCH_TEST_CHILD_WAIT=1", "BINDWATCH_VM_KERNEL=/tmp/vmlinuz", "BINDWATCH_KAFKA_PASSWORD=s3cret",
				"BINDWATCH_ACTIVE_HELP=0", "BINDWATCH_COMPLETION_DESCRIPTIONS=false"},
			get: func(c *Config) any { return c.Kafka.SASL.PasswordEnv }, want: "BINDWATCH_KAFKA_PASSWORD",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.yaml, tc.env, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.get(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}
