package enrich

// containerd: the OCI spec of a task's bundle, with the CRI plugin's
// annotations, under workload.containerd_state.

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
)

// Annotations containerd's CRI plugin writes into each task's OCI spec.
const (
	criContainerType    = "io.kubernetes.cri.container-type" // "sandbox" or "container"
	criContainerName    = "io.kubernetes.cri.container-name"
	criImageName        = "io.kubernetes.cri.image-name"
	criSandboxName      = "io.kubernetes.cri.sandbox-name"
	criSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	criSandboxUID       = "io.kubernetes.cri.sandbox-uid"
	criSandboxID        = "io.kubernetes.cri.sandbox-id"
)

// specAnnotations reads the annotations of an OCI spec (a bundle's
// config.json) without decoding the rest: a container's spec carries its
// mounts and, under linux, a seccomp profile of hundreds of system calls:
// decoding all of an 8.6 KB spec took 0.2-0.3 ms here, reading only its
// annotations (a few hundred bytes) 7-41 µs (BenchmarkSpecAnnotations,
// side by side, noisy machine). The object is found by its key:
// "annotations" followed by a colon cannot occur inside a JSON string
// (its quotes would be escaped there), and the OCI spec has the key at the
// top level only. A spec without annotations has none.
func specAnnotations(b []byte) (map[string]string, error) {
	const key = `"annotations"`
	for off := 0; ; {
		i := bytes.Index(b[off:], []byte(key))
		if i < 0 {
			if !json.Valid(b) {
				return nil, errors.New("not a JSON document")
			}
			return nil, nil
		}
		rest := bytes.TrimLeft(b[off+i+len(key):], " \t\r\n")
		off += i + len(key)
		if len(rest) == 0 || rest[0] != ':' {
			continue // a value, not the key
		}
		var a map[string]string
		if err := json.NewDecoder(bytes.NewReader(rest[1:])).Decode(&a); err != nil {
			return nil, err
		}
		return a, nil
	}
}

// containerdTasks is where containerd's v2 shims keep the bundles.
const containerdTasks = "io.containerd.runtime.v2.task"

// containerd reads the task bundle of id. The namespace is not in the
// cgroup path: the CRI's (k8s.io) is tried first, then the others there.
func (f *workloadFiles) containerd(id string) (Workload, bool) {
	tasks := filepath.Join(f.roots.Containerd, containerdTasks)
	if w, ok := f.readContainerdBundle(filepath.Join(tasks, "k8s.io", id)); ok {
		return w, true
	}
	namespaces, err := f.readDir(tasks)
	if err != nil {
		return Workload{}, false
	}
	for _, ns := range namespaces {
		if ns.Name() == "k8s.io" {
			continue
		}
		if w, ok := f.readContainerdBundle(filepath.Join(tasks, ns.Name(), id)); ok {
			return w, true
		}
	}
	return Workload{}, false
}

func (f *workloadFiles) readContainerdBundle(dir string) (Workload, bool) {
	b, err := f.read(filepath.Join(dir, "config.json"))
	if err != nil {
		return Workload{}, false
	}
	a, err := specAnnotations(b)
	if err != nil {
		return Workload{}, false
	}
	w := parseContainerdAnnotations(a)
	if a[criContainerType] == "container" {
		w.container = filepath.Base(dir)
	}
	return w, true
}

// parseContainerdAnnotations is the workload a containerd task's spec
// names: the CRI plugin's annotations, or, for a container made some other
// way (ctr, nerdctl), a bundle that names nothing of ours.
func parseContainerdAnnotations(a map[string]string) Workload {
	if a[criContainerType] == "" {
		return Workload{Source: SourceOCIConfig, ContainerName: a["nerdctl/name"]}
	}
	return Workload{
		Source:        SourceCRI,
		ContainerName: a[criContainerName],
		Image:         a[criImageName],
		ImageDigest:   digestOf(a[criImageName]),
		PodName:       a[criSandboxName],
		PodNamespace:  a[criSandboxNamespace],
		PodUID:        a[criSandboxUID],
		sandbox:       a[criSandboxID],
	}
}
