package enrich

import (
	"net/netip"

	"github.com/bindwatch/bindwatch/schemas"
)

// CompleteSnapshot fills in what the inventory leaves to enrichment: the
// host identity, and for a snapshot record the containers and executables
// of its holders, the exposure and whether its namespace is the host's.
// The record's own container, cgroup path, owner and workload are its
// first holder's.
func (e *Enricher) CompleteSnapshot(rec *schemas.BindEvent) {
	rec.Host, rec.HostID, rec.BootID = e.id.Hostname, e.id.HostID, e.id.BootID
	if rec.Kind != schemas.KindSnapshot {
		return
	}
	for i := range rec.Holders {
		h := &rec.Holders[i]
		cg := e.cgroupFor(uint64(h.CgroupID), uint32(h.PID), 0)
		if cg != nil {
			h.ContainerID = cg.containerID
			if i == 0 {
				rec.ContainerID, rec.ContainerRuntime = cg.containerID, cg.runtime
				rec.CgroupPath, rec.CgroupOwnerUID = cg.pathText, cg.ownerUID
			}
		}
		if i == 0 {
			setWorkload(rec, cg.workloadOrNil())
		}
		h.Exe = e.exes.lookup(uint32(h.PID), rec.Time)
	}
	if len(rec.Holders) > 0 {
		rec.Exe = rec.Holders[0].Exe
	}
	if a, err := netip.ParseAddr(rec.Addr); err == nil {
		rec.Exposure = exposurePtr(a)
	}
	rec.HostNetNS = e.isHostNetNS(uint32(rec.NetNSID))
}
