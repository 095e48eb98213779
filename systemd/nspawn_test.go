package systemd_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// TestUnitUnderSystemd boots this host's systemd in a container
// (systemd-nspawn, the host's /usr read-only, a fresh /etc) with
// bindwatch.service, the example drop-in, bindwatch.sysusers and
// bindwatch.tmpfiles installed, the stand-in as ExecStart. It checks what
// only a real service manager can show: every privileged step works inside
// the unit's sandbox (ProtectKernelTunables with the bpffs directory left
// writable, the syscall filter, the address families, the credential via
// %d), the process has exactly the unit's capabilities, READY=1 makes the
// unit active, a reload goes through SIGHUP, a stopped main loop is killed
// by the watchdog and restarted, and a stop is clean.
func TestUnitUnderSystemd(t *testing.T) {
	inVM(t)
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "systemd-nspawn", "systemd-container")
	testenv.RequireTool(t, "nsenter", "util-linux")
	if _, err := os.Stat("/sys/kernel/tracing/events"); err != nil {
		testenv.Unavailable(t, "needs tracefs mounted at /sys/kernel/tracing to bind into the container: %v", err)
	}
	dir := testenv.WorldReadableDir(t)
	root := filepath.Join(dir, "root")
	text := readUnit(t)
	// The container's ExecStartPre= opens the host's tracefs (bound in)
	// to the container's bindwatch group: put it back afterwards.
	keepTracefsPerms(t)
	buildContainerRoot(t, root, text)
	bpffs := filepath.Join(dir, "bpffs")
	testenv.Mount(t, "bpf", bpffs, "bpf", 0, "mode=0700")
	testenv.Mount(t, "/usr", filepath.Join(root, "usr"), "", unix.MS_BIND, "")
	if err := unix.Mount("", filepath.Join(root, "usr"), "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}

	c := &container{t: t, Container: testenv.BootContainer(t, root, bpffs, "bindwatch-test-"+strconv.Itoa(os.Getpid()))}

	c.waitFor("bindwatch started", func(p map[string]string) bool {
		return p["ActiveState"] != "activating" && p["ActiveState"] != "inactive"
	})
	props := c.show()
	if props["ActiveState"] != "active" || props["SubState"] != "running" {
		t.Fatalf("bindwatch is %s/%s (%s), want active/running\n%s", props["ActiveState"], props["SubState"], props["Result"], c.run("journalctl", "-u", "bindwatch", "--no-pager"))
	}

	t.Run("every step works in the sandbox", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(root, "var/lib/bindwatch/report.json"))
		if err != nil {
			t.Fatal(err)
		}
		var rep report
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		for _, s := range rep.Steps {
			t.Logf("%-21s %-5v %s%s", s.Name, s.OK, s.Detail, s.Err)
		}
		if f := rep.failed(); len(f) > 0 || len(rep.Steps) < 9 {
			t.Errorf("%d steps, failed: %q", len(rep.Steps), f)
		}
		if want := "9 of 9 steps ok"; !strings.Contains(props["StatusText"], want) {
			t.Errorf("status %q, want it to say %q (READY=1 with STATUS=)", props["StatusText"], want)
		}
	})

	t.Run("process credentials", func(t *testing.T) {
		status := c.run("cat", "/proc/"+props["MainPID"]+"/status")
		caps := strings.Fields(directive(text, "AmbientCapabilities")[0])
		// CAP_DAC_READ_SEARCH stays permitted only: the stand-in, as the
		// agent, takes it out of the effective and ambient sets at start.
		confined := slices.DeleteFunc(slices.Clone(caps), func(c string) bool { return c == "CAP_DAC_READ_SEARCH" })
		want := map[string]string{
			"CapEff": capMask(t, confined), "CapAmb": capMask(t, confined),
			"CapPrm": capMask(t, caps), "CapBnd": capMask(t, caps),
			"NoNewPrivs": "1", "Seccomp": "2",
		}
		for k, v := range want {
			got, _ := fieldOf(status, k)
			if got != v {
				t.Errorf("%s: %s, want %s", k, got, v)
			}
		}
		if uid, _ := fieldOf(status, "Uid"); strings.HasPrefix(uid, "0") {
			t.Errorf("runs as uid %s", uid)
		}
	})

	t.Run("reload", func(t *testing.T) {
		c.run("systemctl", "reload", "bindwatch")
		c.waitFor("the reload's READY=1", func(p map[string]string) bool { return strings.HasSuffix(p["StatusText"], "reloaded 1 times") })
		if p := c.show(); p["MainPID"] != props["MainPID"] || p["ActiveState"] != "active" {
			t.Errorf("after reload: pid %s state %s, want pid %s active", p["MainPID"], p["ActiveState"], props["MainPID"])
		}
	})

	t.Run("watchdog restarts a stalled agent", func(t *testing.T) {
		c.run("systemctl", "kill", "--signal=SIGSTOP", "bindwatch")
		c.waitFor("a restart", func(p map[string]string) bool { return p["NRestarts"] == "1" && p["ActiveState"] == "active" })
		if j := c.run("journalctl", "-u", "bindwatch", "--no-pager"); !strings.Contains(j, "Watchdog timeout") {
			t.Errorf("restarted, but not by the watchdog:\n%s", j)
		}
	})

	t.Run("stop", func(t *testing.T) {
		c.run("systemctl", "stop", "bindwatch")
		p := c.show()
		if p["ActiveState"] != "inactive" || p["Result"] != "success" || p["ExecMainStatus"] != "0" {
			t.Errorf("after stop: %s, result %s, exit status %s; want inactive, success, 0", p["ActiveState"], p["Result"], p["ExecMainStatus"])
		}
	})
}

// buildContainerRoot lays out an OS tree whose /usr is the host's: a fresh
// /etc with the unit installed as a package would install it.
func buildContainerRoot(t *testing.T, root, text string) {
	t.Helper()
	// ExecStart becomes the stand-in, in service mode.
	standin := "ExecStart=/opt/bindwatch/standin\nEnvironment=" + standinVar + "=auto " + serviceVar + "=1 " +
		pinDirVar + "=/sys/fs/bpf/bindwatch " + reportVar + "=/var/lib/bindwatch/report.json"
	unit, n := replaceLine(text, "ExecStart=", standin)
	if n != 1 {
		t.Fatalf("%d ExecStart= lines", n)
	}
	// ExecStartPre= runs the test binary as bindwatch grant-access.
	unit, n = replaceLine(unit, "ExecStartPre=", "ExecStartPre=+/usr/bin/env "+grantAccessVar+"=bindwatch /opt/bindwatch/standin")
	if n != 1 {
		t.Fatalf("%d ExecStartPre= lines", n)
	}
	layOutRoot(t, root, unit, map[string]string{
		"etc/systemd/system/bindwatch.service.d/" + exampleDropIn: testenv.ReadFile(t, unitFile+".d/"+exampleDropIn),
		// Shorter than the unit's 30 s so the watchdog test takes seconds.
		"etc/systemd/system/bindwatch.service.d/zz-test.conf": "[Service]\nWatchdogSec=5s\nRestartSec=1s\n",
		"etc/bindwatch/kafka-password":                        "not-a-secret",
	})
}

// layOutRoot lays out an OS tree for BootContainer: a fresh /etc with unit
// installed and enabled as bindwatch.service, its sysusers and tmpfiles
// files, and files (contents by path under root); this test binary is
// /opt/bindwatch/standin.
func layOutRoot(t *testing.T, root, unit string, files map[string]string) {
	t.Helper()
	for _, d := range []string{"usr", "etc/systemd/system/multi-user.target.wants", "etc/systemd/system/bindwatch.service.d",
		"etc/sysusers.d", "etc/tmpfiles.d", "etc/bindwatch", "opt/bindwatch", "var", "tmp", "root", "proc", "sys", "dev", "run"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64",
		"etc/os-release": "../usr/lib/os-release",
		"etc/systemd/system/multi-user.target.wants/bindwatch.service": "/etc/systemd/system/bindwatch.service"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	all := testenv.ContainerEtc("bindwatch-test")
	maps.Copy(all, map[string]string{
		"etc/systemd/system/bindwatch.service": unit,
		"etc/sysusers.d/bindwatch.conf":        testenv.ReadFile(t, "bindwatch.sysusers"),
		"etc/tmpfiles.d/bindwatch.conf":        testenv.ReadFile(t, "bindwatch.tmpfiles"),
	})
	maps.Copy(all, files)
	for name, content := range all {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"etc/passwd", "etc/group", "etc/hostname", "etc/machine-id"} {
		os.Chmod(filepath.Join(root, name), 0o644)
	}
	copyStandin(t, filepath.Join(root, "opt/bindwatch/standin"))
}

// replaceLine replaces every line starting with prefix by with.
func replaceLine(text, prefix, with string) (string, int) {
	lines := strings.Split(text, "\n")
	n := 0
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			lines[i] = with
			n++
		}
	}
	return strings.Join(lines, "\n"), n
}

func fieldOf(text, name string) (string, bool) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// container runs commands in the booted container for this test.
type container struct {
	*testenv.Container
	t *testing.T
}

func (c *container) run(args ...string) string {
	c.t.Helper()
	out, err := c.Command(args...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// show returns properties of bindwatch.service. Until the container's
// systemd answers on its bus, it returns nil.
func (c *container) show() map[string]string {
	out, err := c.Command("systemctl", "show", "bindwatch",
		"-p", "ActiveState,SubState,Result,MainPID,StatusText,NRestarts,ExecMainStatus").Output()
	if err != nil {
		return nil
	}
	p := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			p[k] = v
		}
	}
	return p
}

func (c *container) waitFor(what string, done func(map[string]string) bool) {
	c.t.Helper()
	testenv.Eventually(c.t, what, 60*time.Second, func() error {
		if p := c.show(); p == nil || !done(p) {
			return fmt.Errorf("bindwatch.service: %v", p)
		}
		return nil
	})
}
