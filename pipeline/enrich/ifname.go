package enrich

import (
	"net"
	"os"
	"strconv"
	"time"

	"github.com/bindwatch/bindwatch/internal/safetext"
)

// ifKey names an interface: indexes are per network namespace.
type ifKey struct{ netns, index uint32 }

// ifEntry is a cached name; nil is "unknown". Names expire, unlike cgroup
// paths: an interface can be renamed, or deleted and its index reused.
type ifEntry struct {
	name    *string
	expires int64
}

// ifnameResolver names the interface a socket was bound to
// (SO_BINDTODEVICE), in the socket's network namespace.
//
// In the agent's own namespace it asks the kernel over netlink
// (net.InterfaceByIndex). For another namespace it reads the procfs files
// of a process in that namespace — the caller or its parent, after checking
// that /proc/<pid>/ns/net is the socket's namespace — rather than entering
// the namespace with setns: that would need a locked OS thread, and a
// thread left in the wrong namespace if switching back failed. The files
// list every interface with IPv6 state (igmp6, even down ones) or IPv4
// multicast (igmp); a device with neither stays unknown.
type ifnameResolver struct {
	procRoot  string
	selfNetNS uint32 // 0: unknown, every namespace is "another"
	local     func(index int) (string, error)
	cache     *lru[ifKey, ifEntry]
	ttl       time.Duration
	negTTL    time.Duration
	epoch     time.Time
	now       func() time.Time
}

func newIfnameResolver(procRoot string, size int, ttl, negTTL time.Duration) *ifnameResolver {
	r := &ifnameResolver{
		procRoot: procRoot,
		local:    localIfname,
		cache:    newLRU[ifKey, ifEntry](size),
		ttl:      ttl,
		negTTL:   negTTL,
		epoch:    time.Now(),
		now:      time.Now,
	}
	if target, err := os.Readlink(procRoot + "/self/ns/net"); err == nil {
		r.selfNetNS, _ = ParseNetNSLink(target)
	}
	return r
}

func localIfname(index int) (string, error) {
	ifi, err := net.InterfaceByIndex(index)
	if err != nil {
		return "", err
	}
	return safetext.Escape(ifi.Name), nil
}

// lookup returns the name of interface index in netns, nil when unknown.
func (r *ifnameResolver) lookup(netns, index, pid, ppid uint32) (name *string, hit bool) {
	key := ifKey{netns, index}
	now := r.monoNS()
	if e, ok := r.cache.get(key); ok && now < e.expires {
		return e.name, true
	}
	if netns != 0 && netns == r.selfNetNS {
		name = r.resolveLocal(index)
	} else {
		name = r.resolveProcfs(key, pid, ppid, now)
	}
	ttl := r.ttl
	if name == nil {
		ttl = r.negTTL
	}
	r.cache.put(key, ifEntry{name: name, expires: now + int64(ttl)})
	return name, false
}

func (r *ifnameResolver) monoNS() int64 { return int64(r.now().Sub(r.epoch)) }

func (r *ifnameResolver) resolveLocal(index uint32) *string {
	name, err := r.local(int(index))
	if err != nil {
		return nil
	}
	return &name
}

// resolveProcfs caches every interface it reads, since a namespace's other
// interfaces are likely to be asked for next, and returns the wanted one.
func (r *ifnameResolver) resolveProcfs(key ifKey, pid, ppid uint32, now int64) *string {
	for i, p := range [2]uint32{pid, ppid} {
		if p == 0 || (i == 1 && p == pid) {
			continue
		}
		dir := r.procRoot + "/" + strconv.FormatUint(uint64(p), 10)
		target, err := os.Readlink(dir + "/ns/net")
		if err != nil {
			continue
		}
		if ns, ok := ParseNetNSLink(target); !ok || ns != key.netns {
			continue
		}
		var found *string
		for _, src := range [...]struct {
			file  string
			parse func(string) []ifaceName
		}{
			{"igmp6", parseIgmp6},
			{"if_inet6", parseIfInet6},
			{"igmp", parseIgmp},
		} {
			b, err := os.ReadFile(dir + "/net/" + src.file)
			if err != nil {
				continue
			}
			for _, ifn := range src.parse(string(b)) {
				// Another namespace's owner names its interfaces: escape them.
				ifn.name = safetext.Escape(ifn.name)
				if ifn.index == key.index {
					if found == nil {
						found = &ifn.name
					}
					continue
				}
				r.cache.put(ifKey{key.netns, ifn.index}, ifEntry{name: &ifn.name, expires: now + int64(r.ttl)})
			}
		}
		return found
	}
	return nil
}
