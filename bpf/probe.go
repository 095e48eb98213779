package bpf

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// DefaultRingBufferBytes holds 65536 events. An agent frees an event's
// space only once Kafka or its spool has it, so the ring holds what is in
// flight, and what happens while the agent restarts.
const DefaultRingBufferBytes = 8 << 20

// Options configure Load.
type Options struct {
	Hook   Hook
	Filter Filter
	// RingBufferBytes is the ring buffer size: a power of two, at least a page.
	// Zero means DefaultRingBufferBytes.
	RingBufferBytes uint32
	// PinDir, when set, is a directory on bpffs where the maps and links are
	// pinned so that capture goes on while the agent restarts, and the next
	// agent reads what was captured meanwhile (see pins). Empty: nothing
	// outlives the process (snoop).
	PinDir string
	// OrphanTimeout is how long capture goes on with no agent renewing its
	// lease (RenewLease) before the programs stop reporting and count what
	// they skip. Zero: no lease, capture goes on until unpinned.
	OrphanTimeout time.Duration
	Logger        *slog.Logger
}

// Refusal records why a hook could not be used.
type Refusal struct {
	Hook Hook
	Err  error
}

// Probe is the loaded and attached BPF program of one hook.
type Probe struct {
	hook Hook
	// base is the configuration's wakeup threshold and active generation.
	base  bindwatchCaptureConfig
	pins  *pins
	mptcp bool
	coll  *ebpf.Collection
	// extra are the optional program sets loaded against coll's maps.
	extra []*ebpf.Collection
	links []link.Link
	// blind names what this probe cannot see (optional programs that did
	// not load or attach), for the log and the metrics.
	blind []string
	// inventory walks every task's sockets; reserve takes sequence
	// numbers for the records it makes. Nil when they did not load.
	inventory, reserve *ebpf.Program
	// orphanTimeout is the lease length; orphaned is how long the lease
	// found at load had been expired (0: it had not, or there was none).
	orphanTimeout time.Duration
	orphaned      time.Duration
	// lock is the pin directory's shared lock, held until Close: no
	// bindwatch unpin --if-orphaned removes the pins while this runs.
	lock *os.File
}

// prepareSpec checks the kernel and the process can load BPF and reads the
// embedded object: the start of every load.
func prepareSpec() (*ebpf.CollectionSpec, error) {
	if err := Preflight(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raising the memlock limit for BPF maps: %w", err)
	}
	spec, err := loadBindwatch()
	if err != nil {
		return nil, fmt.Errorf("reading the embedded BPF object: %w", err)
	}
	return spec, nil
}

// Load checks the kernel, loads the BPF objects and attaches the first hook
// of opts.Hook's candidates that works, logging why earlier ones did not.
func Load(opts Options) (*Probe, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "bpf")
	spec, err := prepareSpec()
	if err != nil {
		return nil, err
	}
	size := opts.RingBufferBytes
	if size == 0 {
		size = DefaultRingBufferBytes
	}
	if size < 4096 || size&(size-1) != 0 {
		return nil, fmt.Errorf("ring buffer size %d: want a power of two of at least 4096 bytes", size)
	}
	spec.Maps["events"].MaxEntries = size

	replacements, err := pinnedSets(spec, opts.Filter)
	if err != nil {
		return nil, err
	}
	defer closeMaps(replacements)
	var pinned *pins
	if opts.PinDir != "" {
		skip := map[string]bool{}
		for name := range replacements {
			skip[name] = true
		}
		if pinned, err = openPins(opts.PinDir, spec, skip, log); err != nil {
			return nil, err
		}
		defer pinned.close()
		// Released here unless the attached probe takes it over.
		defer pinned.unlock()
		for name, m := range pinned.reused {
			replacements[name] = m
		}
	}

	// How long capture was orphaned: the lease the last agent left, read
	// before any candidate hook renews it.
	var orphaned time.Duration
	if pinned != nil {
		if m := pinned.reused["lease"]; m != nil {
			if orphaned, err = expiredFor(m); err != nil {
				return nil, err
			}
		}
	}
	collOpts := ebpf.CollectionOptions{MapReplacements: replacements, Cache: btf.NewCache()}
	var refused []Refusal
	for _, h := range opts.Hook.candidates() {
		p, err := loadHook(spec, h, collOpts, opts.Filter, size, pinned, opts.OrphanTimeout, log)
		var pinErr *PinError
		if errors.As(err, &pinErr) {
			return nil, err // not the hook's fault: the next one would fail alike
		}
		if err != nil {
			err = explain(h, err)
			log.Info("hook refused", "hook", h, "reason", err)
			refused = append(refused, Refusal{Hook: h, Err: err})
			continue
		}
		p.orphaned = orphaned
		if pinned != nil {
			p.lock, pinned.lock = pinned.lock, nil
		}
		log.Info("hook attached", "hook", h, "mptcp_bind", p.mptcp, "pinned", opts.PinDir, "generation", p.base.Generation)
		return p, nil
	}
	return nil, &NoHookError{Refused: refused}
}

// ListenerReserve is the part of the ring buffer only listen and close
// records may fill: binds are refused (and counted, Drops.RingReserved)
// once the ring holds all but ring/ListenerReserve bytes, so the listen
// records of a storm's victims still find room. An eighth of the default
// ring is 1 MiB, 6 500 records.
const ListenerReserve = 8

func loadHook(spec *ebpf.CollectionSpec, h Hook, opts ebpf.CollectionOptions, f Filter, ringBytes uint32, pinned *pins, orphanTimeout time.Duration, log *slog.Logger) (*Probe, error) {
	wakeupBytes := ringBytes / 16
	progs := programsOf[h]
	if progs.tracefs {
		if err := ensureTracefs(); err != nil {
			return nil, err
		}
	}
	coll, err := loadPrograms(spec, programNames(progs.base), opts)
	if err != nil {
		return nil, err
	}
	p := &Probe{hook: h, coll: coll, base: bindwatchCaptureConfig{WakeupBytes: wakeupBytes, BindLimit: ringBytes - ringBytes/ListenerReserve}, orphanTimeout: orphanTimeout}
	// Renewed before anything attaches, so that this probe's programs
	// report; how long the old lease had been expired was read by Load.
	if err := p.RenewLease(); err != nil {
		p.Close()
		return nil, err
	}
	if pinned == nil || pinned.reused["seq_counter"] == nil {
		if err := seedSequence(coll.Maps["seq_counter"]); err != nil {
			p.Close()
			return nil, err
		}
	}
	if pinned != nil {
		// Until this probe's links are attached, the previous agent's
		// programs keep reporting.
		p.base.Generation = pinned.previous
	}
	if err := p.SetFilter(f); err != nil {
		p.Close()
		return nil, err
	}
	if p.links, err = attachAll(coll, progs.base); err != nil {
		p.Close()
		return nil, err
	}
	if len(progs.mptcp) > 0 {
		if err := p.attachOptional(spec, progs.mptcp, opts); err != nil {
			// inet_bind and inet_listen still report MPTCP subflows,
			// labelled MPTCP.
			log.Info("mptcp_bind and mptcp_listen not hooked; MPTCP is seen through its subflow", "hook", h, "reason", err)
		} else {
			p.mptcp = true
			if err := p.SetFilter(f); err != nil {
				p.Close()
				return nil, err
			}
		}
	}
	if len(progs.sctp) > 0 {
		if err := p.attachOptional(spec, progs.sctp, opts); err != nil {
			p.blind = append(p.blind, blindSCTPListen)
			log.Info("SCTP listens not seen: the sctp module is not loaded, or sctp_inet_listen cannot be hooked", "hook", h, "reason", err)
		}
	}
	for _, t := range timeline {
		if t.listenersOnly && !f.Listeners {
			continue
		}
		if err := p.attachOptional(spec, []attachment{t.attachment}, opts); err != nil {
			p.blind = append(p.blind, t.blind)
			log.Warn("not seen on this host", "what", t.blind, "program", t.program, "reason", err)
		}
	}
	if len(progs.offSyscall) > 0 {
		p.base.Flags |= reportOffSyscall
		if err := p.attachOptional(spec, progs.offSyscall, opts); err != nil {
			p.blind = append(p.blind, blindOffSyscallBind)
			log.Warn("not seen on this host", "what", blindOffSyscallBind, "reason", err)
		}
		if slices.Contains(p.blind, timeline[0].blind) {
			p.blind = append(p.blind, blindOffSyscallListen)
		}
		if err := p.SetFilter(f); err != nil {
			p.Close()
			return nil, err
		}
	}
	p.loadInventory(spec, opts, log)
	if pinned != nil {
		if err := pinned.adopt(p); err != nil {
			p.Close()
			return nil, err
		}
		p.pins = pinned
		p.base.Generation = pinned.generation
		if err := p.SetFilter(f); err != nil {
			p.Close()
			return nil, err
		}
		pinned.retireOld()
	}
	return p, nil
}

// attachOptional loads and attaches a set of programs against the already
// loaded maps; nothing of it stays when any part fails.
func (p *Probe) attachOptional(spec *ebpf.CollectionSpec, as []attachment, opts ebpf.CollectionOptions) error {
	opts.MapReplacements = p.coll.Maps
	coll, err := loadPrograms(spec, programNames(as), opts)
	if err != nil {
		return err
	}
	links, err := attachAll(coll, as)
	if err != nil {
		coll.Close()
		return err
	}
	p.extra = append(p.extra, coll)
	p.links = append(p.links, links...)
	return nil
}

// Blind spots of the syscall hook without its cgroup and tp_btf programs.
const (
	blindOffSyscallBind   = "binds not made by the bind system call (io_uring IORING_OP_BIND, 32-bit compat)"
	blindOffSyscallListen = "listens not made by the listen system call (io_uring IORING_OP_LISTEN)"
)

// blindSCTPListen is the blind spot of a hook without sctp_inet_listen.
const blindSCTPListen = "SCTP listen (the sctp module was not loaded when capture started)"

// BlindSpots names what this probe cannot see on this host: the optional
// programs that did not load or attach.
func (p *Probe) BlindSpots() []string { return p.blind }

// NoHookError says why every candidate hook was refused.
type NoHookError struct{ Refused []Refusal }

func (e *NoHookError) Error() string {
	var b strings.Builder
	b.WriteString("no bind hook could be attached:")
	for _, r := range e.Refused {
		fmt.Fprintf(&b, "\n  %s: %v", r.Hook, r.Err)
	}
	return b.String()
}

func (e *NoHookError) Unwrap() []error {
	errs := make([]error, len(e.Refused))
	for i, r := range e.Refused {
		errs[i] = r.Err
	}
	return errs
}

// Hook is the hook in use.
func (p *Probe) Hook() Hook { return p.hook }

// Pinned reports whether the probe's maps and links are pinned.
func (p *Probe) Pinned() bool { return p.pins != nil }

// Generation is the number the probe's programs report under.
func (p *Probe) Generation() uint32 { return p.base.Generation }

// MPTCPHooked reports whether mptcp_bind itself is hooked (fexit, kprobe).
func (p *Probe) MPTCPHooked() bool { return p.mptcp }

// SetFilter changes what the attached programs report, effective for the
// next bind. The pinned-map paths cannot change here.
func (p *Probe) SetFilter(f Filter) error {
	return writeFilter(p.coll.Maps["filter_ports"], p.coll.Maps["config_map"], f, p.mptcp, p.base)
}

// Events is the ring buffer map the programs write to.
func (p *Probe) Events() *ebpf.Map { return p.coll.Maps["events"] }

// NextSeq is the sequence number the next reported bind will get: the count
// of binds that passed the filters since the counter was created.
func (p *Probe) NextSeq() (uint64, error) {
	var n uint64
	if err := p.coll.Maps["seq_counter"].Lookup(uint32(0), &n); err != nil {
		return 0, fmt.Errorf("reading the sequence counter: %w", err)
	}
	return n, nil
}

// Detach stops capture while keeping the maps, so a reader can drain the
// ring buffer and the drop counters stay readable. Pinned links stay
// attached: capture goes on into the pinned ring for the next agent.
func (p *Probe) Detach() {
	closeLinks(p.links)
	p.links = nil
}

// Close detaches the programs and frees the maps.
func (p *Probe) Close() error {
	p.Detach()
	for _, c := range p.extra {
		c.Close()
	}
	p.coll.Close()
	if p.lock != nil {
		p.lock.Close()
		p.lock = nil
	}
	return nil
}
