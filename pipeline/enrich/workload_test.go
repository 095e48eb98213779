package enrich

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// Containers of testdata/runtimes, a host's state laid out as each runtime
// writes it: Docker's config.v2.json (written by Debian's dockerd 20.10),
// containerd 1.6's CRI task bundles (written by a pod this package's
// runtime tests ran), CRI-O's specs in container storage, Podman's
// containers.json, rootful and rootless.
const (
	idSandbox = "5b1e0c9d8a7f6e5d4c3b2a1908f7e6d5c4b3a2918f7e6d5c4b3a29180f1e2d3c" // containerd pod's sandbox
	idCRIO    = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
	idPodman  = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
	idMissing = "dead0000dead0000dead0000dead0000dead0000dead0000dead0000dead0000"
)

var (
	crioScope    = "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9e1f2a3b_4c5d_4e6f_8a9b_0c1d2e3f4a5b.slice/crio-" + idCRIO + ".scope"
	podmanScope  = "machine.slice/libpod-" + idPodman + ".scope/container"
	criSandbox   = "kubepods/burstable/pod1c7f0e2a-5b3d-4e8f-9a6c-2d1b0e3f4a5c/" + idSandbox
	missingScope = "system.slice/docker-" + idMissing + ".scope"
	session3     = "user.slice/user-1000.slice/session-3.scope"
	userApp      = userService + "/app.slice/app-foo@1.service"
)

func fixtureRuntimes(root string) RuntimeRoots {
	return RuntimeRoots{
		Docker:     filepath.Join(root, "var/lib/docker"),
		Containerd: filepath.Join(root, "run/containerd"),
		Storage:    filepath.Join(root, "var/lib/containers/storage"),
		RunStorage: filepath.Join(root, "run/containers/storage"),
		Passwd:     filepath.Join(root, "etc/passwd"),
		Homes:      root,
	}
}

// workloadEnricher is fixtureEnricherTree's host, with the runtimes of
// testdata/runtimes (or roots) and every cgroup of the tests below.
func workloadEnricher(t testing.TB, roots RuntimeRoots) (*Enricher, *cgroupTree) {
	t.Helper()
	tr := newCgroupTree(t, dockerScope, nginx, k8sLeaf, criSandbox, crioScope, podmanScope, rootlessPod,
		forgedDocker, forgedKubePod, missingScope, session3, userApp)
	tr.delegate(userService, 1999)
	e, err := New(Config{
		Hostname:   "edge-17.example",
		RootFS:     "testdata/host",
		ProcRoot:   "testdata/proc",
		CgroupRoot: tr.mount,
		Runtimes:   roots,
		Logger:     testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	tr.useIn(e)
	return e, tr
}

func TestWorkload(t *testing.T) {
	e, tr := workloadEnricher(t, fixtureRuntimes("testdata/runtimes"))
	tests := []struct {
		name, cgroup string
		want         Workload
	}{
		{"docker", dockerScope, Workload{
			Source: SourceDocker, ContainerName: "web", Image: "docker.io/library/nginx:1.27",
			ImageDigest: "sha256:e44147856acd84edd7343f2c0b26818b1796fb6516d4bafdf1e2a99cb323581c", Trusted: true}},
		{"containerd CRI container", k8sLeaf, Workload{
			Source: SourceCRI, ContainerName: "nginx", Image: "docker.io/bindwatch/web:1.0",
			PodName: "web-7d4b9", PodNamespace: "shop", PodUID: "0d9c6f1e-6a39-4f4e-9a57-3f2f7b1d2c11", Trusted: true}},
		{"containerd CRI sandbox", criSandbox, Workload{
			Source: SourceCRI, PodName: "web-7d4b9", PodNamespace: "shop", PodUID: "0d9c6f1e-6a39-4f4e-9a57-3f2f7b1d2c11", Trusted: true}},
		{"cri-o", crioScope, Workload{
			Source: SourceCRIO, ContainerName: "api", Image: "quay.io/acme/api:2.4.1",
			ImageDigest: "sha256:4b9a7f1c0e2d3c5b6a79880f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b",
			PodName:     "api-6f7c9", PodNamespace: "payments", PodUID: "9e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",
			PodLabels: map[string]string{"app": "api", "pod-template-hash": "6f7c9", "team": "payments"}, Trusted: true}},
		{"podman", podmanScope, Workload{
			Source: SourcePodman, ContainerName: "db", Image: "docker.io/library/postgres:16",
			ImageDigest: "sha256:9c7e4a1b2d3f4e5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c", Trusted: true}},
		{"rootless podman: reported, not trusted", rootlessPod, Workload{
			Source: SourcePodman, ContainerName: "toolbox", Image: "docker.io/library/nginx:1.27",
			ImageDigest: "sha256:3b1e6f0c2a4d5e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7"}},

		// The user copied the real Docker container's id (idA, whose
		// config.v2.json is there) into a scope of its own: the process is
		// the user's, in the user's manager, and nothing of web's.
		{"user's docker-<id>.scope copying a real container", forgedDocker, Workload{Unit: "user@1999.service", Trusted: true}},
		{"user's kubepods copying a real container", forgedKubePod, Workload{Unit: "user@1999.service", Trusted: true}},
		{"a unit the user made under its manager", userApp, Workload{Unit: "user@1999.service", Trusted: true}},

		{"host service", nginx, Workload{Unit: "nginx.service", Trusted: true}},
		{"login session", session3, Workload{Unit: "session-3.scope", Trusted: true}},
		{"docker container nothing describes", missingScope, Workload{Source: SourcePending, Trusted: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := e.Workload(tr.id(tt.cgroup), 0); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s:\n got %+v\nwant %+v", tt.cgroup, got, tt.want)
			}
		})
	}
}

// A container whose state is not on disk at first sight goes on pending,
// counted; once the runtime wrote it, a later record carries it.
func TestWorkloadLate(t *testing.T) {
	docker := t.TempDir()
	roots := fixtureRuntimes("testdata/runtimes")
	roots.Docker = docker
	e, tr := workloadEnricher(t, roots)
	now := time.Unix(1000, 0)
	e.cgroups.now = func() time.Time { return now }
	id := tr.id(missingScope)

	for range 3 {
		if got := e.Workload(id, 0); got.Source != SourcePending {
			t.Fatalf("before the runtime wrote its state: %+v", got)
		}
	}
	if s := e.Stats(); s.WorkloadPending != 3 || s.WorkloadLate != 0 {
		t.Fatalf("stats %+v, want 3 pending records", s)
	}
	b, err := os.ReadFile("testdata/runtimes/var/lib/docker/containers/" + idA + "/config.v2.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(docker, "containers", idMissing)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.v2.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	// Not looked at again before the retry interval: still pending.
	if got := e.Workload(id, 0); got.Source != SourcePending {
		t.Fatalf("within the retry interval: %+v", got)
	}
	now = now.Add(workloadRetryEvery)
	if got := e.Workload(id, 0); got.Source != SourceDocker || got.ContainerName != "web" {
		t.Fatalf("after the runtime wrote its state: %+v", got)
	}
	if s := e.Stats(); s.WorkloadPending != 4 || s.WorkloadLate != 1 || len(e.retries) != 0 {
		t.Fatalf("stats %+v retries %d, want 4 pending records, 1 late", s, len(e.retries))
	}
}

// A container nothing describes is given up on after workloadPatience.
func TestWorkloadGivenUp(t *testing.T) {
	e, tr := workloadEnricher(t, fixtureRuntimes("testdata/runtimes"))
	now := time.Unix(1000, 0)
	e.cgroups.now = func() time.Time { return now }
	id := tr.id(missingScope)
	e.Workload(id, 0)
	now = now.Add(workloadPatience)
	if got := e.Workload(id, 0); got.Source != SourceNone || !got.Trusted {
		t.Fatalf("after %v: %+v", workloadPatience, got)
	}
	if s := e.Stats(); s.WorkloadMissing != 1 || len(e.retries) != 0 {
		t.Fatalf("stats %+v retries %d", s, len(e.retries))
	}
}

func TestUnitOf(t *testing.T) {
	tests := []struct {
		path string
		o    cgroupOwner
		want string
	}{
		{"/system.slice/sshd.service", cgroupOwner{checked: true}, "sshd.service"},
		{"/system.slice/app.service/worker", cgroupOwner{checked: true}, "app.service"},
		{"/user.slice/user-1000.slice/session-3.scope", cgroupOwner{checked: true}, "session-3.scope"},
		{"/init.scope", cgroupOwner{checked: true}, "init.scope"},
		{"/", cgroupOwner{checked: true}, ""},
		{"/system.slice", cgroupOwner{checked: true}, ""},
		{"/user.slice/user-1000.slice/user@1000.service/app.slice/evil.service",
			cgroupOwner{checked: true, delegated: true, uid: 1000, trusted: "/user.slice/user-1000.slice"}, "user@1000.service"},
		{"/user.slice/user-1000.slice/user@1000.service",
			cgroupOwner{checked: true, delegated: true, uid: 1000, trusted: "/user.slice/user-1000.slice"}, "user@1000.service"},
		{"/system.slice/sshd.service", cgroupOwner{}, ""},
	}
	for _, tt := range tests {
		if got := unitOf(tt.path, tt.o); got != tt.want {
			t.Errorf("unitOf(%q, %+v) = %q, want %q", tt.path, tt.o, got, tt.want)
		}
	}
}

func TestDigestOf(t *testing.T) {
	const h = "4b9a7f1c0e2d3c5b6a79880f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b"
	for in, want := range map[string]string{
		"sha256:" + h:                      "sha256:" + h,
		h:                                  "sha256:" + h,
		"quay.io/acme/api@sha256:" + h:     "sha256:" + h,
		"docker.io/library/nginx:1.27":     "",
		"sha256:" + h[:10]:                 "",
		"sha512:" + h:                      "",
		"localhost:5000/x@sha256:" + h[:3]: "",
	} {
		if got := digestOf(in); got != want {
			t.Errorf("digestOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBoundLabels(t *testing.T) {
	in := map[string]string{"io.kubernetes.pod.name": "x", "big": string(make([]byte, maxLabelBytes+1))}
	for i := range maxLabels + 10 {
		in["l"+string(rune('a'+i/26))+string(rune('a'+i%26))] = "v"
	}
	got := boundLabels(in, isKubeletLabel)
	if len(got) != maxLabels {
		t.Fatalf("%d labels, want %d", len(got), maxLabels)
	}
	if _, ok := got["io.kubernetes.pod.name"]; ok {
		t.Error("kubelet label kept")
	}
	if _, ok := got["laa"]; !ok {
		t.Error("the first label by key dropped")
	}
}

func TestParsePodmanContainersNotThere(t *testing.T) {
	if _, ok := parsePodmanContainers([]byte(`[{"id":"`+idA+`"}]`), idB); ok {
		t.Error("found a container that is not listed")
	}
	if _, ok := parsePodmanContainers([]byte(`[{"id":"`+idB+`", not json`), idB); ok {
		t.Error("found a container in a torn file")
	}
}

func TestSpecAnnotations(t *testing.T) {
	tests := []struct {
		name, spec string
		want       map[string]string
		err        bool
	}{
		{"compact", `{"ociVersion":"1.0.2","process":{"args":["a"]},"annotations":{"k":"v"},"linux":{}}`, map[string]string{"k": "v"}, false},
		{"indented", "{\n  \"annotations\" : {\n    \"k\": \"v\"\n  }\n}", map[string]string{"k": "v"}, false},
		{"the word in values first", `{"process":{"args":["annotations"],"env":["X=\"annotations\":{\"k\":\"forged\"}"]},"annotations":{"k":"v"}}`, map[string]string{"k": "v"}, false},
		{"none", `{"ociVersion":"1.0.2","process":{"args":["annotations"]}}`, nil, false},
		{"torn before them", `{"ociVersion":"1.0.2","process":{"ar`, nil, true},
		{"torn inside them", `{"annotations":{"k":"v`, nil, true},
	}
	for _, tt := range tests {
		got, err := specAnnotations([]byte(tt.spec))
		if (err != nil) != tt.err || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %v, %v; want %v, error %v", tt.name, got, err, tt.want, tt.err)
		}
	}
	// Every spec of the fixtures reads as a full decode does.
	specs, _ := filepath.Glob("testdata/runtimes/*/*/*/*/*/config.json")
	specs2, _ := filepath.Glob("testdata/runtimes/*/*/*/*/*/*/config.json")
	for _, p := range append(append(specs, specs2...), "testdata/spec-seccomp.json") {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var full struct {
			Annotations map[string]string `json:"annotations"`
		}
		if err := json.Unmarshal(b, &full); err != nil {
			t.Fatal(err)
		}
		got, err := specAnnotations(b)
		if err != nil || !reflect.DeepEqual(got, full.Annotations) || len(got) == 0 {
			t.Errorf("%s: %v, %v; a full decode says %v", p, got, err, full.Annotations)
		}
	}
}

// A Kubernetes container run through Docker (cri-dockerd, dockershim): the
// kubelet's labels name the pod, and the pod's own labels are on its
// sandbox container.
func TestWorkloadDockerKubelet(t *testing.T) {
	root := t.TempDir()
	write := func(id string, labels map[string]string, name string) {
		dir := filepath.Join(root, "containers", id)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		c := map[string]any{"ID": id, "Name": name, "Image": "sha256:" + idC,
			"Config": map[string]any{"Image": "registry.k8s.io/coredns/coredns:v1.11.1", "Labels": labels}}
		b, _ := json.Marshal(c)
		if err := os.WriteFile(filepath.Join(dir, "config.v2.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pod := map[string]string{k8sPodName: "coredns-5d78c9869d-x2x7q", k8sPodNamespace: "kube-system", k8sPodUID: "3e1c"}
	sandbox := map[string]string{"k8s-app": "kube-dns", "pod-template-hash": "5d78c9869d", "io.kubernetes.docker.type": "podsandbox",
		"annotation.kubernetes.io/config.seen": "2026-12-06T10:00:00Z"}
	for k, v := range pod {
		sandbox[k] = v
	}
	write(idB, sandbox, "/k8s_POD_coredns-5d78c9869d-x2x7q_kube-system_3e1c_0")
	container := map[string]string{k8sContainerName: "coredns", k8sSandboxID: idB, "io.kubernetes.docker.type": "container"}
	for k, v := range pod {
		container[k] = v
	}
	write(idA, container, "/k8s_coredns_coredns-5d78c9869d-x2x7q_kube-system_3e1c_0")

	f := &workloadFiles{roots: RuntimeRoots{Docker: root}}
	got, ok := f.docker(idA)
	want := Workload{Source: SourceDocker, ContainerName: "coredns", Image: "registry.k8s.io/coredns/coredns:v1.11.1",
		ImageDigest: "sha256:" + idC, PodName: "coredns-5d78c9869d-x2x7q", PodNamespace: "kube-system", PodUID: "3e1c",
		PodLabels: map[string]string{"k8s-app": "kube-dns", "pod-template-hash": "5d78c9869d"}}
	if !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, %v\nwant %+v", got, ok, want)
	}
}
