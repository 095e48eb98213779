package runtimes

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// Containerd is a containerd of the test's own with its CRI plugin: runc,
// the cgroupfs driver, no CNI (pods use the host's network), and a pause
// image the test imports itself.
type Containerd struct {
	Root, State, Sock string
	// CRI is a client of its CRI plugin, as a kubelet talks to it.
	CRI    cri.RuntimeServiceClient
	Images cri.ImageServiceClient
	ctr    string
	pods   []string
	proc   *testenv.Process
}

// StartContainerd starts containerd with sandboxImage as the pods' pause
// image and waits until its CRI plugin answers.
func StartContainerd(t testing.TB, sandboxImage string) *Containerd {
	t.Helper()
	testenv.RequireRoot(t)
	bin := testenv.RequireTool(t, "containerd", "containerd")
	testenv.RequireTool(t, "runc", "runc")
	dir := shortDir(t, "bwctrd")
	c := &Containerd{Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state"),
		Sock: filepath.Join(dir, "containerd.sock"), ctr: testenv.RequireTool(t, "ctr", "containerd")}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # The pause container's -998 needs CAP_SYS_RESOURCE, which a test host
  # may not have; kind and rootless setups set this too.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
`, c.Root, c.State, c.Sock, sandboxImage, filepath.Join(dir, "cni/bin"), filepath.Join(dir, "cni/conf"))
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := testenv.Start(t, cmd, 30*time.Second)
	c.proc = p
	conn, err := grpc.NewClient("unix://"+c.Sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	c.CRI, c.Images = cri.NewRuntimeServiceClient(conn), cri.NewImageServiceClient(conn)
	t.Cleanup(func() {
		// Pods first: their shims would outlive containerd.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, id := range c.pods {
			if _, err := c.CRI.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
				t.Logf("stop pod %s: %v", id, err)
			}
			if _, err := c.CRI.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
				t.Logf("remove pod %s: %v", id, err)
			}
		}
		conn.Close()
		stop(t, p)
		unmountUnder(dir)
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.CRI.Version(ctx, &cri.VersionRequest{})
		cancel()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			testenv.Unavailable(t, "containerd's CRI did not answer within 60s (%v):\n%s", err, tail(p.Output(), 30))
		}
		select {
		case <-p.Exited():
			testenv.Unavailable(t, "containerd exited: %s", tail(p.Output(), 30))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Import imports img into the CRI's namespace (k8s.io) with ctr, as an
// image pulled by the kubelet would be there.
func (c *Containerd) Import(t testing.TB, img Image) {
	t.Helper()
	cmd := exec.Command(c.ctr, "-a", c.Sock, "-n", "k8s.io", "images", "import", "-")
	cmd.Stdin = bytes.NewReader(img.Archive)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ctr images import %s: %v\n%s", img.Ref, err, out)
	}
}

// Pod is a pod to run through the CRI, as a kubelet would ask for it.
type Pod struct {
	Name, Namespace, UID string
	Labels               map[string]string
	// Containers by name: the image and the listener's arguments.
	Containers []PodContainer
}

type PodContainer struct {
	Name, Image string
	Args        []string
	// User is the uid its process runs as; 0 is root.
	User int64
}

// RunPod runs pod with the host's network and returns the sandbox id and
// the ids of its containers, started, in order.
func (c *Containerd) RunPod(t testing.TB, pod Pod) (sandbox string, containers []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	logDir := filepath.Join(c.Root, "pod-logs", pod.UID)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: pod.Name, Namespace: pod.Namespace, Uid: pod.UID},
		LogDirectory: logDir,
		Labels:       pod.Labels,
		Linux: &cri.LinuxPodSandboxConfig{
			// The kubelet's cgroupfs driver names it so.
			CgroupParent: "/kubepods/besteffort/pod" + pod.UID,
			SecurityContext: &cri.LinuxSandboxSecurityContext{
				NamespaceOptions: &cri.NamespaceOption{Network: cri.NamespaceMode_NODE},
			},
		},
	}
	run, err := c.CRI.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		testenv.Unavailable(t, "containerd CRI RunPodSandbox: %v\ncontainerd's log:\n%s", err, tail(c.proc.Output(), 15))
	}
	sandbox = run.PodSandboxId
	c.pods = append(c.pods, sandbox)
	for _, ct := range pod.Containers {
		created, err := c.CRI.CreateContainer(ctx, &cri.CreateContainerRequest{
			PodSandboxId: sandbox,
			Config: &cri.ContainerConfig{
				Metadata: &cri.ContainerMetadata{Name: ct.Name},
				Image:    &cri.ImageSpec{Image: ct.Image},
				Args:     ct.Args,
				LogPath:  ct.Name + ".log",
				Linux: &cri.LinuxContainerConfig{SecurityContext: &cri.LinuxContainerSecurityContext{
					RunAsUser:        &cri.Int64Value{Value: ct.User},
					NamespaceOptions: &cri.NamespaceOption{Network: cri.NamespaceMode_NODE},
				}},
				Labels: map[string]string{
					"io.kubernetes.pod.name": pod.Name, "io.kubernetes.pod.namespace": pod.Namespace,
					"io.kubernetes.pod.uid": pod.UID, "io.kubernetes.container.name": ct.Name,
				},
			},
			SandboxConfig: cfg,
		})
		if err != nil {
			t.Fatalf("CRI CreateContainer %s: %v", ct.Name, err)
		}
		if _, err := c.CRI.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: created.ContainerId}); err != nil {
			t.Fatalf("CRI StartContainer %s: %v", ct.Name, err)
		}
		containers = append(containers, created.ContainerId)
	}
	return sandbox, containers
}

// Log is what a CRI container wrote so far, as the CRI logs it (each line
// prefixed with its time, stream and tag).
func (c *Containerd) Log(t testing.TB, pod Pod, container string) string {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(c.Root, "pod-logs", pod.UID, container+".log"))
	return string(b)
}

// ContainerPid is the host pid of a CRI container's process.
func (c *Containerd) ContainerPid(t testing.TB, id string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.CRI.ContainerStatus(ctx, &cri.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ Pid int }
	if err := jsonUnmarshal([]byte(st.Info["info"]), &info); err != nil || info.Pid == 0 {
		t.Fatalf("container %s: no pid in its verbose status (%v): %s", id, err, st.Info["info"])
	}
	return info.Pid
}
