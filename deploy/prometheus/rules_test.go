// Package prometheus_test checks bindwatch's alerting rules: promtool accepts
// them and their unit tests pass, every alert has a test where it fires, and
// every bindwatch_* series a rule names is one the agent exports (or, in the
// planned group only, one it is going to).
package prometheus_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/bindwatch/bindwatch/deploy/internal/deploytest"
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

func TestPromtool(t *testing.T) {
	tool := deploytest.Promtool(t, "../..")
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

func exported(t *testing.T) []string {
	t.Helper()
	names, err := deploytest.Exported()
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestRulesNameExportedSeries(t *testing.T) {
	var rules ruleFile
	readYAML(t, rulesFile, &rules)
	have := exported(t)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			for _, name := range deploytest.Named.FindAllString(r.Expr, -1) {
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
