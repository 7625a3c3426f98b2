package driftlockprocessor

import (
	"bytes"
	"context"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// hostileConfig is a detector small enough that the fuzzers reach the
// scoring (not only the calibrating) path after a few inputs.
func hostileConfig() *Config {
	cfg := testConfig()
	cfg.Annotate = AnnotateAll
	cfg.Logs.Attributes = []string{"http.route", "nested"}
	cfg.Traces.Attributes = append(cfg.Traces.Attributes, "nested")
	cfg.Detector.Warmup = 4
	cfg.Detector.CalibrationSize = 16
	cfg.Detector.BaselineSize = 16
	cfg.Detector.NumericBaselineSize = 16
	cfg.Detector.NumericCalibrationSize = 16
	cfg.Detector.Hop = 4
	cfg.Detector.MaxStreams = 64
	cfg.Metrics.MaxSeries = 64
	return cfg
}

// nestMap puts a map nested depth levels deep under key "nested" in m.
func nestMap(m pcommon.Map, depth int) {
	for range depth {
		m = m.PutEmptyMap("nested")
	}
	m.PutStr("leaf", "bottom")
}

// FuzzConsumeTraces feeds arbitrary OTLP trace payloads (decoded from the
// fuzzer's bytes with the protobuf unmarshaler) through the processor: it
// must not panic, and every span must come out.
func FuzzConsumeTraces(f *testing.F) {
	seed, err := golden.ReadTraces("testdata/traces/input.yaml")
	require.NoError(f, err)
	m := &ptrace.ProtoMarshaler{}
	b, err := m.MarshalTraces(seed)
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte{})
	odd := ptrace.NewTraces()
	odd.ResourceSpans().AppendEmpty() // empty resource, no scopes
	sp := odd.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName("\xff\xfe not utf-8 \x00")
	nestMap(sp.Attributes(), 100)
	sp.Attributes().PutStr("service.name", strings.Repeat("s", 4096))
	b, err = m.MarshalTraces(odd)
	require.NoError(f, err)
	f.Add(b)

	sink := new(consumertest.TracesSink)
	p := startTraces(f, hostileConfig(), sink)
	u := &ptrace.ProtoUnmarshaler{}
	f.Fuzz(func(t *testing.T, data []byte) {
		td, err := u.UnmarshalTraces(data)
		if err != nil {
			return // not OTLP: the receiver would have rejected it
		}
		want := td.SpanCount()
		sink.Reset()
		require.NoError(t, p.ConsumeTraces(context.Background(), td))
		require.Equal(t, want, sink.SpanCount())
	})
}

// FuzzConsumeMetrics feeds arbitrary OTLP metric payloads through the
// processor: no panic, and no data point goes missing (companion metrics
// may add points, never remove them).
func FuzzConsumeMetrics(f *testing.F) {
	seed, err := golden.ReadMetrics("testdata/metrics/input.yaml")
	require.NoError(f, err)
	m := &pmetric.ProtoMarshaler{}
	b, err := m.MarshalMetrics(seed)
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte{})
	odd := pmetric.NewMetrics()
	odd.ResourceMetrics().AppendEmpty()
	sm := odd.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	g := sm.Metrics().AppendEmpty()
	g.SetName("\xff bad name")
	dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetDoubleValue(1e308)
	nestMap(dp.Attributes(), 100)
	h := sm.Metrics().AppendEmpty()
	h.SetName("hist")
	hdp := h.SetEmptyHistogram().DataPoints().AppendEmpty()
	hdp.ExplicitBounds().FromRaw([]float64{1, 0.5}) // unsorted bounds
	hdp.BucketCounts().FromRaw([]uint64{1})         // wrong number of buckets
	s := sm.Metrics().AppendEmpty()
	s.SetName("sum")
	s.SetEmptySum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	s.Sum().DataPoints().AppendEmpty().SetIntValue(-1)
	b, err = m.MarshalMetrics(odd)
	require.NoError(f, err)
	f.Add(b)

	sink := new(consumertest.MetricsSink)
	p := startMetrics(f, hostileConfig(), sink)
	u := &pmetric.ProtoUnmarshaler{}
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := u.UnmarshalMetrics(data)
		if err != nil {
			return
		}
		want := md.DataPointCount()
		sink.Reset()
		require.NoError(t, p.ConsumeMetrics(context.Background(), md))
		got := 0
		for _, out := range sink.AllMetrics() {
			got += out.DataPointCount()
		}
		require.GreaterOrEqual(t, got, want)
	})
}

// allocDuring returns the bytes allocated while fn ran.
func allocDuring(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestHostileRecords sends hostile records through all three signals: 10
// MiB bodies, binary bodies, invalid UTF-8, attribute maps nested 100 deep,
// empty resources. Nothing may panic or go missing, and the allocation per
// call must stay a small multiple of the input (the detector scores at most
// max_record_bytes of a record, so a 10 MiB body must not be copied around).
func TestHostileRecords(t *testing.T) {
	const big = 10 << 20
	rng := rand.New(rand.NewPCG(7, 7))
	binary := make([]byte, 64<<10)
	for i := range binary {
		binary[i] = byte(rng.UintN(256))
	}
	hugeText := strings.Repeat("GET /api/v1/items?id=12345 200 ", big/31+1)[:big]
	invalid := string(bytes.Repeat([]byte{0xff, 0xfe, 0xc3, 0x28, 'a', 0x00}, 1000))

	cfg := hostileConfig()
	ctx := context.Background()

	t.Run("logs", func(t *testing.T) {
		sink := new(consumertest.LogsSink)
		p := startLogs(t, cfg, sink, testSettings(), componenttest.NewNopHost())
		// Warm the stream up with ordinary records first so hostile ones
		// are scored, not only calibrated.
		warm := plog.NewLogs()
		wl := warm.ResourceLogs().AppendEmpty()
		wl.Resource().Attributes().PutStr("service.name", "hostile")
		for i := range 64 {
			wl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("request " + strconv.Itoa(i) + " ok")
		}
		require.NoError(t, p.ConsumeLogs(ctx, warm))

		ld := plog.NewLogs()
		ld.ResourceLogs().AppendEmpty() // empty resource
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", "hostile")
		lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
		lrs.AppendEmpty().Body().SetStr(hugeText)
		lrs.AppendEmpty().Body().SetEmptyBytes().FromRaw(binary)
		lrs.AppendEmpty().Body().SetStr(invalid)
		deep := lrs.AppendEmpty()
		deep.Body().SetStr("deep attributes")
		nestMap(deep.Attributes(), 100)
		nestMap(lrs.AppendEmpty().Body().SetEmptyMap(), 100)
		lrs.AppendEmpty().Attributes().PutStr("service.name", invalid) // invalid UTF-8 stream key
		want := ld.LogRecordCount()

		alloc := allocDuring(func() { require.NoError(t, p.ConsumeLogs(ctx, ld)) })
		t.Logf("logs: %d hostile records, %.1f MiB allocated", want, float64(alloc)/(1<<20))
		require.Equal(t, 64+want, sink.LogRecordCount())
		require.Less(t, alloc, uint64(big), "a 10 MiB body must not be copied whole")
		out := sink.AllLogs()[1].ResourceLogs().At(1).ScopeLogs().At(0).LogRecords()
		require.Equal(t, big, len(out.At(0).Body().Str()), "the body passes through unchanged")
		_, scored := out.At(0).Attributes().Get(attrCalibrating)
		require.True(t, scored, "the 10 MiB record was scored")
	})

	t.Run("traces", func(t *testing.T) {
		sink := new(consumertest.TracesSink)
		p := startTraces(t, cfg, sink)
		td := ptrace.NewTraces()
		td.ResourceSpans().AppendEmpty()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "hostile")
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		spans.AppendEmpty().SetName(hugeText)
		s := spans.AppendEmpty()
		s.SetName(invalid)
		s.Attributes().PutEmptyBytes("http.route").FromRaw(binary)
		nestMap(spans.AppendEmpty().Attributes(), 100)
		ev := spans.AppendEmpty()
		ev.Events().AppendEmpty().SetName(hugeText[:1<<20])
		want := td.SpanCount()
		alloc := allocDuring(func() { require.NoError(t, p.ConsumeTraces(ctx, td)) })
		t.Logf("traces: %d hostile spans, %.1f MiB allocated", want, float64(alloc)/(1<<20))
		require.Equal(t, want, sink.SpanCount())
		require.Less(t, alloc, uint64(big))
	})

	t.Run("metrics", func(t *testing.T) {
		sink := new(consumertest.MetricsSink)
		p := startMetrics(t, cfg, sink)
		md := pmetric.NewMetrics()
		md.ResourceMetrics().AppendEmpty()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", invalid)
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		g := ms.AppendEmpty()
		g.SetName(hugeText[:1<<20])
		dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetDoubleValue(1)
		dp.Attributes().PutEmptyBytes("blob").FromRaw(binary)
		nestMap(dp.Attributes(), 100)
		ms.AppendEmpty().SetName("no data") // metric of no type
		want := md.DataPointCount()
		alloc := allocDuring(func() { require.NoError(t, p.ConsumeMetrics(ctx, md)) })
		t.Logf("metrics: %d hostile points, %.1f MiB allocated", want, float64(alloc)/(1<<20))
		got := 0
		for _, out := range sink.AllMetrics() {
			got += out.DataPointCount()
		}
		require.GreaterOrEqual(t, got, want)
		require.Less(t, alloc, uint64(big))
	})
}
