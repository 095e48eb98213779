package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

// base is a plain host listener each case changes one thing of.
func base() Listener {
	return Listener{
		Host: "web-1", Exe: "/usr/sbin/sshd", Comm: "sshd", UID: 0, Protocol: "TCP",
		Addr: netip.MustParseAddr("0.0.0.0"), Port: 22, Exposure: "wildcard", HostNetNS: ptr(true),
	}
}

// rootless puts a listener in a rootless Podman container of uid, as the
// agent reports one.
func rootless(uid int64) func(*Listener) {
	return func(l *Listener) {
		l.ContainerID, l.Runtime, l.CgroupOwnerUID = "abc123", "podman-rootless", ptr(uid)
		l.CgroupPath = ptr(fmt.Sprintf("/user.slice/user-%d.slice/user@%d.service/user.slice/libpod-abc123.scope", uid, uid))
	}
}

func mustParse(t *testing.T, text string) *Policy {
	t.Helper()
	p, err := Parse("p.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMatchers(t *testing.T) {
	cases := []struct {
		name  string
		match string
		l     func(*Listener)
		want  bool
	}{
		{"no keys matches all", `{}`, nil, true},
		{"host literal", `{host: web-1}`, nil, true},
		{"host glob", `{host: "web-*"}`, nil, true},
		{"host glob miss", `{host: "db-*"}`, nil, false},
		{"host list OR", `{host: [db-1, web-1]}`, nil, true},
		{"container none on host", `{container: none}`, nil, true},
		{"container none in container", `{container: none}`, func(l *Listener) { l.ContainerID = "abc123"; l.Runtime = "docker" }, false},
		{"container any", `{container: any}`, func(l *Listener) { l.ContainerID = "abc123"; l.Runtime = "docker" }, true},
		{"container any on host", `{container: any}`, nil, false},
		{"container runtime", `{container: docker}`, func(l *Listener) { l.ContainerID = "abc123"; l.Runtime = "docker" }, true},
		{"container other runtime", `{container: podman}`, func(l *Listener) { l.ContainerID = "abc123"; l.Runtime = "docker" }, false},
		{"container id prefix", `{container: ABC1}`, func(l *Listener) { l.ContainerID = "abc123"; l.Runtime = "docker" }, true},
		{"container id prefix miss", `{container: abd}`, func(l *Listener) { l.ContainerID = "abc123" }, false},
		// A rootless Podman container is named by its user (a libpod-<id>.scope
		// in its own cgroup subtree): only a rule that says so matches it.
		{"container any, rootless", `{container: any}`, rootless(1000), false},
		{"container id prefix, rootless", `{container: abc1}`, rootless(1000), false},
		{"container podman, rootless", `{container: podman}`, rootless(1000), false},
		{"container none, rootless", `{container: none}`, rootless(1000), false},
		{"container podman-rootless", `{container: podman-rootless}`, rootless(1000), true},
		{"container podman-rootless, its user", `{container: podman-rootless, cgroup_owner_uid: 1000}`, rootless(1000), true},
		{"container podman-rootless, another user", `{container: podman-rootless, cgroup_owner_uid: 1000}`, rootless(1001), false},
		{"container podman-rootless, rootful", `{container: podman-rootless}`, func(l *Listener) { l.ContainerID = "abc123"; l.Runtime = "podman" }, false},
		{"container podman-rootless on host", `{container: podman-rootless}`, nil, false},
		{"container any or podman-rootless", `{container: [any, podman-rootless]}`, rootless(1000), true},
		{"exe", `{exe: /usr/sbin/sshd}`, nil, true},
		{"exe glob", `{exe: "/usr/sbin/*"}`, nil, true},
		{"exe miss", `{exe: /usr/bin/nc}`, nil, false},
		{"comm", `{comm: sshd}`, nil, true},
		{"comm glob", `{comm: "ss?d"}`, nil, true},
		{"uid", `{uid: 0}`, nil, true},
		{"uid list miss", `{uid: [100, 1000]}`, nil, false},
		{"protocol any case", `{protocol: tcp}`, nil, true},
		{"protocol miss", `{protocol: UDP}`, nil, false},
		{"port", `{port: 22}`, nil, true},
		{"port string", `{port: "22"}`, nil, true},
		{"port range", `{port: "20-30"}`, nil, true},
		{"port range miss", `{port: "23-30"}`, nil, false},
		{"port list", `{port: [80, 443, 22]}`, nil, true},
		{"port ephemeral", `{port: ephemeral}`, func(l *Listener) { l.Port = 40000 }, true},
		{"port ephemeral miss", `{port: ephemeral}`, nil, false},
		{"addr cidr", `{addr: 0.0.0.0/0}`, nil, true},
		{"addr loopback", `{addr: 127.0.0.0/8}`, func(l *Listener) { l.Addr = netip.MustParseAddr("127.0.0.53") }, true},
		{"addr v4-mapped", `{addr: 127.0.0.0/8}`, func(l *Listener) { l.Addr = netip.MustParseAddr("::ffff:127.0.0.1") }, true},
		{"addr single", `{addr: "::1"}`, func(l *Listener) { l.Addr = netip.MustParseAddr("::1") }, true},
		{"addr miss", `{addr: 10.0.0.0/8}`, nil, false},
		{"exposure", `{exposure: wildcard}`, nil, true},
		{"exposure miss", `{exposure: [loopback, link_local]}`, nil, false},
		{"host_netns", `{host_netns: true}`, nil, true},
		{"host_netns false", `{host_netns: false}`, nil, false},
		{"host_netns unknown", `{host_netns: true}`, func(l *Listener) { l.HostNetNS = nil }, false},
		{"cgroup_path", `{cgroup_path: "/system.slice/*"}`, func(l *Listener) { l.CgroupPath = ptr("/system.slice/ssh.service") }, true},
		{"cgroup_path absent", `{cgroup_path: "/system.slice/*"}`, nil, false},
		{"cgroup_path none", `{cgroup_path: none}`, nil, true},
		{"cgroup_owner_uid", `{cgroup_owner_uid: 1000}`, func(l *Listener) { l.CgroupOwnerUID = ptr[int64](1000) }, true},
		{"cgroup_owner_uid root-owned", `{cgroup_owner_uid: 1000}`, nil, false},
		{"cgroup_owner_uid none", `{cgroup_owner_uid: none}`, nil, true},
		{"cgroup_owner_uid none delegated", `{cgroup_owner_uid: none}`, func(l *Listener) { l.CgroupOwnerUID = ptr[int64](1000) }, false},
		{"keys AND", `{exe: /usr/sbin/sshd, port: 2222}`, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustParse(t, "rules:\n- name: r\n  action: allow\n  match: "+c.match+"\n")
			l := base()
			if c.l != nil {
				c.l(&l)
			}
			if got := p.Allowed(&l) != nil; got != c.want {
				t.Errorf("match %s on %+v = %v, want %v", c.match, l, got, c.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name, text, want string
	}{
		{"unknown top key", "rulez: []\n", `p.yaml:1: rulez: unknown key (allowed: rules, ephemeral_ports)`},
		{"no rules", "ephemeral_ports: 1024-2048\n", `p.yaml:1: rules: missing`},
		{"unknown rule key", "rules:\n- name: a\n  action: allow\n  mtach: {}\n", `p.yaml:4: rules[0].mtach: unknown key (allowed: name, action, match)`},
		{"unknown match key", "rules:\n- name: a\n  action: allow\n  match:\n    prot: 22\n", `p.yaml:5: rules[0].match.prot: unknown key (allowed: host, container`},
		{"bad action", "rules:\n- name: a\n  action: deny\n", `p.yaml:3: rules[0].action: "deny" is not an action (allowed: allow, require)`},
		{"missing name", "rules:\n- action: allow\n", `p.yaml:2: rules[0].name: missing`},
		{"missing action", "rules:\n- name: a\n", `p.yaml:2: rules[0].action: missing`},
		{"duplicate name", "rules:\n- {name: a, action: allow}\n- {name: a, action: allow}\n", `p.yaml:3: rules[1].name: "a" is also the name of the rule on line 2`},
		{"bad port", "rules:\n- name: a\n  action: allow\n  match:\n    port: [22, 70000]\n", `p.yaml:5: rules[0].match.port: "70000" is not a port`},
		{"bad port range", "rules:\n- name: a\n  action: allow\n  match:\n    port: \"30-20\"\n", `p.yaml:5: rules[0].match.port: "30-20" is not a port`},
		{"bad port word", "rules:\n- name: a\n  action: allow\n  match:\n    port: http\n", `"http" is not a port`},
		{"bad cidr", "rules:\n- name: a\n  action: allow\n  match:\n    addr: 10.0.0.0/33\n", `p.yaml:5: rules[0].match.addr: "10.0.0.0/33" is not a CIDR`},
		{"bad addr", "rules:\n- name: a\n  action: allow\n  match:\n    addr: localhost\n", `"localhost" is not a CIDR`},
		{"bad exposure", "rules:\n- name: a\n  action: allow\n  match:\n    exposure: public\n", `"public" is not an exposure (allowed: loopback, link_local, specific, wildcard)`},
		{"bad container", "rules:\n- name: a\n  action: allow\n  match:\n    container: lxc-x\n", `"lxc-x" is not a container`},
		{"bad uid", "rules:\n- name: a\n  action: allow\n  match:\n    uid: root\n", `"root" is not a uid`},
		{"bad host_netns", "rules:\n- name: a\n  action: allow\n  match:\n    host_netns: yes-ish\n", `rules[0].match.host_netns: want true or false`},
		{"bad glob", "rules:\n- name: a\n  action: allow\n  match:\n    exe: \"/usr/[\"\n", `is not a glob`},
		{"empty list", "rules:\n- name: a\n  action: allow\n  match:\n    port: []\n", `empty list`},
		{"map value", "rules:\n- name: a\n  action: allow\n  match:\n    port: {a: 1}\n", `not a map`},
		{"bad ephemeral", "ephemeral_ports: 40000\nrules: []\n", `ephemeral_ports: "40000" is one port`},
		{"not yaml", "rules: [\n", `p.yaml: yaml:`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(c.text))
			if err == nil {
				t.Fatalf("accepted:\n%s", c.text)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error\n %v\nwant it to contain\n %s", err, c.want)
			}
		})
	}
}

// Every mistake of a file is reported at once.
func TestErrorsTogether(t *testing.T) {
	_, err := Parse("p.yaml", []byte("rules:\n- name: a\n  action: allow\n  match:\n    port: 99999\n    addr: x\n    colour: red\n"))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"p.yaml:5: rules[0].match.port", "p.yaml:6: rules[0].match.addr", "p.yaml:7: rules[0].match.colour"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nlacks %s", err, want)
		}
	}
}

func TestFirstAllowInFileOrder(t *testing.T) {
	p := mustParse(t, `
ephemeral_ports: 40000-50000
rules:
  - {name: any-loopback, action: allow, match: {exposure: loopback}}
  - {name: ssh, action: allow, match: {port: 22, exe: /usr/sbin/sshd}}
  - {name: wide, action: allow, match: {port: "1-1024"}}
  - {name: eph, action: allow, match: {port: ephemeral, uid: 1000}}
  - {name: sshd-up, action: require, match: {port: 22}}
`)
	l := base()
	if r := p.Allowed(&l); r == nil || r.Name != "ssh" {
		t.Errorf("allowed by %v, want ssh", r)
	}
	l.Exposure = "loopback"
	if r := p.Allowed(&l); r == nil || r.Name != "any-loopback" {
		t.Errorf("allowed by %v, want any-loopback", r)
	}
	l = base()
	l.Exe = "/usr/bin/nc"
	if r := p.Allowed(&l); r == nil || r.Name != "wide" {
		t.Errorf("allowed by %v, want wide", r)
	}
	l.Port, l.UID = 45000, 1000
	if r := p.Allowed(&l); r == nil || r.Name != "eph" {
		t.Errorf("allowed by %v, want eph (ephemeral_ports 40000-50000)", r)
	}
	l.Port = 35000
	if r := p.Allowed(&l); r != nil {
		t.Errorf("allowed by %s, want none: 35000 is outside ephemeral_ports", r.Name)
	}
	if rs := p.Requires(); len(rs) != 1 || rs[0].Name != "sshd-up" {
		t.Errorf("requires %v", rs)
	}
	// A require rule does not allow.
	p2 := mustParse(t, "rules:\n- {name: r, action: require, match: {port: 22}}\n")
	l = base()
	if r := p2.Allowed(&l); r != nil {
		t.Errorf("require rule %s allowed a listener", r.Name)
	}
}

func TestAppliesToHost(t *testing.T) {
	p := mustParse(t, "rules:\n- {name: r, action: require, match: {host: \"web-*\", exe: /usr/sbin/sshd}}\n")
	r := p.Requires()[0]
	if !r.AppliesToHost("web-2") || r.AppliesToHost("db-1") {
		t.Error("host key does not scope the require rule")
	}
}

// bigPolicy is n allow rules like a fleet's: most pin a port and an exe.
func bigPolicy(n int) string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range n {
		switch i % 10 {
		case 0:
			fmt.Fprintf(&b, "- {name: r%d, action: allow, match: {exe: \"/opt/app%d/*\", port: ephemeral, container: any}}\n", i, i)
		case 1:
			fmt.Fprintf(&b, "- {name: r%d, action: allow, match: {host: \"h%d-*\", addr: 10.%d.0.0/16, protocol: UDP}}\n", i, i, i%250)
		default:
			fmt.Fprintf(&b, "- {name: r%d, action: allow, match: {exe: /usr/sbin/d%d, port: [%d, %d], protocol: TCP, exposure: [wildcard, specific]}}\n", i, i, 1000+i, 20000+i)
		}
	}
	return b.String()
}

func TestBigPolicyParses(t *testing.T) {
	p := mustParse(t, bigPolicy(1000))
	l := base()
	l.Exe, l.Port = "/usr/sbin/d502", 1502
	if r := p.Allowed(&l); r == nil || r.Name != "r502" {
		t.Errorf("allowed by %v, want r502", r)
	}
}

// An allow rule that names comm, what a process calls itself, without a
// key that says what program it is, is warned about: with the line and the
// key, and the keys that would do.
func TestCommWithoutIdentityWarns(t *testing.T) {
	cases := []struct {
		name, match string // match: its keys, "; " between them
		action      string
		warn        bool
	}{
		{"comm alone", `comm: avahi-daemon; port: 5353`, "allow", true},
		{"comm glob alone", `comm: "avahi*"`, "allow", true},
		{"comm and exe", `comm: avahi-daemon; exe: /usr/sbin/avahi-daemon`, "allow", false},
		{"comm and a runtime", `comm: nginx; container: docker`, "allow", false},
		{"comm and any container", `comm: nginx; container: any`, "allow", false},
		{"comm and an id prefix", `comm: nginx; container: abc123`, "allow", false},
		{"comm and rootless podman", `comm: nginx; container: podman-rootless`, "allow", true},
		{"comm and any or rootless podman", `comm: nginx; container: [any, podman-rootless]`, "allow", true},
		{"comm outside containers", `comm: nginx; container: none`, "allow", true},
		{"comm, none or a runtime", `comm: nginx; container: [none, docker]`, "allow", true},
		{"comm and uid", `comm: nginx; uid: 33`, "allow", true},
		{"no comm", `port: 22`, "allow", false},
		{"require on comm", `comm: sshd`, "require", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// One key a line, so the first (comm) is on line 5.
			text := "rules:\n- name: r\n  action: " + c.action + "\n  match:\n    " + strings.ReplaceAll(c.match, "; ", "\n    ") + "\n"
			p := mustParse(t, text)
			if !c.warn {
				if len(p.Warnings) != 0 {
					t.Errorf("%s: warnings %v, want none", c.match, p.Warnings)
				}
				return
			}
			if len(p.Warnings) != 1 {
				t.Fatalf("%s: warnings %v, want one", c.match, p.Warnings)
			}
			w := p.Warnings[0]
			if w.File != "p.yaml" || w.Line != 5 || w.Key != "rules[0].match.comm" {
				t.Errorf("%s: warning at %s:%d %s, want p.yaml:5 rules[0].match.comm", c.match, w.File, w.Line, w.Key)
			}
			for _, want := range []string{"PR_SET_NAME", "exe", "container (other than none or podman-rootless)"} {
				if !strings.Contains(w.Problem, want) {
					t.Errorf("%s: warning %q lacks %q", c.match, w.Problem, want)
				}
			}
			if got, want := w.String(), "policy: p.yaml:5: warning: rules[0].match.comm: "; !strings.HasPrefix(got, want) {
				t.Errorf("warning reads %q, want it to start with %q", got, want)
			}
		})
	}
}

// Check is the same parse: a file with errors still reports its warnings,
// and one without any has the warnings Parse gives.
func TestCheck(t *testing.T) {
	text := "rules:\n- name: a\n  action: allow\n  match:\n    comm: x\n- name: b\n  action: allow\n  match:\n    port: 70000\n"
	pol, ws, err := Check("p.yaml", []byte(text))
	if pol != nil {
		t.Error("a policy with errors compiled")
	}
	if err == nil || !strings.Contains(err.Error(), `p.yaml:9: rules[1].match.port: "70000" is not a port`) {
		t.Errorf("error %v, want the bad port", err)
	}
	if len(ws) != 1 || ws[0].Key != "rules[0].match.comm" {
		t.Errorf("warnings %v, want rules[0].match.comm", ws)
	}
	pol, ws, err = Check("p.yaml", []byte("rules:\n- {name: a, action: allow, match: {comm: x}}\n- {name: b, action: allow, match: {comm: y}}\n"))
	if err != nil || len(ws) != 2 || ws[0].Line != 2 || ws[1].Line != 3 || !slices.Equal(ws, pol.Warnings) {
		t.Errorf("warnings %v, error %v; want two, on lines 2 and 3, the policy's own", ws, err)
	}
}
