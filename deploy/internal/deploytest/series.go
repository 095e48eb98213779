// Package deploytest serves the tests of what is built on bindwatch's
// metrics (alert rules, dashboards): the series bindwatch exports (a query
// that names a series nobody exports is always empty, and silently so) and
// the promtool that checks them.
package deploytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bindwatch/bindwatch/audit/stream"
	"github.com/bindwatch/bindwatch/internal/metrics"
	"github.com/bindwatch/bindwatch/test/testenv"
)

// Exported lists the series the agent and the audit serve: every metric
// family their registries describe (series that only appear once observed,
// such as a blind spot, included) or gather, each with the _bucket, _sum
// and _count a histogram would have.
func Exported() ([]string, error) {
	agent := metrics.New(metrics.BuildInfo{}, "tracepoint", func() metrics.Snapshot { return metrics.Snapshot{} }).Registry
	audit := stream.NewMetrics().Registry
	var names []string
	add := func(name string) { names = append(names, name, name+"_bucket", name+"_sum", name+"_count") }
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for _, reg := range []*prometheus.Registry{agent, audit} {
		descs := make(chan *prometheus.Desc, 64)
		go func() { reg.Describe(descs); close(descs) }()
		for d := range descs {
			if m := fqName.FindStringSubmatch(d.String()); m != nil {
				add(m[1])
			}
		}
		families, err := reg.Gather()
		if err != nil {
			return nil, err
		}
		for _, f := range families {
			add(f.GetName())
		}
	}
	return names, nil
}

// Named finds the series names a PromQL expression uses.
var Named = regexp.MustCompile(`\b(bindwatch|process|go)_[a-z0-9_]+\b`)

// Promtool finds Debian's promtool: on PATH, or where .ci/install-deps
// unpacks it (the Makefile puts that on PATH; a bare go test does not);
// root is the repository's root, relative to the test's directory.
func Promtool(t testing.TB, root string) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	if p, err := filepath.Abs(filepath.Join(root, ".cache/prometheus/usr/bin/promtool")); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return testenv.RequireTool(t, "promtool", "prometheus (.ci/install-deps unpacks it under .cache/prometheus)")
}
