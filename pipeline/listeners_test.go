package pipeline

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/test/avrotest"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// listenScript runs in the "container": before the agent starts it opens a
// TCP listener held by itself and a forked copy, and a UDP server; then,
// line by line on stdin: "cookies" prints SO_COOKIE of both; "short" forks a
// process that listens on a new port and exits at once (its listen and
// close come from a process gone before enrichment); EOF ends it.
const listenScript = `
import os, socket, sys, json
SO_COOKIE = 57
tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp.bind(("127.0.0.1", 0)); tcp.listen(17)
udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
udp.bind(("::1", int(sys.argv[1])))
hold_r, hold_w = os.pipe()
pid = os.fork()
if pid == 0:
    # Holds the listener until the parent exits (and its end of the pipe
    # closes); stdin is the parent's to read.
    os.close(hold_w)
    os.read(hold_r, 1)
    os._exit(0)
os.close(hold_r)
print(json.dumps({"tcp_port": tcp.getsockname()[1], "udp_port": udp.getsockname()[1], "holder": pid}), flush=True)
for line in sys.stdin:
    line = line.strip()
    if line == "cookies":
        c = lambda s: int.from_bytes(s.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8), "little")
        print(json.dumps({"tcp": c(tcp), "udp": c(udp)}), flush=True)
    elif line == "short":
        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0)); s.listen(5)
            port = s.getsockname()[1]
            cookie = int.from_bytes(s.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8), "little")
            os.write(w, json.dumps({"port": port, "cookie": cookie, "pid": os.getpid()}).encode())
            os._exit(0)
        os.close(w)
        out = os.read(r, 4096)
        os.waitpid(child, 0)
        print(out.decode(), flush=True)
os.close(hold_w)
os.waitpid(pid, 0)
`

// TestAgentListenerTimeline: what listened before the agent started is in
// its first snapshot, with both holders and the cookie SO_COOKIE gives; a
// listener opened and closed while it runs, by a process that exits at
// once, gets a listen and a close record with its container; everything is
// read back from Kafka and decoded by python3-avro.
func TestAgentListenerTimeline(t *testing.T) {
	testenv.RequireRoot(t)
	avrotest.Require(t)
	const topic = "listeners"
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Topic: topic, Partitions: 1})
	containerID, cgroupDir := dockerLikeCgroup(t)

	cg, err := os.Open(cgroupDir)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	udpPort := freeUDPPort(t)
	cmd := exec.Command(avrotest.Python, "-c", listenScript, fmt.Sprint(udpPort))
	cmd.SysProcAttr = &syscall.SysProcAttr{
		UseCgroupFD: true, CgroupFD: int(cg.Fd()),
		Credential: &syscall.Credential{Uid: containerUID, Gid: containerUID},
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdoutPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child := testenv.Start(t, cmd, 10*time.Second)
	// Closing stdin ends it; what is left running is killed.
	t.Cleanup(func() { stdin.Close(); child.Wait(t) })
	stdout := bufio.NewReader(stdoutPipe)
	var started struct {
		TCPPort int `json:"tcp_port"`
		UDPPort int `json:"udp_port"`
		Holder  int `json:"holder"`
	}
	readJSON(t, stdout, &started)

	cfg := testConfig(t, cluster.Addrs, topic)
	cfg.Capture.PID, cfg.Capture.UID = -1, containerUID
	agent := runAgent(t, &cfg, testLogger(t))
	testenv.Eventually(t, "3 records published", 15*time.Second, func() bool { return agent.Stats().Publish.Published.Load() >= 3 })

	say := func(line string, v any) {
		if _, err := io.WriteString(stdin, line+"\n"); err != nil {
			t.Fatal(err)
		}
		readJSON(t, stdout, v)
	}
	var cookies struct{ TCP, UDP uint64 }
	say("cookies", &cookies)
	var short struct {
		Port   int
		Cookie uint64
		PID    int
	}
	say("short", &short)
	testenv.Eventually(t, "6 records published", 15*time.Second, func() bool { return agent.Stats().Publish.Published.Load() >= 6 })
	agent.stop(t)

	n := int(kafkatest.Count(t, cluster.Addrs, topic))
	var values [][]byte
	for _, m := range kafkatest.ReadAll(t, cluster.Addrs, topic, n, 10*time.Second) {
		values = append(values, m.Value)
	}
	text, err := schemas.BindEventSchema(schemas.Latest)
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string][]map[string]any{}
	for _, d := range avrotest.Decode(t, text, values) {
		k := d.Record["kind"].(string)
		byKind[k] = append(byKind[k], d.Record)
	}
	pythonExe, _ := filepath.EvalSymlinks(avrotest.Python)
	t.Logf("records by kind: snapshot %d, snapshot_end %d, bind %d, listen %d, close %d",
		len(byKind["snapshot"]), len(byKind["snapshot_end"]), len(byKind["bind"]), len(byKind["listen"]), len(byKind["close"]))

	// The first snapshot: the TCP listener with both holders, the UDP server.
	snaps := byKind["snapshot"]
	if len(snaps) != 2 || len(byKind["snapshot_end"]) != 1 {
		t.Fatalf("want 2 snapshot records and one snapshot_end, got %d and %d", len(snaps), len(byKind["snapshot_end"]))
	}
	end := byKind["snapshot_end"][0]
	slices.SortFunc(snaps, func(a, b map[string]any) int { return strings.Compare(a["protocol"].(string), b["protocol"].(string)) })
	tcp, udp := snaps[0], snaps[1]
	for _, s := range snaps {
		if s["snapshot_id"] != end["snapshot_id"] || s["snapshot_source"] != "bpf_iter" || s["container_id"] != containerID ||
			s["container_runtime"] != "docker" || s["host_netns"] != true || s["exe"] != pythonExe || s["uid"] != json.Number(fmt.Sprint(containerUID)) {
			t.Errorf("snapshot record: %v", s)
		}
	}
	if num(t, end["snapshot_sockets"]) != 2 || len(end["snapshot_incomplete"].([]any)) != 0 {
		t.Errorf("snapshot_end: %v", end)
	}
	check := func(what string, rec map[string]any, want map[string]any) {
		t.Helper()
		for k, v := range want {
			if !sameValue(rec[k], v) {
				t.Errorf("%s: %s = %v, want %v", what, k, rec[k], v)
			}
		}
	}
	check("TCP snapshot", tcp, map[string]any{"protocol": "TCP", "addr": "127.0.0.1", "port": int64(started.TCPPort),
		"cookie": int64(cookies.TCP), "backlog": int64(17), "exposure": "loopback", "pid": int64(child.Pid())})
	holders := tcp["holders"].([]any)
	var holderPIDs []int64
	for _, h := range holders {
		hm := h.(map[string]any)
		holderPIDs = append(holderPIDs, num(t, hm["pid"]))
		if hm["container_id"] != containerID || hm["comm"] != "python3" || hm["exe"] != pythonExe {
			t.Errorf("holder %v", hm)
		}
	}
	if !slices.Equal(holderPIDs, []int64{int64(child.Pid()), int64(started.Holder)}) {
		t.Errorf("holders %v, want %d and %d", holderPIDs, child.Pid(), started.Holder)
	}
	check("UDP snapshot", udp, map[string]any{"protocol": "UDP", "family": "AF_INET6", "addr": "::1", "port": int64(udpPort),
		"cookie": int64(cookies.UDP), "port_explicit": true, "exposure": "loopback"})

	// The short-lived listener: listen then close, container resolved
	// although the process was gone.
	var listen, closed map[string]any
	for _, r := range byKind["listen"] {
		if num(t, r["cookie"]) == int64(short.Cookie) {
			listen = r
		}
	}
	for _, r := range byKind["close"] {
		if num(t, r["cookie"]) == int64(short.Cookie) {
			closed = r
		}
	}
	if listen == nil || closed == nil {
		t.Fatalf("no listen or close record with cookie %d: %v", short.Cookie, byKind)
	}
	for what, r := range map[string]map[string]any{"listen": listen, "close": closed} {
		check(what, r, map[string]any{"pid": int64(short.PID), "port": int64(short.Port), "addr": "127.0.0.1",
			"container_id": containerID, "container_runtime": "docker", "exposure": "loopback", "host_netns": true, "error": int64(0)})
	}
	check("listen", listen, map[string]any{"backlog": int64(5)})
	if d := num(t, closed["listen_duration_ns"]); d <= 0 || d > int64(10*time.Second) {
		t.Errorf("close: listen_duration_ns %d", d)
	}
	if num(t, closed["seq"]) <= num(t, listen["seq"]) {
		t.Errorf("close seq %v not after listen seq %v", closed["seq"], listen["seq"])
	}
}

func readJSON(t *testing.T, r *bufio.Reader, v any) {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the child: %v", err)
	}
	if err := json.Unmarshal([]byte(line), v); err != nil {
		t.Fatalf("child said %q: %v", line, err)
	}
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet6{Addr: [16]byte{15: 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet6).Port
}
