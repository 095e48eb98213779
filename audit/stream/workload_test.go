package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/bindwatch/bindwatch/audit/findings"
	"github.com/bindwatch/bindwatch/audit/policy"
	"github.com/bindwatch/bindwatch/schemas"
	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// lines collects the JSON lines an instance prints.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lines) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

// byID is each finding id's printed lines, decoded, in order.
func (l *lines) byID(t *testing.T) map[string][]map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		id, _ := m["finding_id"].(string)
		out[id] = append(out[id], m)
	}
	return out
}

// trustRule believes user 1000's word for its rootless containers' images.
const trustRule = `
  - name: alice-nginx
    action: allow
    trust: user
    match:
      container: podman-rootless
      cgroup_owner_uid: 1000
      image: "docker.io/library/nginx:*"
      port: 80
`

const imagePolicy = `
rules:
  - name: nginx
    action: allow
    match:
      container: any
      image: "docker.io/library/nginx:*"
      protocol: TCP
      port: 80
`

// An image allow rule through Kafka: it silences a container of that
// image; the same port in an unlisted image is a finding whose JSON line
// and record name the workload; a rootless container claiming the allowed
// image is a finding too, until the policy says trust: user. A container
// whose workload was pending is a finding until a later record brings
// its image, and the state topic keeps what arrived: a rebuilt instance
// judges every listener the same.
func TestImagePolicyThroughKafka(t *testing.T) {
	cl := kafkatest.Start(t, kafkatest.Options{Topic: "bindwatch.bind-events", Partitions: 3})
	cfg := testConfig(cl.Addrs)
	prod := newProducer(t, cl.Addrs, cfg.EventsTopic)
	printed := &lines{}
	in := startInstanceWith(t, cfg, imagePolicy, printed)

	h := &fakeHost{id: "k8s-node-1", name: "node-1", boot: "boot-1"}
	hostNetNS := false
	str := func(s string) *string { return &s }
	// container makes a listen on port 80 in a container's own netns.
	container := func(netns int64, runtime, image string) *schemas.BindEvent {
		e := h.ev("listen", "/usr/sbin/nginx", "TCP", "0.0.0.0", 80, netns)
		e.NetNSID, e.HostNetNS = netns, &hostNetNS
		id := fmt.Sprintf("%064x", netns)
		e.ContainerID, e.ContainerRuntime, e.Image = &id, &runtime, &image
		e.CgroupPath = str("/kubepods.slice/kubepods-besteffort.slice/cri-containerd-" + id + ".scope")
		return e
	}
	nginx := container(4026532001, "containerd", "docker.io/library/nginx:1.27")
	nginx.ContainerName, nginx.PodName, nginx.PodNamespace, nginx.PodUID = str("nginx"), str("web-7d9"), str("shop"), str("6a1f")
	nginx.PodLabels, nginx.WorkloadSource = map[string]string{"app": "web"}, str("containerd-cri")
	httpd := container(4026532002, "containerd", "docker.io/library/httpd:2.4")
	httpd.ContainerName, httpd.PodName, httpd.PodNamespace, httpd.PodUID = str("httpd"), str("web-x1"), str("shop"), str("77aa")
	httpd.PodLabels, httpd.WorkloadSource = map[string]string{"app": "web", "team": "x"}, str("containerd-cri")
	claim := container(4026532003, "podman-rootless", "docker.io/library/nginx:1.27")
	owner := int64(1000)
	claim.CgroupOwnerUID, claim.WorkloadSource = &owner, str("podman")
	claim.CgroupPath = str("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + *claim.ContainerID + ".scope")
	// A container whose runtime had not written its state when it
	// listened: the agent says pending, and a later record of it carries
	// the workload.
	late := container(4026532004, "containerd", "")
	late.Image, late.WorkloadSource = nil, str("pending")
	prod.send(nginx, httpd, claim, late)

	id := func(netns int64) string { return findings.ListenerID(h.id, &hostNetNS, netns, "TCP", "0.0.0.0", 80) }
	nginxID, httpdID, claimID, lateID := id(4026532001), id(4026532002), id(4026532003), id(4026532004)
	log := waitFindings(t, cl.Addrs, cfg.FindingsTopic, "the unlisted image's and the rootless claim's findings", func(log map[string][]findings.Finding) error {
		for _, want := range []string{httpdID, claimID, lateID} {
			if s := states(log[want]); s != "open " {
				return fmt.Errorf("finding %s: %q", want, s)
			}
		}
		return nil
	})
	if fs := log[nginxID]; len(fs) != 0 {
		t.Errorf("the allowed image raised %+v", fs)
	}
	// The record on the findings topic names the workload.
	if f := log[httpdID][0]; f.Workload.Image != "docker.io/library/httpd:2.4" || f.Workload.PodNamespace != "shop" ||
		f.Workload.ContainerName != "httpd" || f.Workload.PodLabels["team"] != "x" || f.Workload.Source != "containerd-cri" {
		t.Errorf("httpd's finding on the topic: %+v", f.Workload)
	}
	// So does the JSON line, every workload field of it.
	var printedLine map[string]any
	testenv.Eventually(t, "httpd's finding printed", 10*time.Second, func() error {
		ls := printed.byID(t)[httpdID]
		if len(ls) == 0 {
			return fmt.Errorf("not printed yet")
		}
		printedLine = ls[0]
		return nil
	})
	want := map[string]any{
		"state": "open", "kind": "listener", "image": "docker.io/library/httpd:2.4", "container_name": "httpd", "pod_name": "web-x1",
		"pod_namespace": "shop", "pod_uid": "77aa", "workload_source": "containerd-cri", "image_digest": nil, "unit": nil,
	}
	for k, v := range want {
		if got, ok := printedLine[k]; !ok || got != v {
			t.Errorf("JSON line's %s = %v (present %v), want %v: %v", k, got, ok, v, printedLine)
		}
	}
	if labels, _ := printedLine["pod_labels"].(map[string]any); labels["app"] != "web" || labels["team"] != "x" {
		t.Errorf("JSON line's pod_labels = %v", printedLine["pod_labels"])
	}
	if ls := printed.byID(t)[nginxID]; len(ls) != 0 {
		t.Errorf("the allowed image printed %v", ls)
	}

	// The late container's workload arrives with its next record: nginx.
	bind := h.ev("bind", "/usr/sbin/nginx", "UDP", "0.0.0.0", 0, 12)
	bind.NetNSID, bind.HostNetNS, bind.ContainerID, bind.ContainerRuntime, bind.CgroupPath = late.NetNSID, &hostNetNS, late.ContainerID, late.ContainerRuntime, late.CgroupPath
	bind.Image, bind.WorkloadSource = str("docker.io/library/nginx:1.27"), str("containerd-cri")
	prod.send(bind)
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "the late workload resolves its finding", func(log map[string][]findings.Finding) error {
		if s := states(log[lateID]); s != "open resolved " {
			return fmt.Errorf("late container's finding: %q", s)
		}
		return nil
	})

	// A policy that believes user 1000's word for its containers' images
	// resolves the claim's finding; httpd's stays.
	trusting, err := policy.Parse("trust.yaml", []byte(imagePolicy+trustRule))
	if err != nil {
		t.Fatal(err)
	}
	trustingText := imagePolicy + trustRule
	in.p.SetPolicy(trusting)
	prod.send(h.ev("listen", "/usr/sbin/sshd", "TCP", "0.0.0.0", 2222, 9)) // a record, so the partition evaluates again
	waitFindings(t, cl.Addrs, cfg.FindingsTopic, "trust: user resolves the claim", func(log map[string][]findings.Finding) error {
		if s := states(log[claimID]); s != "open resolved " {
			return fmt.Errorf("claim's finding: %q", s)
		}
		if s := states(log[httpdID]); s != "open " {
			return fmt.Errorf("httpd's finding: %q", s)
		}
		return nil
	})

	// A new instance rebuilds the listeners, workloads and all, from the
	// state topic: the same policy judges them the same.
	in.stop()
	startInstanceWith(t, cfg, trustingText, io.Discard)
	prod.send(h.ev("listen", "/usr/bin/nc", "TCP", "0.0.0.0", 4444, 10))
	barrier := findings.ListenerID(h.id, ptrTrue(), 4026531840, "TCP", "0.0.0.0", 4444)
	log = waitFindings(t, cl.Addrs, cfg.FindingsTopic, "the rebuilt instance judges a new listener", func(log map[string][]findings.Finding) error {
		if s := states(log[barrier]); s != "open " {
			return fmt.Errorf("nc's finding: %q", s)
		}
		return nil
	})
	for id, want := range map[string]string{nginxID: "", httpdID: "open ", claimID: "open resolved ", lateID: "open resolved "} {
		if s := states(log[id]); s != want {
			t.Errorf("after the rebuild, finding %s: %q, want %q", id, s, want)
		}
	}
	// The fleet's view (bindwatch listeners --brokers) has the workload
	// that arrived late.
	ls, err := ReadListeners(context.Background(), &kafka.Dialer{Timeout: 5 * time.Second}, cl.Addrs, cfg.StateTopic, "")
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, l := range ls {
		if l.Key.NetNS == late.NetNSID {
			found = true
			if l.Workload.Image != "docker.io/library/nginx:1.27" || l.Workload.Source != "containerd-cri" {
				t.Errorf("the late container's listener on the state topic: %+v", l.Workload)
			}
		}
	}
	if !found {
		t.Error("the late container's listener is not on the state topic")
	}
}
