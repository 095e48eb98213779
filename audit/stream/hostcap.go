package stream

import (
	"fmt"
	"time"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/integrity"
)

// overHostCap says whether a record of hostID would add a host to a table
// at its cap (audit.max_hosts, the table's MaxHosts). Asked before the
// verifier sees the record:
// a host refused keeps nothing, not even the verifier's entry or an
// unsigned finding, so a flood of new host ids costs no memory.
func (pc *partition) overHostCap(hostID string) bool {
	return len(pc.table.Hosts) >= pc.table.MaxHosts() && pc.table.Hosts[hostID] == nil
}

// hostCap refuses a record of a host over the cap: always counted
// (bindwatch_audit_refused_total{reason="host_cap"}), reported by one
// integrity finding per partition at a time, in the name of the first host
// refused: one per host refused would keep a finding open per host id of a
// flood, what the cap is there to prevent. The finding is resolved once
// the partition is under its cap again (hosts expired).
func (pc *partition) hostCap(out []findings.Finding, pr integrity.Problem) []findings.Finding {
	pc.loadHostCap()
	if len(pc.hostCapOpen) > 0 {
		pc.p.Metrics.refused.WithLabelValues(integrity.ReasonHostCap).Inc()
		pc.p.Metrics.events.WithLabelValues("refused").Inc()
		return out
	}
	pr.Reason = integrity.ReasonHostCap
	pr.Detail = fmt.Sprintf("partition %d already holds %d hosts (the cap): records of host %s, and of any other new host while this is open, are refused "+
		"(bindwatch_audit_refused_total{reason=\"host_cap\"} counts them)", pc.id, pc.table.MaxHosts(), clip(pr.HostID))
	out = pc.refuse(out, pr)
	pc.hostCapOpen = pc.tracker.OpenOf(findings.KindIntegrity, integrity.ReasonHostCap)
	return out
}

// loadHostCap finds, once per partition run, the host_cap findings the
// findings topic has open (from before a restart or a rebalance): they
// stand for the partition's, and are resolved with it.
func (pc *partition) loadHostCap() {
	if !pc.hostCapLoaded {
		pc.hostCapLoaded = true
		pc.hostCapOpen = pc.tracker.OpenOf(findings.KindIntegrity, integrity.ReasonHostCap)
	}
}

// hostCapOver resolves the partition's host_cap findings once it holds
// fewer hosts than the cap.
func (pc *partition) hostCapOver(now time.Time, out []findings.Finding) []findings.Finding {
	pc.loadHostCap()
	if len(pc.hostCapOpen) == 0 || len(pc.table.Hosts) >= pc.table.MaxHosts() {
		return out
	}
	why := fmt.Sprintf("partition %d holds %d hosts, under the cap of %d: new hosts are taken again", pc.id, len(pc.table.Hosts), pc.table.MaxHosts())
	for _, id := range pc.hostCapOpen {
		out = pc.tracker.ResolveOpen(id, why, now, out)
	}
	pc.hostCapOpen = nil
	return out
}
