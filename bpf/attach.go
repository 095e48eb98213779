package bpf

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// attachment is one program and how to attach it.
type attachment struct {
	program string
	attach  func(*ebpf.Program) (link.Link, error)
	// traceEvent is the tracefs event whose id attaching reads, if any.
	traceEvent string
}

// tracing attaches a BPF trampoline program (fexit) or a BTF tracepoint.
func tracing(program string) attachment {
	return attachment{program: program, attach: func(p *ebpf.Program) (link.Link, error) {
		return link.AttachTracing(link.TracingOptions{Program: p})
	}}
}

func kprobe(program, symbol string) attachment {
	return attachment{program: program, attach: func(p *ebpf.Program) (link.Link, error) { return link.Kprobe(symbol, p, nil) }}
}

func kretprobe(program, symbol string) attachment {
	return attachment{program: program, attach: func(p *ebpf.Program) (link.Link, error) { return link.Kretprobe(symbol, p, nil) }}
}

func syscallExit(program, syscall string) attachment {
	return attachment{program: program, traceEvent: "syscalls/sys_exit_" + syscall, attach: func(p *ebpf.Program) (link.Link, error) {
		return link.Tracepoint("syscalls", "sys_exit_"+syscall, p, nil)
	}}
}

// TraceEvents are the tracefs events whose ids the hooks read to attach:
// what an agent without CAP_DAC_READ_SEARCH must be allowed to read.
func TraceEvents() []string {
	var events []string
	for _, h := range Hooks {
		for _, a := range programsOf[h].base {
			if a.traceEvent != "" {
				events = append(events, a.traceEvent)
			}
		}
	}
	return events
}

func cgroupRoot(program string, at ebpf.AttachType) attachment {
	return attachment{program: program, attach: func(p *ebpf.Program) (link.Link, error) {
		root, err := cgroup2Root()
		if err != nil {
			return nil, err
		}
		return link.AttachCgroup(link.CgroupOptions{Path: root, Attach: at, Program: p})
	}}
}

// hookPrograms are the programs of one hook: the base set that must load
// and attach, and the MPTCP set used when the kernel has mptcp_bind and
// mptcp_listen. Return probes come before their entries: an entry without
// its return only leaves an LRU entry behind, a return without its entry
// does nothing.
type hookPrograms struct {
	base, mptcp []attachment
	// sctp hooks SCTP's listen, in the sctp module: only when it is loaded.
	sctp []attachment
	// offSyscall report what does not pass the system calls the base set
	// hooks (io_uring, 32-bit compat): the syscall hook's blind spots.
	offSyscall []attachment
	// tracefs is needed to attach (kprobe and tracepoint perf events).
	tracefs bool
}

var programsOf = map[Hook]hookPrograms{
	HookFexit: {
		base: []attachment{
			tracing("fexit_inet_bind"), tracing("fexit_inet6_bind"), tracing("fexit_inet_listen"),
		},
		mptcp: []attachment{tracing("fexit_mptcp_bind"), tracing("fexit_mptcp_listen")},
		sctp:  []attachment{tracing("fexit_sctp_listen")},
	},
	HookKprobe: {
		base: []attachment{
			kretprobe("kretprobe_inet_bind", "inet_bind"), kretprobe("kretprobe_inet_bind", "inet6_bind"),
			kprobe("kprobe_inet_bind", "inet_bind"), kprobe("kprobe_inet_bind", "inet6_bind"),
			kretprobe("kretprobe_inet_listen", "inet_listen"), kprobe("kprobe_inet_listen", "inet_listen"),
		},
		mptcp: []attachment{
			kretprobe("kretprobe_mptcp_bind", "mptcp_bind"), kprobe("kprobe_mptcp_bind", "mptcp_bind"),
			kretprobe("kretprobe_mptcp_listen", "mptcp_listen"), kprobe("kprobe_mptcp_listen", "mptcp_listen"),
		},
		sctp:    []attachment{kretprobe("kretprobe_sctp_listen", "sctp_inet_listen"), kprobe("kprobe_sctp_listen", "sctp_inet_listen")},
		tracefs: true,
	},
	HookTracepoint: {
		// The fd's socket is the MPTCP socket itself: no extra hook needed.
		base: []attachment{syscallExit("tracepoint_exit_bind", "bind"), syscallExit("tracepoint_exit_listen", "listen")},
		// Listens from elsewhere are reported by the timeline's tp_btf.
		offSyscall: []attachment{
			cgroupRoot("cgroup_post_bind4", ebpf.AttachCGroupInet4PostBind),
			cgroupRoot("cgroup_post_bind6", ebpf.AttachCGroupInet6PostBind),
		},
		tracefs: true,
	},
}

// timeline are the programs every hook adds for the listener timeline. Each
// is optional: one that does not attach is a blind spot, named in the log
// and the metrics, and capture goes on without it.
var timeline = []struct {
	attachment
	// blind says what is not seen without it.
	blind string
	// listenersOnly: only listen and close records need it, so a capture
	// of binds alone (snoop without --listen) neither attaches nor pays for
	// it. The release program runs for every inet socket: about 150 of the
	// 1 200 ns of BPF time a UDP socket+bind+close cost here
	// (BenchmarkProgramCost).
	listenersOnly bool
}{
	{tracing("tp_btf_sock_set_state"), "listener close (TCP, MPTCP, SCTP sockets that stop listening)", true},
	{cgroupRoot("cgroup_sock_create", ebpf.AttachCGroupInetSockCreate),
		"socket cookies of sockets created by now on the kprobe and tracepoint hooks", false},
	{cgroupRoot("cgroup_sock_release", ebpf.AttachCgroupInetSockRelease), "UDP server release", true},
}

// programNames lists the distinct programs of attachments.
func programNames(as []attachment) []string {
	var names []string
	seen := map[string]bool{}
	for _, a := range as {
		if !seen[a.program] {
			seen[a.program] = true
			names = append(names, a.program)
		}
	}
	return names
}

// subset is spec with only the named programs; every map stays, so map
// replacements and a later load of the other programs line up.
func subset(spec *ebpf.CollectionSpec, programs []string) (*ebpf.CollectionSpec, error) {
	out := spec.Copy()
	out.Programs = make(map[string]*ebpf.ProgramSpec, len(programs))
	for _, name := range programs {
		p, ok := spec.Programs[name]
		if !ok {
			return nil, fmt.Errorf("program %s missing from the BPF object", name)
		}
		out.Programs[name] = p.Copy()
	}
	return out, nil
}

// loadPrograms loads the named programs against spec's maps, or against the
// already loaded maps in replacements.
func loadPrograms(spec *ebpf.CollectionSpec, programs []string, opts ebpf.CollectionOptions) (*ebpf.Collection, error) {
	sub, err := subset(spec, programs)
	if err != nil {
		return nil, err
	}
	coll, err := ebpf.NewCollectionWithOptions(sub, opts)
	if err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("verifier rejected the %v programs: %+v", programs, verr)
		}
		return nil, err
	}
	return coll, nil
}

// attachAll attaches each in order and undoes them all if one fails.
func attachAll(c *ebpf.Collection, as []attachment) ([]link.Link, error) {
	links := make([]link.Link, 0, len(as))
	for _, a := range as {
		l, err := a.attach(c.Programs[a.program])
		if err != nil {
			closeLinks(links)
			return nil, fmt.Errorf("attaching %s: %w", a.program, err)
		}
		links = append(links, l)
	}
	return links, nil
}

func closeLinks(links []link.Link) {
	for _, l := range links {
		l.Close()
	}
}

// explain turns the kernel's terse refusals into the reason an operator can
// act on, keeping the original error wrapped.
func explain(h Hook, err error) error {
	switch {
	case h == HookFexit && errors.Is(err, unix.EPERM):
		return fmt.Errorf("the kernel refuses tracing programs (no BPF trampolines here, or lockdown): %w", err)
	case h == HookFexit && errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("this kernel has no BPF trampolines for fexit: %w", err)
	case h == HookKprobe && errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("this kernel has no kprobes (built without CONFIG_KPROBES): %w", err)
	case h == HookTracepoint && errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("this kernel has no syscall tracepoints (built without CONFIG_FTRACE_SYSCALLS): %w", err)
	}
	return err
}

// cgroup2Root is where the unified cgroup hierarchy is mounted: programs
// attached to its root see every task's sockets.
func cgroup2Root() (string, error) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "", fmt.Errorf("finding the cgroup2 mount: %w", err)
	}
	if dir, ok := parseCgroup2Mount(string(b)); ok {
		return dir, nil
	}
	return "", errors.New("no cgroup2 filesystem is mounted")
}
