package enrich

import (
	"log/slog"
	"time"
)

// Config sets up an Enricher. The zero value works on an ordinary host; the
// root paths exist for agents running in a container with the host's
// filesystem mounted elsewhere, and for tests.
type Config struct {
	// Hostname overrides the kernel's hostname in every record.
	Hostname string
	// RootFS is the host's / as the agent sees it (for etc/machine-id).
	// Default "/".
	RootFS string
	// ProcRoot is a procfs mount of the host's pid namespace: event pids are
	// global pids. Default "/proc".
	ProcRoot string
	// CgroupRoot is the cgroup2 (unified) mount. Default: found in
	// <ProcRoot>/self/mountinfo; without one, container fields stay null.
	CgroupRoot string
	// Runtimes are where container runtimes keep their state; each empty
	// path is the runtime's default under RootFS.
	Runtimes RuntimeRoots
	// CgroupCacheSize caps the cgroup id cache (least recently used out).
	// Default 8192.
	CgroupCacheSize int
	// IfnameCacheSize caps the (netns, ifindex) name cache. Default 1024.
	IfnameCacheSize int
	// NegativeTTL is how long a failed cgroup or interface lookup is
	// remembered before being tried again. Default 5s.
	NegativeTTL time.Duration
	// CgroupRescanInterval is the least time between two scans of the
	// cgroup2 tree for ids nothing else could resolve (scans are also
	// spaced by ten times the last one's duration). Default 1s.
	CgroupRescanInterval time.Duration
	// IfnameTTL is how long an interface name is trusted. Default 1m.
	IfnameTTL time.Duration
	// ClockResync is how often Run remeasures the boot-to-wall clock offset,
	// which bounds how long a stepped wall clock goes unnoticed. Default 1s.
	ClockResync time.Duration
	// Logger receives diagnostics; default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.RootFS == "" {
		c.RootFS = "/"
	}
	if c.ProcRoot == "" {
		c.ProcRoot = "/proc"
	}
	c.Runtimes = c.Runtimes.withDefaults(c.RootFS)
	if c.CgroupCacheSize <= 0 {
		c.CgroupCacheSize = 8192
	}
	if c.IfnameCacheSize <= 0 {
		c.IfnameCacheSize = 1024
	}
	if c.NegativeTTL <= 0 {
		c.NegativeTTL = 5 * time.Second
	}
	if c.CgroupRescanInterval <= 0 {
		c.CgroupRescanInterval = time.Second
	}
	if c.IfnameTTL <= 0 {
		c.IfnameTTL = time.Minute
	}
	if c.ClockResync <= 0 {
		c.ClockResync = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
