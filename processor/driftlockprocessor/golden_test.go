package driftlockprocessor

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/plogtest"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/ptracetest"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// -update rewrites testdata/*/input.yaml (from the generators below) and
// expected_*.yaml (from the processor's output). Review the diff.
var update = flag.Bool("update", false, "rewrite golden files in testdata")

// The golden inputs are shorter than the detector's warm-up, so every stream
// is still calibrating: the expected output depends only on the processor's
// plumbing (which records get which driftlock.* attributes, what is left
// untouched), not on the detector's scores, and stays valid as the core's
// scoring is tuned. Detection itself is tested in detection_test.go.

var goldenTime = pcommon.NewTimestampFromTime(time.Date(2023, 1, 29, 8, 43, 4, 0, time.UTC))

func goldenLogs() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("app.logger")
	add := func(sev plog.SeverityNumber, text string, body func(pcommon.Value), attrs map[string]any) {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(goldenTime + pcommon.Timestamp(sl.LogRecords().Len())*pcommon.Timestamp(time.Millisecond))
		lr.SetSeverityNumber(sev)
		lr.SetSeverityText(text)
		body(lr.Body())
		must(lr.Attributes().FromRaw(attrs))
	}
	str := func(s string) func(pcommon.Value) { return func(v pcommon.Value) { v.SetStr(s) } }
	add(plog.SeverityNumberInfo, "INFO", str("order 1234 placed by user 42"), map[string]any{"http.route": "/orders"})
	add(plog.SeverityNumberInfo, "INFO", str("order 1235 placed by user 43"), map[string]any{"http.route": "/orders"})
	add(plog.SeverityNumberWarn, "WARN", func(v pcommon.Value) {
		m := v.SetEmptyMap()
		m.PutStr("msg", "slow payment")
		m.PutInt("latency_ms", 2300)
		m.PutStr("gateway", "stripe")
	}, map[string]any{"http.route": "/pay"})
	add(plog.SeverityNumberError, "ERROR", func(v pcommon.Value) { v.SetEmptyBytes().FromRaw([]byte{0xde, 0xad, 0xbe, 0xef}) }, nil)
	add(plog.SeverityNumberUnspecified, "", func(pcommon.Value) {}, map[string]any{"service.name": "checkout-canary"})
	// A resource without service.name: its stream reads logs/-.
	rl2 := ld.ResourceLogs().AppendEmpty()
	rl2.Resource().Attributes().PutStr("host.name", "node-7")
	lr := rl2.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetObservedTimestamp(goldenTime)
	lr.Body().SetStr("kernel: eth0 link up")
	return ld
}

func goldenTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "frontend")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("otelhttp")
	add := func(name string, kind ptrace.SpanKind, code ptrace.StatusCode, dur time.Duration, attrs map[string]any) {
		sp := ss.Spans().AppendEmpty()
		n := byte(ss.Spans().Len())
		sp.SetTraceID(pcommon.TraceID{1, n})
		sp.SetSpanID(pcommon.SpanID{2, n})
		sp.SetName(name)
		sp.SetKind(kind)
		sp.Status().SetCode(code)
		sp.SetStartTimestamp(goldenTime)
		sp.SetEndTimestamp(goldenTime + pcommon.Timestamp(dur))
		must(sp.Attributes().FromRaw(attrs))
	}
	add("GET /cart", ptrace.SpanKindServer, ptrace.StatusCodeUnset, 12*time.Millisecond,
		map[string]any{"http.request.method": "GET", "http.route": "/cart", "http.response.status_code": 200, "user.id": "u-1"})
	add("SELECT carts", ptrace.SpanKindClient, ptrace.StatusCodeOk, 800*time.Microsecond,
		map[string]any{"db.system": "postgresql", "db.operation.name": "SELECT"})
	add("POST /checkout", ptrace.SpanKindServer, ptrace.StatusCodeError, 3*time.Second,
		map[string]any{"http.request.method": "POST", "http.route": "/checkout", "http.response.status_code": 500})
	rs2 := td.ResourceSpans().AppendEmpty()
	rs2.Resource().Attributes().PutStr("service.name", "payments")
	sp := rs2.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName("charge")
	sp.SetKind(ptrace.SpanKindInternal)
	sp.SetStartTimestamp(goldenTime)
	sp.SetEndTimestamp(goldenTime) // zero duration
	return td
}

func goldenMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	ms := rm.ScopeMetrics().AppendEmpty()
	ms.Scope().SetName("app.meter")
	t0, t1, t2 := goldenTime, goldenTime+pcommon.Timestamp(10*time.Second), goldenTime+pcommon.Timestamp(20*time.Second)

	g := ms.Metrics().AppendEmpty()
	g.SetName("process.cpu.utilization")
	dp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(t1)
	dp.SetDoubleValue(0.42)
	dp.Attributes().PutStr("cpu", "0")

	s := ms.Metrics().AppendEmpty()
	s.SetName("http.server.request.count")
	sum := s.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i, v := range []int64{100, 130} { // same series twice: the second is a delta of 30
		p := sum.DataPoints().AppendEmpty()
		p.SetStartTimestamp(t0)
		p.SetTimestamp([]pcommon.Timestamp{t1, t2}[i])
		p.SetIntValue(v)
		p.Attributes().PutStr("http.route", "/cart")
	}

	d := ms.Metrics().AppendEmpty()
	d.SetName("queue.enqueued")
	dsum := d.SetEmptySum()
	dsum.SetIsMonotonic(true)
	dsum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	p := dsum.DataPoints().AppendEmpty()
	p.SetStartTimestamp(t1)
	p.SetTimestamp(t2)
	p.SetIntValue(7)

	h := ms.Metrics().AppendEmpty()
	h.SetName("http.server.request.duration")
	h.SetUnit("s")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	for i, counts := range [][]uint64{{5, 10, 3, 1}, {6, 14, 5, 1}} {
		hp := hist.DataPoints().AppendEmpty()
		hp.SetStartTimestamp(t0)
		hp.SetTimestamp([]pcommon.Timestamp{t1, t2}[i])
		hp.ExplicitBounds().FromRaw([]float64{0.1, 0.5, 1})
		hp.BucketCounts().FromRaw(counts)
		var n uint64
		for _, c := range counts {
			n += c
		}
		hp.SetCount(n)
		hp.SetSum(float64(n) * 0.3)
		hp.Attributes().PutStr("http.route", "/cart")
	}

	sm := ms.Metrics().AppendEmpty()
	sm.SetName("rpc.latency.summary")
	sdp := sm.SetEmptySummary().DataPoints().AppendEmpty()
	sdp.SetTimestamp(t1)
	sdp.SetCount(3)
	sdp.SetSum(1.5)

	eh := ms.Metrics().AppendEmpty()
	eh.SetName("rpc.latency.exp")
	edp := eh.SetEmptyExponentialHistogram().DataPoints().AppendEmpty()
	edp.SetTimestamp(t1)
	edp.SetCount(2)
	edp.SetScale(2)
	edp.Positive().BucketCounts().FromRaw([]uint64{1, 1})
	return md
}

type goldenCase struct {
	name   string
	signal string
	mutate func(*Config)
	// same is true when the output must equal the input exactly.
	same bool
}

var goldenCases = []goldenCase{
	{name: "logs_anomalies", signal: "logs", same: true},
	{name: "logs_all", signal: "logs", mutate: func(c *Config) { c.Annotate = AnnotateAll }},
	{name: "logs_all_scope", signal: "logs", mutate: func(c *Config) {
		c.Annotate = AnnotateAll
		c.IncludeScopeName = true
		c.StreamBy = []string{"service.name", "host.name"}
	}},
	{name: "traces_anomalies", signal: "traces", same: true},
	{name: "traces_all", signal: "traces", mutate: func(c *Config) { c.Annotate = AnnotateAll }},
	{name: "metrics_companion", signal: "metrics", same: true},
	{name: "metrics_companion_all", signal: "metrics", same: true, mutate: func(c *Config) { c.Annotate = AnnotateAll }},
	{name: "metrics_datapoints_all", signal: "metrics", mutate: func(c *Config) {
		c.Annotate = AnnotateAll
		c.Metrics.AnnotateDataPoints = true
	}},
	{name: "logs_disabled", signal: "logs", same: true, mutate: func(c *Config) { c.Logs.Enabled = false }},
}

func TestGolden(t *testing.T) {
	if *update {
		writeGoldenInputs(t)
	}
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.mutate != nil {
				tc.mutate(cfg)
			}
			dir := filepath.Join("testdata", tc.signal)
			input := filepath.Join(dir, "input.yaml")
			expected := filepath.Join(dir, "expected_"+tc.name+".yaml")
			ctx := context.Background()
			switch tc.signal {
			case "logs":
				in, err := golden.ReadLogs(input)
				require.NoError(t, err)
				orig := plog.NewLogs()
				in.CopyTo(orig)
				sink := new(consumertest.LogsSink)
				p := startLogs(t, cfg, sink, testSettings(), componenttest.NewNopHost())
				require.NoError(t, p.ConsumeLogs(ctx, in))
				require.Len(t, sink.AllLogs(), 1)
				got := sink.AllLogs()[0]
				if *update {
					require.NoError(t, golden.WriteLogsToFile(expected, got))
				}
				want, err := golden.ReadLogs(expected)
				require.NoError(t, err)
				require.NoError(t, plogtest.CompareLogs(want, got))
				if tc.same {
					require.NoError(t, plogtest.CompareLogs(orig, got))
				}
			case "traces":
				in, err := golden.ReadTraces(input)
				require.NoError(t, err)
				orig := ptrace.NewTraces()
				in.CopyTo(orig)
				sink := new(consumertest.TracesSink)
				p := startTraces(t, cfg, sink)
				require.NoError(t, p.ConsumeTraces(ctx, in))
				require.Len(t, sink.AllTraces(), 1)
				got := sink.AllTraces()[0]
				if *update {
					require.NoError(t, golden.WriteTracesToFile(expected, got))
				}
				want, err := golden.ReadTraces(expected)
				require.NoError(t, err)
				require.NoError(t, ptracetest.CompareTraces(want, got))
				if tc.same {
					require.NoError(t, ptracetest.CompareTraces(orig, got))
				}
			case "metrics":
				in, err := golden.ReadMetrics(input)
				require.NoError(t, err)
				orig := pmetric.NewMetrics()
				in.CopyTo(orig)
				sink := new(consumertest.MetricsSink)
				p := startMetrics(t, cfg, sink)
				require.NoError(t, p.ConsumeMetrics(ctx, in))
				require.Len(t, sink.AllMetrics(), 1)
				got := sink.AllMetrics()[0]
				if *update {
					writeMetricsUnsorted(t, expected, got)
				}
				want, err := golden.ReadMetrics(expected)
				require.NoError(t, err)
				require.NoError(t, pmetrictest.CompareMetrics(want, got))
				if tc.same {
					require.NoError(t, pmetrictest.CompareMetrics(orig, got))
				}
			}
		})
	}
}

// writeMetricsUnsorted writes YAML without golden.WriteMetrics' sorting and
// timestamp normalization: order and timestamps are part of what is tested.
func writeMetricsUnsorted(t *testing.T, path string, md pmetric.Metrics) {
	b, err := golden.MarshalMetricsYAML(md)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

func writeGoldenInputs(t *testing.T) {
	for _, d := range []string{"logs", "traces", "metrics"} {
		require.NoError(t, os.MkdirAll(filepath.Join("testdata", d), 0o750))
	}
	require.NoError(t, golden.WriteLogsToFile(filepath.Join("testdata", "logs", "input.yaml"), goldenLogs()))
	require.NoError(t, golden.WriteTracesToFile(filepath.Join("testdata", "traces", "input.yaml"), goldenTraces()))
	writeMetricsUnsorted(t, filepath.Join("testdata", "metrics", "input.yaml"), goldenMetrics())
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
