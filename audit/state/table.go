package state

import (
	"fmt"
	"slices"
	"time"
)

// Key names one socket of a host: its network namespace and cookie. A
// socket the agent had no cookie for (v1 records, cookie 0) is named by
// its endpoint and creator instead.
type Key struct {
	NetNS  int64
	Cookie int64
	Anon   string // for cookie 0: protocol/addr/port/pid
}

// String is the key's text in the state topic, after the host id.
func (k Key) String() string {
	if k.Cookie == 0 {
		return fmt.Sprintf("%d/0/%s", k.NetNS, k.Anon)
	}
	return fmt.Sprintf("%d/%d", k.NetNS, k.Cookie)
}

// ServiceKey names a service: every socket on one endpoint of one
// namespace, so an SO_REUSEPORT group is one service with several members.
type ServiceKey struct {
	NetNS    int64
	Protocol string
	Addr     string
	Port     int32
}

// Listener is one listening socket.
type Listener struct {
	Key                  Key
	Host, HostID, BootID string
	Seq                  int64     // of the record that made it known
	Since                time.Time // when it was first seen listening
	PID                  int32
	UID                  int64
	Comm, Exe            string
	ContainerID, Runtime string
	Protocol, Family     string
	Addr                 string
	Port                 int32
	Exposure             string
	HostNetNS            *bool
	CgroupPath           *string
	CgroupOwnerUID       *int64
	Workload             Workload

	// Memo is for whoever evaluates the listener (the findings tracker
	// keeps its verdict here, so a close costs no second evaluation).
	Memo any

	// confirmed is the seq of the last record that showed it (snapshot or
	// event): a snapshot_end sweeps what its snapshot did not confirm.
	confirmed int64
	// member is its index among its service's members (Host.Services), so
	// a close takes it out in O(1): an SO_REUSEPORT service of N members
	// closing is O(N), not O(N²).
	member int
}

// Service is the service a listener belongs to.
func (l *Listener) Service() ServiceKey {
	return ServiceKey{NetNS: l.Key.NetNS, Protocol: l.Protocol, Addr: l.Addr, Port: l.Port}
}

// Host is one host's table, for its current boot.
type Host struct {
	HostID, Host, BootID string
	BootTime             time.Time // time of the first record of the boot seen
	LastSeq              int64     // highest seq applied in this boot
	Complete             bool      // a complete snapshot ended in this boot: absence means absent
	Listeners            map[Key]*Listener
	Services             map[ServiceKey][]*Listener // the members of each service

	// The snapshot in progress: its id and the seq of its first record.
	// tainted is set for one a rebuild caught half way: what it confirmed
	// before the rebuild is unknown, so its end sweeps nothing.
	SnapshotID    string
	SnapshotStart int64
	tainted       bool
	// snapshotSeen counts the snapshot's records that arrived: fewer than
	// its end announces means some were lost, its first one perhaps, which
	// no gap after it shows.
	snapshotSeen int64
	// spare are seqs above LastSeq taken by records that are not part of
	// the listener timeline (seals, host keys), which may arrive before
	// lower seqs: they are not lost, and not a reason to skip lower ones.
	spare []int64

	// pendingWorkloads counts the listeners whose workload was pending:
	// only while there are some does a record look for them.
	pendingWorkloads int

	Liveness
	// PublicKey is the key the host's seals must verify with (nil: none
	// pinned). The integrity checks own it; the table only keeps it.
	PublicKey []byte
	// overCap counts the listeners refused over MaxListeners by the
	// record being applied.
	overCap int
}

// Caps: what one partition's table keeps at most. A record over them is
// refused (Result.OverCap), counted and reported by the caller.
const (
	// MaxListeners per host: a host with more sockets listening is a
	// flood, not a service inventory (about 600 bytes each: 40 MB).
	MaxListeners = 65536
	// MaxHosts per partition: a fleet of a million hosts on 16 partitions
	// is 62 500 per partition.
	MaxHosts = 250000
)

// Liveness is what the table knows of a host's agent being there.
type Liveness struct {
	// LastSeen is when a record of the host was last applied, as the
	// caller tells it (Table.Apply has no clock).
	LastSeen time.Time
	// HeartbeatInterval is the interval its last heartbeat or stop named;
	// 0 for a host that sends none (it is never called silent).
	HeartbeatInterval time.Duration
	// Stopped is set when the host's last record was a clean stop.
	Stopped bool
	// stopSeq is the stop's seq: a record numbered before it that
	// arrives after it does not end the stop.
	stopSeq int64
}

// Gap is a run of seqs of one boot that never arrived.
type Gap struct {
	From, To int64
}

func newHost(ev *Event) *Host {
	return &Host{
		HostID: ev.HostID, Host: ev.Host, BootID: ev.BootID, BootTime: ev.Time, LastSeq: -1,
		Listeners: map[Key]*Listener{}, Services: map[ServiceKey][]*Listener{},
	}
}

// Table is the listener table of the hosts of one partition.
type Table struct {
	Hosts map[string]*Host // by host id
	// HostCap and ListenerCap, when above 0, are the most hosts the table
	// keeps and the most listeners it keeps of one host, instead of
	// MaxHosts and MaxListeners (audit.max_hosts, audit.max_listeners).
	HostCap, ListenerCap int
	// early are noted seqs of a host or boot the table does not have yet
	// (the agent's host key comes before its first record): the boot's
	// first record takes them.
	early map[string]earlySeqs
}

type earlySeqs struct {
	bootID string
	seqs   []int64
}

// New returns an empty table.
func New() *Table { return &Table{Hosts: map[string]*Host{}, early: map[string]earlySeqs{}} }

// MaxListenersPerHost is the most listeners the table keeps of one host:
// ListenerCap, or the package's MaxListeners.
func (t *Table) MaxListenersPerHost() int {
	if t.ListenerCap > 0 {
		return t.ListenerCap
	}
	return MaxListeners
}

// MaxHosts is the most hosts the table keeps: HostCap, or the package's
// MaxHosts.
func (t *Table) MaxHosts() int {
	if t.HostCap > 0 {
		return t.HostCap
	}
	return MaxHosts
}

// Op is what happened to a listener.
type Op int

// Ops.
const (
	Added Op = iota
	Removed
	// Updated: a listener's workload, unknown when it was added (pending),
	// arrived with a later record of its container.
	Updated
)

// Change is one listener added, removed or updated.
type Change struct {
	Op Op
	L  *Listener
}

// Result is what one event did.
type Result struct {
	Changes []Change
	// Skipped is set for a record already applied (a duplicate, or one
	// the rebuilt state already holds) and for a late record of a boot
	// older than the host's current one.
	Skipped bool
	// NewBoot is set when the record started a boot: every listener of
	// the old one is among Changes as Removed.
	NewBoot bool
	// Completed is set when the boot's first complete snapshot ended.
	Completed bool
	// Swept is set when a complete snapshot ended and swept what it did
	// not show: the table is the host's truth as of the snapshot's start
	// (Host.SnapshotStart).
	Swept bool
	// Gap is set when seqs between the host's last record and this one
	// never arrived.
	Gap *Gap
	// OverCap says why the record was (partly) refused: "hosts" (a new
	// host over MaxHosts: nothing applied) or "listeners" (listeners over
	// MaxListeners were not added).
	OverCap string
}

// Apply applies one event to its host's table.
func (t *Table) Apply(ev *Event) Result {
	var res Result
	h := t.Hosts[ev.HostID]
	switch {
	case h == nil && len(t.Hosts) >= t.MaxHosts():
		res.Skipped, res.OverCap = true, "hosts"
		return res
	case h == nil:
		h = newHost(ev)
		t.Hosts[ev.HostID] = h
	case h.BootID != ev.BootID:
		if ev.Time.Before(h.BootTime) {
			res.Skipped = true // a late record of an earlier boot
			return res
		}
		for _, l := range h.Listeners {
			res.Changes = append(res.Changes, Change{Op: Removed, L: l})
		}
		sortChanges(res.Changes)
		h2 := newHost(ev)
		h2.PublicKey = h.PublicKey // the host's, not its boot's
		*h = *h2
		res.NewBoot = true
	case ev.Seq <= h.LastSeq:
		res.Skipped = true
		return res
	}
	h.takeSpare()
	if outOfBand(ev.Kind) && !res.NewBoot && h.LastSeq >= 0 && ev.Seq > h.LastSeq+1 {
		// The agent's own records (heartbeat, stop, suppressed) reach the
		// stream beside the ring's, not behind them: one may overtake
		// records numbered before it. Its seq is kept aside, as a seal's,
		// so those records are neither a gap nor skipped when they come.
		if slices.Contains(h.spare, ev.Seq) {
			res.Skipped = true
			return res
		}
		h.noteSpare(ev.Seq)
		h.liveness(ev)
		return res
	}
	if !res.NewBoot && h.LastSeq >= 0 && ev.Seq > h.LastSeq+1 {
		res.Gap = &Gap{From: h.LastSeq + 1, To: ev.Seq - 1}
		// A snapshot sweeps only when every record between its first and
		// its end arrived: a lost snapshot record would read as a socket
		// that is gone.
		if h.SnapshotID != "" {
			h.tainted = true
		}
	}
	if e, ok := t.early[ev.HostID]; ok && (res.NewBoot || h.LastSeq < 0) {
		delete(t.early, ev.HostID)
		if e.bootID == ev.BootID {
			h.spare = e.seqs
		}
	}
	h.LastSeq = ev.Seq
	h.takeSpare()
	h.liveness(ev)
	if ev.Host != "" {
		h.Host = ev.Host
	}
	switch ev.Kind {
	case KindSnapshot:
		if ev.SnapshotID != h.SnapshotID {
			h.SnapshotID, h.SnapshotStart, h.tainted, h.snapshotSeen = ev.SnapshotID, ev.Seq, false, 0
		}
		h.snapshotSeen++
		if isUDP(ev.Protocol) && (ev.PortExplicit == nil || !*ev.PortExplicit) {
			break // a UDP client's socket: bound, but no server
		}
		res.Changes = h.add(ev, res.Changes, t.MaxListenersPerHost())
	case KindSnapshotEnd:
		sweep := len(ev.SnapshotIncomplete) == 0
		switch {
		case ev.SnapshotID == h.SnapshotID:
			sweep = sweep && !h.tainted && h.snapshotSeen == ev.SnapshotSockets
		case ev.SnapshotSockets == 0:
			// A snapshot of no sockets: everything before it is gone.
			h.SnapshotStart = ev.Seq
		default:
			sweep = false // its start was never seen
		}
		h.SnapshotID, h.tainted = "", false
		if sweep {
			res.Swept = true
			res.Changes = h.sweep(res.Changes)
			if !h.Complete {
				h.Complete, res.Completed = true, true
			}
		}
	case KindListen:
		if ev.Error == 0 {
			res.Changes = h.add(ev, res.Changes, t.MaxListenersPerHost())
		}
	case KindClose:
		res.Changes = h.remove(keyOf(ev), res.Changes)
	case KindBind, "":
		if isUDP(ev.Protocol) && ev.Error == 0 && ev.RequestedPort != 0 {
			res.Changes = h.add(ev, res.Changes, t.MaxListenersPerHost())
		}
	}
	if h.pendingWorkloads > 0 && ev.ContainerID != "" && known(ev.Workload) {
		res.Changes = h.fillWorkload(ev, res.Changes)
	}
	if h.overCap > 0 {
		res.OverCap, h.overCap = "listeners", 0
	}
	return res
}

// known says whether a workload is what the agent found, not pending.
func known(w Workload) bool { return w.Source != "" && w.Source != SourcePending }

// fillWorkload gives the workload ev carries to the listeners of its
// container that were added while it was pending: the agent sends
// workload_source pending when the runtime's files were not there yet,
// and later records of the container carry what it found. Only a
// container of the same id, runtime and cgroup owner is the same: a user
// may name its rootless container after another's id.
func (h *Host) fillWorkload(ev *Event, ch []Change) []Change {
	start := len(ch)
	for _, l := range h.Listeners {
		if l.Workload.Source != SourcePending || l.ContainerID != ev.ContainerID || l.Runtime != ev.Runtime ||
			!sameOwner(l.CgroupOwnerUID, ev.CgroupOwnerUID) {
			continue
		}
		l.Workload = ev.Workload
		h.pendingWorkloads--
		ch = append(ch, Change{Op: Updated, L: l})
	}
	sortChanges(ch[start:])
	return ch
}

func sameOwner(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func keyOf(ev *Event) Key {
	k := Key{NetNS: ev.NetNS, Cookie: ev.Cookie}
	if ev.Cookie == 0 {
		k.Anon = fmt.Sprintf("%s/%s/%d/%d", ev.Protocol, ev.Addr, ev.Port, ev.PID)
	}
	return k
}

// HostMeta is what the state topic keeps of a host besides its listeners.
type HostMeta struct {
	HostID, Host, BootID string
	BootTime             time.Time
	LastSeq              int64
	Complete             bool
	SnapshotID           string
	SnapshotStart        int64
	Liveness
	PublicKey []byte
}

// Meta returns h's HostMeta.
func (h *Host) Meta() HostMeta {
	return HostMeta{HostID: h.HostID, Host: h.Host, BootID: h.BootID, BootTime: h.BootTime, LastSeq: h.LastSeq,
		Complete: h.Complete, SnapshotID: h.SnapshotID, SnapshotStart: h.SnapshotStart, Liveness: h.Liveness, PublicKey: h.PublicKey}
}

// Restore puts a host back as the state topic kept it, without listeners.
func (t *Table) Restore(m HostMeta) *Host {
	h := &Host{
		HostID: m.HostID, Host: m.Host, BootID: m.BootID, BootTime: m.BootTime, LastSeq: m.LastSeq,
		Complete: m.Complete, SnapshotID: m.SnapshotID, SnapshotStart: m.SnapshotStart, tainted: m.SnapshotID != "",
		Liveness: m.Liveness, PublicKey: m.PublicKey,
		Listeners: map[Key]*Listener{}, Services: map[ServiceKey][]*Listener{},
	}
	t.Hosts[m.HostID] = h
	return h
}
