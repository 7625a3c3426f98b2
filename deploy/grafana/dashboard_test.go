package grafana

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/driftlock/driftlock/internal/api"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

type target struct {
	RefID  string `json:"refId"`
	RawSQL string `json:"rawSql"`
	Expr   string `json:"expr"`
}

type panel struct {
	ID         int    `json:"id"`
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []target                 `json:"targets"`
}

type dashboard struct {
	UID    string `json:"uid"`
	Title  string `json:"title"`
	Inputs []struct {
		Name     string `json:"name"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

func load(t *testing.T) dashboard {
	t.Helper()
	b, err := Dashboards.ReadFile("driftlock-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}
	return d
}

func TestDashboardStructure(t *testing.T) {
	d := load(t)
	if d.UID == "" || d.Title == "" {
		t.Fatal("dashboard needs uid and title")
	}
	inputs := map[string]string{}
	for _, in := range d.Inputs {
		inputs["${"+in.Name+"}"] = in.PluginID
	}
	ids := map[int]bool{}
	titles := map[string]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("duplicate panel id %d", p.ID)
		}
		ids[p.ID] = true
		titles[p.Title] = true
		if p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.W <= 0 || p.GridPos.H <= 0 {
			t.Errorf("panel %q: bad gridPos %+v", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || inputs[p.Datasource.UID] != p.Datasource.Type {
			t.Errorf("panel %q: datasource %+v is not one of the declared inputs %v", p.Title, p.Datasource, inputs)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
	for _, want := range []string{"Anomalies per service", "Top streams", "Open vs resolved", "Records scored / s",
		"Anomalies flagged / s", "Active streams", "Scoring latency per record"} {
		if !titles[want] {
			t.Errorf("dashboard lacks the %q panel", want)
		}
	}
}

var (
	reTimeGroup = regexp.MustCompile(`\$__timeGroup(Alias)?\(\s*(\w+)\s*,\s*[^)]*\)`)
	reTimeFilt  = regexp.MustCompile(`\$__timeFilter\(\s*(\w+)\s*\)`)
)

// expand applies Grafana's PostgreSQL macros the way the data source does
// (for a 1 h interval), so the result is plain SQL PostgreSQL can check.
func expand(sql string) string {
	sql = reTimeGroup.ReplaceAllStringFunc(sql, func(m string) string {
		sub := reTimeGroup.FindStringSubmatch(m)
		out := "floor(extract(epoch from " + sub[2] + ")/3600)*3600"
		if sub[1] == "Alias" {
			out += ` AS "time"`
		}
		return out
	})
	sql = reTimeFilt.ReplaceAllString(sql, "$1 BETWEEN '2026-01-01T00:00:00Z' AND '2026-01-02T00:00:00Z'")
	sql = strings.ReplaceAll(sql, "$service", "'checkout','auth'")
	return sql
}

// Every SQL query must be valid against the migrated schema: EXPLAIN parses
// and plans it, so a misspelled column or table fails here.
func TestDashboardSQLAgainstSchema(t *testing.T) {
	d := load(t)
	st, _ := storetest.Open(t)
	ctx := context.Background()
	var queries []string
	for _, v := range d.Templating.List {
		queries = append(queries, v.Query)
	}
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if tg.RawSQL != "" {
				queries = append(queries, tg.RawSQL)
				n++
			}
		}
	}
	if n < 5 {
		t.Fatalf("only %d SQL panels found", n)
	}
	for _, q := range queries {
		sql := expand(q)
		if strings.Contains(sql, "$") {
			t.Errorf("unexpanded macro or variable left in %q", sql)
			continue
		}
		if _, err := storetest.Pool(st).Exec(ctx, "EXPLAIN "+sql); err != nil {
			t.Errorf("query does not fit the schema: %v\n%s", err, sql)
		}
	}
}

var reMetric = regexp.MustCompile(`\b((?:otelcol|driftlock)_[a-zA-Z0-9_]+)`)

// repoRoot walks up to go.mod.
func repoRoot(t *testing.T) string {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// collectorMetrics derives the Prometheus names of the driftlock
// processor's telemetry from its metadata.yaml, the way the Collector's
// Prometheus endpoint renders them: the otelcol_ prefix, a unit suffix for
// real units (s -> _seconds; {annotations} are dropped), _total for
// monotonic sums, and _bucket/_sum/_count for histograms.
func collectorMetrics(t *testing.T) map[string]bool {
	path := filepath.Join(repoRoot(t), "processor", "driftlockprocessor", "metadata.yaml")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("processor metadata not found (%v): cannot check collector metric names", err)
	}
	defer f.Close()
	names := map[string]bool{}
	var name, unit, kind string
	flush := func() {
		if name == "" {
			return
		}
		base := "otelcol_" + name
		if unit == "s" {
			base += "_seconds"
		}
		switch kind {
		case "sum":
			names[base+"_total"] = true
		case "gauge":
			names[base] = true
		case "histogram":
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[base+s] = true
			}
		}
		name, unit, kind = "", "", ""
	}
	inMetrics := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case trim == "metrics:" && indent == 2:
			inMetrics = true
		case !inMetrics || trim == "":
		case indent == 4 && strings.HasSuffix(trim, ":"):
			flush()
			name = strings.TrimSuffix(trim, ":")
		case indent == 6 && strings.HasPrefix(trim, "unit:"):
			unit = strings.Trim(strings.TrimSpace(strings.TrimPrefix(trim, "unit:")), `"'`)
		case indent == 6 && (trim == "sum:" || trim == "gauge:" || trim == "histogram:"):
			kind = strings.TrimSuffix(trim, ":")
		case indent < 4:
			flush()
			inMetrics = false
		}
	}
	flush()
	if len(names) == 0 {
		t.Fatalf("no telemetry metrics parsed from %s", path)
	}
	return names
}

func TestDashboardMetricNames(t *testing.T) {
	d := load(t)
	apiNames := map[string]bool{}
	for _, n := range api.MetricNames {
		apiNames[n] = true
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			apiNames[n+s] = true
		}
	}
	collector := collectorMetrics(t)
	used := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, m := range reMetric.FindAllString(tg.Expr, -1) {
				used++
				known := apiNames[m] || collector[m]
				if !known {
					t.Errorf("panel %q uses metric %s, which neither driftlock serve nor the driftlock processor exports", p.Title, m)
				}
			}
		}
	}
	if used < 8 {
		t.Fatalf("only %d metric references found", used)
	}
}
