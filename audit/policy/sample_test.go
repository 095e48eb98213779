package policy

import (
	"net/netip"
	"os"
	"strings"
	"testing"
)

// configs/policy.yaml keeps a fresh Debian host quiet: each of its
// listeners is allowed, and nc on a port is not.
func TestSamplePolicy(t *testing.T) {
	b, err := os.ReadFile("../../configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse("configs/policy.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range p.Warnings {
		t.Errorf("the shipped policy warns: %s", w)
	}
	debian := []Listener{
		{Exe: "/usr/sbin/sshd", Comm: "sshd", Protocol: "TCP", Addr: netip.MustParseAddr("0.0.0.0"), Port: 22, Exposure: "wildcard"},
		{Exe: "/usr/sbin/sshd", Comm: "sshd", Protocol: "TCP", Addr: netip.MustParseAddr("::"), Port: 22, Exposure: "wildcard"},
		{Exe: "/usr/lib/systemd/systemd-resolved", Comm: "systemd-resolve", UID: 991, Protocol: "UDP", Addr: netip.MustParseAddr("127.0.0.53"), Port: 53, Exposure: "loopback"},
		{Exe: "/usr/lib/systemd/systemd-resolved", Comm: "systemd-resolve", UID: 991, Protocol: "TCP", Addr: netip.MustParseAddr("127.0.0.54"), Port: 53, Exposure: "loopback"},
		{Exe: "/usr/sbin/chronyd", Comm: "chronyd", UID: 100, Protocol: "UDP", Addr: netip.MustParseAddr("127.0.0.1"), Port: 323, Exposure: "loopback"},
		{Exe: "/usr/sbin/chronyd", Comm: "chronyd", UID: 100, Protocol: "UDP", Addr: netip.MustParseAddr("::1"), Port: 323, Exposure: "loopback"},
		{Exe: "/usr/sbin/dhclient", Comm: "dhclient", Protocol: "UDP", Addr: netip.MustParseAddr("0.0.0.0"), Port: 68, Exposure: "wildcard"},
		{Exe: "/usr/sbin/avahi-daemon", Comm: "avahi-daemon", Protocol: "UDP", Addr: netip.MustParseAddr("0.0.0.0"), Port: 5353, Exposure: "wildcard"},
		{Exe: "/usr/sbin/avahi-daemon", Comm: "avahi-daemon", Protocol: "UDP", Addr: netip.MustParseAddr("0.0.0.0"), Port: 44123, Exposure: "wildcard"},
	}
	for _, l := range debian {
		if p.Allowed(&l) == nil {
			t.Errorf("not allowed: %+v", l)
		}
	}
	nc := Listener{Exe: "/usr/bin/nc.openbsd", Comm: "nc", Protocol: "TCP", Addr: netip.MustParseAddr("0.0.0.0"), Port: 4444, Exposure: "wildcard"}
	if r := p.Allowed(&nc); r != nil {
		t.Errorf("nc allowed by %s", r.Name)
	}
	// A process that calls itself avahi-daemon (prctl(PR_SET_NAME)) is
	// not avahi.
	named := Listener{Exe: "/usr/bin/python3.11", Comm: "avahi-daemon", UID: 1000, Protocol: "UDP", Addr: netip.MustParseAddr("0.0.0.0"), Port: 5353, Exposure: "wildcard"}
	if r := p.Allowed(&named); r != nil {
		t.Errorf("python3 named avahi-daemon allowed by %s", r.Name)
	}
	exposed := Listener{Exe: "/usr/sbin/chronyd", Protocol: "UDP", Addr: netip.MustParseAddr("0.0.0.0"), Port: 323, Exposure: "wildcard"}
	if r := p.Allowed(&exposed); r != nil {
		t.Errorf("chronyd's command port on every address allowed by %s", r.Name)
	}
}

// The commented-out container example of configs/policy.yaml, uncommented,
// allows nginx from root's runtimes and not a user's claim to be nginx.
func TestSamplePolicyContainerExample(t *testing.T) {
	b, err := os.ReadFile("../../configs/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var example []string
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "  # "); ok && (strings.HasPrefix(rest, "- ") || strings.HasPrefix(rest, "  ")) {
			example = append(example, "  "+rest)
		}
	}
	p, err := Parse("example", []byte("rules:\n"+strings.Join(example, "\n")+"\n"))
	if err != nil || len(p.Rules) != 1 {
		t.Fatalf("the example: %v\n%s", err, strings.Join(example, "\n"))
	}
	l := base()
	nginx(&l)
	if p.Allowed(&l) == nil {
		t.Errorf("the example does not allow %+v", l)
	}
	l = base()
	claims(&l)
	if r := p.Allowed(&l); r != nil {
		t.Errorf("the example allows a rootless container claiming nginx")
	}
}
