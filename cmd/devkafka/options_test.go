package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestListenAddr(t *testing.T) {
	tests := []struct {
		in      string
		allow   bool
		want    string
		wantErr string
	}{
		{in: "127.0.0.1:9092", want: "127.0.0.1:9092"},
		{in: "localhost:9092", want: "127.0.0.1:9092"},
		{in: "127.0.0.2:0", want: "127.0.0.2:0"},
		{in: "[::1]:9092", want: "[::1]:9092"},
		{in: "[::ffff:127.0.0.1]:9092", want: "127.0.0.1:9092"},
		{in: "192.0.2.10:9092", wantErr: "not a loopback address"},
		{in: "192.0.2.10:9092", allow: true, want: "192.0.2.10:9092"},
		{in: "0.0.0.0:9092", allow: true, wantErr: "name one address"},
		{in: "[::]:9092", allow: true, wantErr: "name one address"},
		{in: ":9092", wantErr: "not a host name"},
		{in: "kafka.example:9092", allow: true, wantErr: "not a host name"},
		{in: "127.0.0.1", wantErr: "want IP:port"},
		{in: "127.0.0.1:65536", wantErr: "port"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/allow=%v", tt.in, tt.allow), func(t *testing.T) {
			got, err := listenAddr("--listen", tt.in, tt.allow)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("listenAddr = %v, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("listenAddr = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		args     string
		brokers  string
		registry string
		topics   string
		wantErr  string
	}{
		{args: "", brokers: "[127.0.0.1:9092 127.0.0.1:9093 127.0.0.1:9094]", topics: "[]"},
		{args: "--listen 127.0.0.1:0 --brokers 2", brokers: "[127.0.0.1:0 127.0.0.1:0]", topics: "[]"},
		{args: "--listen [::1]:19092 --brokers 1 --registry localhost:8081 --topic a --topic b",
			brokers: "[[::1]:19092]", registry: "127.0.0.1:8081", topics: "[a b]"},
		{args: "--listen 127.0.0.1:65534", wantErr: "ports past 65535"},
		{args: "--brokers 0", wantErr: "--brokers 0"},
		{args: "--partitions 0", wantErr: "--partitions 0"},
		{args: "--registry 10.0.0.1:8081", wantErr: "--registry \"10.0.0.1:8081\" is not a loopback address"},
		{args: "--registry 10.0.0.1:8081 --allow-non-loopback", brokers: "[127.0.0.1:9092 127.0.0.1:9093 127.0.0.1:9094]", registry: "10.0.0.1:8081", topics: "[]"},
		{args: "--bogus", wantErr: "unknown flag"},
		{args: "extra", wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			o, err := parseOptions(strings.Fields(tt.args), io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, new(usageError)) {
					t.Fatalf("parseOptions = %v; want usage error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			reg := ""
			if o.registry != nil {
				reg = o.registry.String()
			}
			if fmt.Sprint(o.brokers) != tt.brokers || reg != tt.registry || fmt.Sprint(o.topics) != tt.topics {
				t.Errorf("brokers %v registry %q topics %v; want %s %q %s", o.brokers, reg, o.topics, tt.brokers, tt.registry, tt.topics)
			}
		})
	}
}

func TestHelpSaysNotForProduction(t *testing.T) {
	var out strings.Builder
	_, err := parseOptions([]string{"--help"}, &out)
	if !errors.Is(err, pflag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"NOT FOR PRODUCTION", "in memory unless", "no authentication", "--allow-non-loopback", "--data-dir"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}
