package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/api"
	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// Hostile values must come back as a 400 naming the parameter or as a
// normal (empty) result, never as a 500, and must not change the database.
func TestHostileFilterValues(t *testing.T) {
	e := newEnv(t)
	e.insert(row{Service: "svc-a"}, row{Service: "svc-b"})
	inj := []string{
		"' OR '1'='1", "'; DROP TABLE anomalies; --", `\'; SELECT pg_sleep(5); --`, "svc-a' --",
		"%", "_", `\`, "$1", "1) OR (1=1", "🦀", strings.Repeat("a", 150),
	}
	endpoints := []string{"/v1/anomalies", "/v1/anomalies/export?format=ndjson&", "/v1/analytics/summary", "/v1/analytics/timeline"}
	for _, ep := range endpoints {
		sep := "?"
		if strings.HasSuffix(ep, "&") {
			sep = ""
		}
		for _, param := range []string{"stream", "service", "q"} {
			for _, v := range inj {
				r := e.get(ep+sep+param+"="+url.QueryEscape(v), e.viewer)
				if r.code != http.StatusOK {
					t.Fatalf("%s %s=%q: status %d %s", ep, param, v, r.code, r.body)
				}
				if strings.Contains(ep, "/v1/anomalies?") || ep == "/v1/anomalies" {
					var lb listBody
					r.json(t, &lb)
					// No row has any of these in its stream, service or
					// summary, so any match means the value became SQL
					// or a wildcard.
					if len(lb.Items) != 0 {
						t.Fatalf("%s=%q matched %d rows", param, v, len(lb.Items))
					}
				}
			}
		}
	}
	bad := []struct{ query, param string }{
		{"min_score=abc", "min_score"},
		{"min_score=NaN", "min_score"},
		{"min_score=1e999", "min_score"},
		{"max_p_value=2", "max_p_value"},
		{"max_p_value=-0.1", "max_p_value"},
		{"since=yesterday", "since"},
		{"since=2026-01-01", "since"},
		{"until=2026-13-01T00:00:00Z", "until"},
		{"since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "until"},
		{"signal=logs;DROP", "query"},
		{"signal=logs,DROP", "signal"},
		{"status=open,closed", "status"},
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=99999999999999999999", "limit"},
		{"limit=-5", "limit"},
		{"limit=1.5", "limit"},
		{"cursor=not-a-cursor!", "cursor"},
		{"cursor=" + strings.Repeat("A", 500), "cursor"},
		{"cursor=eyJ0IjoxfQ", "cursor"}, // {"t":1}: valid base64 JSON, no id
		{"service=a%00b", "service"},
		{"q=" + url.QueryEscape(strings.Repeat("x", 201)), "q"},
		{"serivce=typo", "serivce"},
		{"service=a&service=b", "service"},
	}
	for _, b := range bad {
		r := e.get("/v1/anomalies?"+b.query, e.viewer)
		if r.code != http.StatusBadRequest {
			t.Fatalf("%s: status %d, want 400 (%s)", b.query, r.code, r.body)
		}
		p := r.problem(t)
		ip, _ := p["invalid_params"].([]any)
		if len(ip) != 1 || ip[0].(map[string]any)["name"] != b.param {
			t.Fatalf("%s: problem %v does not name %s", b.query, p, b.param)
		}
		if p["type"] != "urn:driftlock:problem:invalid-parameter" || p["status"] != float64(400) {
			t.Fatalf("%s: problem %v", b.query, p)
		}
	}
	// Path ids.
	for _, id := range []string{"abc", "-1", "0", "1%20OR%201=1", "99999999999999999999"} {
		wantCode(t, e.get("/v1/anomalies/"+id, e.viewer), http.StatusBadRequest)
	}
	// A cursor issued for one filter cannot be used with another.
	r := e.get("/v1/anomalies?limit=1", e.viewer)
	var lb listBody
	r.json(t, &lb)
	if lb.NextCursor == nil {
		t.Fatal("no cursor")
	}
	wantCode(t, e.get("/v1/anomalies?limit=1&service=svc-a&cursor="+url.QueryEscape(*lb.NextCursor), e.viewer), http.StatusBadRequest)
	// Analytics parameters.
	for _, q := range []string{"bucket=7m", "bucket=1m&since=2020-01-01T00:00:00Z", "top=0", "top=51"} {
		wantCode(t, e.get("/v1/analytics/summary?"+q, e.viewer), http.StatusBadRequest)
	}
	wantCode(t, e.get("/v1/analytics/timeline?group_by=fingerprint", e.viewer), http.StatusBadRequest)
	wantCode(t, e.get("/v1/analytics/timeline?group_by=service;drop", e.viewer), http.StatusBadRequest)
	wantCode(t, e.get("/v1/anomalies/export?format=xml", e.viewer), http.StatusBadRequest)
	// Nothing was harmed.
	var n int
	if err := storetest.Pool(e.st).QueryRow(context.Background(), "SELECT count(*) FROM anomalies").Scan(&n); err != nil || n != 2 {
		t.Fatalf("anomalies after hostile requests: %d (%v)", n, err)
	}
}

func TestSummaryAndTimeline(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UTC().Truncate(time.Hour)
	e.insert(
		row{Service: "checkout", Stream: "checkout/api", Signal: "logs", Status: "false_positive", DetectedAt: now.Add(-3*time.Hour + time.Minute), Score: 9},
		row{Service: "checkout", Stream: "checkout/api", Signal: "logs", Status: "resolved", DetectedAt: now.Add(-3*time.Hour + 2*time.Minute)},
		row{Service: "checkout", Stream: "checkout/db", Signal: "traces", Status: "acknowledged", DetectedAt: now.Add(-2*time.Hour + time.Minute)},
		row{Service: "auth", Stream: "auth/api", Signal: "metrics", DetectedAt: now.Add(-time.Hour + time.Minute)},
		row{Service: "auth", Stream: "auth/api", Signal: "logs", DetectedAt: now.Add(-48 * time.Hour)}, // outside the default window
	)
	r := e.get("/v1/analytics/summary?bucket=1h", e.viewer)
	wantCode(t, r, http.StatusOK)
	var s struct {
		Window struct {
			Since, Until time.Time
			Bucket       string
		} `json:"window"`
		store.Summary
	}
	r.json(t, &s)
	if s.Total != 4 || s.ByStatus["open"] != 1 || s.ByStatus["false_positive"] != 1 || s.BySignal["logs"] != 2 || s.BySignal["traces"] != 1 {
		t.Fatalf("summary counts %+v", s.Summary)
	}
	if len(s.TopStreams) != 3 || s.TopStreams[0].Key != "checkout/api" || s.TopStreams[0].Count != 2 || s.TopStreams[0].MaxScore != 9 {
		t.Fatalf("top streams %+v", s.TopStreams)
	}
	if len(s.ByService) != 2 || s.ByService[0].Key != "checkout" || s.ByService[0].Count != 3 {
		t.Fatalf("by service %+v", s.ByService)
	}
	if s.FalsePositiveRatio == nil || *s.FalsePositiveRatio < 0.333 || *s.FalsePositiveRatio > 0.334 {
		t.Fatalf("false positive ratio %v, want 1/3", s.FalsePositiveRatio)
	}
	if len(s.Buckets) != 3 || !s.Buckets[0].Start.Equal(now.Add(-3*time.Hour)) || s.Buckets[0].Count != 2 {
		t.Fatalf("buckets %+v", s.Buckets)
	}
	if s.Window.Bucket != "1h" || s.Window.Until.Sub(s.Window.Since) != 24*time.Hour {
		t.Fatalf("window %+v", s.Window)
	}
	// Filters apply to the summary too.
	r = e.get("/v1/analytics/summary?service=auth&since="+url.QueryEscape(now.Add(-72*time.Hour).Format(time.RFC3339)), e.viewer)
	r.json(t, &s)
	if s.Total != 2 || s.FalsePositiveRatio != nil {
		t.Fatalf("filtered summary %+v", s.Summary)
	}

	r = e.get("/v1/analytics/timeline?bucket=1h&group_by=service&top=1", e.viewer)
	wantCode(t, r, http.StatusOK)
	var tl struct {
		GroupBy string         `json:"group_by"`
		Series  []store.Series `json:"series"`
	}
	r.json(t, &tl)
	if len(tl.Series) != 2 || tl.Series[0].Key != "checkout" || tl.Series[0].Total != 3 || tl.Series[1].Key != "(other)" || tl.Series[1].Total != 1 {
		t.Fatalf("timeline %+v", tl.Series)
	}
	if len(tl.Series[0].Points) != 2 || tl.Series[0].Points[0].Count != 2 {
		t.Fatalf("checkout points %+v", tl.Series[0].Points)
	}
}

func TestExportStreamsCSVAndNDJSON(t *testing.T) {
	e := newEnv(t)
	base := time.Now().Add(-time.Hour)
	var rows []row
	for i := range 1203 {
		rows = append(rows, row{DetectedAt: base.Add(time.Duration(i) * time.Millisecond), Service: []string{"a", "b", "c"}[i%3],
			Summary: fmt.Sprintf("line %d, with \"quotes\"\nand a newline", i)})
	}
	rows = append(rows, row{Service: "a", Summary: "=HYPERLINK(\"http://evil\")"})
	e.insert(rows...)

	r := e.get("/v1/anomalies/export?format=ndjson&service=a", e.viewer)
	wantCode(t, r, http.StatusOK)
	if ct := r.header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("content type %q", ct)
	}
	if !strings.Contains(r.header.Get("Content-Disposition"), "attachment") {
		t.Fatal("no attachment disposition")
	}
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	sc.Buffer(nil, 1<<20)
	n := 0
	var prev int64 = 1 << 62
	for sc.Scan() {
		var a store.StoredAnomaly
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		if a.Service != "a" || a.Record == nil || a.ID >= prev {
			t.Fatalf("line %d: %+v", n, a)
		}
		prev = a.ID
		n++
	}
	if n != 402 {
		t.Fatalf("ndjson rows %d, want 402", n)
	}

	r = e.get("/v1/anomalies/export?format=csv", e.viewer)
	wantCode(t, r, http.StatusOK)
	recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1205 || recs[0][0] != "id" || recs[0][14] != "summary" {
		t.Fatalf("csv rows %d header %v", len(recs), recs[0])
	}
	if recs[1][14] != `'=HYPERLINK("http://evil")` {
		t.Fatalf("formula not defused: %q", recs[1][14])
	}
	if !strings.Contains(recs[2][14], "\n") {
		t.Fatalf("newline lost in %q", recs[2][14])
	}
}

func TestMetricsAndOpenAPI(t *testing.T) {
	e := newEnv(t)
	e.get("/v1/anomalies", e.viewer)
	e.get("/v1/anomalies?limit=0", e.viewer)
	r := e.get("/metrics", e.viewer)
	wantCode(t, r, http.StatusOK)
	body := string(r.body)
	for _, want := range []string{
		`driftlock_api_requests_total{code="200",method="GET",route="GET /v1/anomalies"} 1`,
		`driftlock_api_requests_total{code="400",method="GET",route="GET /v1/anomalies"} 1`,
		`driftlock_api_request_duration_seconds_bucket{method="GET",route="GET /v1/anomalies",le="+Inf"} 2`,
		"driftlock_api_sse_clients 0", "driftlock_api_db_pool_max_conns", "go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The names the Grafana dashboard is checked against are real.
	for _, n := range api.MetricNames {
		if !strings.Contains(body, "\n"+n) && !strings.Contains(body, "\n"+n+"_bucket") {
			t.Errorf("api.MetricNames lists %s but /metrics has no such series", n)
		}
	}
}
