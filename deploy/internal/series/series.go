// Package series lists the Prometheus series bindwatch exports, for the
// tests of what is built on them (alert rules, dashboards): a query that
// names a series nobody exports is always empty, and silently so.
package series

import (
	"regexp"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bindwatch/bindwatch/internal/audit/stream"
	"github.com/bindwatch/bindwatch/internal/metrics"
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
