package bpf

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// hookPrograms names the programs of one hook: the base set that must load
// and attach, and the mptcp_bind set that is used when the kernel has it.
type hookPrograms struct {
	base  []string
	mptcp []string
}

var programsOf = map[Hook]hookPrograms{
	HookFexit: {
		base:  []string{"fexit_inet_bind", "fexit_inet6_bind"},
		mptcp: []string{"fexit_mptcp_bind"},
	},
	HookKprobe: {
		base:  []string{"kprobe_inet_bind", "kretprobe_inet_bind"},
		mptcp: []string{"kprobe_mptcp_bind", "kretprobe_mptcp_bind"},
	},
	HookTracepoint: {
		// The fd's socket is the MPTCP socket itself: no extra hook needed.
		base: []string{"tracepoint_exit_bind"},
	},
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

// attachBase attaches the programs every hook variant needs.
func attachBase(h Hook, c *ebpf.Collection) ([]link.Link, error) {
	p := c.Programs
	switch h {
	case HookFexit:
		return attachAll(
			func() (link.Link, error) {
				return link.AttachTracing(link.TracingOptions{Program: p["fexit_inet_bind"]})
			},
			func() (link.Link, error) {
				return link.AttachTracing(link.TracingOptions{Program: p["fexit_inet6_bind"]})
			},
		)
	case HookKprobe:
		if err := ensureTracefs(); err != nil {
			return nil, err
		}
		// Return probes first: an entry without its return only leaves an
		// LRU entry behind, a return without its entry does nothing.
		return attachAll(
			func() (link.Link, error) { return link.Kretprobe("inet_bind", p["kretprobe_inet_bind"], nil) },
			func() (link.Link, error) { return link.Kretprobe("inet6_bind", p["kretprobe_inet_bind"], nil) },
			func() (link.Link, error) { return link.Kprobe("inet_bind", p["kprobe_inet_bind"], nil) },
			func() (link.Link, error) { return link.Kprobe("inet6_bind", p["kprobe_inet_bind"], nil) },
		)
	case HookTracepoint:
		if err := ensureTracefs(); err != nil {
			return nil, err
		}
		return attachAll(
			func() (link.Link, error) {
				return link.Tracepoint("syscalls", "sys_exit_bind", p["tracepoint_exit_bind"], nil)
			},
		)
	}
	return nil, fmt.Errorf("no programs for hook %q", h)
}

// attachMPTCP attaches the mptcp_bind programs of h.
func attachMPTCP(h Hook, c *ebpf.Collection) ([]link.Link, error) {
	p := c.Programs
	switch h {
	case HookFexit:
		return attachAll(
			func() (link.Link, error) {
				return link.AttachTracing(link.TracingOptions{Program: p["fexit_mptcp_bind"]})
			},
		)
	case HookKprobe:
		return attachAll(
			func() (link.Link, error) { return link.Kretprobe("mptcp_bind", p["kretprobe_mptcp_bind"], nil) },
			func() (link.Link, error) { return link.Kprobe("mptcp_bind", p["kprobe_mptcp_bind"], nil) },
		)
	}
	return nil, nil
}

// attachAll runs each attach in order and undoes them all if one fails.
func attachAll(attach ...func() (link.Link, error)) ([]link.Link, error) {
	links := make([]link.Link, 0, len(attach))
	for _, a := range attach {
		l, err := a()
		if err != nil {
			closeLinks(links)
			return nil, err
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
