package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/test/kafkatest"
	"github.com/bindwatch/bindwatch/test/testenv"
	"github.com/bindwatch/bindwatch/test/testenv/runtimes"
)

// TestAuditWorkloadDocker: real Docker containers (Debian's dockerd,
// started by the test; images imported from a static listener), their
// listeners reported by the agent and judged by `bindwatch audit` on the
// image the agent read from Docker's state: the nginx image's listener is
// allowed by an image rule, the same listener in an unlisted image is a
// finding, and the finding line names the container and its image.
func TestAuditWorkloadDocker(t *testing.T) {
	testenv.RequireRoot(t)
	uid := testenv.UserWorkloadAudit
	d := runtimes.StartDocker(t)
	rootfs := runtimes.RootFS(t, runtimes.Listener(t))
	d.Import(t, rootfs, "docker.io/library/nginx:1.27")
	otherID := d.Import(t, rootfs, "docker.io/acme/other:2.0")

	const events = "bindwatch.bind-events"
	cluster := kafkatest.Start(t, kafkatest.Options{Brokers: 1, Topic: events, Partitions: 1})
	dir := t.TempDir()
	agentCfg := writeAgentConfig(t, dir, agentConfig{uid: uid, brokers: cluster.Addrs, topic: events, spoolDir: filepath.Join(dir, "spool")})
	policyPath := filepath.Join(dir, "policy.yaml")
	writeFile(t, policyPath, `rules:
  - name: nginx
    action: allow
    match: {container: any, image: "docker.io/library/nginx:*", protocol: TCP}
`)
	auditPath := filepath.Join(dir, "audit.yaml")
	writeFile(t, auditPath, fmt.Sprintf("kafka:\n  brokers: [%s]\naudit:\n  group: workload\n  policy: %s\n  batch_timeout: 10ms\nmetrics:\n  listen: \"\"\nlog:\n  level: debug\n",
		strings.Join(cluster.Addrs, ", "), policyPath))

	agent := exec.Command(binary, "run", "--config", agentCfg)
	agent.Env = append(agent.Environ(), "BINDWATCH_WORKLOAD_DOCKER_ROOT="+d.Root)
	startAgentCmd(t, agent)
	audit := startAudit(t, "audit", auditPath)
	audit.waitLog(t, "partition rebuilt")

	listenRE := regexp.MustCompile(`listening 127\.0\.0\.1:(\d+)`)
	run := func(name, image string) string {
		id := d.Docker(t, nil, "run", "-d", "--name", name, "--network", "host", "--user", fmt.Sprintf("%d:%d", uid, uid), image, "tcp:127.0.0.1:0")
		var port string
		testenv.Eventually(t, name+" listens", 20*time.Second, func() bool {
			if m := listenRE.FindStringSubmatch(d.Docker(t, nil, "logs", id)); m != nil {
				port = m[1]
			}
			return port != ""
		})
		return port
	}
	nginxPort := run("web", "docker.io/library/nginx:1.27")
	otherPort := run("other", "docker.io/acme/other:2.0")

	var finding map[string]any
	testenv.Eventually(t, "the unlisted image's listener is a finding", 30*time.Second, func() bool {
		audit.mu.Lock()
		defer audit.mu.Unlock()
		for _, f := range audit.findings {
			if fmt.Sprint(f["port"]) == otherPort && f["state"] == "open" {
				finding = f
			}
		}
		return finding != nil
	})
	t.Logf("the finding as the analyst sees it: %v", finding)
	for k, want := range map[string]string{"image": "docker.io/acme/other:2.0", "container_name": "other",
		"image_digest": otherID, "workload_source": "docker"} {
		if got := fmt.Sprint(finding[k]); got != want {
			t.Errorf("finding %s = %s, want %s", k, got, want)
		}
	}
	// The nginx listener was judged before the other one: nothing for it.
	audit.mu.Lock()
	defer audit.mu.Unlock()
	for _, f := range audit.findings {
		if p, _ := strconv.Atoi(fmt.Sprint(f["port"])); strconv.Itoa(p) == nginxPort {
			t.Errorf("the nginx image's listener raised %v", f)
		}
	}
}
