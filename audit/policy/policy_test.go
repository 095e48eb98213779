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
		{"unknown rule key", "rules:\n- name: a\n  action: allow\n  mtach: {}\n", `p.yaml:4: rules[0].mtach: unknown key (allowed: name, action, match, trust)`},
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
		{"bad unit glob", "rules:\n- name: a\n  action: allow\n  match:\n    unit: \"ssh[\"\n", `p.yaml:5: rules[0].match.unit: "ssh[" is not a glob`},
		{"bad image glob", "rules:\n- name: a\n  action: allow\n  match:\n    image: \"nginx:[\"\n", `p.yaml:5: rules[0].match.image: "nginx:[" is not a glob`},
		{"bad container_name", "rules:\n- name: a\n  action: allow\n  match:\n    container_name: [web, \"[\"]\n", `p.yaml:5: rules[0].match.container_name: "[" is not a glob`},
		{"bad pod_namespace", "rules:\n- name: a\n  action: allow\n  match:\n    pod_namespace: {a: b}\n", `p.yaml:5: rules[0].match.pod_namespace: want a value or a list of values, not a map`},
		{"short digest", "rules:\n- name: a\n  action: allow\n  match:\n    image_digest: sha256:abc\n", `p.yaml:5: rules[0].match.image_digest: "sha256:abc" is not an image digest (want sha256: and 64 hex digits, or sha512: and 128)`},
		{"digest glob", "rules:\n- name: a\n  action: allow\n  match:\n    image_digest: \"sha256:*\"\n", `"sha256:*" is not an image digest`},
		{"digest without algorithm", "rules:\n- name: a\n  action: allow\n  match:\n    image_digest: " + strings.Repeat("ab", 32) + "\n", `is not an image digest`},
		{"pod_labels not a map", "rules:\n- name: a\n  action: allow\n  match:\n    pod_labels: app=web\n", `p.yaml:5: rules[0].match.pod_labels: want a map of label to glob (app: web), not a value`},
		{"pod_labels empty", "rules:\n- name: a\n  action: allow\n  match:\n    pod_labels: {}\n", `rules[0].match.pod_labels: empty map`},
		{"pod_labels bad name", "rules:\n- name: a\n  action: allow\n  match:\n    pod_labels:\n      \"app name\": web\n", `p.yaml:6: rules[0].match.pod_labels: "app name" is not a label name`},
		{"pod_labels bad prefix", "rules:\n- name: a\n  action: allow\n  match:\n    pod_labels:\n      \"Example.com/app\": web\n", `"Example.com/app" is not a label name`},
		{"pod_labels bad glob", "rules:\n- name: a\n  action: allow\n  match:\n    pod_labels:\n      app: \"[\"\n", `p.yaml:6: rules[0].match.pod_labels.app: "[" is not a glob`},
		{"pod_labels no value", "rules:\n- name: a\n  action: allow\n  match:\n    pod_labels:\n      app:\n", `p.yaml:6: rules[0].match.pod_labels.app: no value`},
		{"bad trust", "rules:\n- name: a\n  action: allow\n  trust: users\n", `p.yaml:4: rules[0].trust: "users" is not a trust (allowed: system, user`},
		{"trust list", "rules:\n- name: a\n  action: allow\n  trust: [user]\n", `rules[0].trust: "" is not a trust`},
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
		// What root's runtime or systemd says the workload is identifies
		// it; what a user says (trust: user) does not.
		{"comm and image", `comm: nginx; image: "docker.io/library/nginx:*"`, "allow", false},
		{"comm and unit", `comm: sshd; unit: ssh.service`, "allow", false},
		{"comm and container_name", `comm: nginx; container_name: web`, "allow", false},
		{"comm and image_digest", `comm: nginx; image_digest: "sha256:` + strings.Repeat("ab", 32) + `"`, "allow", false},
		{"comm and pod_namespace", `comm: nginx; pod_namespace: shop`, "allow", false},
		{"comm and pod_labels", `comm: nginx; pod_labels: {app: web}`, "allow", false},
		{"comm and a user's image", `comm: nginx; image: nginx; trust: user`, "allow", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// One key a line, so the first (comm) is on line 5.
			match, trust, _ := strings.Cut(c.match, "; trust: ")
			text := "rules:\n- name: r\n  action: " + c.action + "\n  match:\n    " + strings.ReplaceAll(match, "; ", "\n    ") + "\n"
			if trust != "" {
				text += "  trust: " + trust + "\n"
			}
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
			for _, want := range []string{"PR_SET_NAME", "exe", "container (other than none or podman-rootless)", "a workload key (unit, container_name, image, image_digest, pod_namespace, pod_labels) without trust: user"} {
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

// nginx puts a listener in a container root's Docker ran, with the
// workload the agent reports for it.
func nginx(l *Listener) {
	l.ContainerID, l.Runtime, l.Exe, l.Comm, l.Port = "abc123", "docker", "/usr/sbin/nginx", "nginx", 80
	l.CgroupPath = ptr("/system.slice/docker-abc123.scope")
	l.ContainerName, l.Image, l.ImageDigest = "web-1", "docker.io/library/nginx:1.27", "sha256:"+strings.Repeat("ab", 32)
	l.PodNamespace, l.PodLabels = "shop", map[string]string{"app": "web", "app.kubernetes.io/tier": "frontend"}
}

// claims makes l a rootless container of uid 1000 claiming nginx's whole
// workload, as its user can write it.
func claims(l *Listener) {
	nginx(l)
	rootless(1000)(l)
}

// unitOf puts a host listener in a unit's cgroup, root's or, under
// user@UID.service, a user's.
func unitOf(unit string, owner *int64) func(*Listener) {
	return func(l *Listener) {
		l.Unit, l.CgroupOwnerUID, l.CgroupPath = unit, owner, ptr("/system.slice/"+unit)
		if owner != nil {
			l.CgroupPath = ptr(fmt.Sprintf("/user.slice/user-%d.slice/user@%d.service/app.slice/%s", *owner, *owner, unit))
		}
	}
}

// The workload keys match what the agent reports, only on cgroups root
// owns unless the rule says trust: user; a field not reported matches no
// value.
func TestWorkloadMatchers(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	cases := []struct {
		name  string
		match string
		trust string
		l     func(*Listener)
		want  bool
	}{
		{"image glob", `{image: "docker.io/library/nginx:*"}`, "", nginx, true},
		{"image literal", `{image: docker.io/library/nginx:1.27}`, "", nginx, true},
		{"image other tag", `{image: docker.io/library/nginx:1.26}`, "", nginx, false},
		{"image other repository", `{image: "docker.io/library/httpd:*"}`, "", nginx, false},
		{"image star does not cross /", `{image: "docker.io/*"}`, "", nginx, false},
		{"image on a host process", `{image: "*"}`, "", nil, false},
		{"image_digest", `{image_digest: "` + digest + `"}`, "", nginx, true},
		{"image_digest any case", `{image_digest: "SHA256:` + strings.ToUpper(strings.Repeat("ab", 32)) + `"}`, "", nginx, true},
		{"image_digest miss", `{image_digest: "sha256:` + strings.Repeat("cd", 32) + `"}`, "", nginx, false},
		{"container_name", `{container_name: "web-*"}`, "", nginx, true},
		{"container_name miss", `{container_name: db}`, "", nginx, false},
		{"pod_namespace", `{pod_namespace: [kube-system, shop]}`, "", nginx, true},
		{"pod_namespace miss", `{pod_namespace: "kube-*"}`, "", nginx, false},
		{"pod_namespace outside pods", `{pod_namespace: "*"}`, "", func(l *Listener) { nginx(l); l.PodNamespace = "" }, false},
		{"pod_labels all match", `{pod_labels: {app: web, app.kubernetes.io/tier: "front*"}}`, "", nginx, true},
		{"pod_labels list ORed", `{pod_labels: {app: [api, web]}}`, "", nginx, true},
		{"pod_labels one differs", `{pod_labels: {app: web, app.kubernetes.io/tier: backend}}`, "", nginx, false},
		{"pod_labels one missing", `{pod_labels: {app: web, team: "*"}}`, "", nginx, false},
		{"image and runtime", `{image: "docker.io/library/nginx:*", container: docker, port: 80}`, "", nginx, true},
		{"unit", `{unit: ssh.service}`, "", unitOf("ssh.service", nil), true},
		{"unit glob", `{unit: "ss*.service"}`, "", unitOf("ssh.service", nil), true},
		{"unit miss", `{unit: nginx.service}`, "", unitOf("ssh.service", nil), false},
		{"unit not reported", `{unit: "*"}`, "", nil, false},

		// A rootless container's workload is its user's words.
		{"image, rootless", `{image: "docker.io/library/nginx:*"}`, "", claims, false},
		{"image_digest, rootless", `{image_digest: "` + digest + `"}`, "", claims, false},
		{"container_name, rootless", `{container_name: web-1}`, "", claims, false},
		{"pod_namespace, rootless", `{pod_namespace: shop}`, "", claims, false},
		{"pod_labels, rootless", `{pod_labels: {app: web}}`, "", claims, false},
		{"image, rootless, trust: user", `{image: "docker.io/library/nginx:*"}`, "user", claims, true},
		{"image_digest, rootless, trust: user", `{image_digest: "` + digest + `"}`, "user", claims, true},
		{"pod_labels, rootless, trust: user", `{pod_labels: {app: web}}`, "user", claims, true},
		{"trust: user, whose", `{image: "docker.io/library/nginx:*", cgroup_owner_uid: 1000}`, "user", claims, true},
		{"trust: user, another user's", `{image: "docker.io/library/nginx:*", cgroup_owner_uid: 1001}`, "user", claims, false},
		{"trust: user, another image", `{image: "docker.io/library/httpd:*"}`, "user", claims, false},
		{"trust: user still matches root's", `{image: "docker.io/library/nginx:*"}`, "user", nginx, true},
		{"trust: system", `{image: "docker.io/library/nginx:*"}`, "system", claims, false},
		// Whatever claims it, a container the agent calls rootless is a
		// user's, even without an owner.
		{"image, rootless runtime", `{image: "docker.io/library/nginx:*"}`, "", func(l *Listener) { nginx(l); l.Runtime = "podman-rootless" }, false},
		// A user names the units of its own subtree.
		{"unit in a user's subtree", `{unit: ssh.service}`, "", unitOf("ssh.service", ptr[int64](1000)), false},
		{"unit user@, delegated", `{unit: "user@1000.service"}`, "", unitOf("user@1000.service", ptr[int64](1000)), false},
		{"unit in a user's subtree, trust: user", `{unit: ssh.service}`, "user", unitOf("ssh.service", ptr[int64](1000)), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := "rules:\n- name: r\n  action: allow\n  match: " + c.match + "\n"
			if c.trust != "" {
				text += "  trust: " + c.trust + "\n"
			}
			p := mustParse(t, text)
			l := base()
			if c.l != nil {
				c.l(&l)
			}
			if got := p.Allowed(&l) != nil; got != c.want {
				t.Errorf("match %s (trust %q) on %+v = %v, want %v", c.match, c.trust, l, got, c.want)
			}
		})
	}
}

// trust: user on a rule without a workload key changes nothing: warned.
func TestTrustWithoutWorkloadWarns(t *testing.T) {
	p := mustParse(t, "rules:\n- name: r\n  action: allow\n  trust: user\n  match:\n    container: podman-rootless\n")
	if len(p.Warnings) != 1 || p.Warnings[0].Line != 4 || p.Warnings[0].Key != "rules[0].trust" ||
		!strings.Contains(p.Warnings[0].Problem, "names none") {
		t.Errorf("warnings %v, want one on line 4, rules[0].trust", p.Warnings)
	}
	p = mustParse(t, "rules:\n- name: r\n  action: allow\n  trust: user\n  match:\n    image: x\n")
	if len(p.Warnings) != 0 {
		t.Errorf("warnings %v, want none", p.Warnings)
	}
}
