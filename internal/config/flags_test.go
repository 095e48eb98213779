package config

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestFlagUsage checks what `bindwatch run --help` shows of a few keys:
// the type, the help and the default as the file spells it.
func TestFlagUsage(t *testing.T) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	RegisterFlags(fs)
	usage := fs.FlagUsages()
	for _, want := range []string{
		"--kafka.brokers strings",
		"bootstrap brokers, host:port (default 127.0.0.1:9092)",
		"--spool.max_bytes size",
		"largest the spool may grow (default 1GiB)",
		"--pipeline.batch_timeout duration",
		"(default 50ms)",
		"--capture.errors ",
		`--kafka.acks string`,
		`(default "all")`,
		"--capture.ports ports",
	} {
		if !strings.Contains(usage, want) {
			t.Errorf("usage lacks %q:\n%s", want, usage)
		}
	}
}

// TestFlagsOfOthers: the flag set of `bindwatch run` holds flags that are
// not keys (--config), and may define a key's flag itself.
func TestFlagsOfOthers(t *testing.T) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.String("config", "", "config file")
	fs.String("log.level", "info", "defined by the command itself")
	fs.Int("pipeline.batch_size", 500, "typed by the command itself")
	if err := fs.Parse([]string{"--config=/etc/bindwatch/bindwatch.yaml", "--log.level=debug", "--pipeline.batch_size=42"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load("", nil, fs)
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Level != "debug" || c.Pipeline.BatchSize != 42 {
		t.Errorf("log.level %q, pipeline.batch_size %d; want debug, 42", c.Log.Level, c.Pipeline.BatchSize)
	}
}
