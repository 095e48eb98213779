package kafkasink

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/internal/kafkaconn"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{Brokers: []string{"127.0.0.1:9092"}, Topic: "t"}
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr []string // substrings, all required; none means valid
	}{
		{"minimal", func(*Config) {}, nil},
		{"everything set", func(c *Config) {
			c.Acks, c.Compression, c.ClientID = "one", "zstd", "agent"
			c.BatchSize, c.BatchTimeout, c.WriteTimeout = 1000, 5*time.Millisecond, time.Second
			c.SASL = kafkaconn.SASL{Mechanism: "scram-sha-512", Username: "u", Password: "p"}
		}, nil},
		{"no brokers", func(c *Config) { c.Brokers = nil }, []string{"brokers []: need at least one host:port"}},
		{"broker without port", func(c *Config) { c.Brokers = []string{"kafka1"} }, []string{`brokers "kafka1": want host:port`}},
		{"no topic", func(c *Config) { c.Topic = "" }, []string{"topic"}},
		{"acks", func(c *Config) { c.Acks = "-1" }, []string{`acks "-1": want one of all, one, none`}},
		{"compression", func(c *Config) { c.Compression = "brotli" }, []string{`compression "brotli": want one of none, gzip, snappy, lz4, zstd`}},
		{"negative durations", func(c *Config) { c.BatchTimeout, c.WriteTimeout = -1, -1 }, []string{"batch_timeout -1ns", "write_timeout -1ns"}},
		{"negative batch size", func(c *Config) { c.BatchSize = -1 }, []string{"batch_size -1"}},
		{"cert without key", func(c *Config) { c.TLS = kafkaconn.TLS{Enabled: true, CertFile: "c.pem"} }, []string{"set both or neither"}},
		{"tls settings with tls off", func(c *Config) { c.TLS.CAFile = "ca.pem" }, []string{"tls.enabled false"}},
		{"sasl mechanism", func(c *Config) { c.SASL.Mechanism = "gssapi" }, []string{`sasl.mechanism "gssapi": want one of none, plain, scram-sha-256, scram-sha-512`}},
		{"sasl without user", func(c *Config) { c.SASL.Mechanism = "plain" }, []string{"sasl.username"}},
		{"several at once", func(c *Config) { c.Topic, c.Acks = "", "all-of-them" }, []string{"topic", "acks"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			c.Brokers = append([]string(nil), ok.Brokers...)
			tt.edit(&c)
			_, err := New(c, quiet)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New accepted %v", c)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestConfigFiles(t *testing.T) {
	pki := newTestPKIFiles(t)
	for _, tt := range []struct {
		name    string
		tls     kafkaconn.TLS
		wantErr string
	}{
		{"missing CA file", kafkaconn.TLS{Enabled: true, CAFile: "/nonexistent/ca.pem"}, "tls.ca_file"},
		{"CA file without certificates", kafkaconn.TLS{Enabled: true, CAFile: pki.notPEM}, "no PEM certificate"},
		{"key does not match", kafkaconn.TLS{Enabled: true, CertFile: pki.cert, KeyFile: pki.otherKey}, "tls.cert_file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{Brokers: []string{"127.0.0.1:9092"}, Topic: "t", TLS: tt.tls}, quiet)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestPasswordNeverPrinted formats the config, the publisher and New's log
// in every usual way and looks for the password.
func TestPasswordNeverPrinted(t *testing.T) {
	const secret = "s3cret-P4ssw0rd"
	cfg := Config{
		Brokers: []string{"127.0.0.1:9092"}, Topic: "t",
		SASL: kafkaconn.SASL{Mechanism: "scram-sha-256", Username: "agent", Password: secret},
	}
	var logs bytes.Buffer
	json := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	text := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := New(cfg, json)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	json.Info("cfg", "config", cfg, "sasl", cfg.SASL, "publisher", p)
	text.Info("cfg", "config", cfg, "sasl", cfg.SASL, "publisher", p)

	type outer struct{ Kafka Config }
	var printed []string
	for _, v := range []any{cfg, &cfg, cfg.SASL, &cfg.SASL, p, outer{cfg}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			printed = append(printed, fmt.Sprintf(verb, v))
		}
	}
	printed = append(printed, logs.String())
	for _, s := range printed {
		if strings.Contains(s, secret) {
			t.Errorf("password printed: %s", s)
		}
	}
	if !strings.Contains(logs.String(), "[redacted]") || !strings.Contains(fmt.Sprint(cfg), "[redacted]") {
		t.Errorf("the password's presence should show as [redacted]: %s / %v", logs.String(), cfg)
	}
	if !strings.Contains(logs.String(), `"component":"publish"`) {
		t.Errorf("New's log lacks the component attribute: %s", logs.String())
	}
}
