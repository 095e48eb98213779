package enrich

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/bindwatch/bindwatch/internal/dacread"
)

// RuntimeRoots are where the container runtimes keep the state files a
// container's workload is read from. Each is a path as the agent sees it;
// empty takes the runtime's default under Config.RootFS. A runtime that is
// not installed costs nothing: its files are opened only for a container
// whose cgroup name says that runtime made it, and then once per cgroup.
type RuntimeRoots struct {
	// Docker is dockerd's --data-root (containers/<id>/config.v2.json).
	// Default /var/lib/docker.
	Docker string
	// Containerd is containerd's state directory, where each task's OCI
	// bundle is (io.containerd.runtime.v2.task/<namespace>/<id>/config.json).
	// Default /run/containerd.
	Containerd string
	// Storage and RunStorage are containers/storage's graph root and run
	// root, shared by Podman and CRI-O (<driver>-containers/containers.json,
	// <driver>-containers/<id>/userdata/config.json).
	// Default /var/lib/containers/storage and /run/containers/storage.
	Storage, RunStorage string
	// Passwd finds a rootless Podman user's home (its storage is
	// ~/.local/share/containers/storage), under Homes. Default /etc/passwd
	// and RootFS.
	Passwd, Homes string
	// CRISocket is containerd's socket, asked for CRI pods' labels and
	// their images' digests (only there: see criPodLabels). Empty asks
	// nothing.
	CRISocket string
}

func (r RuntimeRoots) withDefaults(rootFS string) RuntimeRoots {
	def := func(p *string, rel string) {
		if *p == "" {
			*p = filepath.Join(rootFS, rel)
		}
	}
	def(&r.Docker, "var/lib/docker")
	def(&r.Containerd, "run/containerd")
	def(&r.Storage, "var/lib/containers/storage")
	def(&r.RunStorage, "run/containers/storage")
	def(&r.Passwd, "etc/passwd")
	def(&r.Homes, ".")
	return r
}

// workloadFiles reads containers' workloads from their runtimes' files. It
// is immutable: the background cgroup resolver shares it.
type workloadFiles struct {
	roots RuntimeRoots
	// denied is the first state file the agent was not allowed to read:
	// runtimes keep their state root's alone, and the shipped unit runs the
	// agent unprivileged (see the enricher's warning).
	denied atomic.Pointer[string]
	// elevated reads beneath the roots what the agent may not (nil: no
	// elevation; it reads nothing unless dacread.Confine found the
	// capability held).
	elevated *dacread.Reader
}

// read is readState of a runtime state file, through open.
func (f *workloadFiles) read(path string) ([]byte, error) {
	fh, err := f.open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return readLimited(fh)
}

// readDir lists a directory of a runtime's state, through open.
func (f *workloadFiles) readDir(path string) ([]fs.DirEntry, error) {
	fh, err := f.open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return fh.ReadDir(-1)
}

// open opens a runtime's state file or directory: as the agent, or where
// that is refused, through the elevated reader (the unit's
// CAP_DAC_READ_SEARCH, effective for that one open beneath a runtime's
// root: internal/dacread). A permission error either way is noted for the
// enricher's warning.
func (f *workloadFiles) open(path string) (*os.File, error) {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrPermission) && f.elevated != nil {
		var eerr error
		if fh, eerr = f.elevated.Open(path); eerr == nil {
			return fh, nil
		}
		if !errors.Is(eerr, dacread.ErrNotHeld) && !errors.Is(eerr, dacread.ErrOutside) {
			err = eerr // not there yet (ENOENT), or refused even so
		}
	}
	if errors.Is(err, fs.ErrPermission) {
		f.denied.CompareAndSwap(nil, &path)
	}
	return fh, err
}

// resolve reads what the runtime named by a container's cgroup wrote about
// container id. A container none of its files describe yet is pending.
func (f *workloadFiles) resolve(runtime, id string, o cgroupOwner) Workload {
	var w Workload
	var ok bool
	switch runtime {
	case RuntimeDocker:
		w, ok = f.docker(id)
	case RuntimeContainerd:
		// Also every bare id under kubepods, which the kubelet's cgroupfs
		// driver names the same whatever the runtime.
		if w, ok = f.containerd(id); !ok {
			if w, ok = f.crio(id); !ok {
				w, ok = f.docker(id)
			}
		}
	case RuntimeCRIO:
		w, ok = f.crio(id)
	case RuntimePodman:
		w, ok = f.podman(f.roots.Storage, id)
	case RuntimePodmanRootless:
		if home := passwdHome(f.roots.Passwd, o.uid); home != "" {
			w, ok = f.podman(filepath.Join(f.roots.Homes, home, ".local/share/containers/storage"), id)
		}
	}
	if !ok {
		w = Workload{Source: SourcePending}
	}
	w.Trusted = !o.delegated
	return w
}

// readState reads a runtime's state file, at most maxStateFile bytes.
func readState(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return readLimited(fh)
}

// readLimited reads a state file, at most maxStateFile bytes.
func readLimited(fh *os.File) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(fh, maxStateFile+1))
	if err == nil && len(b) > maxStateFile {
		err = errors.New("larger than " + strconv.Itoa(maxStateFile) + " bytes")
	}
	return b, err
}

// Docker

// dockerConfig is what bindwatch reads of config.v2.json.
type dockerConfig struct {
	Name   string // "/web1"
	Image  string // the image id: sha256:<digest of the image config>
	Config struct {
		Image  string // the reference as given to docker run
		Labels map[string]string
	}
}

// Labels the kubelet (dockershim, cri-dockerd) puts on the containers it
// makes through Docker; the sandbox carries the pod's own labels.
const (
	k8sPodName       = "io.kubernetes.pod.name"
	k8sPodNamespace  = "io.kubernetes.pod.namespace"
	k8sPodUID        = "io.kubernetes.pod.uid"
	k8sContainerName = "io.kubernetes.container.name"
	k8sSandboxID     = "io.kubernetes.sandbox.id"
)

func (f *workloadFiles) docker(id string) (Workload, bool) {
	c, ok := f.readDockerConfig(f.roots.Docker, id)
	if !ok {
		return Workload{}, false
	}
	w := parseDockerConfig(c)
	if sb := c.Config.Labels[k8sSandboxID]; sb != "" && sb != id && isContainerID(sb) {
		if s, ok := f.readDockerConfig(f.roots.Docker, sb); ok {
			w.PodLabels = boundLabels(s.Config.Labels, isKubeletLabel)
		}
	}
	return w, true
}

func (f *workloadFiles) readDockerConfig(root, id string) (dockerConfig, bool) {
	var c dockerConfig
	b, err := f.read(filepath.Join(root, "containers", id, "config.v2.json"))
	if err != nil || json.Unmarshal(b, &c) != nil {
		return c, false
	}
	return c, true
}

func parseDockerConfig(c dockerConfig) Workload {
	w := Workload{
		Source:        SourceDocker,
		ContainerName: strings.TrimPrefix(c.Name, "/"),
		Image:         c.Config.Image,
		ImageDigest:   digestOf(c.Image),
	}
	if l := c.Config.Labels; l[k8sPodName] != "" {
		w.PodName, w.PodNamespace, w.PodUID = l[k8sPodName], l[k8sPodNamespace], l[k8sPodUID]
		if n := l[k8sContainerName]; n != "" {
			w.ContainerName = n
		}
	}
	return w
}

// isKubeletLabel: the labels the kubelet adds to a pod's own, which the pod
// fields already carry; dockershim also turns annotations into labels.
func isKubeletLabel(k string) bool {
	return strings.HasPrefix(k, "io.kubernetes.") || strings.HasPrefix(k, "annotation.")
}

// digestOf is s as sha256:<hex>: an image id with or without its algorithm,
// or the digest of a reference pinned by digest (name@sha256:…).
func digestOf(s string) string {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i+1:]
	}
	if h, ok := strings.CutPrefix(s, "sha256:"); ok && len(h) == 64 && isLowerHex(h) {
		return s
	}
	if len(s) == 64 && isLowerHex(s) {
		return "sha256:" + s
	}
	return ""
}

// containerd

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

// CRI-O and Podman: containers/storage

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
