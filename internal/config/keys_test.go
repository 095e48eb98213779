package config

import (
	"bufio"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/schemas"
)

const sampleFile = "../../configs/bindwatch.yaml"

// other is a valid Config in which every key differs from Defaults, so a
// test that sets all of it through one layer sees each key arrive.
func other() Config {
	return Config{
		Capture: Capture{Hook: "tracepoint", Errors: false, RingBufferBytes: 4 << 20, PID: 1234, UID: 0, Ports: []uint16{80, 443}, PinDir: "/sys/fs/bpf/bw-test"},
		Host:    Host{Name: "web-1.example", KeyFile: "/etc/bindwatch/host.key"},
		Kafka: Kafka{
			Brokers: []string{"k1.example:9093", "k2.example:9093"}, Topic: "audit.binds", ClientID: "bw-test",
			Acks: AcksOne, Compression: CompressionLZ4, BatchTimeout: 25 * time.Millisecond, WriteTimeout: 3 * time.Second, SpoolAfter: 2 * time.Second,
			TLS:  KafkaTLS{Enabled: true, CAFile: "/etc/ssl/ca.pem", CertFile: "/etc/ssl/c.pem", KeyFile: "/etc/ssl/k.pem", ServerName: "kafka.example", InsecureSkipVerify: true},
			SASL: KafkaSASL{Mechanism: SASLScramSHA512, Username: "agent", PasswordEnv: "KAFKA_PASSWORD"},
		},
		Schema:    Schema{RegistryURL: "http://127.0.0.1:8081", Version: 1},
		Pipeline:  Pipeline{BatchSize: 1000, BatchTimeout: 100 * time.Millisecond, QueueSize: 4096},
		Spool:     Spool{Dir: "/srv/spool", MaxBytes: 512 << 20, FullPolicy: DropNewest, Fsync: FsyncAlways},
		Metrics:   Metrics{Listen: "[::1]:9100"},
		Log:       Log{Level: LogDebug, Format: LogText},
		Shutdown:  Shutdown{Timeout: 30 * time.Second},
		Heartbeat: Heartbeat{Interval: 5 * time.Second},
		Workload:  Workload{DockerRoot: "/srv/docker", ContainerdState: "/var/run/ctrd", StorageRoot: "/srv/containers", StorageRunRoot: "/var/run/containers", CRISocket: "/var/run/ctrd/containerd.sock"},
	}
}

// TestKeysCoverConfig proves the key table and the Config struct list the
// same fields: a field added without a key (or the reverse) fails here.
func TestKeysCoverConfig(t *testing.T) {
	var c Config
	var leaves []uintptr
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		if v.Kind() == reflect.Struct && v.Type() != reflect.TypeOf(time.Duration(0)) {
			for i := range v.NumField() {
				walk(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
			return
		}
		leaves = append(leaves, v.Addr().Pointer())
	}
	walk(reflect.ValueOf(&c).Elem(), "Config")

	var fromKeys []uintptr
	for _, k := range keys {
		p := reflect.ValueOf(k.field(&c)).Pointer()
		if slices.Contains(fromKeys, p) {
			t.Errorf("%s: field already set by another key", k.name)
		}
		fromKeys = append(fromKeys, p)
	}
	slices.Sort(leaves)
	slices.Sort(fromKeys)
	if !slices.Equal(leaves, fromKeys) {
		t.Errorf("Config has %d leaf fields, the key table %d: they must match one to one", len(leaves), len(fromKeys))
	}
}

// TestValuesRoundTrip decodes what valueOf prints, for Defaults and for
// other: the defaults layer, LogValue and the flags' defaults rely on it.
func TestValuesRoundTrip(t *testing.T) {
	for name, want := range map[string]Config{"defaults": Defaults(), "other": other()} {
		var got Config
		for _, k := range keys {
			if err := decode(k, valueOf(k, &want), &got); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", name, got, want)
		}
	}
}

func TestDefaultsAndOtherAreValid(t *testing.T) {
	for name, c := range map[string]Config{"defaults": Defaults(), "other": other()} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	d, o := Defaults(), other()
	for _, k := range keys {
		if k.name == "schema.version" && schemas.Latest == 1 {
			continue // no other version exists yet
		}
		if k.name == "kafka.sasl.password_file" {
			continue // other uses password_env, and one excludes the other
		}
		if reflect.DeepEqual(valueOf(k, &d), valueOf(k, &o)) {
			t.Errorf("%s: other() must differ from Defaults() in every key", k.name)
		}
	}
}

// TestSampleFileIsDefaults keeps configs/bindwatch.yaml from drifting: it
// loads to exactly Defaults, it spells every key, and each key has a
// comment line above it.
func TestSampleFileIsDefaults(t *testing.T) {
	got, err := Load(sampleFile, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := Defaults(); !reflect.DeepEqual(*got, want) {
		t.Errorf("%s does not load to Defaults()\n got %+v\nwant %+v", sampleFile, *got, want)
	}

	ko := koanf.New(".")
	if err := ko.Load(file.Provider(sampleFile), yaml.Parser()); err != nil {
		t.Fatal(err)
	}
	if got, want := ko.Keys(), Keys(); !slices.Equal(got, sorted(want)) {
		t.Errorf("%s spells keys\n%v\nwant every key once\n%v", sampleFile, got, sorted(want))
	}

	f, err := os.Open(sampleFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var prev string
	var section []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, "- ") {
			prev = trimmed
			continue
		}
		depth := (len(line) - len(strings.TrimLeft(line, " "))) / 2
		name, _, _ := strings.Cut(trimmed, ":")
		section = append(section[:depth], name)
		full := strings.Join(section, ".")
		if _, isKey := lookupKey(full); isKey && !strings.HasPrefix(prev, "# ") {
			t.Errorf("%s: key %s has no comment line above it", sampleFile, full)
		}
		prev = trimmed
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestEveryKeyHasFlagAndEnv checks the names; TestEachLayerSetsEveryKey
// checks that they work.
func TestEveryKeyHasFlagAndEnv(t *testing.T) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	RegisterFlags(fs)
	envNames := make(map[string]string)
	for _, k := range keys {
		if fs.Lookup(k.name) == nil {
			t.Errorf("%s: no flag --%s", k.name, k.name)
		}
		env := EnvName(k.name)
		if other, dup := envNames[env]; dup {
			t.Errorf("%s and %s share the variable %s", other, k.name, env)
		}
		envNames[env] = k.name
		if envNotConfig(env) {
			t.Errorf("%s: its variable %s is allow-listed as not configuration", k.name, env)
		}
	}
	if got, want := EnvName("kafka.tls.ca_file"), "BINDWATCH_KAFKA_TLS_CA_FILE"; got != want {
		t.Errorf("EnvName(kafka.tls.ca_file) = %s, want %s", got, want)
	}
	if got, want := EnvName("spool.max_bytes"), "BINDWATCH_SPOOL_MAX_BYTES"; got != want {
		t.Errorf("EnvName(spool.max_bytes) = %s, want %s", got, want)
	}
}

// TestLimitsMatchBPF ties the limits Validate applies to the bpf package
// that enforces them later, so the agent refuses at start what the loader
// would refuse after.
func TestLimitsMatchBPF(t *testing.T) {
	var hooks []string
	for _, h := range append([]bpf.Hook{bpf.HookAuto}, bpf.Hooks...) {
		hooks = append(hooks, string(h))
	}
	if !slices.Equal(hooks, hookValues) {
		t.Errorf("capture.hook allows %v, bpf has %v", hookValues, hooks)
	}
	for _, h := range hookValues {
		if _, err := bpf.ParseHook(h); err != nil {
			t.Errorf("bpf.ParseHook(%q): %v", h, err)
		}
	}
	ports := make([]string, maxFilterPorts+1)
	for i := range ports {
		ports[i] = "1"
	}
	if _, err := bpf.ParsePorts(strings.Join(ports[:maxFilterPorts], ",")); err != nil {
		t.Errorf("bpf refuses %d ports, which Validate allows: %v", maxFilterPorts, err)
	}
	if _, err := bpf.ParsePorts(strings.Join(ports, ",")); err == nil {
		t.Errorf("bpf takes %d ports, Validate refuses them", maxFilterPorts+1)
	}
	if d := Defaults().Capture.RingBufferBytes; d != bpf.DefaultRingBufferBytes {
		t.Errorf("default capture.ring_buffer_bytes %d, bpf's default %d", d, bpf.DefaultRingBufferBytes)
	}
	if maxRingBufferBytes > 1<<31 {
		t.Errorf("maxRingBufferBytes %d does not fit bpf.Options.RingBufferBytes (uint32, power of two)", maxRingBufferBytes)
	}
}
