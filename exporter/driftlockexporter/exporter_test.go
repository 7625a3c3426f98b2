package driftlockexporter

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/driftlock/driftlock/internal/store/storetest"
)

func TestLogsOnlyFlaggedRecordsAreStoredOnce(t *testing.T) {
	st, dsn := openDB(t)
	set, tt := testSettings(t)
	exp := startLogs(t, syncConfig(dsn), set, componenttest.NewNopHost())
	defer exp.Shutdown(context.Background())
	ctx := context.Background()

	odd := func(i int) bool { return i%2 == 1 }
	ld := flaggedLogs(0, 100, odd)
	if err := exp.ConsumeLogs(ctx, ld); err != nil {
		t.Fatal(err)
	}
	if got := rowCount(t, st); got != 50 {
		t.Fatalf("rows = %d, want the 50 flagged records", got)
	}
	// The same data again (a retry, a replay): nothing new.
	if err := exp.ConsumeLogs(ctx, flaggedLogs(0, 100, odd)); err != nil {
		t.Fatal(err)
	}
	if got := rowCount(t, st); got != 50 {
		t.Fatalf("rows = %d after a replay, want 50", got)
	}
	wantCounter(t, tt, "otelcol_exporter_driftlock_rows_inserted", 50)
	wantCounter(t, tt, "otelcol_exporter_driftlock_rows_duplicate", 50)
	wantCounter(t, tt, "otelcol_exporter_driftlock_records_skipped", 100)

	var (
		signal, stream, service, severity, summary, expl, body string
		score, pValue                                          float64
		observed                                               time.Time
	)
	err := storetest.Pool(st).QueryRow(ctx, `SELECT signal, stream, service, severity, summary, explanation, record->>'body',
		score, p_value, observed_at FROM anomalies ORDER BY observed_at LIMIT 1`).
		Scan(&signal, &stream, &service, &severity, &summary, &expl, &body, &score, &pValue, &observed)
	if err != nil {
		t.Fatal(err)
	}
	if signal != "logs" || stream != "checkout/app" || service != "checkout" || severity != "ERROR" ||
		body != "payment 1 failed: upstream timeout after 101ms" || summary != body ||
		expl != "rare tokens: upstream, timeout" || score != 6.25 || pValue != 0.002 ||
		!observed.Equal(baseTime.Add(time.Millisecond)) {
		t.Fatalf("row: %s %s %s %s %q %q %v %v %v", signal, stream, service, severity, summary, expl, score, pValue, observed)
	}
}

func TestLogsOnlyAnomaliesOffStoresEverything(t *testing.T) {
	st, dsn := openDB(t)
	set, _ := testSettings(t)
	cfg := syncConfig(dsn)
	cfg.OnlyAnomalies = false
	exp := startLogs(t, cfg, set, componenttest.NewNopHost())
	defer exp.Shutdown(context.Background())
	if err := exp.ConsumeLogs(context.Background(), flaggedLogs(0, 30, func(i int) bool { return i < 3 })); err != nil {
		t.Fatal(err)
	}
	if got := rowCount(t, st); got != 30 {
		t.Fatalf("rows = %d, want 30", got)
	}
}

func TestLogsDetectorConfigHashRecorded(t *testing.T) {
	st, dsn := openDB(t)
	set, _ := testSettings(t)
	exp := startLogs(t, syncConfig(dsn), set, componenttest.NewNopHost())
	defer exp.Shutdown(context.Background())
	ld := flaggedLogs(0, 4, all)
	ld.ResourceLogs().At(0).Resource().Attributes().PutStr("driftlock.config_hash", "cfg-resource")
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	lrs.At(0).Attributes().PutStr("driftlock.config_hash", "cfg-a")
	lrs.At(0).Attributes().PutStr("driftlock.config", `{"window":128}`)
	lrs.At(1).Attributes().PutStr("driftlock.config_hash", "cfg-b")
	lrs.At(1).Attributes().PutStr("driftlock.config", `not json`)
	if err := exp.ConsumeLogs(context.Background(), ld); err != nil {
		t.Fatal(err)
	}
	got := queryList(t, st,
		`SELECT a.detector_config_hash, d.config::text FROM anomalies a JOIN detectors d ON d.config_hash = a.detector_config_hash ORDER BY a.observed_at`,
		func(r pgx.CollectableRow) (string, error) {
			var h, c string
			err := r.Scan(&h, &c)
			return h + "=" + c, err
		})
	want := []string{`cfg-a={"window": 128}`, `cfg-b={}`, `cfg-resource={}`, `cfg-resource={}`}
	var withConfig int
	if err := storetest.Pool(st).QueryRow(context.Background(), `SELECT count(*) FROM anomalies WHERE attributes ? 'driftlock.config'`).Scan(&withConfig); err != nil || withConfig != 0 {
		t.Fatalf("%d rows still carry driftlock.config in attributes (err %v): it belongs in detectors", withConfig, err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// A row PostgreSQL refuses (here: a CHECK constraint the test adds) is a
// permanent error: dropped, logged and counted; the rest of the batch is
// stored and nothing is retried.
func TestLogsPermanentErrorDropsOnlyTheBadRows(t *testing.T) {
	st, dsn := openDB(t)
	ctx := context.Background()
	if _, err := storetest.Pool(st).Exec(ctx, `ALTER TABLE anomalies ADD CONSTRAINT no_poison CHECK (summary NOT LIKE '%poison%')`); err != nil {
		t.Fatal(err)
	}
	set, tt := testSettings(t)
	cfg := syncConfig(dsn)
	cfg.BackOffConfig.Enabled = true // must not retry a permanent error
	cfg.BackOffConfig.InitialInterval = 10 * time.Millisecond
	exp := startLogs(t, cfg, set, componenttest.NewNopHost())
	defer exp.Shutdown(ctx)
	ld := flaggedLogs(0, 10, all)
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	lrs.At(3).Body().SetStr("poison pill")
	lrs.At(7).Body().SetStr("more poison")
	err := exp.ConsumeLogs(ctx, ld)
	if !consumererror.IsPermanent(err) {
		t.Fatalf("err = %v, want a permanent error", err)
	}
	if got := rowCount(t, st); got != 8 {
		t.Fatalf("rows = %d, want the 8 good ones", got)
	}
	wantCounter(t, tt, "otelcol_exporter_driftlock_rows_dropped", 2)
	wantCounter(t, tt, "otelcol_exporter_driftlock_transient_errors", 0)
}

// A transient error (nothing listening) is returned as retryable, never
// permanent, and counted.
func TestLogsTransientErrorIsRetryable(t *testing.T) {
	set, tt := testSettings(t)
	cfg := syncConfig("postgres://postgres:hunter2@127.0.0.1:1/none?connect_timeout=2")
	exp := startLogs(t, cfg, set, componenttest.NewNopHost())
	defer exp.Shutdown(context.Background())
	err := exp.ConsumeLogs(context.Background(), flaggedLogs(0, 3, all))
	if err == nil || consumererror.IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the error leaks the password: %v", err)
	}
	wantCounter(t, tt, "otelcol_exporter_driftlock_transient_errors", 1)
}

func TestTracesFlaggedSpansStored(t *testing.T) {
	st, exp := startOnDB(t, NewFactory().CreateTraces)
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "frontend")
	ss := rs.ScopeSpans().AppendEmpty()
	for i := 0; i < 6; i++ {
		sp := ss.Spans().AppendEmpty()
		sp.SetName("GET /cart")
		sp.SetTraceID(pcommon.TraceID{1, 2, 3, byte(i)})
		sp.SetSpanID(pcommon.SpanID{9, byte(i)})
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(baseTime))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(baseTime.Add(1500 * time.Millisecond)))
		sp.Status().SetCode(ptrace.StatusCodeError)
		sp.Status().SetMessage("deadline exceeded")
		sp.Attributes().PutBool("driftlock.anomaly", i < 2)
		sp.Attributes().PutDouble("driftlock.score", 3.5)
		sp.Attributes().PutDouble("driftlock.p_value", 0.01)
		sp.Attributes().PutStr("driftlock.stream", "frontend/spans")
	}
	if err := exp.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	if got := rowCount(t, st); got != 2 {
		t.Fatalf("rows = %d, want 2 flagged spans", got)
	}
	var traceID, spanID, summary, severity string
	var dur float64
	if err := storetest.Pool(st).QueryRow(context.Background(), `SELECT trace_id, span_id, summary, severity, (record->>'duration_ms')::float8
		FROM anomalies ORDER BY span_id LIMIT 1`).Scan(&traceID, &spanID, &summary, &severity, &dur); err != nil {
		t.Fatal(err)
	}
	if traceID != "01020300000000000000000000000000" || spanID != "0900000000000000" ||
		summary != "GET /cart: deadline exceeded" || severity != "Error" || dur != 1500 {
		t.Fatalf("row: %s %s %q %s %v", traceID, spanID, summary, severity, dur)
	}
}

// metricsFixture: a series `http.latency` with an annotated point, and the
// processor's companion metrics for the same point and for a second series.
func metricsFixture(temporality pmetric.AggregationTemporality, counts ...float64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "api")
	sm := rm.ScopeMetrics().AppendEmpty()
	ts := pcommon.NewTimestampFromTime(baseTime)

	lat := sm.Metrics().AppendEmpty()
	lat.SetName("http.latency")
	lat.SetUnit("ms")
	g := lat.SetEmptyGauge()
	for i, v := range []float64{12, 950} {
		dp := g.DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(v)
		dp.Attributes().PutStr("route", []string{"/a", "/b"}[i])
		dp.Attributes().PutStr("driftlock.stream", "api/http.latency")
		dp.Attributes().PutBool("driftlock.anomaly", i == 1)
		dp.Attributes().PutDouble("driftlock.score", []float64{0.1, 9.5}[i])
	}

	score := sm.Metrics().AppendEmpty()
	score.SetName("driftlock.anomaly.score")
	sg := score.SetEmptyGauge()
	for _, s := range []struct {
		route string
		score float64
	}{{"/b", 9.5}, {"/c", 4.25}} {
		dp := sg.DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(s.score)
		dp.Attributes().PutStr("route", s.route)
		dp.Attributes().PutStr("metric.name", "http.latency")
		dp.Attributes().PutStr("driftlock.stream", "api/http.latency")
	}

	anom := sm.Metrics().AppendEmpty()
	anom.SetName("driftlock.anomalies")
	sum := anom.SetEmptySum()
	sum.SetAggregationTemporality(temporality)
	sum.SetIsMonotonic(true)
	for i, route := range []string{"/b", "/c", "/d"} {
		dp := sum.DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(counts[i])
		dp.Attributes().PutStr("route", route)
		dp.Attributes().PutStr("metric.name", "http.latency")
		dp.Attributes().PutStr("driftlock.stream", "api/http.latency")
	}
	return md
}

func TestMetricsCompanionAndAnnotatedPoints(t *testing.T) {
	st, exp := startOnDB(t, NewFactory().CreateMetrics)
	// /b: annotated point and companion (one row); /c: companion only;
	// /d: companion value 0 (no row); /a: annotated, not flagged.
	if err := exp.ConsumeMetrics(context.Background(), metricsFixture(pmetric.AggregationTemporalityDelta, 1, 2, 0)); err != nil {
		t.Fatal(err)
	}
	got := queryList(t, st, `SELECT record->'series'->>'route', score, record->>'metric' FROM anomalies ORDER BY 1`,
		func(r pgx.CollectableRow) (string, error) {
			var route, metric string
			var score float64
			err := r.Scan(&route, &score, &metric)
			return route + "/" + metric + "/" + ftoa(score), err
		})
	if len(got) != 2 || got[0] != "/b/http.latency/9.5" || got[1] != "/c/http.latency/4.25" {
		t.Fatalf("rows %v, want /b (9.5) and /c (4.25)", got)
	}
}

func TestMetricsCumulativeCompanionStoresIncreasesOnly(t *testing.T) {
	st, exp := startOnDB(t, NewFactory().CreateMetrics)
	ctx := context.Background()
	first := metricsFixture(pmetric.AggregationTemporalityCumulative, 1, 1, 0)
	if err := exp.ConsumeMetrics(ctx, first); err != nil {
		t.Fatal(err)
	}
	// The next export: same cumulative values at a later time: no new anomaly.
	// (Without the annotated gauge, which would flag /b again by itself.)
	second := metricsFixture(pmetric.AggregationTemporalityCumulative, 1, 1, 0)
	shiftMetrics(second, time.Minute)
	dropMetric(second, "http.latency")
	if err := exp.ConsumeMetrics(ctx, second); err != nil {
		t.Fatal(err)
	}
	if got := rowCount(t, st); got != 2 {
		t.Fatalf("rows = %d, want 2 (unchanged cumulative counters add nothing)", got)
	}
	third := metricsFixture(pmetric.AggregationTemporalityCumulative, 1, 2, 0)
	shiftMetrics(third, 2*time.Minute)
	dropMetric(third, "http.latency")
	if err := exp.ConsumeMetrics(ctx, third); err != nil {
		t.Fatal(err)
	}
	if got := rowCount(t, st); got != 3 {
		t.Fatalf("rows = %d, want 3 (/c increased)", got)
	}
}

func shiftMetrics(md pmetric.Metrics, d time.Duration) {
	ms := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := 0; i < ms.Len(); i++ {
		m := ms.At(i)
		var dps pmetric.NumberDataPointSlice
		if m.Type() == pmetric.MetricTypeGauge {
			dps = m.Gauge().DataPoints()
		} else {
			dps = m.Sum().DataPoints()
		}
		for j := 0; j < dps.Len(); j++ {
			dps.At(j).SetTimestamp(pcommon.NewTimestampFromTime(dps.At(j).Timestamp().AsTime().Add(d)))
		}
	}
}

func dropMetric(md pmetric.Metrics, name string) {
	md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().RemoveIf(func(m pmetric.Metric) bool { return m.Name() == name })
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// The processor scores several statistics per series; each is its own
// anomaly, with its own score.
func TestMetricsStatisticsAreSeparateAnomalies(t *testing.T) {
	st, exp := startOnDB(t, NewFactory().CreateMetrics)
	md := pmetric.NewMetrics()
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	ts := pcommon.NewTimestampFromTime(baseTime)
	score := sm.Metrics().AppendEmpty()
	score.SetName("driftlock.anomaly.score")
	anom := sm.Metrics().AppendEmpty()
	anom.SetName("driftlock.anomalies")
	anom.SetEmptySum().SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	score.SetEmptyGauge()
	for i, stat := range []string{"p50", "p99", "count"} {
		for _, dp := range []pmetric.NumberDataPoint{score.Gauge().DataPoints().AppendEmpty(), anom.Sum().DataPoints().AppendEmpty()} {
			dp.SetTimestamp(ts)
			dp.Attributes().PutStr("route", "/x")
			dp.Attributes().PutStr("metric.name", "rpc.duration")
			dp.Attributes().PutStr("driftlock.stream", "metrics/rpc.duration")
			dp.Attributes().PutStr("driftlock.statistic", stat)
		}
		score.Gauge().DataPoints().At(i).SetDoubleValue(float64(i + 7))
		anom.Sum().DataPoints().At(i).SetIntValue(int64(1 - i/2)) // count: not anomalous
	}
	if err := exp.ConsumeMetrics(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	got := queryList(t, st, `SELECT attributes->>'driftlock.statistic', score FROM anomalies ORDER BY 1`,
		func(r pgx.CollectableRow) (string, error) {
			var stat string
			var sc float64
			err := r.Scan(&stat, &sc)
			return stat + "=" + ftoa(sc), err
		})
	if len(got) != 2 || got[0] != "p50=7" || got[1] != "p99=8" {
		t.Fatalf("rows %v, want p50=7 and p99=8", got)
	}
}
