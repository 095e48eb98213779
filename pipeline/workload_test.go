package pipeline

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/internal/config"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/test/avrotest"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
	"github.com/bindwatch/bindwatch/test/testenv/runtimes"
)

// workloadUID is the user every listener of these tests runs as; the agent
// keeps its binds only.
const workloadUID = testenv.UserWorkload

var listeningRE = regexp.MustCompile(`listening 127\.0\.0\.1:(\d+)`)

// TestAgentWorkloadDocker: a container that a real dockerd (Debian's
// docker.io, started by the test with its own data root) runs from an image
// imported from a static binary listens on loopback; its records reach
// Kafka with the container's name, image and image id, decoded by Apache
// Avro's Python implementation. Beside it, a user's own
// docker-<that id>.scope under user@1999.service listens too, and its
// records carry nothing of the container: no id, no image, the unit
// user@1999.service and the owner 1999.
func TestAgentWorkloadDocker(t *testing.T) {
	testenv.RequireRoot(t)
	avrotest.Require(t)
	d := runtimes.StartDocker(t)
	rootfs := runtimes.RootFS(t, runtimes.Listener(t))
	imageID := d.Import(t, rootfs, "docker.io/bindwatch/web:1.27")

	cfg, cluster := workloadAgentConfig(t)
	cfg.Workload.DockerRoot = d.Root
	agent := runAgent(t, &cfg, testLogger(t))
	testenv.Eventually(t, "the start-up inventory", 15*time.Second, func() bool { return agent.invStats.Passes.Load() >= 1 })

	id := d.Docker(t, nil, "run", "-d", "--name", "web", "--network", "host", "--user", fmt.Sprintf("%d:%d", workloadUID, workloadUID),
		"docker.io/bindwatch/web:1.27", "tcp:127.0.0.1:0")
	var port int
	testenv.Eventually(t, "the container listens", 20*time.Second, func() bool {
		port = listenPort(d.Docker(t, nil, "logs", id))
		return port != 0
	})
	pid, _ := strconv.Atoi(d.Docker(t, nil, "inspect", "-f", "{{.State.Pid}}", id))

	// The forgery: the user's own scope named after the real container.
	forged := forgedDockerScope(t, id)
	forgedPort, forgedPID := listenIn(t, forged)

	records := workloadRecords(t, agent, cluster, 4)
	web := listenRecord(t, records, pid, port)
	want := map[string]any{
		"container_id": id, "container_runtime": "docker", "container_name": "web",
		"image": "docker.io/bindwatch/web:1.27", "image_digest": imageID, "workload_source": "docker",
		"unit": nil, "pod_name": nil, "pod_namespace": nil, "pod_uid": nil, "cgroup_owner_uid": nil,
		"cgroup_path": "/docker/" + id,
	}
	checkFields(t, "the docker container's listen", web, want)
	if labels, _ := web["pod_labels"].(map[string]any); len(labels) != 0 {
		t.Errorf("pod_labels %v outside a pod", labels)
	}

	for _, rec := range []map[string]any{web, listenRecord(t, records, forgedPID, forgedPort)} {
		b, _ := json.Marshal(map[string]any{"cgroup_path": rec["cgroup_path"], "cgroup_owner_uid": rec["cgroup_owner_uid"],
			"container_id": rec["container_id"], "unit": rec["unit"], "container_name": rec["container_name"], "image": rec["image"],
			"image_digest": rec["image_digest"], "workload_source": rec["workload_source"], "port": rec["port"]})
		t.Logf("listen record: %s", b)
	}
	user := listenRecord(t, records, forgedPID, forgedPort)
	checkFields(t, "the user's docker-<id>.scope", user, map[string]any{
		"container_id": nil, "container_runtime": nil, "container_name": nil, "image": nil, "image_digest": nil,
		"workload_source": nil, "pod_name": nil, "unit": "user@1999.service", "cgroup_owner_uid": int64(1999),
	})
}

// TestAgentWorkloadCRIPod: Kubernetes pods made through a real
// containerd's CRI plugin (Debian's containerd and runc, started by the
// test, driven by a k8s.io/cri-api client as a kubelet would) with a name,
// a namespace and labels; their containers listen, and their records reach
// Kafka with the pods' and the containers' names, the image and the pods'
// labels. One pod runs before the agent starts (its labels are asked for
// at start), the other after (asked for as its sandbox appears): in both,
// the very first listen already carries the labels.
func TestAgentWorkloadCRIPod(t *testing.T) {
	testenv.RequireRoot(t)
	avrotest.Require(t)
	rootfs := runtimes.RootFS(t, runtimes.Listener(t))
	pause := runtimes.OCIImage(t, "localhost/bindwatch/pause:test", rootfs)
	web := runtimes.OCIImage(t, "docker.io/bindwatch/web:1.27", rootfs)
	c := runtimes.StartContainerd(t, pause.Ref)
	c.Import(t, pause)
	c.Import(t, web)

	before := runtimes.Pod{Name: "dns-5c8f", Namespace: "kube-system", UID: "6a0b2c4d-1e3f-4a5b-8c7d-9e0f1a2b3c4d",
		Labels: map[string]string{"k8s-app": "dns"},
		// Listens once the agent runs.
		Containers: []runtimes.PodContainer{{Name: "dns", Image: web.Ref, User: workloadUID,
			Args: []string{"sleep:4s", "tcp:127.0.0.1:0"}}}}
	_, beforeIDs := c.RunPod(t, before)

	cfg, cluster := workloadAgentConfig(t)
	cfg.Workload.ContainerdState, cfg.Workload.CRISocket = c.State, c.Sock
	agent := runAgent(t, &cfg, testLogger(t))
	testenv.Eventually(t, "the start-up inventory", 15*time.Second, func() bool { return agent.invStats.Passes.Load() >= 1 })

	pod := runtimes.Pod{Name: "web-7d4b9", Namespace: "shop", UID: "0d9c6f1e-6a39-4f4e-9a57-3f2f7b1d2c11",
		Labels: map[string]string{"app": "web", "tier": "front"},
		Containers: []runtimes.PodContainer{{Name: "nginx", Image: web.Ref, User: workloadUID,
			Args: []string{"tcp:127.0.0.1:0", "sleep:1s", "tcp:127.0.0.1:0"}}}}
	_, ids := c.RunPod(t, pod)
	var ports, beforePorts []int
	testenv.Eventually(t, "the pods' containers listen", 20*time.Second, func() bool {
		ports, beforePorts = listenPorts(c.Log(t, pod, "nginx")), listenPorts(c.Log(t, before, "dns"))
		return len(ports) == 2 && len(beforePorts) == 1
	})
	pid, beforePID := c.ContainerPid(t, ids[0]), c.ContainerPid(t, beforeIDs[0])

	records := workloadRecords(t, agent, cluster, 6)
	for i, port := range ports {
		rec := listenRecord(t, records, pid, port)
		checkFields(t, fmt.Sprintf("the pod's listen %d", i+1), rec, map[string]any{
			"container_id": ids[0], "container_runtime": "containerd", "container_name": "nginx",
			"image": web.Ref, "workload_source": "containerd-cri",
			"pod_name": pod.Name, "pod_namespace": pod.Namespace, "pod_uid": pod.UID,
			"unit": nil, "cgroup_owner_uid": nil,
			// From the CRI: containerd 1.6 names the image by its id.
			"image_digest": web.ConfigDigest,
		})
		checkLabels(t, fmt.Sprintf("the pod's listen %d", i+1), rec, pod.Labels)
	}
	rec := listenRecord(t, records, beforePID, beforePorts[0])
	checkFields(t, "the listen of the pod there before the agent", rec, map[string]any{
		"container_id": beforeIDs[0], "container_name": "dns", "pod_name": before.Name,
		"pod_namespace": before.Namespace, "workload_source": "containerd-cri",
	})
	checkLabels(t, "the listen of the pod there before the agent", rec, before.Labels)
}

func checkLabels(t *testing.T, what string, rec map[string]any, want map[string]string) {
	t.Helper()
	got, _ := rec["pod_labels"].(map[string]any)
	ok := len(got) == len(want)
	for k, v := range want {
		ok = ok && got[k] == v
	}
	if !ok {
		t.Errorf("%s: pod_labels = %v, want %v", what, rec["pod_labels"], want)
	}
}

// TestAgentWorkloadPodman: a container that Debian's podman (runc, the
// cgroupfs manager, a storage of the test's own) runs from an imported
// image listens; its records carry its name, image and image id, read from
// the container storage's containers.json.
func TestAgentWorkloadPodman(t *testing.T) {
	testenv.RequireRoot(t)
	avrotest.Require(t)
	p := runtimes.NewPodman(t)
	imageID := p.Import(t, runtimes.RootFS(t, runtimes.Listener(t)), "docker.io/bindwatch/db:16")

	cfg, cluster := workloadAgentConfig(t)
	cfg.Workload.StorageRoot, cfg.Workload.StorageRunRoot = p.Root, p.RunRoot
	agent := runAgent(t, &cfg, testLogger(t))
	testenv.Eventually(t, "the start-up inventory", 15*time.Second, func() bool { return agent.invStats.Passes.Load() >= 1 })

	args := append([]string{"run", "-d", "--name", "db", "--network", "host", "--user", fmt.Sprintf("%d:%d", workloadUID, workloadUID)}, runtimes.RunLimits...)
	id := p.Podman(t, nil, append(args, "docker.io/bindwatch/db:16", "tcp:127.0.0.1:0")...)
	var port int
	testenv.Eventually(t, "the container listens", 20*time.Second, func() bool {
		port = listenPort(p.Podman(t, nil, "logs", id))
		return port != 0
	})
	pid, _ := strconv.Atoi(p.Podman(t, nil, "inspect", "-f", "{{.State.Pid}}", id))

	rec := listenRecord(t, workloadRecords(t, agent, cluster, 2), pid, port)
	checkFields(t, "the podman container's listen", rec, map[string]any{
		"container_id": id, "container_runtime": "podman", "container_name": "db",
		"image": "docker.io/bindwatch/db:16", "image_digest": imageID, "workload_source": "podman",
		"unit": nil, "pod_name": nil, "cgroup_owner_uid": nil,
	})
}

// workloadAgentConfig is an agent keeping workloadUID's binds, publishing
// schema v3 to a cluster of its own.
func workloadAgentConfig(t *testing.T) (config.Config, *kafkatest.Cluster) {
	t.Helper()
	const topic = "bind-events"
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Topic: topic, Partitions: 1})
	cfg := testConfig(t, cluster.Addrs, topic)
	cfg.Capture.PID, cfg.Capture.UID = -1, workloadUID
	cfg.Schema.Version = 3
	return cfg, cluster
}

// workloadRecords stops the agent once it published at least min records
// and returns every record on the topic, decoded by python3-avro.
func workloadRecords(t *testing.T, agent *runningAgent, cluster *kafkatest.Cluster, min uint64) []map[string]any {
	t.Helper()
	testenv.Eventually(t, "the listeners' records published", 20*time.Second, func() bool {
		return agent.Stats().Publish.Published.Load() >= min
	})
	agent.stop(t)
	const topic = "bind-events"
	n := int(kafkatest.Count(t, cluster.Addrs, topic))
	msgs := kafkatest.ReadAll(t, cluster.Addrs, topic, n, 10*time.Second)
	values := make([][]byte, len(msgs))
	for i, m := range msgs {
		values[i] = m.Value
	}
	schemaText, err := schemas.BindEventSchema(3)
	if err != nil {
		t.Fatal(err)
	}
	var records []map[string]any
	for _, d := range avrotest.Decode(t, schemaText, values) {
		records = append(records, d.Record)
	}
	return records
}

// listenRecord is the listen record of pid on port.
func listenRecord(t *testing.T, records []map[string]any, pid, port int) map[string]any {
	t.Helper()
	for _, r := range records {
		if r["kind"] == "listen" && sameValue(r["pid"], int64(pid)) && sameValue(r["port"], int64(port)) {
			return r
		}
	}
	b, _ := json.MarshalIndent(records, "", " ")
	t.Fatalf("no listen record of pid %d on port %d among:\n%s", pid, port, b)
	return nil
}

func checkFields(t *testing.T, what string, rec, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if !sameValue(rec[k], v) {
			t.Errorf("%s: %s = %v, want %v", what, k, rec[k], v)
		}
	}
	if t.Failed() {
		b, _ := json.MarshalIndent(rec, "", " ")
		t.Logf("%s as python3-avro decoded it:\n%s", what, b)
	}
}

func listenPorts(out string) []int {
	var ports []int
	for _, m := range listeningRE.FindAllStringSubmatch(out, -1) {
		port, _ := strconv.Atoi(m[1])
		ports = append(ports, port)
	}
	return ports
}

func listenPort(out string) int {
	m := listeningRE.FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	port, _ := strconv.Atoi(m[1])
	return port
}

// forgedDockerScope makes, in a test slice of the unified hierarchy, what
// systemd makes for user 1999 (user@1999.service, given to the user), and
// below it, as that user, app.slice/docker-<id>.scope: a copy of a real
// container's name. It returns the scope's directory.
func forgedDockerScope(t *testing.T, id string) string {
	t.Helper()
	mount := testenv.Cgroup2Mount(t)
	var raw [4]byte
	_, _ = rand.Read(raw[:])
	top := fmt.Sprintf("bindwatch-test-workload-%d-%s.slice", os.Getpid(), hex.EncodeToString(raw[:]))
	service := top + "/user.slice/user-1999.slice/user@1999.service"
	var made []string
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			if err := os.Remove(filepath.Join(mount, made[i])); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("removing test cgroup %s: %v", made[i], err)
			}
		}
	})
	mkdirs := func(rel string, uid uint32) {
		parts := strings.Split(rel, "/")
		for i := range parts {
			p := strings.Join(parts[:i+1], "/")
			if _, err := os.Stat(filepath.Join(mount, p)); err == nil {
				continue
			}
			made = append(made, p)
			cmd := exec.Command("mkdir", filepath.Join(mount, p))
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("mkdir %s as uid %d: %v: %s", p, uid, err, out)
			}
		}
	}
	mkdirs(service, 0)
	for _, f := range []string{"", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"} {
		if err := os.Chown(filepath.Join(mount, service, f), 1999, 1999); err != nil {
			t.Fatal(err)
		}
	}
	scope := service + "/app.slice/docker-" + id + ".scope"
	mkdirs(scope, 1999)
	return filepath.Join(mount, scope)
}

// listenIn runs the listener on the host, in cgroup dir, as workloadUID,
// and returns its port and pid once it listens.
func listenIn(t *testing.T, dir string) (port, pid int) {
	t.Helper()
	cg, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	cmd := exec.Command(runtimes.Listener(t), "tcp:127.0.0.1:0")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		UseCgroupFD: true, CgroupFD: int(cg.Fd()),
		Credential: &syscall.Credential{Uid: workloadUID, Gid: workloadUID},
	}
	p := testenv.Start(t, cmd, 10*time.Second)
	testenv.Eventually(t, "the forged scope's listener listens", 10*time.Second, func() bool {
		port = listenPort(p.Output())
		return port != 0
	})
	t.Cleanup(func() { p.Kill(t) })
	return port, p.Pid()
}

// TestAgentWorkloadCRIO would run a CRI-O pod as TestAgentWorkloadCRIPod
// runs a containerd one. CRI-O is not packaged in Debian 12 (apt-cache
// policy cri-o: no candidate) and this host reaches no other source of
// packages, so it was not installed; its state files are covered by
// pipeline/enrich's fixtures, laid out as CRI-O writes them
// (TestWorkload/cri-o).
func TestAgentWorkloadCRIO(t *testing.T) {
	if _, err := exec.LookPath("crio"); err != nil {
		t.Skipf("SKIP (not run): CRI-O cannot run here: %v (Debian 12 has no cri-o package); covered by pipeline/enrich's fixtures (TestWorkload/cri-o)", err)
	}
	t.Skip("SKIP (not run): crio is installed, but no test drives it yet; covered by pipeline/enrich's fixtures (TestWorkload/cri-o)")
}
