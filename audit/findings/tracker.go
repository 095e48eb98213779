package findings

import (
	"net/netip"
	"slices"
	"time"

	"github.com/bindwatch/bindwatch/audit/policy"
	"github.com/bindwatch/bindwatch/audit/state"
)

// Tracker follows the findings of the hosts of one table.
type Tracker struct {
	pol  *policy.Policy
	open map[string]*Finding

	// unallowed lists the members of each service no allow rule matches,
	// by the service's finding id.
	unallowed map[string]map[state.Key]*state.Listener
	// wants counts, per host and require rule, the listeners matching it.
	wants map[string]map[*policy.Rule]int
	// emitted is, per host, how far the findings topic already has the
	// transitions: a replay up to there publishes nothing again.
	emitted map[string]Mark
	// coverageOf has the ids of each host's open coverage findings.
	coverageOf map[string]map[string]bool
	// openKinds counts the open findings by kind.
	openKinds map[string]int
	// beforeSnapshot holds, per host, a gap seen at the first record of a
	// snapshot in progress: raised only if that snapshot does not sweep.
	beforeSnapshot map[string]state.Gap

	// Evaluations counts policy evaluations, for the metrics.
	Evaluations uint64
}

// Mark is a position in a host's timeline.
type Mark struct {
	BootID string
	Seq    int64
}

// New starts a tracker with no findings.
func New(pol *policy.Policy) *Tracker {
	return &Tracker{
		pol: pol, open: map[string]*Finding{}, unallowed: map[string]map[state.Key]*state.Listener{},
		wants: map[string]map[*policy.Rule]int{}, emitted: map[string]Mark{}, coverageOf: map[string]map[string]bool{},
		openKinds: map[string]int{}, beforeSnapshot: map[string]state.Gap{},
	}
}

// Restore takes a finding back from the findings topic (its latest value)
// before the table's records are replayed.
func (t *Tracker) Restore(f Finding) {
	t.note(&f)
	if m := t.emitted[f.HostID]; m.BootID != f.BootID || f.Seq > m.Seq {
		t.emitted[f.HostID] = Mark{BootID: f.BootID, Seq: f.Seq}
	}
}

// OpenCount is how many findings are open.
func (t *Tracker) OpenCount() int { return len(t.open) }

// IsOpen says whether a finding is open.
func (t *Tracker) IsOpen(id string) bool { return t.open[id] != nil }

// Recount rebuilds what the tracker derives from the table (the unallowed
// members and the require counts) without publishing anything: after a
// rebuild from the state topic.
func (t *Tracker) Recount(tb *state.Table) {
	t.unallowed = map[string]map[state.Key]*state.Listener{}
	t.wants = map[string]map[*policy.Rule]int{}
	for _, h := range tb.Hosts {
		for _, l := range h.Listeners {
			t.count(h, l, 1)
		}
	}
}

// Apply turns one event's changes into transitions. ev is the record that
// made them. Transitions the findings topic already holds (a replay) come
// back with replayed set.
func (t *Tracker) Apply(h *state.Host, res state.Result, ev *state.Event) (out []Finding, replayed bool) {
	m, ok := t.emitted[h.HostID]
	replayed = ok && m.BootID == ev.BootID && ev.Seq <= m.Seq
	for _, c := range res.Changes {
		switch c.Op {
		case state.Added:
			out = t.added(h, c.L, ev, out)
		case state.Removed:
			out = t.removed(h, c.L, ev, out)
		case state.Updated:
			out = t.updated(h, c.L, ev, out)
		}
	}
	if res.Completed {
		out = t.checkWants(h, ev, out)
	}
	out = t.coverage(h, res, ev, out)
	return out, replayed
}

// listener converts for the policy.
func listener(l *state.Listener) policy.Listener {
	a, _ := netip.ParseAddr(l.Addr)
	return policy.Listener{
		Host: l.Host, ContainerID: l.ContainerID, Runtime: l.Runtime, Exe: l.Exe, Comm: l.Comm, UID: l.UID,
		Protocol: l.Protocol, Addr: a, Port: int(l.Port), Exposure: l.Exposure, HostNetNS: l.HostNetNS,
		CgroupPath: l.CgroupPath, CgroupOwnerUID: l.CgroupOwnerUID,
		Unit: l.Workload.Unit, ContainerName: l.Workload.ContainerName, Image: l.Workload.Image,
		ImageDigest: l.Workload.ImageDigest, PodNamespace: l.Workload.PodNamespace, PodLabels: l.Workload.PodLabels,
	}
}

// verdict is what the policy said of a listener, kept on it.
type verdict struct {
	pol     *policy.Policy
	bad     bool
	id      string         // the service's finding id, when bad
	matched []*policy.Rule // the require rules it matches (host scope aside)
}

// judge evaluates l against the current policy, once per policy.
func (t *Tracker) judge(l *state.Listener) *verdict {
	if v, ok := l.Memo.(*verdict); ok && v.pol == t.pol {
		return v
	}
	pl := listener(l)
	t.Evaluations++
	v := &verdict{pol: t.pol, bad: t.pol.Allowed(&pl) == nil}
	if v.bad {
		v.id = ListenerID(l.HostID, l.HostNetNS, l.Key.NetNS, l.Protocol, l.Addr, l.Port)
	}
	for _, r := range t.pol.Requires() {
		if r.Matches(&pl) {
			v.matched = append(v.matched, r)
		}
	}
	l.Memo = v
	return v
}

// count adds (d=1) or takes away (d=-1) a listener's part; it returns
// whether the listener is unallowed and the require rules it matches.
func (t *Tracker) count(h *state.Host, l *state.Listener, d int) (bool, []*policy.Rule) {
	v := t.judge(l)
	bad := v.bad
	if bad {
		id := v.id
		set := t.unallowed[id]
		if d > 0 {
			if set == nil {
				set = map[state.Key]*state.Listener{}
				t.unallowed[id] = set
			}
			set[l.Key] = l
		} else if set != nil {
			delete(set, l.Key)
			if len(set) == 0 {
				delete(t.unallowed, id)
			}
		}
	}
	var matched []*policy.Rule
	for _, r := range v.matched {
		if r.AppliesToHost(h.Host) {
			w := t.wants[h.HostID]
			if w == nil {
				w = map[*policy.Rule]int{}
				t.wants[h.HostID] = w
			}
			w[r] += d
			matched = append(matched, r)
		}
	}
	return bad, matched
}

func (t *Tracker) added(h *state.Host, l *state.Listener, ev *state.Event, out []Finding) []Finding {
	bad, matched := t.count(h, l, 1)
	if bad {
		if id := l.Memo.(*verdict).id; t.open[id] == nil {
			out = t.transition(fromListener(l), ev, out)
		}
	}
	for _, r := range matched {
		if t.wants[h.HostID][r] == 1 {
			if f := t.open[RequireID(h.HostID, r.Name)]; f != nil {
				g := *f
				g.State = Resolved
				out = t.transition(g, ev, out)
			}
		}
	}
	return out
}

func (t *Tracker) removed(h *state.Host, l *state.Listener, ev *state.Event, out []Finding) []Finding {
	bad, matched := t.count(h, l, -1)
	if bad {
		id := l.Memo.(*verdict).id
		if f := t.open[id]; f != nil && len(t.unallowed[id]) == 0 {
			g := *f
			g.State = Resolved
			out = t.transition(g, ev, out)
		}
	}
	if h.Complete && len(matched) > 0 {
		out = t.checkWants(h, ev, out)
	}
	return out
}

// updated judges a listener again whose workload arrived late: its
// service's finding opens if it is now unallowed, resolves if it was the
// last unallowed member and no longer is, and stays as it is if the
// verdict did not change (no open-resolve-open for the same finding).
func (t *Tracker) updated(h *state.Host, l *state.Listener, ev *state.Event, out []Finding) []Finding {
	was, _ := t.count(h, l, -1) // as judged before, by its memo
	l.Memo = nil
	bad, matched := t.count(h, l, 1)
	id := ListenerID(l.HostID, l.HostNetNS, l.Key.NetNS, l.Protocol, l.Addr, l.Port)
	switch {
	case bad && t.open[id] == nil:
		out = t.transition(fromListener(l), ev, out)
	case was && !bad:
		if f := t.open[id]; f != nil && len(t.unallowed[id]) == 0 {
			g := *f
			g.State = Resolved
			out = t.transition(g, ev, out)
		}
	}
	for _, r := range matched {
		if t.wants[h.HostID][r] == 1 {
			if f := t.open[RequireID(h.HostID, r.Name)]; f != nil {
				g := *f
				g.State = Resolved
				out = t.transition(g, ev, out)
			}
		}
	}
	if h.Complete {
		out = t.checkWants(h, ev, out)
	}
	return out
}

// checkWants opens a finding for each require rule of a complete host no
// listener matches.
func (t *Tracker) checkWants(h *state.Host, ev *state.Event, out []Finding) []Finding {
	for _, r := range t.pol.Requires() {
		if !r.AppliesToHost(h.Host) || t.wants[h.HostID][r] > 0 {
			continue
		}
		id := RequireID(h.HostID, r.Name)
		if t.open[id] != nil {
			continue
		}
		out = t.transition(Finding{
			ID: id, Kind: KindRequire, State: Open, Rule: r.Name, Host: h.Host, HostID: h.HostID, BootID: h.BootID, FirstSeen: ev.Time,
		}, ev, out)
	}
	return out
}

// transition records f's new state as of ev and appends it to out.
func (t *Tracker) transition(f Finding, ev *state.Event, out []Finding) []Finding {
	f.Time, f.Seq, f.BootID = ev.Time, ev.Seq, ev.BootID
	t.note(&f)
	return append(out, f)
}

// note keeps f's state: the open findings, their count by kind and the
// coverage index.
func (t *Tracker) note(f *Finding) {
	if old := t.open[f.ID]; old != nil {
		t.openKinds[old.Kind]--
	}
	if f.State == Open {
		t.open[f.ID] = f
		t.openKinds[f.Kind]++
	} else {
		delete(t.open, f.ID)
	}
	t.noteCoverage(f)
}

// OpenByKind is how many findings are open, by kind.
func (t *Tracker) OpenByKind() map[string]int { return t.openKinds }

// Reevaluate applies a new policy to every listener of the table: findings
// it no longer wants are resolved, new ones opened. at stamps the
// transitions; they carry each host's last seq.
func (t *Tracker) Reevaluate(pol *policy.Policy, tb *state.Table, at time.Time) []Finding {
	t.pol = pol
	t.Recount(tb)
	var out []Finding
	ids := make([]string, 0, len(tb.Hosts))
	for id := range tb.Hosts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	wanted := map[string]bool{}
	for _, hid := range ids {
		h := tb.Hosts[hid]
		ev := &state.Event{HostID: h.HostID, BootID: h.BootID, Seq: h.LastSeq, Time: at}
		keys := make([]state.Key, 0, len(h.Listeners))
		for k := range h.Listeners {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b state.Key) int {
			if a.String() < b.String() {
				return -1
			}
			return 1
		})
		for _, k := range keys {
			l := h.Listeners[k]
			id := ListenerID(l.HostID, l.HostNetNS, l.Key.NetNS, l.Protocol, l.Addr, l.Port)
			if len(t.unallowed[id]) == 0 {
				continue
			}
			wanted[id] = true
			if t.open[id] == nil {
				out = t.transition(fromListener(l), ev, out)
			}
		}
		if h.Complete {
			out = t.checkWants(h, ev, out)
		}
		for _, r := range pol.Requires() {
			if r.AppliesToHost(h.Host) && h.Complete && t.wants[h.HostID][r] == 0 {
				wanted[RequireID(h.HostID, r.Name)] = true
			}
		}
	}
	var stale []string
	for id, f := range t.open {
		policyMade := f.Kind != KindCoverage && f.Kind != KindIntegrity
		if policyMade && !wanted[id] && tb.Hosts[f.HostID] != nil {
			stale = append(stale, id)
		}
	}
	slices.Sort(stale)
	for _, id := range stale {
		g := *t.open[id]
		g.State = Resolved
		h := tb.Hosts[g.HostID]
		out = t.transition(g, &state.Event{BootID: h.BootID, Seq: h.LastSeq, Time: at}, out)
	}
	return out
}
