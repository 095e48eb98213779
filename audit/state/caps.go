package state

// Longest strings the table keeps of a record, in bytes: a kernel comm is
// 15, a machine-id 32, a path at most PATH_MAX (4096). What a record brings
// beyond is cut (Cap), so one record cannot make a host's state grow
// without bound.
const (
	maxShort  = 256  // host, boot id, comm, runtime, protocol, family, addr, ids
	maxPath   = 4096 // exe, cgroup path, workload names
	maxList   = 64   // entries of a list or map (labels, blind spots)
	maxDetail = 1024 // one entry of a list, a label
)

// Cap cuts ev's strings to what the table keeps and says which fields were
// cut (nil when none).
func Cap(ev *Event) []string {
	var cut []string
	str := func(name string, s *string, n int) {
		if len(*s) > n {
			*s = (*s)[:n]
			cut = append(cut, name)
		}
	}
	str("host", &ev.Host, maxShort)
	str("boot_id", &ev.BootID, maxShort)
	str("comm", &ev.Comm, maxShort)
	str("container_id", &ev.ContainerID, maxShort)
	str("container_runtime", &ev.Runtime, maxShort)
	str("protocol", &ev.Protocol, maxShort)
	str("family", &ev.Family, maxShort)
	str("addr", &ev.Addr, maxShort)
	str("exposure", &ev.Exposure, maxShort)
	str("snapshot_id", &ev.SnapshotID, maxShort)
	str("exe", &ev.Exe, maxPath)
	if ev.CgroupPath != nil && len(*ev.CgroupPath) > maxPath {
		p := (*ev.CgroupPath)[:maxPath]
		ev.CgroupPath = &p
		cut = append(cut, "cgroup_path")
	}
	w := &ev.Workload
	str("unit", &w.Unit, maxPath)
	str("container_name", &w.ContainerName, maxPath)
	str("image", &w.Image, maxPath)
	str("image_digest", &w.ImageDigest, maxShort)
	str("pod_name", &w.PodName, maxPath)
	str("pod_namespace", &w.PodNamespace, maxPath)
	str("pod_uid", &w.PodUID, maxShort)
	str("workload_source", &w.Source, maxShort)
	if len(w.PodLabels) > 0 {
		labels, changed := make(map[string]string, min(len(w.PodLabels), maxList)), false
		for k, v := range w.PodLabels {
			if len(labels) == maxList {
				changed = true
				break
			}
			if len(k) > maxDetail || len(v) > maxDetail {
				changed = true
				k, v = k[:min(len(k), maxDetail)], v[:min(len(v), maxDetail)]
			}
			labels[k] = v
		}
		if changed {
			w.PodLabels = labels
			cut = append(cut, "pod_labels")
		}
	}
	list := func(name string, l *[]string) {
		changed := len(*l) > maxList
		if changed {
			*l = (*l)[:maxList]
		}
		for i, s := range *l {
			if len(s) > maxDetail {
				(*l)[i], changed = s[:maxDetail], true
			}
		}
		if changed {
			cut = append(cut, name)
		}
	}
	list("capture_blind", &ev.CaptureBlind)
	list("snapshot_incomplete", &ev.SnapshotIncomplete)
	return cut
}
