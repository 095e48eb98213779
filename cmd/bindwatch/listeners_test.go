package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/test/testenv"
)

// TestListenersCommand: a listener this test holds, passed to a child too,
// is listed once with both holders, its cookie (the one SO_COOKIE gives),
// its executable and exposure; -j and the table agree.
func TestListenersCommand(t *testing.T) {
	testenv.RequireRoot(t)
	l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("sleep", "60")
	cmd.ExtraFiles = []*os.File{f}
	child := testenv.Start(t, cmd, 10*time.Second)
	port := l.Addr().(*net.TCPAddr).Port

	out, err := exec.Command(binary, "listeners", "-j").Output()
	if err != nil {
		t.Fatalf("bindwatch listeners -j: %v", err)
	}
	type holder struct {
		PID int
		Exe string
	}
	var found []struct {
		Port     int
		Cookie   uint64
		Exposure string
		Protocol string
		Holders  []holder
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var rec struct {
			Port     int
			Cookie   uint64
			Exposure string
			Protocol string
			Holders  []holder
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if rec.Port == port {
			found = append(found, rec)
		}
	}
	if len(found) != 1 {
		t.Fatalf("port %d listed %d times:\n%s", port, len(found), out)
	}
	rec := found[0]
	raw, _ := l.SyscallConn()
	var cookie uint64
	raw.Control(func(fd uintptr) { cookie, err = getsockoptUint64(int(fd)) })
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	self, _ = filepath.EvalSymlinks(self)
	sleepExe, _ := exec.LookPath("sleep")
	sleepExe, _ = filepath.EvalSymlinks(sleepExe)
	// This process holds it twice (the listener and its File copy), the
	// child once; holders come in pid order (a child's pid may be the
	// lower one once pids wrap).
	want := []holder{{os.Getpid(), self}, {os.Getpid(), self}, {child.Pid(), sleepExe}}
	slices.SortStableFunc(want, func(a, b holder) int { return a.PID - b.PID })
	if rec.Cookie != cookie || rec.Exposure != "loopback" || !slices.Equal(rec.Holders, want) {
		t.Fatalf("listed %+v; want cookie %d, loopback, holders %v", rec, cookie, want)
	}

	table, err := exec.Command(binary, "listeners").Output()
	if err != nil {
		t.Fatal(err)
	}
	var rows int
	for _, row := range strings.Split(string(table), "\n") {
		if f := strings.Fields(row); len(f) > 3 && f[2] == strconv.Itoa(port) {
			rows++
			if f[1] != "127.0.0.1" || f[3] != "loopback" || f[4] != "host" || !strings.Contains(row, "pid="+strconv.Itoa(child.Pid())) {
				t.Errorf("table row %q", row)
			}
		}
	}
	if rows != 1 {
		t.Fatalf("port %d in %d table rows:\n%s", port, rows, table)
	}
}
