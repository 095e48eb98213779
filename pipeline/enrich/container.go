package enrich

import "strings"

// Runtime names as the schema's container_runtime field spells them.
const (
	RuntimeDocker     = "docker"
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimePodman     = "podman"
	// RuntimePodmanRootless is Podman run by a user in its own delegated
	// subtree (user@UID.service/user.slice/libpod-<id>.scope): the user
	// could as well have named the cgroup so itself, and it says no more
	// than that; cgroup_owner_uid says which user.
	RuntimePodmanRootless = "podman-rootless"
)

// containerIDLen is the length of the full ids every runtime here assigns:
// 32 random bytes in hex. Short ids are a display form and never a cgroup name.
const containerIDLen = 64

// scopePrefixes maps the prefix of a cgroup directory named after a container
// to the runtime that names it so. The systemd cgroup driver adds ".scope";
// the cgroupfs drivers of CRI-O and Podman use the same names without it.
// The conmon monitors (crio-conmon-<id>, libpod-conmon-<id>) run outside
// the container: their remainder is not an id, so they never match.
var scopePrefixes = [...]struct{ prefix, runtime string }{
	{"docker-", RuntimeDocker},
	{"cri-containerd-", RuntimeContainerd},
	{"crio-", RuntimeCRIO},
	{"libpod-", RuntimePodman},
	{"nerdctl-", RuntimeContainerd},
}

// ParseContainer finds the container a cgroup v2 path belongs to, and the
// runtime that created it, going by names alone. Whoever may make cgroups
// in a subtree chooses those names: records go through attributeContainer,
// which believes them only where root made them.
//
// Components are examined from the leaf up and the first one named after a
// container wins: a container's own sub-cgroups (docker-<id>.scope/init.scope,
// Podman's libpod-<id>.scope/container) map to the container, and in nested
// setups (docker-in-docker) the innermost container is the caller's.
//
// A bare 64-hex directory is a container under a "docker" directory (Docker's
// cgroupfs driver, and dockerd inside a container) or under a Kubernetes pod
// directory (kubelet's cgroupfs driver). The latter does not say which
// runtime made it; it is reported as containerd, the runtime Kubernetes
// defaults to since dockershim was removed in 1.24. With the systemd driver
// the leaf's prefix names the runtime (cri-containerd-, docker-, crio-).
func ParseContainer(cgroupPath string) (id, runtime string, ok bool) {
	id, runtime, _, ok = parseContainerAt(cgroupPath)
	return id, runtime, ok
}

// parseContainerAt is ParseContainer, also saying where the matched
// component ends in the path.
func parseContainerAt(cgroupPath string) (id, runtime string, end int, ok bool) {
	p := cgroupPath
	for p != "" {
		i := strings.LastIndexByte(p, '/')
		comp, parent := p[i+1:], ""
		if i >= 0 {
			parent = p[:i]
		}
		if id, runtime, ok = matchComponent(comp, parent); ok {
			return id, runtime, len(p), true
		}
		p = parent
	}
	return "", "", 0, false
}

// attributeContainer is what a record may say about the container the
// cgroup at path belongs to, given who controls it (see cgroupTrust).
//
//   - Ownership unknown: nothing. A name is not evidence.
//   - Every directory the system's: the runtime the name says.
//   - In a subtree delegated to a user: a libpod scope there is rootless
//     Podman, reported as podman-rootless with its id. Any other
//     container-like name there (docker-<id>.scope, docker/<id>,
//     kubepods/pod…/<id>, cri-containerd-…) is the user's own choosing: it is
//     not reported, neither as that runtime nor as an id (which could be
//     copied from a real container to make its records look like another's).
//     A container above the delegated directory, in the system's part of the
//     path, is still the caller's container and is reported: a user inside
//     a rootful container, say.
//
// cgroup_path and cgroup_owner_uid carry the rest for consumers to judge.
func attributeContainer(path string, o cgroupOwner) (id, runtime string, ok bool) {
	if !o.checked {
		return "", "", false
	}
	id, runtime, end, ok := parseContainerAt(path)
	if !ok || !o.delegated || end <= len(o.trusted) {
		return id, runtime, ok
	}
	if runtime == RuntimePodman {
		return id, RuntimePodmanRootless, true
	}
	return ParseContainer(o.trusted)
}

func matchComponent(comp, parent string) (id, runtime string, ok bool) {
	if isContainerID(comp) {
		if runtime, ok = bareIDRuntime(parent); ok {
			return comp, runtime, true
		}
		return "", "", false
	}
	name := strings.TrimSuffix(comp, ".scope")
	for _, sp := range scopePrefixes {
		if rest, found := strings.CutPrefix(name, sp.prefix); found && isContainerID(rest) {
			return rest, sp.runtime, true
		}
	}
	return "", "", false
}

// bareIDRuntime decides whose a directory named by a bare id is, from its
// parent path. Elsewhere such a name is not trusted to be a container.
func bareIDRuntime(parent string) (string, bool) {
	base := parent[strings.LastIndexByte(parent, '/')+1:]
	if base == "docker" {
		return RuntimeDocker, true
	}
	if strings.HasPrefix(base, "pod") && underKubepods(parent) {
		return RuntimeContainerd, true
	}
	return "", false
}

func underKubepods(path string) bool {
	for path != "" {
		i := strings.LastIndexByte(path, '/')
		if strings.HasPrefix(path[i+1:], "kubepods") {
			return true
		}
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return false
}

// isContainerID accepts exactly 64 lowercase hex digits, the form runtimes
// write; anything else (short ids, uppercase, pod UIDs) is not an id.
func isContainerID(s string) bool {
	return len(s) == containerIDLen && isLowerHex(s)
}
