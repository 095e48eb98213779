package enrich

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fixtureOwners reads a "uid path" file giving the owners of directories
// under a fixture cgroup tree (git keeps no ownership), and returns an
// ownerOf for cgroupTrust: the listed uid, else 0; an error for a directory
// that does not exist, as a stat would.
func fixtureOwners(t testing.TB, mount, file string) func(string) (uint32, error) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	owners := map[string]uint32{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		uid, rel, ok := strings.Cut(line, " ")
		n, err := strconv.ParseUint(uid, 10, 32)
		if !ok || err != nil {
			t.Fatalf("%s: bad line %q", file, line)
		}
		owners[filepath.Join(mount, rel)] = uint32(n)
	}
	return func(dir string) (uint32, error) {
		if _, err := os.Lstat(dir); err != nil {
			return 0, err
		}
		return owners[dir], nil
	}
}

// The ownership rule on a fixture of a systemd host: who controls each
// cgroup, and what a record may then say about its container.
func TestCgroupOwnership(t *testing.T) {
	mount := cgroupMount{dir: "testdata/cgroup-delegation", root: "/"}
	trust := newCgroupTrust(mount, fixtureOwners(t, mount.dir, "testdata/cgroup-delegation.owners"))
	if !trust.known || trust.systemUID != 0 {
		t.Fatalf("system owner %d known=%v, want root", trust.systemUID, trust.known)
	}
	const (
		svc1999 = "/user.slice/user-1999.slice/user@1999.service"
		app2000 = "/system.slice/app.service"
		inPod   = "/machine.slice/libpod-" + idC + ".scope/container/user.slice/user-1000.slice/user@1000.service"
	)
	tests := []struct {
		name, path  string
		owner       int64 // -1: null
		checked     bool
		runtime, id string
	}{
		{"root's docker scope", "/system.slice/docker-" + idA + ".scope", -1, true, RuntimeDocker, idA},
		{"root's kubepods container", "/kubepods/burstable/pod1c7f0e2a-5b3d-4e8f-9a6c-2d1b0e3f4a5c/" + idB, -1, true, RuntimeContainerd, idB},
		{"root's service", "/system.slice/nginx.service", -1, true, "", ""},
		{"hierarchy root", "/", -1, true, "", ""},
		{"user's session, root's", "/user.slice/user-1999.slice/session-3.scope", -1, true, "", ""},

		{"the delegated directory itself", svc1999, 1999, true, "", ""},
		{"user's init.scope", svc1999 + "/init.scope", 1999, true, "", ""},
		{"user's docker scope: forged", svc1999 + "/app.slice/docker-" + idA + ".scope", 1999, true, "", ""},
		{"user's kubepods pod: forged", svc1999 + "/kubepods/pod1234/" + idA, 1999, true, "", ""},
		{"user's docker dir: forged", svc1999 + "/docker/" + idA, 1999, true, "", ""},
		{"rootless podman", svc1999 + "/user.slice/libpod-" + idB + ".scope", 1999, true, RuntimePodmanRootless, idB},
		{"rootless podman sub-cgroup", svc1999 + "/user.slice/libpod-" + idB + ".scope/container", 1999, true, RuntimePodmanRootless, idB},
		{"rootless podman's conmon", svc1999 + "/user.slice/libpod-conmon-" + idB + ".scope", 1999, true, "", ""},
		{"service delegated with User=: forged docker", app2000 + "/docker/" + idB, 2000, true, "", ""},

		// A user inside a rootful container makes a docker-looking cgroup:
		// the process is in the real outer container, not in the forged one.
		{"inside a rootful container, user's forged docker", inPod + "/app.slice/docker-" + idA + ".scope", 1000, true, RuntimePodman, idC},
		{"inside a rootful container, root's part", "/machine.slice/libpod-" + idC + ".scope/container", -1, true, RuntimePodman, idC},

		// Gone before it was looked at: nothing is believed.
		{"removed root-looking docker scope", "/system.slice/docker-" + idB + ".scope", -1, false, "", ""},
		{"removed below a delegated directory", svc1999 + "/app.slice/gone/docker-" + idB + ".scope", 1999, true, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := trust.owner(tt.path)
			if o.checked != tt.checked {
				t.Errorf("checked %v, want %v", o.checked, tt.checked)
			}
			info := trust.info(tt.path)
			if got, want := ownerText(info.ownerUID), ownerText(optOwner(tt.owner)); got != want {
				t.Errorf("owner %s, want %s", got, want)
			}
			if deref(info.runtime) != tt.runtime || deref(info.containerID) != tt.id {
				t.Errorf("runtime %q id %q, want %q %q", deref(info.runtime), deref(info.containerID), tt.runtime, tt.id)
			}
			if deref(info.pathText) != tt.path {
				t.Errorf("path text %q, want %q", deref(info.pathText), tt.path)
			}
		})
	}
}

// The walk stops at the delegated directory: a user's subtree closed to
// the agent (mode 0700) cannot hide whose it is.
func TestCgroupOwnershipStopsAtDelegation(t *testing.T) {
	mount := cgroupMount{dir: "testdata/cgroup-delegation", root: "/"}
	fixture := fixtureOwners(t, mount.dir, "testdata/cgroup-delegation.owners")
	var statted []string
	trust := newCgroupTrust(mount, func(dir string) (uint32, error) {
		statted = append(statted, strings.TrimPrefix(dir, mount.dir))
		if strings.Contains(strings.TrimPrefix(dir, mount.dir), "@1999.service/") {
			return 0, &os.PathError{Op: "lstat", Path: dir, Err: os.ErrPermission}
		}
		return fixture(dir)
	})
	statted = nil
	o := trust.owner("/user.slice/user-1999.slice/user@1999.service/app.slice/docker-" + idA + ".scope")
	if !o.checked || !o.delegated || o.uid != 1999 {
		t.Errorf("got %+v, want delegated to 1999", o)
	}
	want := []string{"/user.slice", "/user.slice/user-1999.slice", "/user.slice/user-1999.slice/user@1999.service"}
	if strings.Join(statted, " ") != strings.Join(want, " ") {
		t.Errorf("statted %q, want %q", statted, want)
	}
}

// Names are not believed when nothing can be checked.
func TestCgroupOwnershipUnchecked(t *testing.T) {
	path := "/system.slice/docker-" + idA + ".scope"
	for name, trust := range map[string]*cgroupTrust{
		"no cgroup2 mount": newCgroupTrust(cgroupMount{}, nil),
		"unreadable mount": newCgroupTrust(cgroupMount{dir: "testdata/cgroup-delegation", root: "/"},
			func(string) (uint32, error) { return 0, errors.New("denied") }),
		"path outside the mount": newCgroupTrust(cgroupMount{dir: "testdata/cgroup-delegation/system.slice", root: "/system.slice"},
			fixtureOwners(t, "testdata/cgroup-delegation", "testdata/cgroup-delegation.owners")),
	} {
		t.Run(name, func(t *testing.T) {
			p := path
			if name == "path outside the mount" {
				p = "/kubepods/burstable/pod1c7f0e2a-5b3d-4e8f-9a6c-2d1b0e3f4a5c/" + idB
			}
			info := trust.info(p)
			if info.runtime != nil || info.containerID != nil || info.ownerUID != nil || deref(info.pathText) != p {
				t.Errorf("got runtime %q id %q owner %s path %q; want only the path", deref(info.runtime),
					deref(info.containerID), ownerText(info.ownerUID), deref(info.pathText))
			}
		})
	}
}

// Through a mount of a subtree (a cgroup namespace), only what it shows is
// checked, from its top.
func TestCgroupOwnershipSubtreeMount(t *testing.T) {
	mount := cgroupMount{dir: "testdata/cgroup-delegation/user.slice", root: "/user.slice"}
	trust := newCgroupTrust(mount, fixtureOwners(t, "testdata/cgroup-delegation", "testdata/cgroup-delegation.owners"))
	info := trust.info("/user.slice/user-1999.slice/user@1999.service/user.slice/libpod-" + idB + ".scope")
	if ownerText(info.ownerUID) != "1999" || deref(info.runtime) != RuntimePodmanRootless {
		t.Errorf("owner %s runtime %q, want 1999 podman-rootless", ownerText(info.ownerUID), deref(info.runtime))
	}
	info = trust.info("/user.slice/user-1999.slice/session-3.scope")
	if info.ownerUID != nil {
		t.Errorf("root's session owned by %s", ownerText(info.ownerUID))
	}
}

// The cgroup path enters records escaped: a user names its cgroups.
func TestCgroupPathEscaped(t *testing.T) {
	trust := newCgroupTrust(cgroupMount{}, nil)
	info := trust.info("/user.slice/a\x1b[2Jb\xff\\")
	if want := `/user.slice/a\x1b[2Jb\xff\\`; deref(info.pathText) != want {
		t.Errorf("path text %q, want %q", deref(info.pathText), want)
	}
}
