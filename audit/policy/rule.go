package policy

import (
	"net/netip"
	"path"
	"strings"
)

// Action is what a rule does.
type Action string

// The actions: allow lets matching listeners be; require raises a finding
// for a host none of whose listeners match.
const (
	Allow   Action = "allow"
	Require Action = "require"
)

// Rule is one compiled rule. Every set key must match (AND); within a key,
// any listed value may (OR). An unset key matches everything.
type Rule struct {
	Name   string
	Action Action
	Line   int // where the rule starts in its file

	hosts      []glob
	containers []containerSel
	exes       []glob
	comms      []glob
	uids       []int64
	protocols  []string
	ports      []portRange
	addrs      []netip.Prefix
	exposures  []string
	hostNetNS  []bool

	cgroupPaths     []glob
	cgroupPathNull  bool
	cgroupOwnerUIDs []int64
	cgroupOwnerNull bool
	cgroupOwnerSet  bool

	// The workload keys: what a runtime or systemd says a listener is.
	units          []glob
	containerNames []glob
	images         []glob
	imageDigests   []string // lower case
	podNamespaces  []glob
	podLabels      []labelSel // all must match
	workload       bool       // any of them is set
	// trustUser: the workload keys also believe what a user's own cgroup
	// subtree says (trust: user); by default only root's cgroups.
	trustUser bool
}

// labelSel is one label of pod_labels: its name and the globs its value
// may match.
type labelSel struct {
	name   string
	values []glob
}

// AppliesToHost says whether the rule's host key lets it apply to host: a
// require rule only asks for listeners on the hosts it names.
func (r *Rule) AppliesToHost(host string) bool {
	return len(r.hosts) == 0 || anyGlob(r.hosts, host)
}

// Matches says whether l satisfies every key of the rule.
func (r *Rule) Matches(l *Listener) bool {
	if len(r.ports) > 0 && !anyPort(r.ports, l.Port) {
		return false
	}
	if len(r.protocols) > 0 && !anyFold(r.protocols, l.Protocol) {
		return false
	}
	if len(r.exposures) > 0 && !anyString(r.exposures, l.Exposure) {
		return false
	}
	if len(r.hosts) > 0 && !anyGlob(r.hosts, l.Host) {
		return false
	}
	if len(r.exes) > 0 && !anyGlob(r.exes, l.Exe) {
		return false
	}
	if len(r.comms) > 0 && !anyGlob(r.comms, l.Comm) {
		return false
	}
	if len(r.uids) > 0 && !anyInt(r.uids, l.UID) {
		return false
	}
	if len(r.addrs) > 0 && !anyPrefix(r.addrs, l.Addr) {
		return false
	}
	if len(r.containers) > 0 && !anyContainer(r.containers, l) {
		return false
	}
	if len(r.hostNetNS) > 0 && (l.HostNetNS == nil || *l.HostNetNS != r.hostNetNS[0]) {
		return false
	}
	if len(r.cgroupPaths) > 0 || r.cgroupPathNull {
		if l.CgroupPath == nil {
			if !r.cgroupPathNull {
				return false
			}
		} else if !anyGlob(r.cgroupPaths, *l.CgroupPath) {
			return false
		}
	}
	if r.cgroupOwnerSet {
		if l.CgroupOwnerUID == nil {
			if !r.cgroupOwnerNull {
				return false
			}
		} else if !anyInt(r.cgroupOwnerUIDs, *l.CgroupOwnerUID) {
			return false
		}
	}
	if r.workload && !r.matchWorkload(l) {
		return false
	}
	return true
}

// matchWorkload checks the workload keys. A workload field is a claim
// made by whoever controls the cgroup: a rootless container's image and
// labels are what its user wrote, and a user names the units of its own
// subtree (user@UID.service) too. So they are believed only where root
// owns the cgroup, unless the rule says trust: user. A field the agent
// did not report matches no value.
func (r *Rule) matchWorkload(l *Listener) bool {
	if !r.trustUser && !l.SystemCgroup() {
		return false
	}
	if len(r.units) > 0 && !someGlob(r.units, l.Unit) {
		return false
	}
	if len(r.containerNames) > 0 && !someGlob(r.containerNames, l.ContainerName) {
		return false
	}
	if len(r.images) > 0 && !someGlob(r.images, l.Image) {
		return false
	}
	if len(r.imageDigests) > 0 && (l.ImageDigest == "" || !anyString(r.imageDigests, strings.ToLower(l.ImageDigest))) {
		return false
	}
	if len(r.podNamespaces) > 0 && !someGlob(r.podNamespaces, l.PodNamespace) {
		return false
	}
	for _, ls := range r.podLabels {
		v, ok := l.PodLabels[ls.name]
		if !ok || !anyGlob(ls.values, v) {
			return false
		}
	}
	return true
}

// someGlob is anyGlob for a value that may be absent: an empty value
// (not reported) matches nothing, not even "*".
func someGlob(gs []glob, s string) bool { return s != "" && anyGlob(gs, s) }

// glob is a path.Match pattern, or a literal when it has no
// metacharacters (the common case, compared without the matcher).
type glob struct {
	pattern string
	literal bool
}

func newGlob(p string) (glob, error) {
	if !strings.ContainsAny(p, `*?[\`) {
		return glob{pattern: p, literal: true}, nil
	}
	if _, err := path.Match(p, ""); err != nil {
		return glob{}, err
	}
	return glob{pattern: p}, nil
}

func (g glob) match(s string) bool {
	if g.literal {
		return g.pattern == s
	}
	ok, _ := path.Match(g.pattern, s)
	return ok
}

func anyGlob(gs []glob, s string) bool {
	for _, g := range gs {
		if g.match(s) {
			return true
		}
	}
	return false
}

type portRange struct{ lo, hi int }

func anyPort(rs []portRange, p int) bool {
	for _, r := range rs {
		if p >= r.lo && p <= r.hi {
			return true
		}
	}
	return false
}

func anyFold(vs []string, s string) bool {
	for _, v := range vs {
		if v == s || strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func anyString(vs []string, s string) bool {
	for _, v := range vs {
		if v == s {
			return true
		}
	}
	return false
}

func anyInt(vs []int64, n int64) bool {
	for _, v := range vs {
		if v == n {
			return true
		}
	}
	return false
}

func anyPrefix(ps []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap() // ::ffff:127.0.0.1 is IPv4 loopback, not an IPv6 address
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// containerSel is one value of the container key.
type containerSel struct {
	kind  int // selNone, selAny, selRuntime, selPrefix
	value string
}

const (
	selNone = iota
	selAny
	selRuntime
	selPrefix
)

// userNamed says whether l's container is one its user named (see
// RuntimeRootless): any and id prefixes stand for root's containers only.
func userNamed(l *Listener) bool { return strings.EqualFold(l.Runtime, RuntimeRootless) }

func anyContainer(cs []containerSel, l *Listener) bool {
	for _, c := range cs {
		switch c.kind {
		case selNone:
			if l.ContainerID == "" {
				return true
			}
		case selAny:
			if l.ContainerID != "" && !userNamed(l) {
				return true
			}
		case selRuntime:
			if l.ContainerID != "" && strings.EqualFold(l.Runtime, c.value) {
				return true
			}
		case selPrefix:
			if strings.HasPrefix(l.ContainerID, c.value) && !userNamed(l) {
				return true
			}
		}
	}
	return false
}
