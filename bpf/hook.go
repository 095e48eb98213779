package bpf

import (
	"fmt"
	"strings"
)

// Hook names a way of seeing binds in the kernel.
type Hook string

// The hooks, in the order HookAuto tries them.
const (
	HookAuto       Hook = "auto"
	HookFexit      Hook = "fexit"
	HookKprobe     Hook = "kprobe"
	HookTracepoint Hook = "tracepoint"
)

// Hooks lists the concrete hooks from most to least preferred: fexit sees
// arguments and return value in one program; kprobes need per-thread state;
// syscall tracepoints work where neither attaches but miss binds made by the
// kernel itself and must find the socket through the fd table.
var Hooks = []Hook{HookFexit, HookKprobe, HookTracepoint}

// ParseHook accepts auto, fexit, kprobe or tracepoint.
func ParseHook(s string) (Hook, error) {
	h := Hook(s)
	if h == HookAuto {
		return h, nil
	}
	for _, known := range Hooks {
		if h == known {
			return h, nil
		}
	}
	return "", fmt.Errorf("unknown hook %q: want auto, %s", s, joinHooks(Hooks))
}

// candidates is the order in which Load tries hooks for h.
func (h Hook) candidates() []Hook {
	if h == HookAuto || h == "" {
		return Hooks
	}
	return []Hook{h}
}

func joinHooks(hs []Hook) string {
	s := make([]string, len(hs))
	for i, h := range hs {
		s[i] = string(h)
	}
	return strings.Join(s, ", ")
}
