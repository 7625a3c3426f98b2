package driftlockprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/driftlock/driftlock/internal/recorddoc"
	"github.com/driftlock/driftlock/internal/store"
)

// TestSignalForms: each signal is one form with its own name; the signals
// whose records the exporter stores as documents take feedback, metrics do
// not (their rows hold a series, not a record to re-score).
func TestSignalForms(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range forms {
		assert.False(t, seen[f.name()], "duplicate signal name %q", f.name())
		seen[f.name()] = true
		_, learns := f.(learnerForm)
		assert.Equal(t, f.name() != signalMetrics, learns, "%s takes feedback", f.name())
	}
	assert.Equal(t, map[string]bool{signalLogs: true, signalTraces: true, signalMetrics: true}, seen)

	cfg := testConfig()
	cfg.Feedback.Endpoint = "http://127.0.0.1:1"
	cfg.Feedback.APIKey = "k"
	require.NoError(t, cfg.Validate())
	for _, f := range forms {
		e := newTestEngine(t, cfg, f)
		_, learns := f.(learnerForm)
		assert.Equal(t, learns, e.fb != nil, "%s: feedback loop", f.name())
		assert.Equal(t, f.name() == signalMetrics, e.series != nil, "%s: series table", f.name())
	}
}

// stored returns the record and attributes documents as the exporter
// stores them: the shared codec, encoded by the store's JSON encoder.
func stored(doc map[string]any, attrs pcommon.Map) (record, attributes []byte) {
	return store.EncodeJSON(doc), store.EncodeJSON(attrs.AsRaw())
}

// TestRebuildMatchesScoredRecord: the record feedback teaches is, byte for
// byte, the one the processor scored, for each signal that takes feedback.
func TestRebuildMatchesScoredRecord(t *testing.T) {
	s := getScratch()
	defer putScratch(s)

	cfg := testConfig()
	cfg.Logs.Attributes = []string{"http.route", "tenant.id"}
	logs := newTestEngine(t, cfg, logsForm{})
	lr := plog.NewLogRecord()
	lr.SetSeverityText("ERROR")
	lr.SetSeverityNumber(plog.SeverityNumberError)
	body := lr.Body().SetEmptyMap()
	body.PutStr("msg", "card 4242 declined")
	body.PutInt("amount", 12345678901234567) // exact beyond 2^53
	body.PutDouble("ratio", 0.5)
	lr.Attributes().PutStr("http.route", "/pay")
	lr.Attributes().PutInt("tenant.id", 9007199254740993)
	lr.Attributes().PutStr("driftlock.anomaly", "ignored by the form")
	want := string(logs.appendLogRecord(nil, s, lr, cfg.Detector.MaxRecordBytes))
	record, attrs := stored(recorddoc.Log(lr), lr.Attributes())
	rec, ok := logsForm{}.rebuild(logs, s, record, attrs)
	require.True(t, ok)
	assert.Equal(t, want, string(rec.Data))
	assert.Equal(t, int(plog.SeverityNumberError), rec.Severity)

	traces := newTestEngine(t, testConfig(), tracesForm{})
	sp := ptrace.NewSpan()
	sp.SetName("POST /checkout")
	sp.SetKind(ptrace.SpanKindServer)
	sp.Status().SetCode(ptrace.StatusCodeError)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Unix(1700000000, 0)))
	sp.SetEndTimestamp(sp.StartTimestamp() + pcommon.Timestamp(1500*time.Millisecond))
	sp.Attributes().PutStr("http.route", "/checkout")
	sp.Attributes().PutInt("http.response.status_code", 503)
	want = string(traces.appendSpan(nil, s, sp, cfg.Detector.MaxRecordBytes))
	record, attrs = stored(recorddoc.Span(sp), sp.Attributes())
	rec, ok = tracesForm{}.rebuild(traces, s, record, attrs)
	require.True(t, ok)
	assert.Equal(t, want, string(rec.Data))
	assert.Equal(t, spanSeverity(sp), rec.Severity)

	// What is not a record document is not learned.
	for _, bad := range []string{`[]`, `not json`, `{"body":`} {
		_, ok = logsForm{}.rebuild(logs, s, []byte(bad), nil)
		assert.False(t, ok, bad)
		_, ok = tracesForm{}.rebuild(traces, s, []byte(bad), nil)
		assert.False(t, ok, bad)
	}
}

// TestSeriesDeltas: what a cumulative series turns into, point by point.
func TestSeriesDeltas(t *testing.T) {
	tb := newSeriesTable(10)
	key := []byte("k")
	_, ok := tb.sumDelta(key, 1, 10, true)
	assert.False(t, ok, "first point")
	d, ok := tb.sumDelta(key, 1, 15, true)
	assert.True(t, ok)
	assert.InDelta(t, 5, d, 0)
	_, ok = tb.sumDelta(key, 1, 12, true)
	assert.False(t, ok, "a monotonic sum that went down was reset")
	d, ok = tb.sumDelta(key, 1, 11, false)
	assert.True(t, ok, "a non-monotonic sum may go down")
	assert.InDelta(t, -1, d, 0)
	_, ok = tb.sumDelta(key, 2, 20, false)
	assert.False(t, ok, "a new start time is a new series")

	h := []byte("h")
	_, _, ok = tb.histogramDelta(h, 1, 3, 1.5, []uint64{1, 2, 0})
	assert.False(t, ok, "first point")
	counts := []uint64{2, 4, 1}
	dc, ds, ok := tb.histogramDelta(h, 1, 7, 4, counts)
	require.True(t, ok)
	assert.InDelta(t, 4, dc, 0)
	assert.InDelta(t, 2.5, ds, 1e-12)
	assert.Equal(t, []uint64{1, 2, 1}, counts, "bucket deltas in place")
	_, _, ok = tb.histogramDelta(h, 1, 8, 5, []uint64{2, 4, 1, 1})
	assert.False(t, ok, "another bucket layout")
	_, _, ok = tb.histogramDelta(h, 1, 9, 6, []uint64{2, 3, 3, 1})
	assert.False(t, ok, "a bucket that went down")
}

// TestScoringAllocatesNothing: in steady state, a record (log record,
// span, metric point) that passes unflagged costs no allocation: a batch
// of 64 allocates what a batch of 4 does (the batch's own telemetry), for
// each signal (metrics with gauges, cumulative sums and
// cumulative histograms).
func TestScoringAllocatesNothing(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts are not meaningful under -cover or -race")
	}
	for _, sig := range []struct {
		name  string
		batch func(t *testing.T, n int) func()
	}{{signalLogs, logsBatch}, {signalTraces, spansBatch}, {signalMetrics, metricsBatchOf}} {
		perBatch := map[int]float64{}
		for _, n := range []int{4, 64} {
			run := sig.batch(t, n)
			for range 400 { // past warm-up and calibration
				run()
			}
			perBatch[n] = testing.AllocsPerRun(50, run)
		}
		// The detector's own tolerance (cbad's steady-state test): a
		// closing drift window may allocate about once per window.
		perRecord := (perBatch[64] - perBatch[4]) / 60
		assert.Less(t, perRecord, 0.05, "%s: allocations per record (%v per batch of 4, %v per batch of 64)",
			sig.name, perBatch[4], perBatch[64])
	}
}

func logsBatch(t *testing.T, n int) func() {
	e := newTestEngine(t, testConfig(), logsForm{})
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i := range n {
		lr := lrs.AppendEmpty()
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.Body().SetStr([]string{"GET /cart 200", "GET /pay 200"}[i%2])
	}
	return func() { _, _ = e.processLogs(context.Background(), ld) }
}

func spansBatch(t *testing.T, n int) func() {
	e := newTestEngine(t, testConfig(), tracesForm{})
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	// Half of the spans call a span of another service (the edge join and
	// the gap's series run too).
	callee := td.ResourceSpans().AppendEmpty()
	callee.Resource().Attributes().PutStr("service.name", "payment")
	children := callee.ScopeSpans().AppendEmpty().Spans()
	for i := range n {
		sp := spans.AppendEmpty()
		sp.SetName("GET /cart")
		sp.SetStartTimestamp(1_000_000)
		sp.SetEndTimestamp(3_000_000)
		sp.SetTraceID(pcommon.TraceID{15: byte(i)})
		sp.SetSpanID(pcommon.SpanID{0, byte(i), 1})
		if i%2 == 0 {
			ch := children.AppendEmpty()
			ch.SetName("POST /charge")
			ch.SetStartTimestamp(1_500_000)
			ch.SetEndTimestamp(2_500_000)
			ch.SetTraceID(sp.TraceID())
			ch.SetSpanID(pcommon.SpanID{0, byte(i), 2})
			ch.SetParentSpanID(sp.SpanID())
		}
	}
	return func() { _, _ = e.processTraces(context.Background(), td) }
}

// metricsBatchOf returns a batch of n/4 gauges, n/4 cumulative sums and
// n/2 cumulative histograms whose traffic is the same every interval.
func metricsBatchOf(t *testing.T, n int) func() {
	cfg := testConfig()
	cfg.Metrics.AnnotateDataPoints = true // companion points are new pdata by design
	e := newTestEngine(t, cfg, metricsForm{})
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	var advance []func(step int)
	for i := range n / 4 {
		g := ms.AppendEmpty()
		g.SetName("cpu")
		gp := g.SetEmptyGauge().DataPoints().AppendEmpty()
		gp.Attributes().PutInt("cpu", int64(i))
		gp.SetDoubleValue(0.5)
		c := ms.AppendEmpty()
		c.SetName("requests")
		sum := c.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		cp := sum.DataPoints().AppendEmpty()
		cp.Attributes().PutInt("shard", int64(i))
		h := ms.AppendEmpty()
		h.SetName("latency")
		hist := h.SetEmptyHistogram()
		hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		hp := hist.DataPoints().AppendEmpty()
		hp.Attributes().PutInt("shard", int64(i))
		hp.ExplicitBounds().FromRaw([]float64{0.1, 1})
		hp.BucketCounts().FromRaw([]uint64{0, 0, 0})
		advance = append(advance, func(step int) {
			cp.SetIntValue(int64(100 * step))
			hp.SetCount(uint64(10 * step))
			hp.SetSum(float64(3 * step))
			hp.BucketCounts().SetAt(0, uint64(5*step))
			hp.BucketCounts().SetAt(1, uint64(5*step))
		})
	}
	step := 0
	return func() {
		step++
		for _, a := range advance {
			a(step)
		}
		_, _ = e.processMetrics(context.Background(), md)
	}
}
