package dacread_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bindwatch/bindwatch/internal/dacread"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// childVar makes the test binary the unprivileged child: it reads the tree
// its value names, prints a childReport and exits.
const childVar = "BINDWATCH_TEST_CHILD_DACREAD"

// walkVar=1 makes the child's Reader walk with openat, as where openat2 is
// refused (the unit's RestrictSUIDSGID=).
const walkVar = "BINDWATCH_TEST_CHILD_DACREAD_WALK"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childVar); dir != "" {
		dacread.NoOpenat2(os.Getenv(walkVar) == "1")
		b, err := json.Marshal(runChild(dir))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(string(b))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childReport is what the child could do: each step's outcome ("ok: …" or
// the error), and how many of its threads held the capability where.
type childReport struct {
	UID         int
	Held        bool
	ConfineErr  string
	Threads     int
	EffBefore   int // threads with it effective before Confine
	EffAfter    int // … after Confine
	EffAtEnd    int // … after every open below
	PrmAfter    int
	AmbAfter    int
	Steps       map[string]string
	StepsInRoot []string
}

func outcome(b []byte, err error) string {
	if err != nil {
		return err.Error()
	}
	return "ok: " + strings.TrimSpace(string(b))
}

func runChild(dir string) childReport {
	r := childReport{UID: os.Getuid(), Steps: map[string]string{}}
	// Threads besides the main one, as the agent has them by then.
	var wg sync.WaitGroup
	block := make(chan struct{})
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf [1]byte
			rd, wr, _ := os.Pipe()
			go func() { <-block; wr.Write([]byte{1}); wr.Close() }()
			rd.Read(buf[:]) // blocks in a syscall: its own thread
			rd.Close()
		}()
	}
	r.Threads, r.EffBefore, _, _ = threadCaps()
	held, err := dacread.Confine()
	r.Held = held
	if err != nil {
		r.ConfineErr = err.Error()
	}
	_, r.EffAfter, r.PrmAfter, r.AmbAfter = threadCaps()

	state := filepath.Join(dir, "state")
	reader := dacread.NewReader(state)
	read := func(path string) string {
		f, err := reader.Open(path)
		if err != nil {
			return err.Error()
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.IsDir() {
			names, err := f.Readdirnames(-1)
			slices.Sort(names)
			return outcome([]byte(strings.Join(names, ",")), err)
		}
		return outcome(io.ReadAll(f))
	}
	r.Steps["plain read beneath the root"] = outcome(os.ReadFile(filepath.Join(state, "containers/c1/config.v2.json")))
	r.Steps["file beneath the root"] = read(filepath.Join(state, "containers/c1/config.v2.json"))
	r.Steps["directory beneath the root"] = read(filepath.Join(state, "containers"))
	r.Steps["symlink beneath the root to outside"] = read(filepath.Join(state, "containers/c1/leak"))
	r.Steps["through a symlinked directory"] = read(filepath.Join(state, "containers/evil/secret"))
	r.Steps["dot-dot out of the root"] = read(state + "/containers/../../outside/secret")
	r.Steps["file outside the root"] = read(filepath.Join(dir, "outside/secret"))
	// Side by side, so that Go's scheduler moves goroutines among
	// threads while some hold the capability.
	var mu sync.Mutex
	var inner sync.WaitGroup
	for i := 0; i < 32; i++ {
		inner.Add(1)
		go func() {
			defer inner.Done()
			s := read(filepath.Join(state, "containers/c1/config.v2.json"))
			mu.Lock()
			r.StepsInRoot = append(r.StepsInRoot, s)
			mu.Unlock()
		}()
	}
	inner.Wait()
	_, r.EffAtEnd, _, _ = threadCaps()
	close(block)
	wg.Wait()
	return r
}

// threadCaps counts the process's threads, and those with the capability
// in their effective, permitted and ambient sets.
func threadCaps() (threads, eff, prm, amb int) {
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
		if err != nil {
			continue
		}
		threads++
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil || m&(1<<unix.CAP_DAC_READ_SEARCH) == 0 {
				continue
			}
			switch k {
			case "CapEff":
				eff++
			case "CapPrm":
				prm++
			case "CapAmb":
				amb++
			}
		}
	}
	return
}

// TestReaderConfinesTheCapability runs this test binary as an unprivileged
// user (testenv.UserAccess) holding CAP_DAC_READ_SEARCH as the unit grants
// it (ambient, so permitted and effective after exec), and without it. With
// it: after Confine no thread has it effective, so an ordinary read of a
// root-only file fails; the Reader reads it, and lists a 0700 directory,
// beneath the root; it follows no symlink and no ".." out of it and opens
// nothing outside it; and no thread is left with it effective. Without it,
// the Reader reads nothing.
func TestReaderConfinesTheCapability(t *testing.T) {
	testenv.RequireRoot(t)
	dir := testenv.WorldReadableDir(t)
	// As Docker lays its state out: root's, 0700 and 0600.
	for path, content := range map[string]string{
		"state/containers/c1/config.v2.json": `{"Name":"/web1"}`,
		"outside/secret":                     "not for bindwatch",
	} {
		p := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"state", "state/containers", "state/containers/c1", "outside"} {
		os.Chmod(filepath.Join(dir, d), 0o700)
	}
	if err := os.Symlink("../../../outside/secret", filepath.Join(dir, "state/containers/c1/leak")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../outside", filepath.Join(dir, "state/containers/evil")); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "dacread.test")
	testenv.CopyTestBinary(t, bin)

	run := func(t *testing.T, ambient []uintptr, walk string) childReport {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), childVar+"="+dir, walkVar+"="+walk)
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Credential:  &syscall.Credential{Uid: testenv.UserAccess, Gid: testenv.UserAccess},
			AmbientCaps: ambient,
		}
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("child: %v\n%s%s", err, out, stderr)
		}
		var r childReport
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("child printed %q: %v", out, err)
		}
		t.Logf("uid %d held %v confine error %q: of %d threads, effective before %d, after %d, at the end %d; permitted %d, ambient %d",
			r.UID, r.Held, r.ConfineErr, r.Threads, r.EffBefore, r.EffAfter, r.EffAtEnd, r.PrmAfter, r.AmbAfter)
		for _, k := range []string{"plain read beneath the root", "file beneath the root", "directory beneath the root",
			"symlink beneath the root to outside", "through a symlinked directory", "dot-dot out of the root", "file outside the root"} {
			t.Logf("  %-38s %s", k, r.Steps[k])
		}
		return r
	}

	for _, walk := range []string{"0", "1"} {
		name := "with CAP_DAC_READ_SEARCH, openat2"
		if walk == "1" {
			name = "with CAP_DAC_READ_SEARCH, openat walk"
		}
		t.Run(name, func(t *testing.T) { withCapability(t, run(t, []uintptr{unix.CAP_DAC_READ_SEARCH}, walk)) })
	}

	t.Run("without it", func(t *testing.T) {
		r := run(t, nil, "0")
		if r.Held || r.ConfineErr != "" || r.EffBefore+r.EffAfter+r.PrmAfter != 0 {
			t.Errorf("held %v, error %q, effective %d, permitted %d: want nothing", r.Held, r.ConfineErr, r.EffAfter, r.PrmAfter)
		}
		for k, s := range r.Steps {
			if strings.HasPrefix(s, "ok") {
				t.Errorf("%s without the capability: %q", k, s)
			}
		}
		if !strings.Contains(r.Steps["file beneath the root"], dacread.ErrNotHeld.Error()) {
			t.Errorf("file beneath the root: %q, want %q", r.Steps["file beneath the root"], dacread.ErrNotHeld)
		}
	})
}

// withCapability checks what a child holding the capability did.
func withCapability(t *testing.T, r childReport) {
	{
		if r.ConfineErr == dacread.ErrCgo.Error() {
			testenv.Unavailable(t, "this test binary links cgo (%s); the release build is CGO_ENABLED=0: rerun with CGO_ENABLED=0", r.ConfineErr)
		}
		if !r.Held || r.ConfineErr != "" {
			t.Fatalf("Confine: held %v, error %q", r.Held, r.ConfineErr)
		}
		if r.Threads < 2 || r.EffBefore != r.Threads {
			t.Errorf("before Confine %d of %d threads had it effective: want all of several", r.EffBefore, r.Threads)
		}
		if r.EffAfter != 0 || r.EffAtEnd != 0 {
			t.Errorf("threads with it effective: %d after Confine, %d at the end: want none", r.EffAfter, r.EffAtEnd)
		}
		if r.PrmAfter == 0 || r.AmbAfter != 0 {
			t.Errorf("after Confine %d threads hold it permitted (want all), %d ambient (want none)", r.PrmAfter, r.AmbAfter)
		}
		want := map[string]string{
			"plain read beneath the root":         "permission denied",
			"file beneath the root":               `ok: {"Name":"/web1"}`,
			"directory beneath the root":          "ok: c1,evil",
			"symlink beneath the root to outside": "too many levels of symbolic links",
			"through a symlinked directory":       "", // ELOOP from openat2, ENOTDIR from the walk: checked below
			"dot-dot out of the root":             dacread.ErrOutside.Error(),
			"file outside the root":               dacread.ErrOutside.Error(),
		}
		for k, w := range want {
			if !strings.Contains(r.Steps[k], w) {
				t.Errorf("%s: %q, want %q", k, r.Steps[k], w)
			}
		}
		if s := r.Steps["through a symlinked directory"]; strings.HasPrefix(s, "ok") || !strings.Contains(s, "symbolic links") && !strings.Contains(s, "not a directory") {
			t.Errorf("through a symlinked directory: %q, want ELOOP or ENOTDIR", s)
		}
		for _, s := range r.StepsInRoot {
			if s != `ok: {"Name":"/web1"}` {
				t.Errorf("a concurrent read: %q", s)
			}
		}
		if len(r.StepsInRoot) != 32 {
			t.Errorf("%d concurrent reads, want 32", len(r.StepsInRoot))
		}
	}
}

// TestOpenOutsideRoots: no Open of a path that is not beneath
// a root gets as far as raising the capability, held or not.
func TestOpenOutsideRoots(t *testing.T) {
	r := dacread.NewReader("/var/lib/docker", "", "relative")
	if got := r.Roots(); len(got) != 1 || got[0] != "/var/lib/docker" {
		t.Errorf("roots %q, want only /var/lib/docker", got)
	}
	for _, p := range []string{"/var/lib/dockerx/containers", "/var/lib/docker/../../../etc/passwd", "/etc/passwd", "var/lib/docker/x"} {
		_, err := r.Open(p)
		if err == nil {
			t.Errorf("Open(%q) opened", p)
		}
	}
}

// BenchmarkOpen is the cost of one elevated open (the goroutine, its locked
// thread, raising and lowering the capability, the walk or openat2), beside
// an ordinary open of the same file: what a container's first sight adds
// per state file under the unit. As root, which holds the capability (it
// stays permitted; root's other capabilities are untouched).
func BenchmarkOpen(b *testing.B) {
	testenv.RequireRoot(b)
	dir := b.TempDir()
	file := filepath.Join(dir, "containers/c1/config.v2.json")
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(`{"Name":"/web1"}`), 0o600); err != nil {
		b.Fatal(err)
	}
	if held, err := dacread.Confine(); !held || err != nil {
		testenv.Unavailable(b, "Confine: held %v, %v", held, err)
	}
	r := dacread.NewReader(dir)
	for _, bc := range []struct {
		name string
		open func() (*os.File, error)
	}{
		{"plain", func() (*os.File, error) { return os.Open(file) }},
		{"elevated-openat2", func() (*os.File, error) { dacread.NoOpenat2(false); return r.Open(file) }},
		{"elevated-walk", func() (*os.File, error) { dacread.NoOpenat2(true); return r.Open(file) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				f, err := bc.open()
				if err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
	dacread.NoOpenat2(false)
}
