package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/api"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// The load benchmark needs a store of a million anomalies, which takes a
// minute to build, so it only runs when asked: `make bench-api`, or
// DRIFTLOCK_BENCH_API=1 go test -run '^$' -bench BenchmarkAPI ./internal/api/
// (DRIFTLOCK_BENCH_ROWS changes the size).

func benchSetup(b *testing.B) *env {
	if os.Getenv("DRIFTLOCK_BENCH_API") == "" {
		b.Skip("set DRIFTLOCK_BENCH_API=1 (or run `make bench-api`): this benchmark loads 1,000,000 anomalies")
	}
	var benchEnv *env
	var benchErr error
	func() {
		n := 1_000_000
		if s := os.Getenv("DRIFTLOCK_BENCH_ROWS"); s != "" {
			n, benchErr = strconv.Atoi(s)
			if benchErr != nil {
				return
			}
		}
		benchEnv = newEnv(b, func(c *api.Config) {
			c.RateLimit, c.RateBurst = 1e9, 1e9
		})
		ctx := context.Background()
		start := time.Now()
		// 30 days of anomalies over 50 services x 7 streams, statuses
		// mixed like a triaged history.
		_, benchErr = storetest.Pool(benchEnv.st).Exec(ctx, `
INSERT INTO anomalies (fingerprint, signal, stream, service, observed_at, detected_at, score, p_value, ncd,
  compression_ratio, entropy, severity, status, summary, explanation, record)
SELECT 'bench-' || i,
  (ARRAY['logs','traces','metrics'])[1 + i % 3],
  'svc-' || (i % 50) || '/stream-' || (i % 7),
  'svc-' || (i % 50),
  now() - i * interval '2592 milliseconds',
  now() - i * interval '2592 milliseconds',
  3 + (i % 1000) / 100.0, ((i * 7) % 1000) / 1e6, 0.4, 0.3, 4.1, 'ERROR',
  CASE WHEN i % 10 = 0 THEN 'resolved' WHEN i % 17 = 0 THEN 'false_positive' WHEN i % 13 = 0 THEN 'acknowledged' ELSE 'open' END,
  'unusual line ' || md5(i::text), 'costs many bits', jsonb_build_object('body', 'line ' || i)
FROM generate_series(1, $1::int) AS i`, n)
		if benchErr == nil {
			// Incidents as the correlator leaves them: every third block of
			// 200 consecutive anomalies (about 8.6 minutes of observed time,
			// all 50 services) is one incident; the newest 10 are open.
			_, benchErr = storetest.Pool(benchEnv.st).Exec(ctx, `
INSERT INTO incidents (key, state, title, leader, services, signals, size, opened_at, last_evidence_at, closed_at)
SELECT 'bench-' || j, CASE WHEN j < 30 THEN 'open' ELSE 'closed' END, 'svc-' || (j % 50) || ': unusual lines, 200 records',
  'svc-' || (j % 50), jsonb_build_array(jsonb_build_object('service', 'svc-' || (j % 50), 'score', 40, 'anomalies', 200)),
  '{logs,traces,metrics}', 200, now() - (j * 200 + 200) * interval '2592 milliseconds', now() - (j * 200 + 1) * interval '2592 milliseconds',
  CASE WHEN j < 30 THEN NULL ELSE now() - (j * 200 - 100) * interval '2592 milliseconds' END
FROM generate_series(0, $1::int / 200 - 1, 3) AS j`, n)
		}
		if benchErr == nil {
			_, benchErr = storetest.Pool(benchEnv.st).Exec(ctx, `
UPDATE anomalies a SET incident_id = i.id FROM incidents i
WHERE i.key = 'bench-' || ((substring(a.fingerprint from 7)::int - 1) / 200) AND a.fingerprint LIKE 'bench-%'`)
		}
		if benchErr == nil {
			_, benchErr = benchEnv.st.EnsureSearchIndex(ctx) // as driftlock serve does
		}
		if benchErr == nil {
			_, benchErr = storetest.Pool(benchEnv.st).Exec(ctx, "VACUUM ANALYZE anomalies, incidents")
		}
		fmt.Fprintf(os.Stderr, "bench: loaded %d anomalies in %v\n", n, time.Since(start).Round(time.Millisecond))
		for _, q := range []string{
			"SELECT id FROM anomalies a WHERE TRUE ORDER BY a.observed_at DESC, a.id DESC LIMIT 101",
			"SELECT id FROM anomalies a WHERE a.service = 'svc-7' AND a.status = ANY('{open}'::text[]) ORDER BY a.observed_at DESC, a.id DESC LIMIT 101",
			"SELECT id FROM anomalies a WHERE a.score >= 12.9 ORDER BY a.observed_at DESC, a.id DESC LIMIT 101",
			"SELECT id FROM anomalies a WHERE a.summary ILIKE '%abc%' ORDER BY a.observed_at DESC, a.id DESC LIMIT 101",
			"SELECT count(*) FROM anomalies a WHERE a.observed_at >= now() - interval '24 hours' AND a.observed_at < now() GROUP BY GROUPING SETS ((a.status),(a.signal),(a.service),(a.stream),(date_bin('1 hour', a.observed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')))",
		} {
			rows, err := storetest.Pool(benchEnv.st).Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) "+q)
			if err != nil {
				benchErr = err
				return
			}
			var plan []string
			for rows.Next() {
				var l string
				_ = rows.Scan(&l)
				plan = append(plan, "    "+l)
			}
			rows.Close()
			fmt.Fprintf(os.Stderr, "bench: plan of %s\n%s\n", q, strings.Join(plan, "\n"))
		}
	}()
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchEnv
}

func benchGet(b *testing.B, client *http.Client, u, key string) {
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		b.Fatalf("%s: status %d", u, res.StatusCode)
	}
}

// BenchmarkAPI loads the store once, then runs the latency and throughput
// sub-benchmarks against it (a benchmark that calls b.Run runs once, so the
// setup and its cleanup happen once).
func BenchmarkAPI(b *testing.B) {
	e := benchSetup(b)
	b.Run("latency", func(b *testing.B) { benchLatency(b, e) })
	b.Run("list_throughput", func(b *testing.B) { benchThroughput(b, e) })
}

// benchLatency measures each query shape one request at a time and
// reports p50/p99 latency over loopback HTTP (the target is p99 < 50 ms).
func benchLatency(b *testing.B, e *env) {
	var cursor string
	{
		req, _ := http.NewRequest("GET", e.ts.URL+"/v1/anomalies?limit=100", nil)
		req.Header.Set("Authorization", "Bearer "+e.viewer)
		res, err := e.ts.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var body struct {
			NextCursor string `json:"next_cursor"`
		}
		r := resp{code: res.StatusCode}
		r.body, _ = io.ReadAll(res.Body)
		res.Body.Close()
		r.json(b, &body)
		cursor = body.NextCursor
	}
	cases := []struct{ name, path string }{
		{"list", "/v1/anomalies"},
		{"list_limit1000", "/v1/anomalies?limit=1000"},
		{"list_page2", "/v1/anomalies?cursor=" + url.QueryEscape(cursor)},
		{"list_service_status", "/v1/anomalies?service=svc-7&status=open"},
		{"list_stream", "/v1/anomalies?stream=svc-3%2Fstream-3"},
		{"list_min_score", "/v1/anomalies?min_score=12.9"},
		{"list_q", "/v1/anomalies?q=abc"},
		{"summary_24h", "/v1/analytics/summary"},
		{"summary_service_7d", "/v1/analytics/summary?service=svc-7&bucket=6h&since=" + url.QueryEscape(time.Now().Add(-7*24*time.Hour).UTC().Format(time.RFC3339))},
		{"timeline_24h", "/v1/analytics/timeline"},
		{"incidents_open", "/v1/incidents?status=open"},
		{"incidents_all", "/v1/incidents"},
		{"incidents_closed_7d", "/v1/incidents?status=closed&since=" + url.QueryEscape(time.Now().Add(-7*24*time.Hour).UTC().Format(time.RFC3339))},
		{"incidents_service", "/v1/incidents?service=svc-7"},
		{"incidents_service_old", "/v1/incidents?service=svc-7&until=" + url.QueryEscape(time.Now().Add(-20*24*time.Hour).UTC().Format(time.RFC3339))},
		{"incident_detail", "/v1/incidents/" + itoa(firstIncident(b, e))},
		{"incident_members", "/v1/incidents/" + itoa(firstIncident(b, e)) + "/anomalies?limit=100"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			client := e.ts.Client()
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t0 := time.Now()
				benchGet(b, client, e.ts.URL+c.path, e.viewer)
				lat = append(lat, time.Since(t0))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			q := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(q(0.50), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
		})
	}
}

// benchThroughput is the load generator: many concurrent clients on
// loopback asking for the first page of the list (target >= 2,000
// requests/s).
func benchThroughput(b *testing.B, e *env) {
	tr := &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	b.SetParallelism(16)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchGet(b, client, e.ts.URL+"/v1/anomalies?limit=50", e.viewer)
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// firstIncident is the id of the newest incident of the bench store.
func firstIncident(b *testing.B, e *env) int64 {
	var id int64
	if err := storetest.Pool(e.st).QueryRow(context.Background(), "SELECT id FROM incidents ORDER BY opened_at DESC LIMIT 1").Scan(&id); err != nil {
		b.Fatal(err)
	}
	return id
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
