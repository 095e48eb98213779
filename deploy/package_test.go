// Package deploy_test installs, upgrades and removes the .deb that
// `make package` builds, in a container booted with systemd.
package deploy_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// TestPackageLifecycle builds the packages of this tree twice with `make
// package` (1.0.0, and 1.0.1 as the upgrade), boots systemd in a container whose
// /usr and dpkg database are overlays of the host's (so dpkg and systemd are
// the host's Debian 12 ones, and nothing the package writes reaches the
// host) and whose /etc is fresh, then as an administrator would:
//
//  1. dpkg -i: the user, the spool and pin directories exist; the unit is
//     enabled, not started.
//  2. the brokers set in the conffile (devkafka on the host), systemctl
//     start: the agent captures the host's binds and Kafka has them.
//  3. dpkg -i of the later version: the agent was restarted on the new
//     binary, the conffile kept its edits, and the pins were not removed
//     (the kernel's sequence counter went on, it did not start again).
//  4. with capture.orphan_timeout 30s and bindwatch-unpin.timer firing
//     every 2 s (a drop-in): stopped while a load generator binds, for
//     several of the timer's runs within the lease, and started again, the
//     agent lost nothing (every bind in Kafka, no gap in the sequence, the
//     same pinned maps); stopped and disabled, its pins are gone once the
//     lease has run out, and the programs with them.
//  5. dpkg -r: the agent is stopped, the unit disabled and gone, the pins
//     removed (bindwatch unpin). Installed again, it is enabled again.
//     dpkg --purge: the user, its group, the spool and the configuration
//     are gone too.
//
// Then the same with the .rpm and Debian's rpm (rpm -i, rpm -U, rpm -e, which
// is removal and purge at once), so that the scripts' rpm arguments are
// exercised by rpm itself.
//
// The container shares the host's network (devkafka and the metrics port
// are on the host's loopback, on ports of this test's own) and gets a
// bpffs of its own, so its pins are apart from every other agent's.
func TestPackageLifecycle(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "systemd-nspawn", "systemd-container")
	testenv.RequireTool(t, "nsenter", "util-linux")
	testenv.RequireTool(t, "dpkg", "dpkg")
	makeTool := testenv.RequireTool(t, "make", "make")
	if _, err := os.Stat("/sys/kernel/tracing/events"); err != nil {
		testenv.Unavailable(t, "needs tracefs mounted at /sys/kernel/tracing to bind into the container: %v", err)
	}
	// The overlay shows the host's /usr: a bindwatch installed there would
	// hide whether the package removed its own.
	for _, f := range []string{"/usr/bin/bindwatch", "/usr/lib/systemd/system/bindwatch.service", "/usr/lib/sysusers.d/bindwatch.conf"} {
		if _, err := os.Stat(f); err == nil {
			testenv.Unavailable(t, "the host has %s (make install?): the container's /usr shows the host's", f)
		}
	}
	start := time.Now()
	dir := testenv.WorldReadableDir(t)

	// The packages, as a user builds them; both at once, as most of the
	// time goes to single-threaded compression.
	built := make(chan error, 2)
	for _, v := range []string{"1.0.0", "1.0.1"} {
		cmd := exec.Command(makeTool, "-C", "..", "--no-print-directory", "package", "PKG_VERSION="+v, "PKGDIR="+filepath.Join(dir, "pkg-"+v))
		// Not the flags of a make test running this test (-n, -j with a
		// jobserver whose descriptors go test did not pass on).
		for _, kv := range os.Environ() {
			if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		go func() {
			if b, err := cmd.CombinedOutput(); err != nil {
				built <- fmt.Errorf("make package PKG_VERSION=%s: %v\n%s", v, err, b)
				return
			}
			built <- nil
		}()
	}
	for range 2 {
		if err := <-built; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("packages built in %v", time.Since(start).Round(time.Millisecond))

	brokers := testenv.StartDevkafka(t, dir, "../cmd/devkafka")
	metricsAddr := freeAddr(t)

	root := filepath.Join(dir, "root")
	buildRoot(t, root)
	overlay(t, "/usr", filepath.Join(root, "usr"), filepath.Join(dir, "usr"))
	overlay(t, "/var/lib/dpkg", filepath.Join(root, "var/lib/dpkg"), filepath.Join(dir, "dpkg"))
	// The host's stat overrides name groups the container's fresh /etc
	// lacks, and dpkg refuses to run with those; the package sets none.
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/statoverride"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bpffs := filepath.Join(dir, "bpffs")
	testenv.Mount(t, "bpf", bpffs, "bpf", 0, "mode=0700")
	pins := filepath.Join(bpffs, "bindwatch")
	// Whatever happens, nothing this test pinned stays attached: this runs
	// after the container is gone and before bpffs is unmounted.
	t.Cleanup(func() {
		if err := bpf.RemovePins(pins); err != nil {
			t.Errorf("removing the container's pins: %v", err)
		}
	})
	for _, f := range formats {
		for _, v := range []string{"1.0.0", "1.0.1"} {
			built := filepath.Join(dir, "pkg-"+v, f.file(v))
			if _, err := os.Stat(built); err != nil {
				t.Fatalf("make package wrote no %s: %v", f.file(v), err)
			}
			testenv.CopyFile(t, built, filepath.Join(root, "root", f.file(v)), 0o644)
		}
	}

	// The agent's ExecStartPre= gives its group the host's tracefs files:
	// no other test may put them back meanwhile.
	testenv.LockTracefs(t)
	c := boot(t, root, bpffs)
	t.Logf("container booted at %v", time.Since(start).Round(time.Millisecond))
	env := &lifecycle{c: c, root: root, pins: pins, brokers: brokers, metrics: metricsAddr}
	for _, f := range formats {
		if !t.Run(f.name, func(t *testing.T) { env.run(t, f) }) {
			break // the next one would find this one's leftovers
		}
	}
	t.Logf("whole test took %v", time.Since(start).Round(time.Millisecond))
}

// format is how one package format is installed, upgraded and removed.
type format struct {
	name    string
	file    func(version string) string // the name make package gives it
	tool    string                      // Debian package with the tool, for a skip
	install []string                    // the package file is appended
	upgrade []string
	// remove are the commands that remove the package for good, in turn:
	// the agent is stopped and unpinned after the first, the user and the
	// spool are gone after the last.
	remove [][]string
	// reinstall: between the removal commands, install it again (dpkg -r
	// keeps the configuration, and dpkg tells postinst the version it had).
	reinstall bool
	// config is what must be gone from /etc after the last removal
	// command. rpm keeps an edited configuration as bindwatch.yaml.rpmsave.
	config string
}

var formats = []format{{
	name:      "deb",
	file:      func(v string) string { return "bindwatch_" + v + "-1_amd64.deb" },
	tool:      "dpkg",
	install:   []string{"dpkg", "-i"},
	upgrade:   []string{"dpkg", "-i"},
	remove:    [][]string{{"dpkg", "-r", "bindwatch"}, {"dpkg", "--purge", "bindwatch"}},
	reinstall: true,
	config:    "etc/bindwatch",
}, {
	// Debian's rpm, on an empty rpm database: --nodeps (systemd is a
	// dpkg package here), --force-debian (it refuses otherwise).
	name:    "rpm",
	file:    func(v string) string { return "bindwatch-" + v + "-1.x86_64.rpm" },
	tool:    "rpm",
	install: []string{"rpm", "-i", "--nodeps", "--force-debian"},
	upgrade: []string{"rpm", "-U", "--nodeps", "--force-debian"},
	remove:  [][]string{{"rpm", "-e", "--nodeps", "bindwatch"}},
	config:  "etc/bindwatch/bindwatch.yaml",
}}

// lifecycle is what every format's run shares: the booted container, its
// pin directory, devkafka and the agent's metrics address.
type lifecycle struct {
	c          *container
	root, pins string
	brokers    string
	metrics    string
}

func (e *lifecycle) run(t *testing.T, f format) {
	c, root, pins := e.c, e.root, e.pins
	if _, err := exec.LookPath(f.install[0]); err != nil {
		testenv.Unavailable(t, "needs %s (Debian package %s) on the host, whose /usr the container shares", f.install[0], f.tool)
	}
	step := func(name string, fn func(t *testing.T)) {
		if !t.Failed() {
			t.Run(name, fn)
		}
	}

	step("install", func(t *testing.T) {
		c.run(t, append(f.install, "/root/"+f.file("1.0.0"))...)
		if got := c.try("systemctl", "is-enabled", "bindwatch"); got != "enabled" {
			t.Errorf("after install: systemctl is-enabled says %q, want enabled", got)
		}
		if got := c.try("systemctl", "is-active", "bindwatch"); got != "inactive" {
			t.Errorf("after install: systemctl is-active says %q, want inactive (enabled, not started)", got)
		}
		for q, want := range map[string]string{"is-enabled": "enabled", "is-active": "active"} {
			if got := c.try("systemctl", q, "bindwatch-unpin.timer"); got != want {
				t.Errorf("after install: systemctl %s bindwatch-unpin.timer says %q, want %s", q, got, want)
			}
		}
		if !strings.Contains(testenv.ReadFile(t, filepath.Join(root, "etc/passwd")), "\nbindwatch:") {
			t.Errorf("no bindwatch user in /etc/passwd")
		}
		for _, d := range []string{"var/lib/bindwatch", "var/lib/bindwatch/spool"} {
			checkOwner(t, filepath.Join(root, d), c.try("id", "-u", "bindwatch"), 0o700)
		}
		if _, err := os.Stat(pins); err != nil {
			t.Errorf("no pin directory: %v", err)
		}
	})

	step("start against devkafka", func(t *testing.T) {
		conf := filepath.Join(root, "etc/bindwatch/bindwatch.yaml")
		text := testenv.ReadFile(t, conf)
		edited := strings.Replace(strings.Replace(text, "    - 127.0.0.1:9092\n", "    - "+e.brokers+"\n", 1),
			"listen: 127.0.0.1:9464\n", "listen: "+e.metrics+"\n", 1)
		if !strings.Contains(edited, e.brokers) || !strings.Contains(edited, e.metrics) {
			t.Fatalf("the conffile has no default brokers or metrics.listen line to edit:\n%s", text)
		}
		if err := os.WriteFile(conf, []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
		c.run(t, "systemctl", "start", "bindwatch")
		if got := c.try("systemctl", "is-active", "bindwatch"); got != "active" {
			t.Fatalf("after start: %q\n%s", got, c.try("journalctl", "-u", "bindwatch", "--no-pager"))
		}
		waitPublished(t, e.metrics, 1)
		// The host key, made at first start in the state directory: the
		// agent's own, private.
		checkOwner(t, filepath.Join(root, "var/lib/bindwatch/host.key"), c.try("id", "-u", "bindwatch"), 0o600)
	})

	step("upgrade", func(t *testing.T) {
		key := testenv.ReadFile(t, filepath.Join(root, "var/lib/bindwatch/host.key"))
		defer func() {
			if testenv.ReadFile(t, filepath.Join(root, "var/lib/bindwatch/host.key")) != key {
				t.Error("the upgrade changed the host key: the audit would refuse the host's records")
			}
		}()
		pid := c.try("systemctl", "show", "-P", "MainPID", "bindwatch")
		seq := counter(t, e.metrics, "bindwatch_kernel_events_total")
		pinned := pinnedMaps(t, pins)
		c.run(t, append(f.upgrade, "/root/"+f.file("1.0.1"))...)
		if got := c.try("systemctl", "is-active", "bindwatch"); got != "active" {
			t.Fatalf("after upgrade: %q\n%s", got, c.try("journalctl", "-u", "bindwatch", "--no-pager"))
		}
		if got := c.try("systemctl", "show", "-P", "MainPID", "bindwatch"); got == pid {
			t.Errorf("after upgrade the agent is still pid %s: not restarted on the new binary", pid)
		}
		if v := c.try("bindwatch", "version"); !strings.Contains(v, "1.0.1") {
			t.Errorf("bindwatch version after upgrade: %q", v)
		}
		if !strings.Contains(testenv.ReadFile(t, filepath.Join(root, "etc/bindwatch/bindwatch.yaml")), e.brokers) {
			t.Errorf("the upgrade replaced the edited configuration")
		}
		if got := c.try("systemctl", "is-enabled", "bindwatch"); got != "enabled" {
			t.Errorf("after upgrade: is-enabled %q", got)
		}
		if got := c.try("systemctl", "is-active", "bindwatch-unpin.timer"); got != "active" {
			t.Errorf("after upgrade: bindwatch-unpin.timer is %q", got)
		}
		published := waitPublished(t, e.metrics, 1)
		after := counter(t, e.metrics, "bindwatch_kernel_events_total")
		// The maps (ring buffer, sequence counter) are the same pinned
		// objects; only the links are replaced, by the new agent itself.
		if now := pinnedMaps(t, pins); !pinned.Equal(now) {
			t.Errorf("pinned maps before the upgrade %v, after %v: the pins did not survive it", pinned, now)
		}
		// Removed pins would start a fresh counter at the boot clock in ns.
		if after < seq || after-seq >= 1e9 {
			t.Errorf("kernel sequence %.0f before the upgrade, %.0f after: the counter started again", seq, after)
		}
		t.Logf("upgrade: pid %s -> %s, kernel sequence %.0f -> %.0f, %.0f published since", pid,
			c.try("systemctl", "show", "-P", "MainPID", "bindwatch"), seq, after, published)
	})

	// The timer every 2 s and a 30 s lease from here on.
	step("short lease and timer", e.shortenLease)
	step("timer keeps a restarting agent's capture", e.timerKeepsRestartingAgent)
	step("timer unpins a stopped, disabled agent", e.timerUnpinsStoppedAgent)

	step("remove", func(t *testing.T) {
		for i, cmd := range f.remove {
			c.run(t, cmd...)
			if i > 0 {
				continue
			}
			if got := c.try("systemctl", "show", "-P", "LoadState", "bindwatch"); got != "not-found" {
				t.Errorf("after %s the unit is %q, want not-found", strings.Join(cmd, " "), got)
			}
			if ps := c.try("pgrep", "-x", "bindwatch"); ps != "" {
				t.Errorf("after %s a bindwatch process still runs: %s", strings.Join(cmd, " "), ps)
			}
			for _, p := range []string{"usr/bin/bindwatch", "usr/lib/systemd/system/bindwatch.service",
				"etc/systemd/system/multi-user.target.wants/bindwatch.service",
				"usr/lib/systemd/system/bindwatch-unpin.service", "usr/lib/systemd/system/bindwatch-unpin.timer",
				"etc/systemd/system/timers.target.wants/bindwatch-unpin.timer"} {
				if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
					t.Errorf("after %s /%s is still there", strings.Join(cmd, " "), p)
				}
			}
			if entries, err := os.ReadDir(pins); err == nil {
				t.Errorf("after %s the pin directory is still there, with %d pins", strings.Join(cmd, " "), len(entries))
			}
			if f.reinstall {
				c.run(t, append(f.install, "/root/"+f.file("1.0.1"))...)
				if got := c.try("systemctl", "is-enabled", "bindwatch"); got != "enabled" {
					t.Errorf("reinstalled after %s: is-enabled %q, want enabled again", strings.Join(cmd, " "), got)
				}
				if got := c.try("systemctl", "is-active", "bindwatch"); got != "inactive" {
					t.Errorf("reinstalled after %s: is-active %q, want inactive", strings.Join(cmd, " "), got)
				}
			}
		}
		for _, p := range []string{"etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"} {
			if strings.Contains("\n"+testenv.ReadFile(t, filepath.Join(root, p)), "\nbindwatch:") {
				t.Errorf("after removal /%s still has bindwatch", p)
			}
		}
		for _, p := range []string{"var/lib/bindwatch", f.config} {
			if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
				t.Errorf("after removal /%s is still there", p)
			}
		}
	})
}
