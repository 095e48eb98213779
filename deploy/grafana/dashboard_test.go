// Package grafana_test checks bindwatch's Grafana dashboard: it is a
// dashboard of the schema version it declares, every query names only
// series bindwatch exports and parses as PromQL, and it shows what an
// operator of the agent and of the audit looks at first.
package grafana_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bindwatch/bindwatch/deploy/internal/deploytest"
)

const dashboardFile = "bindwatch.json"

// schemaVersion is the Grafana dashboard schema the file is written for
// (Grafana 10.4 to 11 read it as is); the checks below are that
// version's rules for what this dashboard uses.
const schemaVersion = 39

type gridPos struct{ H, W, X, Y int }

type target struct {
	RefID      string          `json:"refId"`
	Expr       string          `json:"expr"`
	Datasource json.RawMessage `json:"datasource"`
}

type panel struct {
	ID          int             `json:"id"`
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	GridPos     *gridPos        `json:"gridPos"`
	Datasource  json.RawMessage `json:"datasource"`
	Targets     []target        `json:"targets"`
	Panels      []panel         `json:"panels"`
}

type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Time          *struct{ From, To string }
	Templating    struct {
		List []struct {
			Name, Type string
			Query      any
		}
	}
}

func load(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	var d dashboard
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// The structure Grafana's dashboard schema (v39) requires of what the file
// uses: a title, a uid of at most 40 characters, a time range, panels with
// unique ids of a known type placed on the 24-column grid without overlap,
// each query panel with a data source and targets with unique refIds.
func TestDashboardIsValid(t *testing.T) {
	d := load(t)
	if d.SchemaVersion != schemaVersion {
		t.Fatalf("schemaVersion %d; this test checks version %d's rules", d.SchemaVersion, schemaVersion)
	}
	if d.Title == "" || d.UID == "" || len(d.UID) > 40 || d.Time == nil || d.Time.From == "" {
		t.Errorf("title %q, uid %q, time %+v", d.Title, d.UID, d.Time)
	}
	vars := map[string]bool{"__rate_interval": true}
	for _, v := range d.Templating.List {
		if v.Name == "" || !slices.Contains([]string{"datasource", "query", "custom", "interval"}, v.Type) {
			t.Errorf("template variable %+v", v)
		}
		vars[v.Name] = true
	}
	known := []string{"row", "timeseries", "stat", "table", "gauge", "text"}
	ids := map[int]bool{}
	type rect struct {
		g    gridPos
		name string
	}
	var placed []rect
	for _, p := range d.Panels {
		if p.ID <= 0 || ids[p.ID] {
			t.Errorf("panel %q: id %d missing or not unique", p.Title, p.ID)
		}
		ids[p.ID] = true
		if !slices.Contains(known, p.Type) {
			t.Errorf("panel %q: type %q, want one of %v", p.Title, p.Type, known)
		}
		g := p.GridPos
		if g == nil || g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
			continue
		}
		for _, o := range placed {
			if g.X < o.g.X+o.g.W && o.g.X < g.X+g.W && g.Y < o.g.Y+o.g.H && o.g.Y < g.Y+g.H {
				t.Errorf("panels %q and %q overlap", p.Title, o.name)
			}
		}
		placed = append(placed, rect{*g, p.Title})
		if p.Type == "row" {
			if len(p.Targets) > 0 {
				t.Errorf("row %q has queries", p.Title)
			}
			continue
		}
		if p.Title == "" || p.Description == "" || len(p.Datasource) == 0 || len(p.Targets) == 0 {
			t.Errorf("panel %q: needs a title, a description, a data source and queries", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] || tg.Expr == "" {
				t.Errorf("panel %q: target %+v", p.Title, tg)
			}
			refs[tg.RefID] = true
			for _, name := range varsUsed(tg.Expr) {
				if !vars[name] {
					t.Errorf("panel %q uses $%s, which the dashboard does not define", p.Title, name)
				}
			}
		}
	}
}

func varsUsed(expr string) []string {
	var out []string
	for i := 0; i < len(expr); i++ {
		if expr[i] != '$' {
			continue
		}
		j := i + 1
		for j < len(expr) && (expr[j] == '_' || expr[j] >= 'a' && expr[j] <= 'z' || expr[j] >= 'A' && expr[j] <= 'Z' || expr[j] >= '0' && expr[j] <= '9') {
			j++
		}
		out = append(out, expr[i+1:j])
	}
	return out
}

// queries returns every panel's expressions, by panel title.
func queries(d dashboard) map[string][]string {
	out := map[string][]string{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out[p.Title] = append(out[p.Title], tg.Expr)
		}
	}
	return out
}

// Every series a query names is one bindwatch exports: a misspelt series
// is an empty panel nobody notices.
func TestQueriesNameExportedSeries(t *testing.T) {
	have, err := deploytest.Exported()
	if err != nil {
		t.Fatal(err)
	}
	for title, exprs := range queries(load(t)) {
		for _, e := range exprs {
			for _, name := range deploytest.Named.FindAllString(e, -1) {
				if !slices.Contains(have, name) {
					t.Errorf("panel %q names %s, which bindwatch does not export", title, name)
				}
			}
		}
	}
}

// What the dashboard must show: the agent's events, drops by reason,
// spool, latency, memory, blind spots and lease; the audit's lag, open
// findings by kind and rebuilds.
func TestDashboardShowsWhatOperatorsLookAt(t *testing.T) {
	var exprs []string
	for _, e := range queries(load(t)) {
		exprs = append(exprs, e...)
	}
	all := strings.Join(exprs, "\n")
	for _, want := range []string{
		"bindwatch_events_published_total", "by (reason) (rate(bindwatch_events_dropped_total", "bindwatch_spool_bytes",
		"bindwatch_event_delivery_seconds_bucket", "process_resident_memory_bytes", "bindwatch_capture_blind",
		"bindwatch_capture_orphaned_seconds", "bindwatch_audit_lag", "by (kind) (bindwatch_audit_open_findings", "bindwatch_audit_rebuilds_total",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no panel queries %s", want)
		}
	}
}

// Every query parses as PromQL: promtool checks them as recording rules,
// with Grafana's variables given values.
func TestQueriesParse(t *testing.T) {
	tool := deploytest.Promtool(t, "../..")
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, exprs := range queries(load(t)) {
		for _, e := range exprs {
			e = strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*", "$agent_job", ".*", "$audit_job", ".*").Replace(e)
			n++
			b, _ := json.Marshal(e)
			fmt.Fprintf(&rules, "      - record: dashboard:query%d\n        expr: %s\n", n, b)
		}
	}
	f := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(f, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tool, "check", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s\n%s", err, out, rules.String())
	}
}
