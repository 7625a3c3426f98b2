package driftlockprocessor

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/plogtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/driftlock/driftlock/internal/cbad"
)

func newTestEngine(t *testing.T, cfg *Config, form signalForm) *engine {
	t.Helper()
	e, err := newEngine(testSettings(), cfg, form)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.shutdown(context.Background())) })
	return e
}

func TestStreamKey(t *testing.T) {
	cfg := testConfig()
	e := newTestEngine(t, cfg, logsForm{})
	s := getScratch()
	defer putScratch(s)
	res := pcommon.NewMap()
	res.PutStr("service.name", "checkout")
	rec := pcommon.NewMap()
	assert.Equal(t, "logs/checkout", e.streamKey(s, rec, res, "scope"))
	rec.PutStr("service.name", "canary") // the record's own attribute wins
	assert.Equal(t, "logs/canary", e.streamKey(s, rec, res, "scope"))
	assert.Equal(t, "logs/-", e.streamKey(s, pcommon.NewMap(), pcommon.NewMap(), ""))

	cfg2 := testConfig()
	cfg2.StreamBy = []string{"service.name", "k8s.namespace.name"}
	cfg2.IncludeScopeName = true
	e2 := newTestEngine(t, cfg2, tracesForm{})
	res.PutStr("k8s.namespace.name", "prod")
	assert.Equal(t, "traces/checkout/prod/otelhttp", e2.streamKey(s, pcommon.NewMap(), res, "otelhttp"))

	// Interned: the same key is the same string, and building it does not allocate.
	allocs := testing.AllocsPerRun(100, func() { _ = e.streamKey(s, rec, res, "scope") })
	assert.Zero(t, allocs)
}

func TestCanonicalLogRecord(t *testing.T) {
	cfg := testConfig()
	cfg.Logs.Attributes = []string{"http.route", "absent"}
	e := newTestEngine(t, cfg, logsForm{})
	s := getScratch()
	defer putScratch(s)

	lr := plog.NewLogRecord()
	lr.SetSeverityText("WARN")
	m := lr.Body().SetEmptyMap()
	m.PutStr("z", "last")
	m.PutInt("a", 1)
	m.PutEmptyMap("m").PutBool("k", true)
	m.PutEmptySlice("s").FromRaw([]any{1.5, "x"})
	lr.Attributes().PutStr("http.route", "/pay")
	lr.Attributes().PutStr("ignored", "x")
	got := string(e.appendLogRecord(nil, s, lr, 1<<10))
	assert.Equal(t, "WARN {a=1 m={k=true} s=[1.5 x] z=last} http.route=/pay", got)

	lr.Body().SetEmptyBytes().FromRaw([]byte{0xca, 0xfe})
	assert.Equal(t, "WARN cafe http.route=/pay", string(e.appendLogRecord(nil, s, lr, 1<<10)))

	// Output is bounded by the limit, however large the body.
	lr.Body().SetStr(strings.Repeat("x", 1<<20))
	assert.LessOrEqual(t, len(e.appendLogRecord(nil, s, lr, 4096)), 4096+64)

	// Deep nesting is cut off instead of recursing without bound.
	deep := lr.Body().SetEmptyMap()
	for range 100 {
		deep = deep.PutEmptyMap("d")
	}
	out := string(e.appendLogRecord(nil, s, lr, 1<<16))
	assert.Contains(t, out, "{...}")
	assert.Empty(t, s.keys, "key scratch must be restored")
}

func TestCanonicalSpan(t *testing.T) {
	e := newTestEngine(t, testConfig(), tracesForm{})
	s := getScratch()
	defer putScratch(s)
	sp := ptrace.NewSpan()
	sp.SetName("GET /cart")
	sp.SetKind(ptrace.SpanKindServer)
	sp.Status().SetCode(ptrace.StatusCodeError)
	sp.SetStartTimestamp(1_000_000_000)
	sp.SetEndTimestamp(1_000_000_000 + 3_000_000) // 3 ms = 3000 us: Len64 = 12
	sp.Attributes().PutInt("http.response.status_code", 500)
	sp.Attributes().PutStr("http.route", "/cart")
	sp.Attributes().PutStr("user.id", "u-1") // not configured
	// With traces.latency (the default) the duration is a number, not text.
	got := string(e.appendSpan(nil, s, sp, 1<<10))
	assert.Equal(t, "GET /cart kind=Server status=Error http.route=/cart http.response.status_code=500", got)
	cfg := testConfig()
	cfg.Traces.Latency = false
	e = newTestEngine(t, cfg, tracesForm{})
	got = string(e.appendSpan(nil, s, sp, 1<<10))
	assert.Equal(t, "GET /cart ~m kind=Server status=Error http.route=/cart http.response.status_code=500", got)
	assert.Equal(t, int(plog.SeverityNumberError), spanSeverity(sp))
	assert.Equal(t, byte('a'), durationBucket(5, 5))
	assert.Equal(t, byte('a'), durationBucket(9, 5))
	assert.Equal(t, byte('b'), durationBucket(0, 1500))
}

func TestBucketQuantile(t *testing.T) {
	bounds := pcommon.NewFloat64Slice()
	bounds.FromRaw([]float64{1, 2, 4})
	q, ok := bucketQuantile(bounds, []uint64{0, 10, 0, 0}, 0.5)
	require.True(t, ok)
	assert.InDelta(t, 1.5, q, 1e-9) // halfway through (1,2]
	q, _ = bucketQuantile(bounds, []uint64{10, 0, 0, 0}, 0.9)
	assert.InDelta(t, 1, q, 1e-9) // first bucket: its upper edge
	q, _ = bucketQuantile(bounds, []uint64{0, 0, 0, 5}, 0.95)
	assert.InDelta(t, 4, q, 1e-9) // overflow bucket: the last bound
	_, ok = bucketQuantile(bounds, []uint64{0, 0, 0, 0}, 0.5)
	assert.False(t, ok)
	_, ok = bucketQuantile(bounds, []uint64{1, 2}, 0.5)
	assert.False(t, ok, "mismatched bucket counts")
}

// TestMetricValuesFedToDetector checks what each series feeds the detector:
// gauges as is, cumulative sums and histograms as deltas (first point and
// resets skipped), histogram count, sum and quantile as their own streams.
func TestMetricValuesFedToDetector(t *testing.T) {
	cfg := testConfig()
	e := newTestEngine(t, cfg, metricsForm{})
	type call struct {
		key string
		v   float64
	}
	var calls []call
	e.scoreValue = func(key, _ string, _ time.Time, v float64) cbad.Result {
		calls = append(calls, call{key, v})
		return cbad.Result{PValue: 1, Calibrating: true}
	}
	_, err := e.processMetrics(context.Background(), goldenMetrics())
	require.NoError(t, err)
	want := []call{
		{"metrics/checkout/process.cpu.utilization{cpu=0}#value", 0.42},
		{"metrics/checkout/http.server.request.count{http.route=/cart}#value", 30},
		{"metrics/checkout/queue.enqueued{}#value", 7},
		{"metrics/checkout/http.server.request.duration{http.route=/cart}#count", 7},
		{"metrics/checkout/http.server.request.duration{http.route=/cart}#sum", 7 * 0.3},
		// delta buckets {1,4,2,0}: rank 0.95*7=6.65 falls in (0.5,1] at (6.65-5)/2.
		{"metrics/checkout/http.server.request.duration{http.route=/cart}#quantile", 0.5 + 0.5*(6.65-5)/2},
	}
	require.Len(t, calls, len(want))
	for i := range want {
		assert.Equal(t, want[i].key, calls[i].key)
		assert.InDelta(t, want[i].v, calls[i].v, 1e-9, want[i].key)
	}

	// A counter reset (value below the previous one) restarts the series.
	calls = nil
	md := pmetric.NewMetrics()
	sum := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	sum.SetName("c")
	s := sum.SetEmptySum()
	s.SetIsMonotonic(true)
	s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for _, v := range []int64{10, 15, 3, 8} {
		s.DataPoints().AppendEmpty().SetIntValue(v)
	}
	_, err = e.processMetrics(context.Background(), md)
	require.NoError(t, err)
	require.Len(t, calls, 2)
	assert.InDelta(t, 5, calls[0].v, 0)
	assert.InDelta(t, 5, calls[1].v, 0)
}

// TestMetricNaNSkipped: NaN and infinite points are not scored (they mean
// "no data" in many sources) and stay untouched.
func TestMetricNaNSkipped(t *testing.T) {
	e := newTestEngine(t, testConfig(), metricsForm{})
	var calls int
	e.scoreValue = func(string, string, time.Time, float64) cbad.Result {
		calls++
		return cbad.Result{PValue: 1, Calibrating: true}
	}
	md := pmetric.NewMetrics()
	g := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	g.SetName("latency.p99")
	dps := g.SetEmptyGauge().DataPoints()
	for _, v := range []float64{math.NaN(), math.Inf(1), 0.25, math.Inf(-1), 0.5} {
		dps.AppendEmpty().SetDoubleValue(v)
	}
	_, err := e.processMetrics(context.Background(), md)
	require.NoError(t, err)
	assert.Equal(t, 2, calls, "only the two finite points are scored")
}

func TestSeriesTableBounded(t *testing.T) {
	tb := newSeriesTable(100)
	for i := range 10_000 {
		tb.get(fmt.Appendf(nil, "series-%d", i))
	}
	assert.LessOrEqual(t, len(tb.m), 100)
}

// TestCompanionMetrics drives the companion path with a verdict the test
// chooses, so it checks the emitted points whatever the detector scores.
func TestCompanionMetrics(t *testing.T) {
	e := newTestEngine(t, testConfig(), metricsForm{})
	e.scoreValue = func(key, _ string, _ time.Time, v float64) cbad.Result {
		if strings.HasSuffix(key, "#quantile") {
			return cbad.Result{Score: 9.5, PValue: 0.001, Anomaly: true, Explanation: "p95 latency far above baseline"}
		}
		return cbad.Result{Score: 0.1, PValue: 0.6}
	}
	md := goldenMetrics()
	before := md.ResourceMetrics().At(0).ScopeMetrics().Len()
	_, err := e.processMetrics(context.Background(), md)
	require.NoError(t, err)
	sms := md.ResourceMetrics().At(0).ScopeMetrics()
	require.Equal(t, before+1, sms.Len(), "one companion scope appended, nothing else")
	comp := sms.At(sms.Len() - 1)
	assert.Equal(t, "github.com/driftlock/driftlock/processor/driftlockprocessor", comp.Scope().Name())
	require.Equal(t, 2, comp.Metrics().Len())
	score := comp.Metrics().At(0)
	assert.Equal(t, companionScore, score.Name())
	require.Equal(t, 1, score.Gauge().DataPoints().Len(), "annotate=anomalies: only the anomalous statistic")
	p := score.Gauge().DataPoints().At(0)
	assert.InDelta(t, 9.5, p.DoubleValue(), 0)
	assert.Equal(t, map[string]any{
		"http.route": "/cart", attrMetricName: "http.server.request.duration",
		attrStream: "metrics/checkout/http.server.request.duration", attrStatistic: statQuantile,
	}, p.Attributes().AsRaw())
	an := comp.Metrics().At(1)
	assert.Equal(t, companionAnomalies, an.Name())
	assert.Equal(t, pmetric.AggregationTemporalityDelta, an.Sum().AggregationTemporality())
	assert.True(t, an.Sum().IsMonotonic())
	require.Equal(t, 1, an.Sum().DataPoints().Len())
	assert.Equal(t, int64(1), an.Sum().DataPoints().At(0).IntValue())
	// The original data points are untouched.
	h := sms.At(0).Metrics().At(3).Histogram().DataPoints().At(1)
	assert.Equal(t, map[string]any{"http.route": "/cart"}, h.Attributes().AsRaw())

	// A second driftlock downstream ignores the companion scope.
	var seen []string
	e.scoreValue = func(key, _ string, _ time.Time, _ float64) cbad.Result {
		seen = append(seen, key)
		return cbad.Result{PValue: 1, Calibrating: true}
	}
	_, err = e.processMetrics(context.Background(), md)
	require.NoError(t, err)
	for _, k := range seen {
		assert.NotContains(t, k, "driftlock.")
	}
}

// TestAnnotateAttributes checks the typed attributes of an anomalous record
// with a drifting window.
func TestAnnotateAttributes(t *testing.T) {
	cfg := testConfig()
	cfg.IncludeConfigHash = true
	e := newTestEngine(t, cfg, logsForm{})
	m := pcommon.NewMap()
	m.PutStr("keep", "me")
	r := cbad.Result{Score: 7.25, PValue: 0.002, Anomaly: true, Explanation: "unseen template",
		Window: &cbad.WindowResult{NCD: 0.61, CompressionRatio: 0.3, Entropy: 4.2, Drift: true}}
	require.True(t, e.wants(&r))
	e.annotate(m, "logs/checkout", &r)
	assert.Equal(t, map[string]any{
		"keep": "me", attrAnomaly: true, attrStream: "logs/checkout", attrScore: 7.25, attrPValue: 0.002,
		attrExplanation: "unseen template", attrConfigHash: e.configHash, attrConfig: e.configDoc,
		attrDrift: true, attrNCD: 0.61, attrCompressionRatio: 0.3, attrEntropy: 4.2,
	}, m.AsRaw())
	assert.Len(t, e.configHash, 16)
	assert.Contains(t, e.configDoc, `"stream_by":["service.name"]`)
	v, _ := m.Get(attrScore)
	assert.Equal(t, pcommon.ValueTypeDouble, v.Type(), "numbers are typed, never strings")

	normal := cbad.Result{Score: 1, PValue: 0.5}
	assert.False(t, e.wants(&normal), "annotate=anomalies leaves normal records alone")
	closedNoDrift := cbad.Result{Score: 1, PValue: 0.5, Window: &cbad.WindowResult{NCD: 0.1}}
	assert.False(t, e.wants(&closedNoDrift))
}

func TestTelemetry(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := testSettings()
	set.TelemetrySettings = tel.NewTelemetrySettings()
	sink := new(consumertest.LogsSink)
	cfg := testConfig()
	cfg.Detector.Warmup = 128
	p := startLogs(t, cfg, sink, set, componenttest.NewNopHost())
	ld := genLogs(rand.New(rand.NewPCG(1, 2)), 3, 40, -1)
	require.NoError(t, p.ConsumeLogs(context.Background(), ld))

	sumFor := func(name string) int64 {
		m, err := tel.GetMetric(name)
		require.NoError(t, err, name)
		var total int64
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			sig, _ := dp.Attributes.Value("signal")
			assert.Equal(t, "logs", sig.AsString())
			total += dp.Value
		}
		return total
	}
	assert.Equal(t, int64(120), sumFor("otelcol_processor_driftlock_records_scored"))
	// 40 records per stream is below the warm-up of 128: all calibrating.
	assert.Equal(t, int64(120), sumFor("otelcol_processor_driftlock_calibrating_records"))
	m, err := tel.GetMetric("otelcol_processor_driftlock_scoring_duration")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), m.Data.(metricdata.Histogram[float64]).DataPoints[0].Count)
	m, err = tel.GetMetric("otelcol_processor_driftlock_active_streams")
	require.NoError(t, err)
	g := m.Data.(metricdata.Gauge[int64]).DataPoints
	require.Len(t, g, 1)
	sig, _ := g[0].Attributes.Value("signal")
	assert.Equal(t, "logs", sig.AsString())
	_, err = tel.GetMetric("otelcol_processor_driftlock_evicted_streams")
	require.NoError(t, err)
}

// genLogs builds services*perService log records from a few templates with
// volatile values, interleaving services; seq numbers them. When novelAt >=
// 0, record novelAt of service 0 is a never-seen kind of line.
func genLogs(rng *rand.Rand, services, perService, novelAt int) plog.Logs {
	ld := plog.NewLogs()
	sls := make([]plog.LogRecordSlice, services)
	for i := range services {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", i))
		sls[i] = rl.ScopeLogs().AppendEmpty().LogRecords()
	}
	for n := range perService {
		for i := range services {
			lr := sls[i].AppendEmpty()
			lr.SetTimestamp(pcommon.Timestamp(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano() + int64(n)*1e6))
			lr.SetSeverityNumber(plog.SeverityNumberInfo)
			lr.SetSeverityText("INFO")
			lr.Attributes().PutInt("seq", int64(n))
			if i == 0 && n == novelAt {
				lr.SetSeverityNumber(plog.SeverityNumberFatal)
				lr.SetSeverityText("FATAL")
				lr.Body().SetStr("panic: runtime error: invalid memory address or nil pointer dereference in PaymentGateway.charge goroutine 17 [running]")
				continue
			}
			lr.Body().SetStr(normalLine(rng))
		}
	}
	return ld
}

// normalLine draws one of five templates. Their volatile parts are the kinds
// the core's canonicalizer masks (numbers of 4+ digits, UUIDs, IPs, digits
// inside identifiers): 1-3 digit numbers are kept as tokens by the core, so a
// template with a random small number is, to it, a stream of new tokens;
// and a hex id that happens to be all digits is masked as <num>, not <hex>.
func normalLine(rng *rand.Rand) string {
	switch rng.IntN(5) {
	case 0:
		return fmt.Sprintf("GET /api/orders/%d 200 %dms", 10000+rng.IntN(90000), rng.IntN(50))
	case 1:
		return fmt.Sprintf("order %d placed by user %d total=%d.%02d", 100000+rng.IntN(900000), 10000+rng.IntN(90000), 1000+rng.IntN(9000), rng.IntN(100))
	case 2:
		return fmt.Sprintf("cache miss for key sess-%d on node-%d", rng.IntN(100000), rng.IntN(64))
	case 3:
		return fmt.Sprintf("connected to db replica 10.0.%d.%d pool size 16", rng.IntN(255), rng.IntN(255))
	default:
		// "a" keeps the id from being all digits (see above).
		return fmt.Sprintf("request a%015x completed in %d us", rng.Uint64()>>4, 1000+rng.IntN(9000))
	}
}

// stripDriftlock removes driftlock.* attributes, leaving what the processor
// must not have changed.
func stripDriftlock(ld plog.Logs) {
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				lr.Attributes().RemoveIf(func(k string, _ pcommon.Value) bool { return strings.HasPrefix(k, "driftlock.") })
			}
		}
	}
}

// TestConcurrentBatchesPassThrough runs many batches at once (use -race):
// every record arrives, in its batch's order, with nothing but driftlock.*
// attributes changed.
func TestConcurrentBatchesPassThrough(t *testing.T) {
	cfg := testConfig()
	cfg.Annotate = AnnotateAll
	cfg.Detector.Warmup = 16
	cfg.Detector.CalibrationSize = 16
	cfg.Detector.BaselineSize = 64
	cfg.Detector.Hop = 16
	sink := new(consumertest.LogsSink)
	p := startLogs(t, cfg, sink, testSettings(), componenttest.NewNopHost())

	const workers, batches = 4, 25
	inputs := make([][]plog.Logs, workers)
	for w := range workers {
		rng := rand.New(rand.NewPCG(uint64(w), 7))
		for range batches {
			inputs[w] = append(inputs[w], genLogs(rng, 3, 20, -1))
		}
	}
	originals := map[string]plog.Logs{}
	var wg sync.WaitGroup
	for w := range workers {
		for b := range batches {
			ld := inputs[w][b]
			ld.ResourceLogs().At(0).Resource().Attributes().PutStr("batch", fmt.Sprintf("%d-%d", w, b))
			c := plog.NewLogs()
			ld.CopyTo(c)
			originals[fmt.Sprintf("%d-%d", w, b)] = c
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, ld := range inputs[w] {
				assert.NoError(t, p.ConsumeLogs(context.Background(), ld))
			}
		}()
	}
	wg.Wait()
	require.Len(t, sink.AllLogs(), workers*batches)
	assert.Equal(t, workers*batches*60, sink.LogRecordCount())
	annotated := 0
	for _, got := range sink.AllLogs() {
		id, ok := got.ResourceLogs().At(0).Resource().Attributes().Get("batch")
		require.True(t, ok)
		for _, rl := range got.ResourceLogs().All() {
			for _, lr := range rl.ScopeLogs().At(0).LogRecords().All() {
				if _, ok := lr.Attributes().Get(attrStream); ok {
					annotated++
				}
			}
		}
		stripDriftlock(got)
		require.NoError(t, plogtest.CompareLogs(originals[id.Str()], got), id.Str())
	}
	assert.Equal(t, workers*batches*60, annotated, "annotate=all: every record carries its verdict")
}

// TestDurationBucketLongSpans: every duration, however long, is named by
// one ASCII letter (the bucket ends up in a UTF-8 attribute), longer spans
// by later letters.
func TestDurationBucketLongSpans(t *testing.T) {
	const second = uint64(time.Second)
	assert.Equal(t, byte('z'), durationBucket(0, 20*second))
	assert.Equal(t, byte('A'), durationBucket(0, 40*second))
	assert.Equal(t, byte('G'), durationBucket(0, 3600*second), "one hour")
	assert.Equal(t, byte('Z'), durationBucket(0, math.MaxUint64), "the longest span")
	prev := byte(0)
	for shift := 0; shift < 64; shift++ {
		b := durationBucket(0, 1<<shift)
		isLetter := (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')
		require.True(t, isLetter, "2^%d ns: bucket %q (0x%x) is not an ASCII letter", shift, b, b)
		rank := b - 'a'
		if b <= 'Z' {
			rank = b - 'A' + 26
		}
		assert.GreaterOrEqual(t, rank, prev, "2^%d ns: buckets grow with the duration", shift)
		prev = rank
	}

	// The span line of a one-hour span is valid UTF-8 (the letter is in the
	// text only with traces.latency off).
	cfg := testConfig()
	cfg.Traces.Latency = false
	e := newTestEngine(t, cfg, tracesForm{})
	s := getScratch()
	defer putScratch(s)
	sp := ptrace.NewSpan()
	sp.SetName("nightly batch")
	sp.SetStartTimestamp(pcommon.Timestamp(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()))
	sp.SetEndTimestamp(sp.StartTimestamp() + pcommon.Timestamp(time.Hour))
	line := e.appendSpan(nil, s, sp, 1<<10)
	assert.True(t, utf8.Valid(line), "%q", line)
	assert.Equal(t, "nightly batch ~G kind=Unspecified status=Unset", string(line))
}
