// Package prometheus_test checks bindwatch's alerting rules: promtool accepts
// them and their unit tests pass, every alert has a test where it fires, and
// every bindwatch_* series a rule names is one the agent exports (or, in the
// planned group only, one it is going to).
package prometheus_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/bindwatch/bindwatch/internal/audit/stream"
	"github.com/bindwatch/bindwatch/internal/metrics"
	"github.com/bindwatch/bindwatch/internal/testenv"
)

const (
	rulesFile = "bindwatch.rules.yml"
	testsFile = "bindwatch.rules.test.yml"
	// plannedGroup holds the rules on series not exported yet.
	plannedGroup = "bindwatch-planned"
)

// planned are the series the planned group may name: the capture lease
// (capture.orphan_timeout) and `bindwatch audit`'s.
var planned []string

type ruleFile struct {
	Groups []struct {
		Name  string
		Rules []struct {
			Alert, Record, Expr string
		}
	}
}

type testFile struct {
	Tests []struct {
		Name           string
		AlertRuleTests []struct {
			AlertName string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	}
}

func readYAML(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// promtool finds Debian's promtool: on PATH, or where .ci/install-deps
// unpacks it (the Makefile puts that on PATH; a bare go test does not).
func promtool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	if p, err := filepath.Abs("../../.cache/prometheus/usr/bin/promtool"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return testenv.RequireTool(t, "promtool", "prometheus (.ci/install-deps unpacks it under .cache/prometheus)")
}

func TestPromtool(t *testing.T) {
	tool := promtool(t)
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", testsFile}} {
		out, err := exec.Command(tool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func TestEveryAlertFiresInATest(t *testing.T) {
	var rules ruleFile
	readYAML(t, rulesFile, &rules)
	var tests testFile
	readYAML(t, testsFile, &tests)
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTests {
			fires[a.AlertName] = fires[a.AlertName] || len(a.ExpAlerts) > 0
		}
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !fires[r.Alert] {
				t.Errorf("%s: no test in %s expects it to fire", r.Alert, testsFile)
			}
		}
	}
	if n == 0 {
		t.Fatalf("%s has no alerts", rulesFile)
	}
}

// exported lists the series the agent serves: every metric family the
// registry gathers, with a histogram's _bucket, _sum and _count.
func exported(t *testing.T) []string {
	t.Helper()
	m := metrics.New(metrics.BuildInfo{}, "tracepoint", func() metrics.Snapshot { return metrics.Snapshot{} })
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	// The audit's vectors have no series until they are observed: take
	// their names from the descriptions.
	descs := make(chan *prometheus.Desc, 64)
	go func() { stream.NewMetrics().Registry.Describe(descs); close(descs) }()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	var auditNames []string
	for d := range descs {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			auditNames = append(auditNames, m[1], m[1]+"_bucket", m[1]+"_sum", m[1]+"_count")
		}
	}
	names := auditNames
	for _, f := range families {
		names = append(names, f.GetName())
		if f.GetType().String() == "HISTOGRAM" {
			names = append(names, f.GetName()+"_bucket", f.GetName()+"_sum", f.GetName()+"_count")
		}
	}
	return names
}

func TestRulesNameExportedSeries(t *testing.T) {
	var rules ruleFile
	readYAML(t, rulesFile, &rules)
	have := exported(t)
	series := regexp.MustCompile(`\b(bindwatch|process|go)_[a-z0-9_]+\b`)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			for _, name := range series.FindAllString(r.Expr, -1) {
				switch {
				case slices.Contains(have, name):
				case g.Name == plannedGroup && slices.Contains(planned, name):
				case slices.Contains(planned, name):
					t.Errorf("%s names %s, a planned series, outside group %s", r.Alert+r.Record, name, plannedGroup)
				default:
					t.Errorf("%s names %s, which the agent does not export (internal/metrics)", r.Alert+r.Record, name)
				}
			}
		}
	}
}
