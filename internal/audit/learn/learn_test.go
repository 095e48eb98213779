package learn

import (
	"strings"
	"testing"

	"github.com/bindwatch/bindwatch/internal/audit/policy"
	"github.com/bindwatch/bindwatch/internal/audit/state"
)

func TestLearnedPolicyAllowsWhatWasSeen(t *testing.T) {
	seen := []*state.Listener{
		{Host: "a", Exe: "/usr/sbin/sshd", Protocol: "TCP", Addr: "0.0.0.0", Port: 22, Exposure: "wildcard"},
		{Host: "b", Exe: "/usr/sbin/sshd", Protocol: "TCP", Addr: "0.0.0.0", Port: 22, Exposure: "wildcard"},
		{Host: "a", Exe: "/usr/bin/python3", Protocol: "TCP", Addr: "127.0.0.1", Port: 41234, Exposure: "loopback"},
		{Host: "b", ContainerID: "abc", Runtime: "docker", Exe: "/app", Protocol: "UDP", Addr: "0.0.0.0", Port: 8125, Exposure: "wildcard"},
		{Host: "c", Exe: "/we\"ird: name", Protocol: "TCP", Addr: "::", Port: 80, Exposure: "wildcard"},
	}
	l := New(policy.DefaultEphemeral)
	for _, s := range seen {
		l.Add(s)
	}
	var b strings.Builder
	if err := l.Write(&b, "learned for a test"); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	if !strings.Contains(text, "# seen on 2 hosts: a, b\n  - name: \"sshd-tcp-22\"") || !strings.Contains(text, `port: "ephemeral"`) {
		t.Errorf("policy:\n%s", text)
	}
	p, err := policy.Parse("learned.yaml", []byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	for _, s := range seen {
		pl := policy.Listener{Host: s.Host, Exe: s.Exe, ContainerID: s.ContainerID, Runtime: s.Runtime, Protocol: s.Protocol, Port: int(s.Port), Exposure: s.Exposure}
		if p.Allowed(&pl) == nil {
			t.Errorf("learned policy does not allow %+v\n%s", s, text)
		}
	}
	other := policy.Listener{Exe: "/usr/bin/nc", Protocol: "TCP", Port: 4444, Exposure: "wildcard"}
	if r := p.Allowed(&other); r != nil {
		t.Errorf("learned policy allows nc by %s", r.Name)
	}
}
