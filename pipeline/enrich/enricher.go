package enrich

import (
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/internal/dacread"
	"github.com/bindwatch/bindwatch/schemas"
)

// Enricher turns kernel events into schema records. It is not safe for
// concurrent use: one goroutine (Run's, or the caller's) owns its caches.
// Stats may be read from any goroutine.
type Enricher struct {
	id      Identity
	clock   *Clock
	cgroups *cgroupResolver
	// cgroupBG resolves off the event path what cgroups could not; nil
	// without a cgroup2 mount. pending are the ids it was asked about and
	// has not answered yet.
	cgroupBG *cgroupBackground
	pending  map[uint64]struct{}
	ifnames  *ifnameResolver
	addrs    *internTable[netip.Addr]
	comms    *internTable[[16]byte]
	exes     *exeResolver
	files    *workloadFiles
	// retries are the cgroups whose container's workload was not on disk
	// at first sight, and when to look again.
	retries map[uint64]workloadRetry
	// criLabels asks containerd's CRI for pod labels; nil without a
	// socket. labelCache holds its answers by sandbox id, labelsAsked the
	// sandboxes asked about and when to ask again (monotonic ns).
	criLabels   *criPodLabels
	labelCache  *lru[string, map[string]string]
	digestCache *lru[string, string]
	labelsAsked map[criQuery]int64
	// deniedWarned: the warning that state files are not readable was
	// logged.
	deniedWarned bool
	log          *slog.Logger
	resync       time.Duration
	// ring, when set (OrderWith), is the ring buffer Run's ring records
	// come from, and ringRead the reader's position before the first.
	ring     Ring
	ringRead uint64

	cgroupMisses       atomic.Uint64
	cgroupUnknown      atomic.Uint64
	cgroupDeferred     atomic.Uint64
	cgroupQueueFull    atomic.Uint64
	ifnameMisses       atomic.Uint64
	ifnameUnknown      atomic.Uint64
	clockResamples     atomic.Uint64
	workloadPending    atomic.Uint64
	workloadLate       atomic.Uint64
	workloadMissing    atomic.Uint64
	podLabelsPending   atomic.Uint64
	imageDigestPending atomic.Uint64
	orderHeld          atomic.Uint64
	orderExpired       atomic.Uint64
	orderWaitedNS      atomic.Int64
	orderLate          atomic.Uint64
}

// Stats counts the enricher's slow paths since it was made.
type Stats struct {
	// CgroupMisses counts cgroup ids looked up outside the cache.
	CgroupMisses uint64
	// CgroupUnknown counts those that could not be resolved, on the event
	// path or later in the background.
	CgroupUnknown uint64
	// CgroupDeferred counts ids handed to the background resolver: their
	// records went on without a container.
	CgroupDeferred uint64
	// CgroupQueueFull counts ids not handed over because its queue was full.
	CgroupQueueFull uint64
	// CgroupScans counts scans of the cgroup2 tree after the first.
	CgroupScans uint64
	// IfnameMisses and IfnameUnknown are the same for bound interfaces.
	IfnameMisses  uint64
	IfnameUnknown uint64
	// ClockResamples counts offset measurements after the first.
	ClockResamples uint64
	// WorkloadPending counts records of a container that went on with
	// workload_source "pending": its runtime had not written (or bindwatch
	// could not find) the files that describe it.
	WorkloadPending uint64
	// WorkloadLate counts containers whose workload was found after their
	// first records went on pending; later records carry it.
	WorkloadLate uint64
	// WorkloadMissing counts containers given up on after workloadPatience:
	// their records say "none".
	WorkloadMissing uint64
	// PodLabelsPending counts records of a containerd CRI pod that went on
	// without its labels: the CRI had not answered yet.
	PodLabelsPending uint64
	// ImageDigestPending counts records of a containerd CRI container
	// that went on without its image's digest: the CRI had not answered.
	ImageDigestPending uint64
	// OrderHeld counts the agent's own records Run held back for ring
	// records numbered before them (see OrderWith); OrderExpired the holds
	// that ran out (orderIdle, orderMax) before the ring accounted for them,
	// and the reservations whose records stopped coming.
	OrderHeld, OrderExpired uint64
	// OrderWaited is how long the held records waited, in all.
	OrderWaited time.Duration
	// OrderLate counts the agent's records that reached Run after a ring
	// record numbered after them had gone out: Run cannot hold a ring
	// record for a reservation it has not seen a record of yet.
	OrderLate uint64
}

// internSize caps the address and command name tables: far above what a
// host uses, small enough to be emptied without a pause.
const internSize = 4096

// New reads the host identity, samples the clock and finds the cgroup2 mount.
// Only a missing identity or clock is fatal: without a cgroup2 mount the
// records just carry no container.
func New(cfg Config) (*Enricher, error) {
	cfg = cfg.withDefaults()
	log := cfg.Logger.With("component", "enrich")

	id, err := ReadIdentity(cfg.RootFS, cfg.ProcRoot, cfg.Hostname)
	if err != nil {
		return nil, fmt.Errorf("enrich: %w", err)
	}
	clock, err := NewClock()
	if err != nil {
		return nil, fmt.Errorf("enrich: %w", err)
	}
	mount := cgroupMount{dir: cfg.CgroupRoot, root: "/"}
	if mount.dir == "" {
		if mount, err = findCgroupMount(cfg.ProcRoot); err != nil {
			log.Warn("container ids unavailable", "err", err)
		}
	}
	log.Info("enricher ready", "host", id.Hostname, "host_id", id.HostID, "boot_id", id.BootID,
		"cgroup2", mount.dir, "clock_offset_ns", clock.OffsetNS())
	start := time.Now()
	// Rootless Podman's storage, under users' homes, is theirs to read:
	// not a root the capability reaches.
	files := &workloadFiles{roots: cfg.Runtimes, elevated: dacread.NewReader(
		cfg.Runtimes.Docker, cfg.Runtimes.Containerd, cfg.Runtimes.Storage, cfg.Runtimes.RunStorage)}
	var criLabels *criPodLabels
	if cfg.Runtimes.CRISocket != "" {
		criLabels = newCRIPodLabels(cfg.Runtimes.CRISocket, filepath.Join(cfg.Runtimes.Containerd, containerdTasks, "k8s.io"), files, log)
	}
	cgroups := newCgroupResolver(cfg.ProcRoot, mount, cfg.CgroupCacheSize, cfg.NegativeTTL, files)
	var bg *cgroupBackground
	if cgroups.index != nil {
		bg = newCgroupBackground(cgroups.index, mount, cgroups.trust, cfg.CgroupRescanInterval, log)
		log.Info("cgroup index built", "cgroups", cgroups.index.len(), "took", time.Since(start).Round(time.Microsecond))
	}
	return &Enricher{
		id:          id,
		clock:       clock,
		cgroups:     cgroups,
		cgroupBG:    bg,
		exes:        newExeResolver(cfg.ProcRoot, 2*time.Second, internSize),
		files:       files,
		retries:     map[uint64]workloadRetry{},
		criLabels:   criLabels,
		labelCache:  newLRU[string, map[string]string](podLabelsQueueSize * 4),
		digestCache: newLRU[string, string](podLabelsQueueSize * 4),
		labelsAsked: map[criQuery]int64{},
		pending:     map[uint64]struct{}{},
		ifnames:     newIfnameResolver(cfg.ProcRoot, cfg.IfnameCacheSize, cfg.IfnameTTL, cfg.NegativeTTL),
		addrs:       newInternTable[netip.Addr](internSize),
		comms:       newInternTable[[16]byte](internSize),
		log:         log,
		resync:      cfg.ClockResync,
	}, nil
}

// Identity is the host identity every record carries.
func (e *Enricher) Identity() Identity { return e.id }

// Stats is a snapshot of the slow-path counters.
func (e *Enricher) Stats() Stats {
	return Stats{
		CgroupMisses:       e.cgroupMisses.Load(),
		CgroupUnknown:      e.cgroupUnknown.Load(),
		CgroupDeferred:     e.cgroupDeferred.Load(),
		CgroupQueueFull:    e.cgroupQueueFull.Load(),
		CgroupScans:        e.cgroupScans(),
		IfnameMisses:       e.ifnameMisses.Load(),
		IfnameUnknown:      e.ifnameUnknown.Load(),
		ClockResamples:     e.clockResamples.Load(),
		WorkloadPending:    e.workloadPending.Load(),
		WorkloadLate:       e.workloadLate.Load(),
		WorkloadMissing:    e.workloadMissing.Load(),
		PodLabelsPending:   e.podLabelsPending.Load(),
		ImageDigestPending: e.imageDigestPending.Load(),
		OrderHeld:          e.orderHeld.Load(),
		OrderExpired:       e.orderExpired.Load(),
		OrderWaited:        time.Duration(e.orderWaitedNS.Load()),
		OrderLate:          e.orderLate.Load(),
	}
}

// ResampleClock remeasures the boot-to-wall offset; Run calls it on a timer.
func (e *Enricher) ResampleClock() {
	if err := e.clock.Resample(); err != nil {
		e.log.Warn("clock offset not resampled", "err", err)
		return
	}
	e.clockResamples.Add(1)
}

// Enrich fills every field of out from ev. The strings and numbers that
// pointer fields point to are shared with other records and with the
// caches: treat them as read-only.
func (e *Enricher) Enrich(ev *bpf.Event, out *schemas.BindEvent) {
	out.Host = e.id.Hostname
	out.HostID = e.id.HostID
	out.BootID = e.id.BootID
	out.Seq = int64(ev.Seq)
	out.Time = e.clock.Wall(ev.BootNS)
	out.PID = int32(ev.PID)
	out.TID = int32(ev.TID)
	out.PPID = int32(ev.PPID)
	out.UID = int64(ev.UID)
	out.GID = int64(ev.GID)
	out.Comm = *e.comms.get(ev.Comm, commText)
	out.CgroupID = int64(ev.CgroupID)
	out.ContainerID, out.ContainerRuntime = nil, nil
	out.CgroupPath, out.CgroupOwnerUID = nil, nil
	cg := e.cgroup(ev)
	if cg != nil {
		out.ContainerID, out.ContainerRuntime = cg.containerID, cg.runtime
		out.CgroupPath, out.CgroupOwnerUID = cg.pathText, cg.ownerUID
	}
	setWorkload(out, cg.workloadOrNil())
	out.MntNSID = int64(ev.MntNS)
	out.NetNSID = int64(ev.NetNS)
	out.Protocol = bpf.ProtocolName(ev.Protocol)
	out.Family = bpf.FamilyName(ev.Family)
	out.Addr = *e.addrs.get(ev.EffectiveAddr(), addrText)
	out.Port = int32(ev.Port)
	out.RequestedAddr, out.RequestedPort = nil, nil
	if ra := ev.RequestedAddr(); ra.IsValid() {
		out.RequestedAddr = e.addrs.get(ra, addrText)
		out.RequestedPort = &portValues[ev.ReqPort]
	}
	out.Freebind = ev.Opts.Has(bpf.OptFreebind)
	out.Transparent = ev.Opts.Has(bpf.OptTransparent)
	out.BindAddressNoPort = ev.Opts.Has(bpf.OptBindAddressNoPort)
	out.ReuseAddr = ev.Opts.Has(bpf.OptReuseAddr)
	out.ReusePort = ev.Opts.Has(bpf.OptReusePort)
	out.V6Only = ev.Opts.Has(bpf.OptV6Only)
	out.BoundIf = int32(ev.BoundIf)
	out.BoundIfName = nil
	if ev.BoundIf != 0 {
		out.BoundIfName = e.ifname(ev)
	}
	out.Error = int32(ev.Errno())
	out.Kind = ev.Kind.String()
	out.Cookie = int64(ev.Cookie)
	out.Backlog = int32(ev.Backlog)
	out.ListenDurationNS = int64(ev.ListenNS)
	out.Exposure = nil
	if ev.Ret == 0 {
		out.Exposure = exposurePtr(ev.EffectiveAddr())
	}
	out.HostNetNS = e.isHostNetNS(ev.NetNS)
	out.Exe = e.exes.lookup(ev.PID, out.Time)
	out.SnapshotID, out.Holders, out.PortExplicit = nil, nil, nil
	out.SnapshotSockets, out.SnapshotSource, out.SnapshotIncomplete = 0, nil, nil
	out.Suppressed = 0
}

var trueValue, falseValue = true, false

// isHostNetNS says whether netns is the host's (the agent's own, as the
// interface resolver read it); nil when unknown.
func (e *Enricher) isHostNetNS(netns uint32) *bool {
	switch {
	case e.ifnames.selfNetNS == 0:
		return nil
	case netns == e.ifnames.selfNetNS:
		return &trueValue
	}
	return &falseValue
}

// cgroup finds the container of ev's cgroup without ever waiting on a scan
// of the cgroup tree: an id that the cache, /proc and the index cannot
// answer goes to the background resolver, and this record goes on without
// a container; later records of that cgroup get the answer.
func (e *Enricher) cgroup(ev *bpf.Event) *cgroupInfo {
	return e.cgroupFor(ev.CgroupID, ev.PID, ev.PPID)
}

// cgroupFor is the container of cgroup id, which process pid (child of ppid,
// 0 if unknown) was in.
func (e *Enricher) cgroupFor(id uint64, pid, ppid uint32) *cgroupInfo {
	info := e.cgroupInfoFor(id, pid, ppid)
	if info == nil || info.workload == nil {
		return info
	}
	if info.workload.pending {
		info = e.pendingWorkload(id, info)
	}
	if (info.workload.labelsPending || info.workload.digestPending) && e.criLabels != nil {
		info = e.criAnswers(id, info)
	}
	return info
}

func (e *Enricher) cgroupInfoFor(id uint64, pid, ppid uint32) *cgroupInfo {
	if info, ok := e.cgroups.cached(id); ok {
		return info
	}
	e.collectCgroups()
	if _, waiting := e.pending[id]; waiting {
		e.cgroupMisses.Add(1)
		return nil
	}
	info, hit, deferred := e.cgroups.lookup(id, pid, ppid)
	if hit {
		return info
	}
	e.cgroupMisses.Add(1)
	switch {
	case info != nil:
	case deferred:
		e.deferCgroup(id)
	default:
		e.cgroupUnknown.Add(1)
		e.log.Debug("cgroup unresolved", "cgroup_id", id, "pid", pid)
	}
	return info
}

// deferCgroup asks the background resolver about id, never waiting.
func (e *Enricher) deferCgroup(id uint64) {
	select {
	case e.cgroupBG.reqs <- cgroupRequest{id: id, at: time.Now().UnixNano()}:
		e.pending[id] = struct{}{}
		e.cgroupDeferred.Add(1)
	default:
		e.cgroupQueueFull.Add(1)
	}
}

// collectCgroups caches what the background resolver answered so far.
func (e *Enricher) collectCgroups() {
	if e.cgroupBG == nil {
		return
	}
	for {
		select {
		case res := <-e.cgroupBG.results:
			delete(e.pending, res.id)
			e.cgroups.store(res.id, res.info)
			if res.info == nil {
				e.cgroupUnknown.Add(1)
				e.log.Debug("cgroup unresolved", "cgroup_id", res.id)
			}
		default:
			return
		}
	}
}

func (e *Enricher) cgroupScans() uint64 {
	if e.cgroupBG == nil {
		return 0
	}
	return e.cgroupBG.scans.Load()
}

func (e *Enricher) ifname(ev *bpf.Event) *string {
	name, hit := e.ifnames.lookup(ev.NetNS, ev.BoundIf, ev.PID, ev.PPID)
	if !hit {
		e.ifnameMisses.Add(1)
		if name == nil {
			e.ifnameUnknown.Add(1)
			e.log.Debug("interface unresolved", "netns", ev.NetNS, "ifindex", ev.BoundIf, "pid", ev.PID)
		}
	}
	return name
}
