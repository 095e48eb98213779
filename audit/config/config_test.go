package config

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	c := Defaults()
	err := Parse("a.yaml", []byte("kafka:\n  brokers: [b1:9092, b2:9092]\n  sasl: {mechanism: plain, username: u}\naudit:\n  group: g\n  session_timeout: 6s\n  print_findings: false\n  host_expiry: 720h\n  max_hosts: 1000000\n  max_listeners: 4096\n"), &c)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Brokers) != 2 || c.Group != "g" || c.SessionTimeout != 6*time.Second || c.PrintFindings || c.SASL.Mechanism != "plain" || c.HostExpiry != 30*24*time.Hour ||
		c.MaxHosts != 1000000 || c.MaxListeners != 4096 {
		t.Errorf("%+v", c)
	}
	if a := c.Agent(); a.Kafka.Brokers[1] != "b2:9092" || a.Kafka.SASL.Username != "u" {
		t.Errorf("agent config %+v", a.Kafka)
	}
}

func TestRefused(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"audit:\n  grup: x\n", "a.yaml:2: audit.grup: unknown key; allowed in audit: group, events_topic"},
		{"kafak: {}\n", "a.yaml:1: kafak: unknown key; allowed at the top: kafka, schema, audit, metrics, log"},
		{"audit:\n  batch_size: lots\n", `a.yaml:2: audit.batch_size: "lots" is not allowed; want a whole number`},
		{"audit:\n  batch_size: 0\n", `audit.batch_size: 0 is not allowed; want 1 to 100000`},
		{"kafka:\n  sasl:\n    mechanism: kerberos\n", `kafka.sasl.mechanism: "kerberos" is not allowed; want one of none, plain`},
		{"audit:\n  session_timeout: 5\n", `audit.session_timeout: "5" is not allowed; want a duration`},
		{"log: {level: loud}\n", `log.level: "loud" is not allowed`},
		{"audit:\n  max_hosts: 10\n", `audit.max_hosts: 10 is not allowed; want 1000 to 5000000 hosts per partition`},
		{"audit:\n  max_listeners: 2000000\n", `audit.max_listeners: 2000000 is not allowed; want 1024 to 1048576 listeners per host`},
		{"audit:\n  host_expiry: 1h\n", `a.yaml:0: audit.host_expiry: 1h0m0s is not allowed; want 24h0m0s to 2160h0m0s (a day to 90 days)`},
		{"audit:\n  host_expiry: 2161h\n", `audit.host_expiry: 2161h0m0s is not allowed; want 24h0m0s to 2160h0m0s`},
		{"audit:\n  host_expiry: 7d\n", `a.yaml:2: audit.host_expiry: "7d" is not allowed; want a duration such as 10s`},
		{"audit: 3\n", "a.yaml:1: audit: want a section with keys group"},
	} {
		d := Defaults()
		err := Parse("a.yaml", []byte(c.text), &d)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %s", c.text, err, c.want)
		}
	}
}
