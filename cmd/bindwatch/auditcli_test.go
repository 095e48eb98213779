package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bindwatch/bindwatch/test/kafkatest"
)

// The audit's command lines: its schemas print, misused flags are refused
// with the usage and exit status 2, and a policy or config with errors
// stops the audit at start with the file, the line and the key.
func TestAuditCommandLines(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"schema", "--record", "finding"}, 0, `"name": "Finding"`},
		{[]string{"schema", "--record", "listener_state", "--canonical"}, 0, "fingerprint (CRC-64-AVRO"},
		{[]string{"schema", "--record", "nope"}, 2, `--record "nope"`},
		{[]string{"listeners", "--port", "22"}, 2, "give --brokers"},
		{[]string{"audit", "--learn", "1s"}, 2, "--learn and --write-policy go together"},
		{[]string{"audit", "--config", "testdata/audit-bad.yaml"}, 1, "testdata/audit-bad.yaml:4: audit.grup: unknown key"},
		{[]string{"audit", "--config", "testdata/audit-good.yaml", "--policy", "testdata/policy-bad.yaml"}, 1, `testdata/policy-bad.yaml:5: rules[0].match.addr: "10.0.0.0/40" is not a CIDR`},
	} {
		out, err := exec.Command(binary, c.args...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code || !strings.Contains(string(out), c.want) {
			t.Errorf("bindwatch %s: exit %d, want %d; output lacks %q:\n%s", strings.Join(c.args, " "), code, c.code, c.want, out)
		}
	}
}

// The audit logs a policy's warnings when it loads it and when SIGHUP
// reloads it, with the file, the line and the key.
func TestAuditLogsPolicyWarnings(t *testing.T) {
	const events = "bindwatch.bind-events"
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Topic: events, Partitions: 1})
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, "rules:\n  - name: avahi\n    action: allow\n    match:\n      comm: avahi-daemon\n")
	cfgPath := filepath.Join(dir, "audit.yaml")
	writeFile(t, cfgPath, fmt.Sprintf("kafka:\n  brokers: [%s]\naudit:\n  group: warnings\n  policy: %s\nmetrics:\n  listen: \"\"\n",
		cluster.Addrs[0], policyPath))
	a := startAudit(t, "audit", cfgPath)
	line := a.waitLog(t, "policy warning")
	for _, want := range []string{"file=" + policyPath, "line=5", "key=rules[0].match.comm", "PR_SET_NAME"} {
		if !strings.Contains(line, want) {
			t.Errorf("warning at load %q lacks %q", line, want)
		}
	}
	a.waitLog(t, "policy loaded")

	writeFile(t, policyPath, "rules:\n  - name: sshd\n    action: allow\n    match: {exe: /usr/sbin/sshd}\n  - name: nginx\n    action: allow\n    match: {comm: nginx, container: none}\n")
	a.Signal(syscall.SIGHUP)
	line = a.waitLog(t, "policy warning")
	if !strings.Contains(line, "line=7") || !strings.Contains(line, "key=rules[1].match.comm") {
		t.Errorf("warning at reload %q, want line 7, rules[1].match.comm", line)
	}
	a.waitLog(t, "policy reloaded")
}
