package learn

import (
	"slices"
	"strings"
	"testing"

	"github.com/bindwatch/bindwatch/audit/policy"
	"github.com/bindwatch/bindwatch/audit/state"
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

// learnAndParse writes what l learned and parses it as the audit would.
func learnAndParse(t *testing.T, seen []*state.Listener) (string, *policy.Policy) {
	t.Helper()
	l := New(policy.DefaultEphemeral)
	for _, s := range seen {
		l.Add(s)
	}
	var b strings.Builder
	if err := l.Write(&b, "learned for a test\nfrom a topic named \"x\ny\""); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse("learned.yaml", []byte(b.String()))
	if err != nil {
		t.Fatalf("the learned policy does not parse: %v\n%s", err, b.String())
	}
	return b.String(), p
}

func listenerOf(s *state.Listener) policy.Listener {
	return policy.Listener{Host: s.Host, Exe: s.Exe, Comm: s.Comm, UID: s.UID, ContainerID: s.ContainerID, Runtime: s.Runtime,
		Protocol: s.Protocol, Port: int(s.Port), Exposure: s.Exposure, CgroupPath: s.CgroupPath, CgroupOwnerUID: s.CgroupOwnerUID}
}

// A host name is the agent's to say, and whoever runs a host chooses it:
// one made of YAML adds no rule to the learned policy. Every line break
// YAML knows (\n, \r, NEL, LS, PS) is tried.
func TestLearnedPolicyEscapesHostNames(t *testing.T) {
	hostile := []string{
		"a\n- allow: all",
		"b\n  - {name: all-b, action: allow}",
		"c\r  - {name: all-c, action: allow}",
		"d\u0085  - {name: all-d, action: allow}",
		"e\u2028  - {name: all-e, action: allow}\u2029  - {name: all-e2, action: allow}",
	}
	var seen []*state.Listener
	for _, h := range hostile {
		seen = append(seen, &state.Listener{Host: h, Exe: "/usr/sbin/sshd", Protocol: "TCP", Addr: "0.0.0.0", Port: 22, Exposure: "wildcard"})
	}
	// A host name that breaks no line still reads as written.
	seen = append(seen, &state.Listener{Host: "web-1.example", Exe: "/usr/sbin/chronyd", Protocol: "UDP", Addr: "127.0.0.1", Port: 323, Exposure: "loopback"})
	text, p := learnAndParse(t, seen)
	var names []string
	for _, r := range p.Rules {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"sshd-tcp-22", "chronyd-udp-323"}) {
		t.Errorf("rules %v, want sshd-tcp-22 and chronyd-udp-323:\n%s", names, text)
	}
	nc := policy.Listener{Host: "a", Exe: "/usr/bin/nc", Protocol: "TCP", Port: 4444, Exposure: "wildcard"}
	if r := p.Allowed(&nc); r != nil {
		t.Errorf("nc allowed by %s:\n%s", r.Name, text)
	}
	for _, want := range []string{`"a\n- allow: all"`, `"c\r  - {name: all-c, action: allow}"`, `"d\u0085`, `"e\u2028`, "web-1.example"} {
		if !strings.Contains(text, want) {
			t.Errorf("policy lacks %s:\n%s", want, text)
		}
	}
	// Nothing but printable ASCII, tabs and line feeds is written: no
	// byte can end a comment but the writer's own line feeds.
	for i, r := range text {
		if r != '\n' && (r < ' ' || r > '~') {
			t.Errorf("byte %d of the policy is %q", i, r)
		}
	}
}

// A learned rule allows no more than what was seen.
func TestLearnedPolicyIsNoBroaderThanSeen(t *testing.T) {
	owner := func(uid int64) *int64 { return &uid }
	seen := []*state.Listener{
		// No executable known (the process was gone, or the kernel holds
		// it): not a rule, since one without it would allow any process
		// on the port.
		{Host: "a", Comm: "nfsd", Protocol: "TCP", Addr: "0.0.0.0", Port: 2049, Exposure: "wildcard"},
		// An executable named like a glob is that one file, not a pattern.
		{Host: "a", Exe: "/tmp/x*", Protocol: "TCP", Addr: "0.0.0.0", Port: 8000, Exposure: "wildcard"},
		{Host: "a", Exe: `/tmp/[ab]\?`, Protocol: "TCP", Addr: "0.0.0.0", Port: 8001, Exposure: "wildcard"},
		// A rootless container: its user's, not anyone's.
		{Host: "a", ContainerID: "abc123", Runtime: "podman-rootless", CgroupOwnerUID: owner(1000), Exe: "/app", Protocol: "TCP", Addr: "0.0.0.0", Port: 8080, Exposure: "wildcard"},
	}
	text, p := learnAndParse(t, seen)
	for _, s := range seen[1:] {
		pl := listenerOf(s)
		if p.Allowed(&pl) == nil {
			t.Errorf("learned policy does not allow %+v\n%s", s, text)
		}
	}
	for _, other := range []struct {
		why string
		l   policy.Listener
	}{
		{"any process on nfsd's port", policy.Listener{Exe: "/usr/bin/nc", Comm: "nfsd", Protocol: "TCP", Port: 2049, Exposure: "wildcard"}},
		{"another file matching /tmp/x*", policy.Listener{Exe: "/tmp/xevil", Protocol: "TCP", Port: 8000, Exposure: "wildcard"}},
		{"another file matching /tmp/[ab]?", policy.Listener{Exe: "/tmp/a1", Protocol: "TCP", Port: 8001, Exposure: "wildcard"}},
		{"another user's rootless container", policy.Listener{ContainerID: "abc123", Runtime: "podman-rootless", CgroupOwnerUID: owner(1001), Exe: "/app", Protocol: "TCP", Port: 8080, Exposure: "wildcard"}},
		{"a rootful container", policy.Listener{ContainerID: "abc123", Runtime: "podman", Exe: "/app", Protocol: "TCP", Port: 8080, Exposure: "wildcard"}},
	} {
		if r := p.Allowed(&other.l); r != nil {
			t.Errorf("%s allowed by %s:\n%s", other.why, r.Name, text)
		}
	}
	// The listener without an executable is there, commented out, with
	// the reason.
	for _, want := range []string{"no executable", `comm "nfsd"`, `  # - name: "unknown-tcp-2049"`} {
		if !strings.Contains(text, want) {
			t.Errorf("policy lacks %q:\n%s", want, text)
		}
	}
}

func TestImageGlob(t *testing.T) {
	for _, c := range []struct{ ref, want string }{
		{"docker.io/library/nginx:1.27", "docker.io/library/nginx:*"},
		{"docker.io/library/nginx:1.27@sha256:" + strings.Repeat("ab", 32), "docker.io/library/nginx:*"},
		{"docker.io/library/nginx@sha256:" + strings.Repeat("ab", 32), "docker.io/library/nginx@*"},
		{"localhost:5000/app:v1", "localhost:5000/app:*"},
		{"localhost:5000/app", "localhost:5000/app"}, // no tag: itself
		{"nginx", "nginx"},
		{"nginx:latest", "nginx:*"},
		// An image id names no repository: itself, not "sha256:*".
		{"sha256:" + strings.Repeat("ab", 32), "sha256:" + strings.Repeat("ab", 32)},
		{strings.Repeat("ab", 32), strings.Repeat("ab", 32)},
		{"sha256:abcd", "sha256:abcd"},
		{"quay.io/x/we*rd:1", `quay.io/x/we\*rd:*`},
	} {
		if got := imageGlob(c.ref); got != c.want {
			t.Errorf("imageGlob(%q) = %q, want %q", c.ref, got, c.want)
		}
	}
}

// One rule per workload: a container's image repository and pod
// namespace, a host service's unit, the executable otherwise; each allows
// what was seen and no more, and nothing of a user's words is taken.
func TestLearnedWorkloadRules(t *testing.T) {
	owner := func(uid int64) *int64 { return &uid }
	str := func(s string) *string { return &s }
	nginx := state.Workload{Image: "docker.io/library/nginx:1.27", ContainerName: "web-1", PodNamespace: "shop", Source: "containerd-cri"}
	seen := []*state.Listener{
		{Host: "a", ContainerID: "c1", Runtime: "containerd", Exe: "/usr/sbin/nginx", Comm: "nginx", Protocol: "TCP", Port: 80, Exposure: "wildcard", Workload: nginx},
		{Host: "b", ContainerID: "c2", Runtime: "containerd", Exe: "/usr/sbin/nginx", Comm: "nginx", Protocol: "TCP", Port: 80, Exposure: "wildcard",
			Workload: state.Workload{Image: "docker.io/library/nginx:1.26", PodNamespace: "shop"}},
		{Host: "a", Exe: "/usr/sbin/sshd", Protocol: "TCP", Port: 22, Exposure: "wildcard", CgroupPath: str("/system.slice/ssh.service"),
			Workload: state.Workload{Unit: "ssh.service"}},
		// A user's service, in its delegated subtree: the unit is its
		// user's choosing, so the executable is learned.
		{Host: "a", Exe: "/usr/bin/python3.11", UID: 1000, Protocol: "TCP", Port: 8000, Exposure: "loopback", CgroupOwnerUID: owner(1000),
			CgroupPath: str("/user.slice/user-1000.slice/user@1000.service/app.slice/web.service"), Workload: state.Workload{Unit: "user@1000.service"}},
		// A login session's scope holds whatever the user ran there.
		{Host: "a", Exe: "/usr/bin/nc.openbsd", UID: 1000, Protocol: "TCP", Port: 9000, Exposure: "wildcard",
			CgroupPath: str("/user.slice/user-1000.slice/session-3.scope"), Workload: state.Workload{Unit: "session-3.scope"}},
		// A container whose image was not known: its executable.
		{Host: "a", ContainerID: "c3", Runtime: "docker", Exe: "/app/server", Protocol: "TCP", Port: 8080, Exposure: "wildcard"},
		// A rootless container claiming nginx: its runtime and owner, as
		// before; the claim is not learned.
		{Host: "a", ContainerID: "c4", Runtime: "podman-rootless", CgroupOwnerUID: owner(1000), Exe: "/usr/sbin/nginx", Protocol: "TCP", Port: 8081, Exposure: "wildcard",
			Workload: state.Workload{Image: "docker.io/library/nginx:1.27"}},
	}
	// A container with neither image nor executable: not a rule.
	blind := &state.Listener{Host: "a", ContainerID: "c5", Runtime: "docker", Comm: "srv", Protocol: "UDP", Port: 5000, Exposure: "wildcard"}
	text, p := learnAndParse(t, append(seen, blind))
	allowed := func(s *state.Listener) *policy.Rule {
		pl := listenerOf(s)
		pl.Unit, pl.Image, pl.PodNamespace, pl.ContainerName = s.Workload.Unit, s.Workload.Image, s.Workload.PodNamespace, s.Workload.ContainerName
		return p.Allowed(&pl)
	}
	for _, s := range seen {
		if allowed(s) == nil {
			t.Errorf("learned policy does not allow %+v\n%s", s, text)
		}
	}
	for _, want := range []string{
		"# seen on 2 hosts: a, b\n  - name: \"nginx-tcp-80\"\n    action: allow\n    match:\n      container: \"containerd\"\n      image: \"docker.io/library/nginx:*\"\n      pod_namespace: \"shop\"\n",
		"  - name: \"ssh-tcp-22\"\n    action: allow\n    match:\n      unit: \"ssh.service\"\n",
		"  - name: \"python3.11-tcp-8000\"\n    action: allow\n    match:\n      exe: \"/usr/bin/python3.11\"\n",
		"  - name: \"nc.openbsd-tcp-9000\"\n    action: allow\n    match:\n      exe: \"/usr/bin/nc.openbsd\"\n",
		"      container: \"docker\"\n      exe: \"/app/server\"\n",
		"      container: \"podman-rootless\"\n      cgroup_owner_uid: \"1000\"\n      protocol: \"TCP\"\n",
		"no image or executable was known", `comm "srv"`, "  # - name: \"unknown-udp-5000\"\n  #   action: allow\n  #   match:\n  #     container: \"docker\"\n  #     protocol",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("policy lacks\n%s\n---\n%s", want, text)
		}
	}
	if strings.Contains(text, "trust") || strings.Contains(text, "unit: \"user@") || strings.Contains(text, "session-3") {
		t.Errorf("a user's words were learned:\n%s", text)
	}
	for _, other := range []struct {
		why string
		l   *state.Listener
	}{
		{"another image on nginx's port", &state.Listener{ContainerID: "c9", Runtime: "containerd", Exe: "/usr/sbin/nginx", Protocol: "TCP", Port: 80, Exposure: "wildcard",
			Workload: state.Workload{Image: "docker.io/library/httpd:2.4", PodNamespace: "shop"}}},
		{"nginx in another namespace", &state.Listener{ContainerID: "c9", Runtime: "containerd", Protocol: "TCP", Port: 80, Exposure: "wildcard",
			Workload: state.Workload{Image: "docker.io/library/nginx:1.27", PodNamespace: "dev"}}},
		{"nginx of another runtime", &state.Listener{ContainerID: "c9", Runtime: "docker", Protocol: "TCP", Port: 80, Exposure: "wildcard",
			Workload: state.Workload{Image: "docker.io/library/nginx:1.27", PodNamespace: "shop"}}},
		{"a rootless container claiming nginx on its port", &state.Listener{ContainerID: "c9", Runtime: "podman-rootless", CgroupOwnerUID: owner(1000), Protocol: "TCP", Port: 80, Exposure: "wildcard",
			Workload: state.Workload{Image: "docker.io/library/nginx:1.27", PodNamespace: "shop"}}},
		{"another unit on ssh's port", &state.Listener{Exe: "/usr/bin/nc", Protocol: "TCP", Port: 22, Exposure: "wildcard", Workload: state.Workload{Unit: "evil.service"}}},
		{"ssh.service in a user's subtree", &state.Listener{Exe: "/usr/bin/nc", Protocol: "TCP", Port: 22, Exposure: "wildcard", CgroupOwnerUID: owner(1000), Workload: state.Workload{Unit: "ssh.service"}}},
		{"another program of the user's manager", &state.Listener{Exe: "/usr/bin/nc", UID: 1000, Protocol: "TCP", Port: 8000, Exposure: "loopback", CgroupOwnerUID: owner(1000), Workload: state.Workload{Unit: "user@1000.service"}}},
		{"another docker container on the unknown one's port", &state.Listener{ContainerID: "c9", Runtime: "docker", Exe: "/bin/nc", Protocol: "UDP", Port: 5000, Exposure: "wildcard"}},
		{"another executable in a docker container", &state.Listener{ContainerID: "c9", Runtime: "docker", Exe: "/bin/nc", Protocol: "TCP", Port: 8080, Exposure: "wildcard"}},
	} {
		if r := allowed(other.l); r != nil {
			t.Errorf("%s allowed by %s:\n%s", other.why, r.Name, text)
		}
	}
}
