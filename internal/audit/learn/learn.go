// Package learn writes the policy that would have allowed every listener
// it was shown: one allow rule per workload (executable, or container
// runtime for containers; port unless ephemeral; protocol; exposure),
// merged across hosts, each commented with how many hosts it was seen on.
// The result is a starting point a person reviews, not a verdict.
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
	port      string // a number, or "ephemeral"
	protocol  string
	exposure  string
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
	if ln.ContainerID != "" {
		w.container = ln.Runtime
		if w.container == "" {
			w.container = "any"
		}
	} else {
		w.exe = ln.Exe
	}
	hosts := l.seen[w]
	if hosts == nil {
		hosts = map[string]bool{}
		l.seen[w] = hosts
	}
	hosts[cmp.Or(ln.Host, ln.HostID)] = true
}

// Len is how many rules Write will write.
func (l *Learner) Len() int { return len(l.seen) }

// Write writes the policy: most widely seen workloads first.
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
		if c := cmp.Compare(len(b.hosts), len(a.hosts)); c != 0 {
			return c
		}
		return strings.Compare(ruleName(a.w), ruleName(b.w))
	})
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(header), "\n") {
		fmt.Fprintf(&b, "# %s\n", line)
	}
	if l.ephemeral != policy.DefaultEphemeral {
		fmt.Fprintf(&b, "ephemeral_ports: \"%d-%d\"\n", l.ephemeral[0], l.ephemeral[1])
	}
	b.WriteString("rules:\n")
	if len(es) == 0 {
		b.WriteString("  []\n")
	}
	names := map[string]int{}
	for _, e := range es {
		name := ruleName(e.w)
		names[name]++
		if n := names[name]; n > 1 {
			name = fmt.Sprintf("%s-%d", name, n)
		}
		shown := e.hosts
		more := ""
		if len(shown) > 5 {
			shown, more = shown[:5], fmt.Sprintf(" and %d more", len(e.hosts)-5)
		}
		fmt.Fprintf(&b, "  # seen on %d host%s: %s%s\n", len(e.hosts), plural(len(e.hosts)), strings.Join(shown, ", "), more)
		fmt.Fprintf(&b, "  - name: %s\n    action: allow\n    match:\n", quote(name))
		if e.w.exe != "" {
			fmt.Fprintf(&b, "      exe: %s\n", quote(e.w.exe))
		} else if e.w.container != "" {
			fmt.Fprintf(&b, "      container: %s\n", quote(e.w.container))
		} else {
			b.WriteString("      container: none\n")
		}
		fmt.Fprintf(&b, "      protocol: %s\n", quote(e.w.protocol))
		fmt.Fprintf(&b, "      port: %s\n", quote(e.w.port))
		if e.w.exposure != "" {
			fmt.Fprintf(&b, "      exposure: %s\n", e.w.exposure)
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

// quote writes a YAML scalar safely: double-quoted with Go escapes, which
// YAML reads the same for the characters these values hold.
func quote(s string) string { return strconv.Quote(s) }
