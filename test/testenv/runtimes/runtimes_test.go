package runtimes

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// The runtimes really run here: a container from each, listening.
func TestDocker(t *testing.T) {
	d := StartDocker(t)
	d.Import(t, RootFS(t, Listener(t)), "docker.io/bindwatch/web:1.0")
	id := d.Docker(t, nil, "run", "-d", "--network", "host", "--name", "web", "docker.io/bindwatch/web:1.0", "tcp:127.0.0.1:0")
	pid := d.Docker(t, nil, "inspect", "-f", "{{.State.Pid}}", id)
	b, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), id) {
		t.Errorf("container %s's process not in its cgroup:\n%s", id, b)
	}
}

func TestContainerdCRI(t *testing.T) {
	rootfs := RootFS(t, Listener(t))
	pause := OCIImage(t, "localhost/bindwatch/pause:test", rootfs)
	web := OCIImage(t, "docker.io/bindwatch/web:1.0", rootfs)
	c := StartContainerd(t, pause.Ref)
	c.Import(t, pause)
	c.Import(t, web)
	sb, ids := c.RunPod(t, Pod{Name: "web-7d4b9", Namespace: "shop", UID: "0d9c6f1e-6a39-4f4e-9a57-3f2f7b1d2c11",
		Labels:     map[string]string{"app": "web", "tier": "front"},
		Containers: []PodContainer{{Name: "nginx", Image: web.Ref, Args: []string{"tcp:127.0.0.1:0"}}}})
	pid := c.ContainerPid(t, ids[0])
	testenv.Eventually(t, "the container runs", 10*time.Second, func() bool {
		_, err := os.Stat("/proc/" + itoa(pid))
		return err == nil
	})
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "/kubepods/besteffort/pod0d9c6f1e-6a39-4f4e-9a57-3f2f7b1d2c11/"+ids[0]) {
		t.Errorf("container %s of pod %s not in its cgroup:\n%s", ids[0], sb, b)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
