package enrich

import (
	"slices"
	"strings"
	"time"

	"github.com/bindwatch/bindwatch/internal/safetext"
	"github.com/bindwatch/bindwatch/schemas"
)

// Where a workload's metadata came from, as the schema's workload_source
// spells it, so that a consumer can weigh it.
const (
	SourceDocker    = "docker"         // config.v2.json in Docker's data root
	SourcePodman    = "podman"         // Podman's container storage
	SourceCRI       = "containerd-cri" // a containerd task bundle written by the CRI plugin
	SourceCRIO      = "cri-o"          // CRI-O's container storage
	SourceOCIConfig = "oci-config"     // an OCI bundle's config.json, no runtime of ours named in it
	SourceNone      = "none"           // a host process, or a container nothing on disk describes
	SourcePending   = "pending"        // a container whose runtime has not written its state yet
)

// Workload is who a cgroup's processes run as, in words a policy and an
// analyst use: the systemd unit of a host process, or the name, image and
// pod of a container, read from the files its runtime wrote.
type Workload struct {
	// Unit is the systemd unit of a host process (sshd.service,
	// user@1000.service, session-3.scope); empty inside a container.
	Unit string
	// ContainerName is the runtime's name for the container; for a
	// Kubernetes container, the name in the pod spec.
	ContainerName string
	// Image is the image reference as the runtime records it
	// (docker.io/library/nginx:1.27).
	Image string
	// ImageDigest is the sha256:… digest of the image the runtime ran, as
	// the runtime records it (Docker and Podman: the image id, which is the
	// digest of its config).
	ImageDigest string
	// Pod fields are set for a Kubernetes container.
	PodName, PodNamespace, PodUID string
	// PodLabels are the pod's labels, at most maxLabels of them.
	PodLabels map[string]string
	// Source is where the container and pod fields came from: one of the
	// Source constants; empty for a host process.
	Source string
	// Trusted is false where the cgroup is in a subtree delegated to a user
	// (cgroup_owner_uid set): a rootless container's name, image and labels
	// are its user's words, and a policy must not take them as the
	// runtime's (the audit's `trust: user`). A Unit is always trusted: it
	// is the name of a directory systemd made (user@1000.service), never
	// one the user made below it.
	Trusted bool
	// sandbox is the id of a CRI pod's sandbox, whose labels the CRI is
	// asked for (criPodLabels); container the id of a CRI container whose
	// image digest it is asked for.
	sandbox, container string
}

// Bounds on what a runtime's file may put into every record of a cgroup.
const (
	// maxStateFile caps the bytes read from one state file: Docker's
	// config.v2.json of a container with a large environment is tens of KiB;
	// Podman's containers.json grows with the number of containers.
	maxStateFile = 8 << 20
	// maxLabels caps pod labels per record; the first ones by key are kept.
	maxLabels = 64
	// maxLabelBytes drops a label whose key or value is longer (Kubernetes
	// allows 317-byte keys and 63-byte values).
	maxLabelBytes = 512
)

// unitOf is the systemd unit a host process in the cgroup at path runs in:
// the innermost .service or .scope directory that the system made. That is
// the first delegated directory at the deepest (systemd makes
// user@1000.service and gives it to the user; what the user makes below it
// is the user's own naming), and otherwise any directory of the path. ""
// when ownership is unknown or no unit is named.
func unitOf(path string, o cgroupOwner) string {
	if !o.checked {
		return ""
	}
	p := path
	if o.delegated {
		// Up to and including the first delegated component.
		rest := path[len(o.trusted):]
		if rest != "" && rest[0] == '/' {
			rest = rest[1:]
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i]
		}
		p = o.trusted + "/" + rest
	}
	for p != "" {
		i := strings.LastIndexByte(p, '/')
		comp := p[i+1:]
		if strings.HasSuffix(comp, ".service") || strings.HasSuffix(comp, ".scope") {
			return comp
		}
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return ""
}

// workloadInfo is a Workload as records carry it: escaped text behind
// pointers made once, shared by every record of the cgroup. Immutable once
// cached, like the cgroupInfo that holds it.
type workloadInfo struct {
	unit, containerName, image, imageDigest *string
	podName, podNamespace, podUID           *string
	podLabels                               map[string]string
	source                                  *string
	trusted                                 bool
	// pending: a container whose runtime's files were not there; the
	// enricher asks again for a while (workloadRetry).
	pending bool
	// labelsPending: a containerd CRI pod's container whose pod labels the
	// CRI has not told yet (criPodLabels).
	sandbox       string
	labelsPending bool
	// digestPending: a containerd CRI container whose image digest the
	// CRI has not told yet.
	container     string
	digestPending bool
}

func optText(s string) *string {
	if s == "" {
		return nil
	}
	t := safetext.Escape(s)
	return &t
}

var sourceText = map[string]*string{}

func init() {
	for _, s := range []string{SourceDocker, SourcePodman, SourceCRI, SourceCRIO, SourceOCIConfig, SourceNone, SourcePending} {
		sourceText[s] = &s
	}
}

func newWorkloadInfo(w Workload) *workloadInfo {
	wi := &workloadInfo{
		unit:          optText(w.Unit),
		containerName: optText(w.ContainerName),
		image:         optText(w.Image),
		imageDigest:   optText(w.ImageDigest),
		podName:       optText(w.PodName),
		podNamespace:  optText(w.PodNamespace),
		podUID:        optText(w.PodUID),
		source:        sourceText[w.Source],
		trusted:       w.Trusted,
		pending:       w.Source == SourcePending,
		sandbox:       w.sandbox,
		labelsPending: w.Source == SourceCRI && w.sandbox != "",
		container:     w.container,
		digestPending: w.Source == SourceCRI && w.container != "" && w.ImageDigest == "",
		podLabels:     escapeLabels(w.PodLabels),
	}
	return wi
}

// escapeLabels is labels with every key and value escaped; nil for none.
func escapeLabels(labels map[string]string) map[string]string {
	if len(labels) == 0 {
		return nil
	}
	out := make(map[string]string, len(labels))
	for k, v := range labels {
		out[safetext.Escape(k)] = safetext.Escape(v)
	}
	return out
}

// Workload is the info as a Workload again (unescaped text is not kept:
// this is the record's text).
func (wi *workloadInfo) Workload() Workload {
	if wi == nil {
		return Workload{}
	}
	s := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return Workload{
		Unit: s(wi.unit), ContainerName: s(wi.containerName), Image: s(wi.image),
		ImageDigest: s(wi.imageDigest), PodName: s(wi.podName), PodNamespace: s(wi.podNamespace),
		PodUID: s(wi.podUID), PodLabels: wi.podLabels, Source: s(wi.source), Trusted: wi.trusted,
	}
}

// boundLabels keeps at most maxLabels labels, the first by key, and drops
// oversized ones; nil for none.
func boundLabels(in map[string]string, skip func(string) bool) map[string]string {
	keys := make([]string, 0, len(in))
	for k, v := range in {
		if k == "" || len(k) > maxLabelBytes || len(v) > maxLabelBytes || (skip != nil && skip(k)) {
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil
	}
	if len(keys) > maxLabels {
		slices.Sort(keys)
		keys = keys[:maxLabels]
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[k] = in[k]
	}
	return out
}

// A container whose workload is not on disk at first sight (its runtime
// writes its state before starting it, so this is a runtime bindwatch
// does not know the files of, or a root it was not told) is looked up
// again at most every workloadRetryEvery while its records go on pending,
// and given up on after workloadPatience: its records then say "none".
const (
	workloadRetryEvery = 200 * time.Millisecond
	workloadPatience   = 30 * time.Second
	// maxWorkloadRetries bounds the cgroups waiting; past it a new one is
	// given up on at once.
	maxWorkloadRetries = 1024
)

type workloadRetry struct{ first, next int64 } // monotonic ns, the cgroup resolver's clock

// pendingWorkload is info, or info with its workload found or given up on,
// cached in its place.
func (e *Enricher) pendingWorkload(id uint64, info *cgroupInfo) *cgroupInfo {
	now := e.cgroups.monoNS()
	r, waiting := e.retries[id]
	if !waiting {
		if len(e.retries) >= maxWorkloadRetries {
			e.sweepRetries(now)
		}
		if p := e.files.denied.Load(); p != nil && !e.deniedWarned {
			e.deniedWarned = true
			e.log.Warn("container runtime state not readable: containers' records say workload_source pending, then none; "+
				"the agent needs read access to the runtimes' state, root's alone (CAP_DAC_READ_SEARCH, which bindwatch.service grants "+
				"and its no-workload.conf drop-in takes away; a unit of your own needs it in AmbientCapabilities=)",
				"path", *p)
		}
		if len(e.retries) < maxWorkloadRetries {
			e.retries[id] = workloadRetry{first: now, next: now + int64(workloadRetryEvery)}
			e.workloadPending.Add(1)
			return info
		}
		r.first = now - int64(workloadPatience)
	} else if now < r.next {
		e.workloadPending.Add(1)
		return info
	}
	w := e.files.resolve(*info.runtime, *info.containerID, info.owner())
	switch {
	case w.Source != SourcePending:
		e.workloadLate.Add(1)
	case now-r.first < int64(workloadPatience):
		e.retries[id] = workloadRetry{first: r.first, next: now + int64(workloadRetryEvery)}
		e.workloadPending.Add(1)
		return info
	default:
		w = Workload{Source: SourceNone, Trusted: w.Trusted}
		e.workloadMissing.Add(1)
		e.log.Debug("container workload not found", "cgroup_id", id, "container_id", *info.containerID, "runtime", *info.runtime)
	}
	delete(e.retries, id)
	found := *info
	found.workload = newWorkloadInfo(w)
	e.cgroups.store(id, &found)
	return &found
}

// sweepRetries forgets cgroups waited on for longer than workloadPatience
// (evicted from the cache, or not seen since): a later record of one looks
// once more and gives up.
func (e *Enricher) sweepRetries(now int64) {
	for id, r := range e.retries {
		if now-r.first >= int64(workloadPatience) {
			delete(e.retries, id)
		}
	}
}

// Workload is what the enricher knows of cgroup id's workload, as a
// record of a process pid in it would carry it.
func (e *Enricher) Workload(id uint64, pid uint32) Workload {
	return e.cgroupFor(id, pid, 0).workloadOrNil().Workload()
}

func (i *cgroupInfo) workloadOrNil() *workloadInfo {
	if i == nil {
		return nil
	}
	return i.workload
}

// setWorkload copies w (nil: nothing known) into a record's v3 fields.
func setWorkload(out *schemas.BindEvent, w *workloadInfo) {
	if w == nil {
		out.Unit, out.ContainerName, out.Image, out.ImageDigest = nil, nil, nil, nil
		out.PodName, out.PodNamespace, out.PodUID, out.PodLabels = nil, nil, nil, nil
		out.WorkloadSource = nil
		return
	}
	out.Unit, out.ContainerName, out.Image, out.ImageDigest = w.unit, w.containerName, w.image, w.imageDigest
	out.PodName, out.PodNamespace, out.PodUID, out.PodLabels = w.podName, w.podNamespace, w.podUID, w.podLabels
	out.WorkloadSource = w.source
}
