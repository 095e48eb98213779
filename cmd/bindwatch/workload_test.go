package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/audit/record"
	"github.com/bindwatch/bindwatch/audit/state"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/test/kafkatest"
)

// workloadRows are the listeners both listeners tests show: a host
// service, a container of root's Docker in a pod, and a rootless one
// claiming the same image.
var (
	nginxWorkload = state.Workload{Image: "docker.io/library/nginx:1.27", ImageDigest: "sha256:" + strings.Repeat("ab", 32),
		ContainerName: "web-1", PodName: "web-1-abc", PodNamespace: "shop", PodUID: "0b7c", PodLabels: map[string]string{"app": "web"},
		Source: "containerd-cri"}
	rootlessOwner = int64(1000)
)

// checkWorkloadJSON checks one -j object's workload fields.
func checkWorkloadJSON(t *testing.T, line string, want state.Workload) {
	t.Helper()
	var got struct {
		Unit           *string           `json:"unit"`
		ContainerName  *string           `json:"container_name"`
		Image          *string           `json:"image"`
		ImageDigest    *string           `json:"image_digest"`
		PodName        *string           `json:"pod_name"`
		PodNamespace   *string           `json:"pod_namespace"`
		PodUID         *string           `json:"pod_uid"`
		PodLabels      map[string]string `json:"pod_labels"`
		WorkloadSource *string           `json:"workload_source"`
	}
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	val := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	w := state.Workload{Unit: val(got.Unit), ContainerName: val(got.ContainerName), Image: val(got.Image), ImageDigest: val(got.ImageDigest),
		PodName: val(got.PodName), PodNamespace: val(got.PodNamespace), PodUID: val(got.PodUID), Source: val(got.WorkloadSource)}
	if len(got.PodLabels) > 0 {
		w.PodLabels = got.PodLabels
	}
	if !strings.Contains(line, `"pod_labels":{`) || !strings.Contains(line, `"workload_source":`) {
		t.Errorf("-j object lacks pod_labels or workload_source: %s", line)
	}
	if w.Unit != want.Unit || w.Image != want.Image || w.ImageDigest != want.ImageDigest || w.ContainerName != want.ContainerName ||
		w.PodName != want.PodName || w.PodNamespace != want.PodNamespace || w.PodUID != want.PodUID || w.Source != want.Source ||
		len(w.PodLabels) != len(want.PodLabels) || w.PodLabels["app"] != want.PodLabels["app"] {
		t.Errorf("-j workload %+v, want %+v\n%s", w, want, line)
	}
}

// bindwatch listeners (this host) shows each socket's workload: a WORKLOAD
// column and every field with -j.
func TestListenersShowWorkload(t *testing.T) {
	str := func(s string) *string { return &s }
	exposure, src := "wildcard", "docker"
	recs := []schemas.BindEvent{
		{Protocol: "TCP", Addr: "0.0.0.0", Port: 22, Exposure: &exposure, Unit: str("ssh.service"), CgroupPath: str("/system.slice/ssh.service")},
		{Protocol: "TCP", Addr: "0.0.0.0", Port: 80, Exposure: &exposure, ContainerID: str(strings.Repeat("c", 64)),
			ContainerName: str("web-1"), Image: str("docker.io/library/nginx:1.27"), PodNamespace: str("shop"), WorkloadSource: &src},
		{Protocol: "TCP", Addr: "0.0.0.0", Port: 8080, Exposure: &exposure, ContainerID: str(strings.Repeat("d", 64)),
			Image: str("docker.io/library/nginx:1.27"), CgroupOwnerUID: &rootlessOwner},
		{Protocol: "UDP", Addr: "0.0.0.0", Port: 68, Exposure: &exposure},
	}
	var b strings.Builder
	w := bufio.NewWriter(&b)
	writeListenerTable(w, recs)
	w.Flush()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if h := strings.Fields(lines[0]); len(h) != 9 || h[7] != "WORKLOAD" {
		t.Fatalf("header %q", lines[0])
	}
	for i, want := range []string{"unit=ssh.service", "image=docker.io/library/nginx:1.27,ns=shop", "image=docker.io/library/nginx:1.27,claimed-by-uid=1000", "-"} {
		if f := strings.Fields(lines[i+1]); len(f) < 8 || f[7] != want {
			t.Errorf("row %q: WORKLOAD is not %s", lines[i+1], want)
		}
	}
	j, _ := json.Marshal(listenerJSON(&recs[1]))
	checkWorkloadJSON(t, string(j), state.Workload{ContainerName: "web-1", Image: "docker.io/library/nginx:1.27", PodNamespace: "shop", Source: "docker"})
	j, _ = json.Marshal(listenerJSON(&recs[0]))
	checkWorkloadJSON(t, string(j), state.Workload{Unit: "ssh.service"})
}

// bindwatch listeners --brokers shows the workload the audit keeps in its
// state topic: a WORKLOAD column and every field with -j.
func TestFleetListenersShowWorkload(t *testing.T) {
	const topic = "bindwatch.listeners"
	cl := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Topic: topic, Partitions: 1})
	codec, err := record.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now().UTC().Truncate(time.Microsecond)
	ls := []*state.Listener{
		{Key: state.Key{NetNS: 1, Cookie: 1}, Host: "web-1", HostID: "h1", BootID: "b1", Seq: 1, Since: since, Exe: "/usr/sbin/sshd",
			Protocol: "TCP", Addr: "0.0.0.0", Port: 22, Exposure: "wildcard", Workload: state.Workload{Unit: "ssh.service"}},
		{Key: state.Key{NetNS: 2, Cookie: 2}, Host: "web-1", HostID: "h1", BootID: "b1", Seq: 2, Since: since, Exe: "/usr/sbin/nginx",
			ContainerID: strings.Repeat("c", 64), Runtime: "containerd", Protocol: "TCP", Addr: "0.0.0.0", Port: 80, Exposure: "wildcard", Workload: nginxWorkload},
		{Key: state.Key{NetNS: 3, Cookie: 3}, Host: "web-1", HostID: "h1", BootID: "b1", Seq: 3, Since: since, Exe: "/usr/sbin/nginx",
			ContainerID: strings.Repeat("d", 64), Runtime: "podman-rootless", CgroupOwnerUID: &rootlessOwner, Protocol: "TCP", Addr: "0.0.0.0", Port: 8080,
			Exposure: "wildcard", Workload: state.Workload{Image: "docker.io/library/nginx:1.27", Source: "podman"}},
	}
	var msgs []kafka.Message
	for _, l := range ls {
		v, err := codec.EncodeListener(l)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(record.ListenerKey(l.HostID, l.Key)), Value: v})
	}
	w := &kafka.Writer{Addr: kafka.TCP(cl.Addrs...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	brokers := strings.Join(cl.Addrs, ",")
	table, err := exec.Command(binary, "listeners", "--brokers", brokers).CombinedOutput()
	if err != nil {
		t.Fatalf("listeners --brokers: %v\n%s", err, table)
	}
	rows := strings.Split(strings.TrimSpace(string(table)), "\n")
	if len(rows) != 4 || strings.Fields(rows[0])[7] != "WORKLOAD" {
		t.Fatalf("table:\n%s", table)
	}
	for i, want := range []string{"unit=ssh.service", "image=docker.io/library/nginx:1.27,ns=shop", "image=docker.io/library/nginx:1.27,claimed-by-uid=1000"} {
		if f := strings.Fields(rows[i+1]); f[7] != want {
			t.Errorf("row %q: WORKLOAD is not %s", rows[i+1], want)
		}
	}
	out, err := exec.Command(binary, "listeners", "--brokers", brokers, "--port", "80", "-j").Output()
	if err != nil {
		t.Fatal(err)
	}
	checkWorkloadJSON(t, strings.TrimSpace(string(out)), nginxWorkload)
	out, err = exec.Command(binary, "listeners", "--brokers", brokers, "--port", "22", "-j").Output()
	if err != nil {
		t.Fatal(err)
	}
	checkWorkloadJSON(t, strings.TrimSpace(string(out)), state.Workload{Unit: "ssh.service"})
}
