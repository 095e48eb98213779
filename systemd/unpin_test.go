package systemd_test

import (
	_ "embed"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// The timer and the oneshot service it starts, which unpin a capture whose
// lease expired with no agent running (deploy/package_test.go runs them
// under systemd with the package).
const (
	unpinService = "bindwatch-unpin.service"
	unpinTimer   = "bindwatch-unpin.timer"
)

//go:embed bindwatch-unpin.service
var unpinServiceText string

//go:embed bindwatch-unpin.timer
var unpinTimerText string

// maxUnpinExposure: measured 0.6 "SAFE" with systemd 252. What is left:
// bpf and CAP_BPF (reading the pinned lease), ambient capabilities, the
// host's root directory, PrivateUsers= (capabilities in a user namespace
// do not reach bpf()), ProtectClock's rtc read ACL.
const maxUnpinExposure = 0.6

// installedUnpin writes the timer and the service, ExecStart= pointing at
// a real bindwatch binary, into a temporary directory.
func installedUnpin(t *testing.T) (service, timer string) {
	t.Helper()
	dir := t.TempDir()
	const exec = "ExecStart=/usr/bin/bindwatch "
	if !strings.Contains(unpinServiceText, exec) {
		t.Fatalf("%s has no %q", unpinService, exec)
	}
	text := strings.ReplaceAll(unpinServiceText, exec, "ExecStart="+bindwatchBinary(t)+" ")
	service, timer = filepath.Join(dir, unpinService), filepath.Join(dir, unpinTimer)
	for path, text := range map[string]string{service: text, timer: unpinTimerText} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return service, timer
}

func TestUnpinUnitsVerify(t *testing.T) {
	inVM(t)
	analyze := testenv.RequireTool(t, "systemd-analyze", "systemd")
	service, timer := installedUnpin(t)
	out, err := exec.Command(analyze, "verify", "--man=no", service, timer).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify %s %s: %v\n%s", unpinService, unpinTimer, err, out)
	}
}

func TestUnpinServiceExposure(t *testing.T) {
	inVM(t)
	analyze := testenv.RequireTool(t, "systemd-analyze", "systemd")
	service, _ := installedUnpin(t)
	cmd := exec.Command(analyze, "security", "--offline=true", "--no-pager", service)
	cmd.Env = append(os.Environ(), "SYSTEMD_COLORS=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposureLine.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no overall exposure in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(m[1], 64)
	t.Logf("%s: exposure %.1f %s (at most %.1f allowed)", unpinService, score, m[2], maxUnpinExposure)
	if score > maxUnpinExposure {
		t.Errorf("exposure %.1f %s, above %.1f:\n%s", score, m[2], maxUnpinExposure, out)
	}
}

// TestUnpinServicePrivileges: the unpin runs as the agent's user with
// CAP_BPF alone, never in the agent's stead, and the timer is what the
// documentation says.
func TestUnpinServicePrivileges(t *testing.T) {
	want := map[string]string{
		"Type":                  "oneshot",
		"User":                  "bindwatch",
		"AmbientCapabilities":   "CAP_BPF",
		"CapabilityBoundingSet": "CAP_BPF",
		"NoNewPrivileges":       "yes",
		"ReadWritePaths":        "-/sys/fs/bpf/bindwatch",
		"ExecStart":             "/usr/bin/bindwatch unpin --if-orphaned --config /etc/bindwatch/bindwatch.yaml",
	}
	for key, v := range want {
		if got := directive(unpinServiceText, key); len(got) != 1 || got[0] != v {
			t.Errorf("%s: %s=%q, want %q", unpinService, key, got, v)
		}
	}
	if got := directive(unpinServiceText, "Conflicts"); len(got) > 0 {
		t.Errorf("%s: Conflicts=%q would stop the agent whenever the timer fires", unpinService, got)
	}
	cond := directive(unpinServiceText, "ExecCondition")
	if len(cond) != 1 || !strings.Contains(cond[0], "bindwatch.service") {
		t.Errorf("%s: ExecCondition=%q, want the check that bindwatch.service is not running", unpinService, cond)
	}
	for key, v := range map[string]string{"OnUnitActiveSec": "5min", "WantedBy": "timers.target"} {
		if got := directive(unpinTimerText, key); len(got) != 1 || got[0] != v {
			t.Errorf("%s: %s=%q, want %q", unpinTimer, key, got, v)
		}
	}
}
