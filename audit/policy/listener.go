// Package policy parses the audit's rule language and matches listeners
// against it. It does no I/O beyond what the caller hands it: Parse takes
// the file's bytes and its name, so tests need no files.
package policy

import "net/netip"

// Listener is what a rule can look at: one listening socket with the
// process and container that opened or hold it.
type Listener struct {
	Host        string
	ContainerID string // empty outside containers
	Runtime     string // container runtime (docker, containerd, ...); empty outside containers
	Exe         string
	Comm        string
	UID         int64
	Protocol    string // TCP, UDP, MPTCP, SCTP
	Addr        netip.Addr
	Port        int
	Exposure    string // loopback, link_local, specific, wildcard
	HostNetNS   *bool  // nil when the agent did not say
	CgroupPath  *string
	// CgroupOwnerUID is the uid owning a delegated cgroup subtree the
	// process is in; nil when root owns it (or the agent did not say).
	CgroupOwnerUID *int64

	// The workload (BindEvent v3): the systemd unit of a host process,
	// or its container's name and image and its pod; empty where the
	// agent did not say. Its words are believed only where root owns the
	// cgroup (see SystemCgroup and a rule's trust).
	Unit, ContainerName, Image, ImageDigest, PodNamespace string
	PodLabels                                             map[string]string
}

// SystemCgroup says whether l's cgroup is root's all the way down, so
// that what its path and its runtime say was not chosen by a user: no
// delegated directory on it, and not a rootless container.
func (l *Listener) SystemCgroup() bool {
	return l.CgroupOwnerUID == nil && !userNamed(l)
}
