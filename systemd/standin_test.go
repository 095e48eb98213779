package systemd_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/internal/dacread"
	"github.com/bindwatch/bindwatch/internal/sdnotify"
	"github.com/bindwatch/bindwatch/pipeline/enrich"
	"github.com/bindwatch/bindwatch/schemas"
)

// The stand-in is this test binary re-executed to do, under the privileges
// the unit grants, every privileged thing the agent does: load and attach a
// hook, capture a bind, enrich it (host identity, another user's
// /proc/<pid>/cgroup, cgroupfs, netlink for interface names), pin a map in
// bpffs, read another user's /proc/<pid>/net, and use TCP. It reports each
// step, so a test can say which capability a step needs.
//
// Its settings come from the environment (BINDWATCH_TEST_* is what the
// configuration loader lets through):
const (
	// standinVar holds the hook to load; setting it makes the binary a stand-in.
	standinVar = "BINDWATCH_TEST_CHILD_STANDIN"
	// binderVar is "parent": the parent (root) binds once the stand-in
	// prints loadedLine, so enrichment reads another user's /proc entries.
	// Anything else: the stand-in binds itself.
	binderVar = "BINDWATCH_TEST_CHILD_BINDER"
	// pinDirVar is a bpffs directory the stand-in owns, inside a bpffs mount
	// of mode 0700 as systemd mounts /sys/fs/bpf.
	pinDirVar = "BINDWATCH_TEST_CHILD_PIN_DIR"
	// rootFSVar is enrich's RootFS (a directory with etc/machine-id).
	rootFSVar = "BINDWATCH_TEST_CHILD_ROOTFS"
	// serviceVar=1 runs as a systemd service would: READY=1 after the steps,
	// the watchdog fed, RELOADING=1/READY=1 on SIGHUP, STOPPING=1 on SIGTERM,
	// and the report written to reportVar's file as well.
	serviceVar = "BINDWATCH_TEST_CHILD_SERVICE"
	reportVar  = "BINDWATCH_TEST_CHILD_REPORT"
	// stateRootVar is a container runtime's state root as root keeps it
	// (0700), with containers/c1/config.v2.json (0600) in it: the
	// stand-in reads it as the agent reads Docker's. Unset: no such step.
	stateRootVar = "BINDWATCH_TEST_CHILD_STATE_ROOT"
)

// loadedLine tells a parent binder that the hook is attached.
const loadedLine = "STANDIN-LOADED"

// reportPrefix starts the stand-in's report line on stdout.
const reportPrefix = "STANDIN-REPORT "

// step is one privileged operation and how it went.
type step struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	Err    string `json:"err,omitempty"`
}

type report struct {
	Hook   string `json:"hook"`
	UID    int    `json:"uid"`
	CapEff string `json:"cap_eff"`
	// PerfParanoid is kernel.perf_event_paranoid: Debian's and Ubuntu's
	// kernels refuse perf_event_open at 3 and above despite CAP_PERFMON.
	PerfParanoid string `json:"perf_event_paranoid"`
	Steps        []step `json:"steps"`
}

func (r *report) add(name string, detail string, err error) {
	s := step{Name: name, OK: err == nil, Detail: detail}
	if err != nil {
		s.Err = err.Error()
	}
	r.Steps = append(r.Steps, s)
}

// failed lists the steps that failed, "name: error" each.
func (r *report) failed() []string {
	var out []string
	for _, s := range r.Steps {
		if !s.OK {
			out = append(out, s.Name+": "+s.Err)
		}
	}
	return out
}

func runStandin() error {
	hook, err := bpf.ParseHook(os.Getenv(standinVar))
	if err != nil {
		return err
	}
	r := &report{Hook: string(hook), UID: os.Getuid()}
	r.CapEff, _ = procStatusField("/proc/self/status", "CapEff")
	// What the agent does first: CAP_DAC_READ_SEARCH, if granted, is
	// effective from here on only inside dacread's open.
	if _, err := dacread.Confine(); err != nil {
		r.add("confine CAP_DAC_READ_SEARCH", "", err)
	}
	if b, err := os.ReadFile(perfParanoidPath); err == nil {
		r.PerfParanoid = strings.TrimSpace(string(b))
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	probe, err := bpf.Load(bpf.Options{Hook: hook, Logger: quiet})
	if err != nil {
		r.add("load", "", err)
	} else {
		defer probe.Close()
		r.add("load", string(probe.Hook()), nil)
		fmt.Println(loadedLine)
		ev, err := captureOne(probe)
		r.add("capture", fmt.Sprintf("pid %d uid %d port %d", ev.PID, ev.UID, ev.Port), err)
		if err == nil {
			detail, err := enrichOne(&ev, quiet)
			r.add("enrich", detail, err)
		}
		r.add("pin", "", pinEvents(probe))
		detail, err := blindSpots(probe)
		r.add("cgroup programs", detail, err)
	}
	detail, err := readOtherUsersProc()
	r.add("proc of another user", detail, err)
	r.add("netlink", "", netlinkLookup())
	r.add("tcp", "", tcpLoopback())
	if root := os.Getenv(stateRootVar); root != "" {
		detail, err := readRuntimeState(root)
		r.add("runtime state", detail, err)
	}
	// Under systemd with the example drop-in: the LoadCredential= copy of
	// the SASL password, through %d.
	if path := os.Getenv("BINDWATCH_KAFKA_SASL_PASSWORD_FILE"); path != "" {
		_, err := os.ReadFile(path)
		r.add("credential", path, err)
	}

	if os.Getenv(serviceVar) == "1" {
		return serve(r, probe)
	}
	return emit(r)
}

// readRuntimeState reads a root-only state file beneath root as the
// enricher does (internal/dacread), and requires that an ordinary read of
// it fails: that nothing but dacread's open holds the capability.
func readRuntimeState(root string) (string, error) {
	path := filepath.Join(root, "containers/c1/config.v2.json")
	f, err := dacread.NewReader(root).Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return "", err
	}
	if _, err := os.ReadFile(path); !errors.Is(err, os.ErrPermission) {
		return string(b), fmt.Errorf("an ordinary read of %s: %v, want permission denied: the capability is not confined", path, err)
	}
	return string(b), nil
}

func emit(r *report) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	fmt.Println(reportPrefix + string(b))
	if path := os.Getenv(reportVar); path != "" {
		return os.WriteFile(path, append(b, '\n'), 0o600)
	}
	return nil
}

func procStatusField(path, name string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("%s has no %s", path, name)
}

// captureOne waits for the UDP bind of the binder: the parent, or itself.
func captureOne(p *bpf.Probe) (bpf.Event, error) {
	rd, err := p.NewReader()
	if err != nil {
		return bpf.Event{}, err
	}
	defer rd.Close()
	// The parent's bind is known by its pid (the parent shares the pid
	// namespace); the stand-in's own by its port, since under a container
	// manager its pid differs from the global one the kernel reports.
	match := func(ev *bpf.Event) bool { return ev.PID == uint32(os.Getppid()) }
	what := fmt.Sprintf("of pid %d", os.Getppid())
	if os.Getenv(binderVar) != "parent" {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return bpf.Event{}, err
		}
		defer c.Close()
		port := uint16(c.LocalAddr().(*net.UDPAddr).Port)
		match = func(ev *bpf.Event) bool { return ev.Port == port }
		what = fmt.Sprintf("to port %d", port)
	}
	rd.SetDeadline(time.Now().Add(10 * time.Second))
	var ev bpf.Event
	for {
		if err := rd.Read(&ev); err != nil {
			return bpf.Event{}, fmt.Errorf("no UDP bind %s seen: %w", what, err)
		}
		if match(&ev) && ev.Protocol == bpf.ProtoUDP && ev.Ret == 0 {
			return ev, nil
		}
	}
}

// enrichOne enriches ev as the agent does and fails if the cgroup or the
// bound interface (when there is one) could not be resolved.
func enrichOne(ev *bpf.Event, log *slog.Logger) (string, error) {
	e, err := enrich.New(enrich.Config{RootFS: os.Getenv(rootFSVar), Logger: log})
	if err != nil {
		return "", err
	}
	var out schemas.BindEvent
	e.Enrich(ev, &out)
	st := e.Stats()
	ifname := "<none>"
	if out.BoundIfName != nil {
		ifname = *out.BoundIfName
	}
	detail := fmt.Sprintf("host_id %s cgroup_id %d bound_if %d (%s)", out.HostID, out.CgroupID, out.BoundIf, ifname)
	if st.CgroupUnknown != 0 {
		return detail, fmt.Errorf("cgroup %d of pid %d not resolved", ev.CgroupID, ev.PID)
	}
	if ev.BoundIf != 0 && out.BoundIfName == nil {
		return detail, fmt.Errorf("interface %d not named", ev.BoundIf)
	}
	// The parent is root's process: its exe is another user's, shown only
	// to who may ptrace it.
	if os.Getenv(binderVar) == "parent" {
		if out.Exe == nil {
			return detail, fmt.Errorf("exe of pid %d not read", ev.PID)
		}
		detail += " exe " + *out.Exe
	}
	return detail, nil
}

// blindSpots fails when the probe could not attach every program: the
// cgroup socket programs need CAP_NET_ADMIN. SCTP's listen is left out: it
// is seen only when the sctp module is loaded, whatever the privileges.
func blindSpots(p *bpf.Probe) (string, error) {
	var blind []string
	for _, b := range p.BlindSpots() {
		if !strings.HasPrefix(b, "SCTP listen") {
			blind = append(blind, b)
		}
	}
	if len(blind) > 0 {
		return "", fmt.Errorf("not seen: %s", strings.Join(blind, "; "))
	}
	return "every program attached", nil
}

// pinEvents pins the ring buffer map where the agent will pin its objects,
// opens it again from the pin (what a restarted agent does) and unpins it.
func pinEvents(p *bpf.Probe) error {
	dir := os.Getenv(pinDirVar)
	if dir == "" {
		return errors.New(pinDirVar + " not set")
	}
	path := filepath.Join(dir, fmt.Sprintf("events-%d", os.Getpid()))
	m, err := p.Events().Clone()
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Pin(path); err != nil {
		return err
	}
	defer m.Unpin()
	again, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		return fmt.Errorf("reopening %s: %w", path, err)
	}
	return again.Close()
}

// readOtherUsersProc reads what enrichment reads of a process that is not
// the stand-in's: pid 1, root's.
func readOtherUsersProc() (string, error) {
	if _, err := os.ReadFile("/proc/1/cgroup"); err != nil {
		return "", err
	}
	for _, f := range []string{"igmp6", "igmp"} {
		if _, err := os.ReadFile("/proc/1/net/" + f); err == nil {
			return "/proc/1/cgroup, /proc/1/net/" + f, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}
	return "", errors.New("neither /proc/1/net/igmp6 nor /proc/1/net/igmp exists")
}

func netlinkLookup() error {
	_, err := net.InterfaceByIndex(1)
	return err
}

func tcpLoopback() error {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	c, err := net.DialTimeout("tcp4", l.Addr().String(), 5*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// serve is the stand-in as a Type=notify service: the calls the agent's
// main loop makes, in the order it makes them.
func serve(r *report, probe *bpf.Probe) error {
	n := sdnotify.FromEnvironment()
	if err := emit(r); err != nil {
		return err
	}
	failed := r.failed()
	status := fmt.Sprintf("stand-in: hook %s, %d of %d steps ok", r.Hook, len(r.Steps)-len(failed), len(r.Steps))
	if len(failed) > 0 {
		status += "; failed: " + strings.Join(failed, "; ")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := n.Ready(status); err != nil {
		return err
	}
	healthy := func() error {
		if probe == nil {
			return errors.New("no hook attached")
		}
		return nil
	}
	go n.KeepAlive(ctx, healthy, nil)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reloads := 0
	for {
		select {
		case <-ctx.Done():
			return n.Stopping()
		case <-hup:
			if err := n.Reloading(); err != nil {
				return err
			}
			reloads++
			if err := n.Ready(fmt.Sprintf("%s; reloaded %d times", status, reloads)); err != nil {
				return err
			}
		}
	}
}
