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
}
