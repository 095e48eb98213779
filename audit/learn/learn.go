// Package learn writes the policy that would have allowed every listener
// it was shown: one allow rule per workload, merged across hosts, each
// commented with the hosts it was seen on. A workload is, in this order:
// a container's image repository (any tag of it) and pod namespace, for a
// container of root's runtimes whose image the agent knew; a rootless
// container's runtime and owner; the systemd service of a host process
// (a system unit, not one in a user's delegated subtree); the executable
// otherwise. The rule also names the port (or ephemeral), protocol and
// exposure. The result is a starting point a person reviews, not a
// verdict.
//
// What it writes comes from the agents' records, which a host's users
// and administrators shape (host names, executable paths, images), so
// nothing of theirs is written raw: values are quoted YAML scalars,
// executables, images and namespaces are escaped to match only
// themselves, and comments are escaped to printable ASCII. No rule allows
// more than was seen: a listener with no known executable, unit or image
// is written as a commented-out rule with the reason, since a rule
// without one would allow any process on its port (or any container).
package learn

import (
	"cmp"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/bindwatch/bindwatch/audit/policy"
	"github.com/bindwatch/bindwatch/audit/state"
)

// workload is what one learned rule allows: one of exe, unit, image or
// container (a rootless one) names the program.
type workload struct {
	container string // the runtime, for containers
	owner     string // the uid owning a container's cgroup, or none for a rootless one
	image     string // the image glob, for containers of root's runtimes
	namespace string // the pod namespace, with image
	unit      string // a system service
	exe       string
	port      string // a number, or "ephemeral"
	protocol  string
	exposure  string

	// Without a program, the rule is not written; these say what else
	// was known of the listener, in its comment.
	comm, uid string
}

// unknown says whether w names no program: written commented out.
func (w workload) unknown() bool {
	return w.exe == "" && w.unit == "" && w.image == "" && w.container != policy.RuntimeRootless
}

// Learner collects listeners.
type Learner struct {
	ephemeral [2]int
	seen      map[workload]map[string]bool // hosts by workload
}

// New starts a learner; ports in the ephemeral range become "ephemeral".
func New(ephemeral [2]int) *Learner {
	return &Learner{ephemeral: ephemeral, seen: map[workload]map[string]bool{}}
}

// Add records one listener.
func (l *Learner) Add(ln *state.Listener) {
	w := workload{protocol: ln.Protocol, exposure: ln.Exposure, port: strconv.Itoa(int(ln.Port))}
	if int(ln.Port) >= l.ephemeral[0] && int(ln.Port) <= l.ephemeral[1] {
		w.port = "ephemeral"
	}
	// What the workload fields say is believed where the policy believes
	// it by default: a learned rule never needs trust: user.
	system := ln.CgroupOwnerUID == nil && ln.Runtime != policy.RuntimeRootless
	switch {
	case ln.ContainerID != "":
		w.container = cmp.Or(ln.Runtime, "any")
		if ln.CgroupOwnerUID != nil {
			w.owner = strconv.FormatInt(*ln.CgroupOwnerUID, 10)
		} else if w.container == policy.RuntimeRootless {
			w.owner = "none"
		}
		switch {
		case w.container == policy.RuntimeRootless:
			// Its image and labels are its user's words: the rule names
			// the runtime and whose it is, as before workloads.
		case system && ln.Workload.Image != "":
			w.image = imageGlob(ln.Workload.Image)
			w.namespace = ln.Workload.PodNamespace
		default:
			// No image known: the executable in it, or nothing (a rule on
			// the runtime alone would allow any of its containers).
			w.exe = ln.Exe
		}
	case system && systemService(ln.Workload.Unit):
		w.unit = ln.Workload.Unit
	default:
		w.exe = ln.Exe
	}
	if w.unknown() {
		w.comm, w.uid = ln.Comm, strconv.FormatInt(ln.UID, 10)
	}
	hosts := l.seen[w]
	if hosts == nil {
		hosts = map[string]bool{}
		l.seen[w] = hosts
	}
	hosts[cmp.Or(ln.Host, ln.HostID)] = true
}

// systemService says whether a host process's unit names what it is: a
// service root configured. Not a scope (a login session's, or whatever
// systemd-run --scope was asked to make: it holds anything its maker
// ran), and not a user's manager (user@UID.service), whose subtree the
// user fills.
func systemService(unit string) bool {
	return strings.HasSuffix(unit, ".service") && !strings.HasPrefix(unit, "user@")
}

// imageGlob is the image key a learned rule writes for a reference: any
// tag of its repository ("docker.io/library/nginx:*" for
// docker.io/library/nginx:1.27), any digest of it for a reference by
// digest only; the reference itself where it names no tag (nginx, an
// image id): no broader than what was seen.
func imageGlob(ref string) string {
	if isImageID(ref) {
		return literalGlob(ref)
	}
	name, digest, byDigest := strings.Cut(ref, "@")
	slash := strings.LastIndexByte(name, '/')
	if i := strings.LastIndexByte(name, ':'); i > slash && i > 0 {
		return literalGlob(name[:i]) + ":*"
	}
	if byDigest && name != "" && digest != "" {
		return literalGlob(name) + "@*"
	}
	return literalGlob(ref)
}

// isImageID says whether a reference is an image id (sha256:<hex>, or
// its bare hex) rather than a repository.
func isImageID(ref string) bool {
	hex := strings.TrimPrefix(ref, "sha256:")
	if len(hex) < 12 {
		return hex != ref && hex != ""
	}
	return strings.Trim(hex, "0123456789abcdef") == ""
}

// Len is how many rules Write will write.
func (l *Learner) Len() int { return len(l.seen) - l.Unknown() }

// Unknown is how many workloads Write will write commented out, for want
// of an executable.
func (l *Learner) Unknown() int {
	n := 0
	for w := range l.seen {
		if w.unknown() {
			n++
		}
	}
	return n
}

// Write writes the policy: most widely seen workloads first, then those
// written commented out.
func (l *Learner) Write(w io.Writer, header string) error {
	type entry struct {
		w     workload
		hosts []string
	}
	var es []entry
	for wl, hs := range l.seen {
		var hosts []string
		for h := range hs {
			hosts = append(hosts, h)
		}
		slices.Sort(hosts)
		es = append(es, entry{wl, hosts})
	}
	slices.SortFunc(es, func(a, b entry) int {
		if a.w.unknown() != b.w.unknown() {
			if a.w.unknown() {
				return 1
			}
			return -1
		}
		if c := cmp.Compare(len(b.hosts), len(a.hosts)); c != 0 {
			return c
		}
		return strings.Compare(ruleName(a.w), ruleName(b.w))
	})
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(header), "\n") {
		comment(&b, "", "%s", line)
	}
	if l.ephemeral != policy.DefaultEphemeral {
		fmt.Fprintf(&b, "ephemeral_ports: \"%d-%d\"\n", l.ephemeral[0], l.ephemeral[1])
	}
	b.WriteString("rules:\n")
	if l.Len() == 0 {
		b.WriteString("  []\n")
	}
	names := map[string]int{}
	for _, e := range es {
		name := ruleName(e.w)
		names[name]++
		if n := names[name]; n > 1 {
			name = fmt.Sprintf("%s-%d", name, n)
		}
		shown := make([]string, 0, 5)
		for _, h := range e.hosts[:min(5, len(e.hosts))] {
			shown = append(shown, hostLabel(h))
		}
		more := ""
		if len(e.hosts) > 5 {
			more = fmt.Sprintf(" and %d more", len(e.hosts)-5)
		}
		comment(&b, "  ", "seen on %d host%s: %s%s", len(e.hosts), plural(len(e.hosts)), strings.Join(shown, ", "), more)
		rule := func(format string, args ...any) { fmt.Fprintf(&b, "  "+format+"\n", args...) }
		if e.w.unknown() {
			what, keys := "executable", "exe, unit"
			if e.w.container != "" {
				what, keys = "image or executable", "image, exe"
			}
			comment(&b, "  ", "not a rule: no %s was known (the process had gone when the agent looked,", what)
			comment(&b, "  ", "the kernel holds the socket, or the runtime said nothing); without one it would")
			comment(&b, "  ", "allow anything on the port. Seen as comm %s, uid %s: name what it is (%s) to allow it.", strconv.QuoteToASCII(e.w.comm), e.w.uid, keys)
			rule = func(format string, args ...any) { comment(&b, "  ", format, args...) }
		}
		rule("- name: %s", quote(name))
		rule("  action: allow")
		rule("  match:")
		if e.w.container != "" {
			rule("    container: %s", quote(e.w.container))
			if e.w.owner != "" {
				rule("    cgroup_owner_uid: %s", quote(e.w.owner))
			}
		}
		switch {
		case e.w.image != "":
			rule("    image: %s", quote(e.w.image))
			if e.w.namespace != "" {
				rule("    pod_namespace: %s", quote(literalGlob(e.w.namespace)))
			}
		case e.w.unit != "":
			rule("    unit: %s", quote(literalGlob(e.w.unit)))
		case e.w.exe != "":
			rule("    exe: %s", quote(literalGlob(e.w.exe)))
		case e.w.container == "":
			rule("    container: none")
		}
		rule("    protocol: %s", quote(e.w.protocol))
		rule("    port: %s", quote(e.w.port))
		if e.w.exposure != "" {
			rule("    exposure: %s", quote(e.w.exposure))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func ruleName(w workload) string {
	var who string
	switch {
	case w.image != "":
		repo := strings.TrimSuffix(strings.TrimSuffix(w.image, ":*"), "@*")
		who = strings.ReplaceAll(path.Base(repo), `\`, "")
	case w.unit != "":
		who = strings.TrimSuffix(w.unit, ".service")
	case w.exe != "":
		who = path.Base(w.exe)
	case w.container != "" && !w.unknown():
		who = w.container + "-container"
	default:
		who = "unknown"
	}
	return fmt.Sprintf("%s-%s-%s", who, strings.ToLower(w.protocol), w.port)
}

// quote writes a YAML scalar safely: double-quoted with Go's escapes,
// which YAML reads the same, all in ASCII.
func quote(s string) string { return strconv.QuoteToASCII(s) }

// literalGlob is the policy glob that matches s and nothing else:
// path.Match's metacharacters escaped.
func literalGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// hostLabel is a host name as a comment shows it: as it is when made of
// what host names are, else quoted.
func hostLabel(h string) string {
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return strconv.QuoteToASCII(h)
		}
	}
	if h == "" {
		return `""`
	}
	return h
}

// comment writes one comment line, indented. Whatever the arguments
// hold, it is one line: everything but printable ASCII is escaped, so no
// line break YAML knows (\n, \r, NEL, LS, PS) can end the comment and
// start YAML.
func comment(b *strings.Builder, indent, format string, args ...any) {
	b.WriteString(indent + "#")
	line := fmt.Sprintf(format, args...)
	if line != "" {
		b.WriteByte(' ')
	}
	for _, r := range line {
		if r >= ' ' && r <= '~' {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRuneToASCII(r) // 'x', with the rune escaped
		b.WriteString(q[1 : len(q)-1])
	}
	b.WriteByte('\n')
}
