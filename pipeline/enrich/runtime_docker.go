package enrich

// Docker: a container's config.v2.json under workload.docker_root.

import (
	"encoding/json"
	"path/filepath"
	"strings"
)

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
