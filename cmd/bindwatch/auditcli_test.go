package main

import (
	"os/exec"
	"strings"
	"testing"
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
