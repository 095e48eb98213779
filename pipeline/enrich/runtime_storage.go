package enrich

// CRI-O and Podman: containers/storage's containers.json and the specs
// CRI-O saves, under workload.storage_root and storage_run_root.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Annotations CRI-O writes into each container's spec.
const (
	crioLabels    = "io.kubernetes.cri-o.Labels" // the CRI's labels, as JSON
	crioImageName = "io.kubernetes.cri-o.ImageName"
	crioImageRef  = "io.kubernetes.cri-o.ImageRef"
	crioSandboxID = "io.kubernetes.cri-o.SandboxID"
)

func (f *workloadFiles) crio(id string) (Workload, bool) {
	a, ok := f.storageAnnotations(id)
	if !ok {
		return Workload{}, false
	}
	w, sandbox := parseCRIOAnnotations(a)
	if sandbox != "" && isContainerID(sandbox) {
		if sa, ok := f.storageAnnotations(sandbox); ok {
			var labels map[string]string
			if json.Unmarshal([]byte(sa[crioLabels]), &labels) == nil {
				w.PodLabels = boundLabels(labels, isKubeletLabel)
			}
		}
	}
	return w, true
}

// storageDrivers are containers/storage's graph drivers, by how often they
// are used: each keeps its containers under <driver>-containers (rootless
// Podman without fuse-overlayfs uses vfs).
var storageDrivers = [...]string{"overlay", "vfs", "btrfs", "zfs"}

// storageAnnotations reads the spec CRI-O saved for id: under the run root
// while it runs, and under the graph root.
func (f *workloadFiles) storageAnnotations(id string) (map[string]string, bool) {
	for _, root := range [...]string{f.roots.RunStorage, f.roots.Storage} {
		for _, driver := range storageDrivers {
			b, err := f.read(filepath.Join(root, driver+"-containers", id, "userdata", "config.json"))
			if err != nil {
				continue
			}
			if a, err := specAnnotations(b); err == nil {
				return a, true
			}
		}
	}
	return nil, false
}

// parseCRIOAnnotations is the workload CRI-O's annotations name, and the
// id of the pod's sandbox, whose labels are the pod's.
func parseCRIOAnnotations(a map[string]string) (w Workload, sandbox string) {
	var labels map[string]string
	_ = json.Unmarshal([]byte(a[crioLabels]), &labels)
	get := func(k string) string {
		if v := labels[k]; v != "" {
			return v
		}
		return a[k]
	}
	digest := digestOf(a[crioImageRef])
	if digest == "" {
		digest = digestOf(a[crioImageName])
	}
	return Workload{
		Source:        SourceCRIO,
		ContainerName: get(k8sContainerName),
		Image:         a[crioImageName],
		ImageDigest:   digest,
		PodName:       get(k8sPodName),
		PodNamespace:  get(k8sPodNamespace),
		PodUID:        get(k8sPodUID),
	}, a[crioSandboxID]
}

// storageContainer is one entry of containers/storage's containers.json.
type storageContainer struct {
	ID    string   `json:"id"`
	Names []string `json:"names"`
	Image string   `json:"image"`
	// Metadata is Podman's RuntimeContainerMetadata, as a JSON string.
	Metadata string `json:"metadata"`
}

type podmanMetadata struct {
	ImageName string `json:"image-name"`
	ImageID   string `json:"image-id"`
	Name      string `json:"name"`
}

// podman reads id's entry in the containers.json of the storage at root.
func (f *workloadFiles) podman(root, id string) (Workload, bool) {
	for _, driver := range storageDrivers {
		b, err := f.read(filepath.Join(root, driver+"-containers", "containers.json"))
		if err != nil {
			continue
		}
		if w, ok := parsePodmanContainers(b, id); ok {
			return w, true
		}
	}
	return Workload{}, false
}

func parsePodmanContainers(b []byte, id string) (Workload, bool) {
	// The file lists every container of the host. containers/storage
	// writes each entry with its id first: decode that one entry, not the
	// whole list. The search is for the id's first 48 digits, which
	// bytes.Index does with vector instructions (a longer pattern takes its
	// Rabin-Karp loop, several times slower).
	found := false
	for off := 0; ; {
		i := bytes.Index(b[off:], []byte(id[:48]))
		if i < 0 {
			break
		}
		i += off
		off = i + 48
		found = true
		const prefix = `{"id":"`
		if i < len(prefix) || string(b[i-len(prefix):i]) != prefix || !bytes.HasPrefix(b[i:], []byte(id+`"`)) {
			continue
		}
		var c storageContainer
		if json.NewDecoder(bytes.NewReader(b[i-len(prefix):])).Decode(&c) == nil && c.ID == id {
			return podmanWorkload(c), true
		}
	}
	if !found {
		return Workload{}, false // not there yet
	}
	var list []storageContainer
	if json.Unmarshal(b, &list) != nil {
		return Workload{}, false
	}
	for _, c := range list {
		if c.ID == id {
			return podmanWorkload(c), true
		}
	}
	return Workload{}, false
}

func podmanWorkload(c storageContainer) Workload {
	var m podmanMetadata
	_ = json.Unmarshal([]byte(c.Metadata), &m)
	w := Workload{Source: SourcePodman, ContainerName: m.Name, Image: m.ImageName}
	if w.ContainerName == "" && len(c.Names) > 0 {
		w.ContainerName = c.Names[0]
	}
	if w.ImageDigest = digestOf(m.ImageID); w.ImageDigest == "" {
		w.ImageDigest = digestOf(c.Image)
	}
	return w
}

// passwdHome is the home directory of uid in a passwd file; "" if none.
func passwdHome(path string, uid uint32) string {
	fh, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer fh.Close()
	return parsePasswdHome(fh, uid)
}

func parsePasswdHome(r io.Reader, uid uint32) string {
	want := strconv.FormatUint(uint64(uid), 10)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) >= 6 && f[2] == want && strings.HasPrefix(f[5], "/") {
			return f[5]
		}
	}
	return ""
}
