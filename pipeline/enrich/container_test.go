package enrich

import (
	"strings"
	"testing"
)

const (
	idA = "2f6b3d0c9a8e7f6d5c4b3a2918273645abcdef0123456789abcdef0123456789"
	idB = "7d3f9e1b5a2c4d6e8f0a1b3c5d7e9f1a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e"
	idC = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

func TestParseContainer(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		id      string
		runtime string // "" means not a container
	}{
		// Docker.
		{"docker systemd driver", "/system.slice/docker-" + idA + ".scope", idA, RuntimeDocker},
		{"docker cgroupfs driver", "/docker/" + idA, idA, RuntimeDocker},
		{"docker sub-cgroup init.scope", "/system.slice/docker-" + idA + ".scope/init.scope", idA, RuntimeDocker},
		{"docker cgroupfs sub-cgroup", "/docker/" + idA + "/app/worker", idA, RuntimeDocker},
		{"docker rootless systemd", "/user.slice/user-1000.slice/user@1000.service/user.slice/docker-" + idA + ".scope", idA, RuntimeDocker},
		{"docker-in-docker cgroupfs", "/docker/" + idA + "/docker/" + idB, idB, RuntimeDocker},
		{"docker-in-docker under systemd scope", "/system.slice/docker-" + idA + ".scope/docker/" + idB, idB, RuntimeDocker},
		{"docker-in-docker inner sub-cgroup", "/system.slice/docker-" + idA + ".scope/docker/" + idB + "/init.scope", idB, RuntimeDocker},
		{"docker daemon itself", "/system.slice/docker.service", "", ""},
		{"docker socket scope", "/system.slice/docker.socket", "", ""},
		{"docker dir alone", "/docker", "", ""},

		// Kubernetes, systemd driver: the leaf names the runtime.
		{"k8s burstable cri-containerd", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1c7f0e2a_5b3d_4e8f_9a6c_2d1b0e3f4a5c.slice/cri-containerd-" + idB + ".scope", idB, RuntimeContainerd},
		{"k8s besteffort cri-containerd", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0a1b2c3d_4e5f_6071_8293_a4b5c6d7e8f9.slice/cri-containerd-" + idC + ".scope", idC, RuntimeContainerd},
		{"k8s guaranteed cri-containerd", "/kubepods.slice/kubepods-pod9f8e7d6c_5b4a_3928_1706_f5e4d3c2b1a0.slice/cri-containerd-" + idA + ".scope", idA, RuntimeContainerd},
		{"k8s burstable docker shim", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1c7f0e2a_5b3d_4e8f_9a6c_2d1b0e3f4a5c.slice/docker-" + idA + ".scope", idA, RuntimeDocker},
		{"k8s guaranteed cri-o", "/kubepods.slice/kubepods-pod9f8e7d6c_5b4a_3928_1706_f5e4d3c2b1a0.slice/crio-" + idC + ".scope", idC, RuntimeCRIO},
		{"k8s burstable cri-o", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1c7f0e2a_5b3d_4e8f_9a6c_2d1b0e3f4a5c.slice/crio-" + idB + ".scope", idB, RuntimeCRIO},
		{"k8s cri-o container sub-cgroup", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0a1b2c3d_4e5f_6071_8293_a4b5c6d7e8f9.slice/crio-" + idB + ".scope/container", idB, RuntimeCRIO},
		{"k8s cri-o conmon is not the container", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1c7f0e2a_5b3d_4e8f_9a6c_2d1b0e3f4a5c.slice/crio-conmon-" + idB + ".scope", "", ""},
		{"k8s pod slice without container", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1c7f0e2a_5b3d_4e8f_9a6c_2d1b0e3f4a5c.slice", "", ""},
		{"k8s qos slice", "/kubepods.slice/kubepods-besteffort.slice", "", ""},

		// Kubernetes, cgroupfs driver: bare ids under pod directories.
		{"k8s cgroupfs burstable", "/kubepods/burstable/pod1c7f0e2a-5b3d-4e8f-9a6c-2d1b0e3f4a5c/" + idB, idB, RuntimeContainerd},
		{"k8s cgroupfs besteffort", "/kubepods/besteffort/pod0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9/" + idC, idC, RuntimeContainerd},
		{"k8s cgroupfs guaranteed", "/kubepods/pod9f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0/" + idA, idA, RuntimeContainerd},
		{"k8s cgroupfs cri-o", "/kubepods/burstable/pod1c7f0e2a-5b3d-4e8f-9a6c-2d1b0e3f4a5c/crio-" + idB, idB, RuntimeCRIO},
		{"k8s cgroupfs pause-less pod dir", "/kubepods/burstable/pod1c7f0e2a-5b3d-4e8f-9a6c-2d1b0e3f4a5c", "", ""},
		{"bare id outside docker or kubepods", "/mygroup/" + idA, "", ""},
		{"bare id under a non-pod kubepods dir", "/kubepods/burstable/" + idA, "", ""},

		// Podman.
		{"podman rootful", "/machine.slice/libpod-" + idC + ".scope", idC, RuntimePodman},
		{"podman rootful container sub-cgroup", "/machine.slice/libpod-" + idC + ".scope/container", idC, RuntimePodman},
		{"podman pod member", "/machine.slice/machine-libpod_pod_5c1e2f3a4b5c6d7e.slice/libpod-" + idA + ".scope", idA, RuntimePodman},
		{"podman rootless", "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + idB + ".scope", idB, RuntimePodman},
		{"podman rootless sub-cgroup", "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + idB + ".scope/container", idB, RuntimePodman},
		{"podman cgroupfs manager", "/libpod_parent/libpod-" + idA, idA, RuntimePodman},
		{"podman conmon rootful", "/machine.slice/libpod-conmon-" + idC + ".scope", "", ""},
		{"podman conmon rootless", "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-conmon-" + idB + ".scope", "", ""},
		{"podman in docker: conmon belongs to the outer container", "/docker/" + idA + "/libpod-conmon-" + idB + ".scope", idA, RuntimeDocker},

		// containerd without Kubernetes.
		{"nerdctl systemd", "/system.slice/nerdctl-" + idA + ".scope", idA, RuntimeContainerd},

		// Not containers.
		{"root", "/", "", ""},
		{"empty", "", "", ""},
		{"init scope", "/init.scope", "", ""},
		{"user session", "/user.slice/user-1000.slice/session-3.scope", "", ""},
		{"system service", "/system.slice/nginx.service", "", ""},
		{"user manager", "/user.slice/user-1000.slice/user@1000.service/app.slice/dbus.service", "", ""},
		{"short id", "/system.slice/docker-" + idA[:12] + ".scope", "", ""},
		{"one digit short", "/system.slice/docker-" + idA[:63] + ".scope", "", ""},
		{"one digit long", "/system.slice/docker-" + idA + "0.scope", "", ""},
		{"uppercase hex", "/system.slice/docker-" + strings.ToUpper(idA) + ".scope", "", ""},
		{"non-hex", "/system.slice/docker-" + idA[:63] + "g.scope", "", ""},
		{"bare short id under docker", "/docker/" + idA[:12], "", ""},
		{"bare non-hex under docker", "/docker/" + idA[:63] + "z", "", ""},
		{"unknown prefix", "/system.slice/lxc-" + idA + ".scope", "", ""},
		{"prefix in the middle", "/system.slice/my-docker-" + idA + ".scope", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, runtime, ok := ParseContainer(tt.path)
			wantOK := tt.runtime != ""
			if ok != wantOK || id != tt.id || runtime != tt.runtime {
				t.Errorf("ParseContainer(%q) = %q, %q, %v; want %q, %q, %v",
					tt.path, id, runtime, ok, tt.id, tt.runtime, wantOK)
			}
		})
	}
}

func FuzzParseContainer(f *testing.F) {
	f.Add("/system.slice/docker-" + idA + ".scope")
	f.Add("/kubepods/burstable/pod1/" + idB)
	f.Add("/docker/" + idA + "/docker/" + idB)
	f.Fuzz(func(t *testing.T, path string) {
		id, runtime, ok := ParseContainer(path)
		if !ok {
			if id != "" || runtime != "" {
				t.Fatalf("not ok but %q, %q", id, runtime)
			}
			return
		}
		if !isContainerID(id) || !strings.Contains(path, id) {
			t.Fatalf("id %q from %q", id, path)
		}
		switch runtime {
		case RuntimeDocker, RuntimeContainerd, RuntimeCRIO, RuntimePodman:
		default:
			t.Fatalf("runtime %q", runtime)
		}
	})
}
