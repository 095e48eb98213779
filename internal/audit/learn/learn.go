// Package learn writes the policy that would have allowed every listener
// it was shown: one allow rule per workload (executable, or container
// runtime for containers; port unless ephemeral; protocol; exposure),
// merged across hosts, each commented with the hosts it was seen on.
// The result is a starting point a person reviews, not a verdict.
//
// What it writes comes from the agents' records, which a host's users
// and administrators shape (host names, executable paths), so nothing of
// theirs is written raw: values are quoted YAML scalars, executables are
// escaped to match only themselves, and comments are escaped to printable
// ASCII. No rule allows more than was seen: a listener with no known
// executable is written as a commented-out rule with the reason, since a
// rule without one would allow any process on its port.
package learn

import (
	"cmp"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/bindwatch/bindwatch/internal/audit/policy"
	"github.com/bindwatch/bindwatch/internal/audit/state"
)

// workload is what one learned rule allows.
type workload struct {
	exe       string // empty for containers
	container string // the runtime, for containers
	owner     string // for a rootless container: the uid owning its cgroup, or none
	port      string // a number, or "ephemeral"
	protocol  string
	exposure  string

	// Without exe or container, the rule is not written; these say what
	// else was known of the listener, in its comment.
	comm, uid string
}

// unknown says whether w names no program: written commented out.
func (w workload) unknown() bool { return w.exe == "" && w.container == "" }

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
	switch {
	case ln.ContainerID != "":
		w.container = cmp.Or(ln.Runtime, "any")
		if w.container == policy.RuntimeRootless {
			w.owner = "none"
			if ln.CgroupOwnerUID != nil {
				w.owner = strconv.FormatInt(*ln.CgroupOwnerUID, 10)
			}
		}
	case ln.Exe != "":
		w.exe = ln.Exe
	default:
		w.comm, w.uid = ln.Comm, strconv.FormatInt(ln.UID, 10)
	}
	hosts := l.seen[w]
	if hosts == nil {
		hosts = map[string]bool{}
		l.seen[w] = hosts
	}
	hosts[cmp.Or(ln.Host, ln.HostID)] = true
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
			comment(&b, "  ", "not a rule: no executable was known (the process had gone when the agent looked,")
			comment(&b, "  ", "or the kernel holds the socket); without one it would allow any process on")
			comment(&b, "  ", "the port. Seen as comm %s, uid %s: name what it is (exe, container) to allow it.", strconv.QuoteToASCII(e.w.comm), e.w.uid)
			rule = func(format string, args ...any) { comment(&b, "  ", format, args...) }
		}
		rule("- name: %s", quote(name))
		rule("  action: allow")
		rule("  match:")
		switch {
		case e.w.exe != "":
			rule("    exe: %s", quote(literalGlob(e.w.exe)))
		case e.w.container != "":
			rule("    container: %s", quote(e.w.container))
			if e.w.owner != "" {
				rule("    cgroup_owner_uid: %s", quote(e.w.owner))
			}
		default:
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
	who := path.Base(w.exe)
	if w.exe == "" {
		who = w.container + "-container"
		if w.container == "" {
			who = "unknown"
		}
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
