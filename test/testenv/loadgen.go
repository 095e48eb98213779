package testenv

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Loadgen is test/loadgen binding UDP as a test user, rate binds a second
// for a while.
type Loadgen struct {
	*Process
	out strings.Builder // stdout
}

// StartLoadgen builds test/loadgen from pkg (its path from the test's
// package) into dir and runs it as uid.
func StartLoadgen(t *testing.T, pkg, dir string, uid uint32, rate int, d time.Duration) *Loadgen {
	t.Helper()
	exe := filepath.Join(dir, "loadgen")
	if out, err := exec.Command("go", "build", "-o", exe, pkg).CombinedOutput(); err != nil {
		t.Fatalf("building loadgen: %v\n%s", err, out)
	}
	l := &Loadgen{}
	cmd := exec.Command(exe, "-rate", strconv.Itoa(rate), "-duration", d.String())
	cmd.Stdout = &l.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	l.Process = Start(t, cmd, d+30*time.Second)
	return l
}

// Binds waits for the load generator to end and returns how many binds it
// made.
func (l *Loadgen) Binds(t *testing.T) int {
	t.Helper()
	if err := l.Wait(t); err != nil {
		t.Fatalf("loadgen: %v: %s%s", err, l.out.String(), l.Output())
	}
	m := regexp.MustCompile(`binds=(\d+)`).FindStringSubmatch(l.out.String())
	if m == nil {
		t.Fatalf("loadgen output %q", l.out.String())
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
