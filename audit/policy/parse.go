package policy

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DefaultEphemeral is Linux's default net.ipv4.ip_local_port_range, what
// the port value "ephemeral" means unless the file sets ephemeral_ports.
var DefaultEphemeral = [2]int{32768, 60999}

// WorkloadKeys are the match keys on what a runtime or systemd says a
// listener is: believed only on root's cgroups unless the rule says
// trust: user.
var WorkloadKeys = []string{"unit", "container_name", "image", "image_digest", "pod_namespace", "pod_labels"}

// Keys of a rule's match map, in the order docs/policy-and-findings.md lists them.
var MatchKeys = append([]string{
	"host", "container", "exe", "comm", "uid", "protocol", "port", "addr",
	"exposure", "host_netns", "cgroup_path", "cgroup_owner_uid",
}, WorkloadKeys...)

// Trust values: a rule's workload keys believe root's cgroups only
// (system, the default) or users' delegated subtrees too (user).
const (
	TrustSystem = "system"
	TrustUser   = "user"
)

var (
	topKeys   = []string{"rules", "ephemeral_ports"}
	ruleKeys  = []string{"name", "action", "match", "trust"}
	trusts    = []string{TrustSystem, TrustUser}
	actions   = []string{string(Allow), string(Require)}
	exposures = []string{"loopback", "link_local", "specific", "wildcard"}
	runtimes  = []string{"docker", "containerd", "cri-o", "podman", RuntimeRootless}
)

// RuntimeRootless is the runtime the agent reports for a Podman container
// in a cgroup subtree delegated to a user (pipeline/enrich's
// RuntimePodmanRootless). That user named it: it made a libpod-<id>.scope
// of its choosing, so its id proves nothing and anything may run in it.
// Neither any nor an id prefix matches it; only a rule that names this
// runtime does (with cgroup_owner_uid, whose).
const RuntimeRootless = "podman-rootless"

// Parse compiles a policy file's text; file names it in errors. It reports
// every problem it finds, each with the file, the line and the key. The
// policy's Warnings say what loads but likely is not meant.
func Parse(file string, text []byte) (*Policy, error) {
	pol, _, err := Check(file, text)
	return pol, err
}

// Check is Parse that also returns the warnings when the file has errors
// (bindwatch policy check shows both). The policy is nil on errors.
func Check(file string, text []byte) (*Policy, []Warning, error) {
	p := &parser{file: file}
	pol := p.policy(text)
	if len(p.errs) > 0 {
		return nil, p.warns, errors.Join(p.errs...)
	}
	pol.Warnings = p.warns
	pol.index()
	return pol, p.warns, nil
}

type parser struct {
	file  string
	errs  []error
	warns []Warning
}

func (p *parser) fail(n *yaml.Node, key, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Key: key, Problem: fmt.Sprintf(format, args...)})
}

func (p *parser) warn(n *yaml.Node, key, format string, args ...any) {
	p.warns = append(p.warns, Warning{File: p.file, Line: n.Line, Key: key, Problem: fmt.Sprintf(format, args...)})
}

func (p *parser) policy(text []byte) *Policy {
	pol := &Policy{Ephemeral: DefaultEphemeral}
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		p.errs = append(p.errs, &Error{File: p.file, Problem: err.Error()})
		return pol
	}
	if len(doc.Content) == 0 {
		p.fail(&doc, "", "empty file: want a rules: list")
		return pol
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		p.fail(top, "", "want a map with rules:")
		return pol
	}
	var rules *yaml.Node
	for k, v := range pairs(top) {
		switch k.Value {
		case "rules":
			rules = v
		case "ephemeral_ports":
			r, ok := p.portRange(v, "ephemeral_ports", v.Value, pol.Ephemeral)
			if ok && r.lo != r.hi {
				pol.Ephemeral = [2]int{r.lo, r.hi}
			} else if ok {
				p.fail(v, "ephemeral_ports", "%q is one port: want a range \"a-b\"", v.Value)
			}
		default:
			p.fail(k, k.Value, "unknown key (allowed: %s)", quoteList(topKeys))
		}
	}
	if rules == nil {
		p.fail(top, "rules", "missing: want a list of rules")
		return pol
	}
	if rules.Kind != yaml.SequenceNode {
		p.fail(rules, "rules", "want a list of rules")
		return pol
	}
	names := map[string]int{}
	for i, rn := range rules.Content {
		r := p.rule(rn, fmt.Sprintf("rules[%d]", i), pol.Ephemeral)
		if r == nil {
			continue
		}
		if prev, dup := names[r.Name]; dup {
			p.fail(rn, fmt.Sprintf("rules[%d].name", i), "%q is also the name of the rule on line %d", r.Name, prev)
		} else if r.Name != "" {
			names[r.Name] = r.Line
		}
		pol.Rules = append(pol.Rules, r)
	}
	return pol
}

func (p *parser) rule(n *yaml.Node, at string, eph [2]int) *Rule {
	if n.Kind != yaml.MappingNode {
		p.fail(n, at, "want a map with name, action and match")
		return nil
	}
	r := &Rule{Line: n.Line}
	var match, trust *yaml.Node
	for k, v := range pairs(n) {
		key := at + "." + k.Value
		switch k.Value {
		case "name":
			if v.Kind != yaml.ScalarNode || strings.TrimSpace(v.Value) == "" {
				p.fail(v, key, "want a non-empty name")
				continue
			}
			r.Name = v.Value
		case "action":
			if v.Kind != yaml.ScalarNode || !slices.Contains(actions, v.Value) {
				p.fail(v, key, "%q is not an action (allowed: %s)", v.Value, quoteList(actions))
				continue
			}
			r.Action = Action(v.Value)
		case "match":
			match = v
		case "trust":
			if v.Kind != yaml.ScalarNode || !slices.Contains(trusts, v.Value) {
				p.fail(v, key, "%q is not a trust (allowed: %s: whose cgroups the workload keys believe)", v.Value, quoteList(trusts))
				continue
			}
			trust, r.trustUser = k, v.Value == TrustUser
		default:
			p.fail(k, key, "unknown key (allowed: %s)", quoteList(ruleKeys))
		}
	}
	if r.Name == "" {
		p.fail(n, at+".name", "missing: every rule has a name")
	}
	if r.Action == "" {
		p.fail(n, at+".action", "missing (allowed: %s)", quoteList(actions))
	}
	if match != nil {
		if match.Kind != yaml.MappingNode {
			if match.Tag != "!!null" {
				p.fail(match, at+".match", "want a map of keys to values")
			}
		} else {
			p.match(r, match, at+".match", eph)
		}
	}
	if r.trustUser && !r.workload {
		p.warn(trust, at+".trust", "trust: user changes only how the workload keys (%s) match, and this rule names none",
			quoteList(WorkloadKeys))
	}
	return r
}

func (p *parser) match(r *Rule, m *yaml.Node, at string, eph [2]int) {
	var comm *yaml.Node
	for k, v := range pairs(m) {
		if k.Value == "comm" {
			comm = k
		}
		key := at + "." + k.Value
		if slices.Contains(WorkloadKeys, k.Value) {
			r.workload = true
		}
		if k.Value == "pod_labels" {
			r.podLabels = p.labels(v, key)
			continue
		}
		vals := p.values(v, key)
		if vals == nil {
			continue
		}
		switch k.Value {
		case "host", "exe", "comm", "cgroup_path", "unit", "container_name", "image", "pod_namespace":
			var gs []glob
			for _, s := range vals {
				if k.Value == "cgroup_path" && s.Value == "none" {
					r.cgroupPathNull = true
					continue
				}
				g, err := newGlob(s.Value)
				if err != nil {
					p.fail(s, key, "%q is not a glob: %v", s.Value, err)
					continue
				}
				gs = append(gs, g)
			}
			switch k.Value {
			case "host":
				r.hosts = gs
			case "exe":
				r.exes = gs
			case "comm":
				r.comms = gs
			case "cgroup_path":
				r.cgroupPaths = gs
			case "unit":
				r.units = gs
			case "container_name":
				r.containerNames = gs
			case "image":
				r.images = gs
			case "pod_namespace":
				r.podNamespaces = gs
			}
		case "image_digest":
			for _, s := range vals {
				if !isDigest(s.Value) {
					p.fail(s, key, "%q is not an image digest (want sha256: and 64 hex digits, or sha512: and 128)", s.Value)
					continue
				}
				r.imageDigests = append(r.imageDigests, strings.ToLower(s.Value))
			}
		case "container":
			for _, s := range vals {
				r.containers = append(r.containers, p.container(s, key))
			}
		case "uid", "cgroup_owner_uid":
			var ids []int64
			for _, s := range vals {
				if k.Value == "cgroup_owner_uid" && s.Value == "none" {
					r.cgroupOwnerNull = true
					continue
				}
				id, err := strconv.ParseInt(s.Value, 10, 64)
				if err != nil || id < 0 || id > 1<<32-1 {
					p.fail(s, key, "%q is not a uid (want a number 0-4294967295%s)", s.Value, noneHint(k.Value))
					continue
				}
				ids = append(ids, id)
			}
			if k.Value == "uid" {
				r.uids = ids
			} else {
				r.cgroupOwnerUIDs, r.cgroupOwnerSet = ids, true
			}
		case "protocol":
			for _, s := range vals {
				if strings.TrimSpace(s.Value) == "" {
					p.fail(s, key, "empty protocol (want TCP, UDP, MPTCP, SCTP or a number)")
					continue
				}
				r.protocols = append(r.protocols, strings.ToUpper(s.Value))
			}
		case "port":
			for _, s := range vals {
				if pr, ok := p.portRange(s, key, s.Value, eph); ok {
					r.ports = append(r.ports, pr)
				}
			}
		case "addr":
			for _, s := range vals {
				pfx, err := parsePrefix(s.Value)
				if err != nil {
					p.fail(s, key, "%q is not a CIDR or an address (%v)", s.Value, err)
					continue
				}
				r.addrs = append(r.addrs, pfx)
			}
		case "exposure":
			for _, s := range vals {
				if !slices.Contains(exposures, s.Value) {
					p.fail(s, key, "%q is not an exposure (allowed: %s)", s.Value, quoteList(exposures))
					continue
				}
				r.exposures = append(r.exposures, s.Value)
			}
		case "host_netns":
			if len(vals) != 1 || (vals[0].Value != "true" && vals[0].Value != "false") {
				p.fail(v, key, "want true or false")
				continue
			}
			r.hostNetNS = []bool{vals[0].Value == "true"}
		default:
			p.fail(k, key, "unknown key (allowed: %s)", quoteList(MatchKeys))
		}
	}
	if comm != nil && r.Action == Allow && !identified(r) {
		p.warn(comm, at+".comm", "comm is what a process calls itself (any process sets its own with "+
			"prctl(PR_SET_NAME)): this rule allows whatever takes the name; say what the program is "+
			"with %s too", identityHint())
	}
}

// values reads a scalar or a list of scalars.
func (p *parser) values(v *yaml.Node, key string) []*yaml.Node {
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			p.fail(v, key, "no value")
			return nil
		}
		return []*yaml.Node{v}
	case yaml.SequenceNode:
		if len(v.Content) == 0 {
			p.fail(v, key, "empty list: leave the key out to match everything")
			return nil
		}
		for _, e := range v.Content {
			if e.Kind != yaml.ScalarNode {
				p.fail(e, key, "want a value, not a %s", kindName(e))
				return nil
			}
		}
		return v.Content
	}
	p.fail(v, key, "want a value or a list of values, not a %s", kindName(v))
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "map"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}

// pairs walks a mapping node's keys and values.
func pairs(m *yaml.Node) func(func(k, v *yaml.Node) bool) {
	return func(yield func(k, v *yaml.Node) bool) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if !yield(m.Content[i], m.Content[i+1]) {
				return
			}
		}
	}
}
