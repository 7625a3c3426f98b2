package driftlockprocessor

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// These tests need the real detector: a stream of repeated templates with
// one never-seen record must flag that record, and the same stream without
// it must flag nothing.

type flagged struct {
	stream string
	seq    int64
}

func logFlags(ld plog.Logs) []flagged {
	var out []flagged
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				if v, ok := lr.Attributes().Get(attrAnomaly); ok && v.Bool() {
					st, _ := lr.Attributes().Get(attrStream)
					seq, _ := lr.Attributes().Get("seq")
					out = append(out, flagged{st.Str(), seq.Int()})
				}
			}
		}
	}
	return out
}

func runLogs(t *testing.T, novelAt int) []flagged {
	sink := new(consumertest.LogsSink)
	p := startLogs(t, testConfig(), sink, testSettings(), componenttest.NewNopHost())
	rng := rand.New(rand.NewPCG(42, 42))
	ld := genLogs(rng, 2, 1000, novelAt)
	// Feed in batches of 100 records per service, as a pipeline would.
	var flags []flagged
	for start := 0; start < 1000; start += 100 {
		batch := plog.NewLogs()
		for _, rl := range ld.ResourceLogs().All() {
			nrl := batch.ResourceLogs().AppendEmpty()
			rl.Resource().CopyTo(nrl.Resource())
			recs := nrl.ScopeLogs().AppendEmpty().LogRecords()
			src := rl.ScopeLogs().At(0).LogRecords()
			for i := start; i < start+100; i++ {
				src.At(i).CopyTo(recs.AppendEmpty())
			}
		}
		require.NoError(t, p.ConsumeLogs(context.Background(), batch))
	}
	for _, got := range sink.AllLogs() {
		flags = append(flags, logFlags(got)...)
	}
	return flags
}

func TestDetectsNovelLogTemplate(t *testing.T) {
	control := runLogs(t, -1)
	assert.Empty(t, control, "repeated templates must not be flagged")
	injected := runLogs(t, 700)
	assert.Contains(t, injected, flagged{"logs/svc-0", 700}, "the novel record must be flagged")
	assert.LessOrEqual(t, len(injected), 2, "little else may be flagged: %v", injected)
}

func genSpans(rng *rand.Rand, n, novelAt int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "frontend")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	routes := []string{"/cart", "/orders", "/products/{id}", "/search"}
	for i := range n {
		sp := spans.AppendEmpty()
		sp.Attributes().PutInt("seq", int64(i))
		start := t0.Add(time.Duration(i) * time.Millisecond)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		if i == novelAt {
			sp.SetName("POST /admin/export")
			sp.SetKind(ptrace.SpanKindServer)
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Attributes().PutStr("http.route", "/admin/export")
			sp.Attributes().PutInt("http.response.status_code", 503)
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(29 * time.Second)))
			continue
		}
		r := routes[rng.IntN(len(routes))]
		sp.SetName("GET " + r)
		sp.SetKind(ptrace.SpanKindServer)
		sp.Attributes().PutStr("http.request.method", "GET")
		sp.Attributes().PutStr("http.route", r)
		sp.Attributes().PutInt("http.response.status_code", 200)
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(2+rng.IntN(3)) * time.Millisecond)))
	}
	return td
}

func runSpans(t *testing.T, novelAt int) []int64 {
	sink := new(consumertest.TracesSink)
	p := startTraces(t, testConfig(), sink)
	require.NoError(t, p.ConsumeTraces(context.Background(), genSpans(rand.New(rand.NewPCG(3, 3)), 1000, novelAt)))
	var seqs []int64
	for _, sp := range sink.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().All() {
		if v, ok := sp.Attributes().Get(attrAnomaly); ok && v.Bool() {
			seq, _ := sp.Attributes().Get("seq")
			seqs = append(seqs, seq.Int())
			st, _ := sp.Attributes().Get(attrStream)
			assert.Equal(t, "traces/frontend", st.Str())
		}
	}
	return seqs
}

func TestDetectsNovelSpan(t *testing.T) {
	assert.Empty(t, runSpans(t, -1), "repeated span shapes must not be flagged")
	got := runSpans(t, 800)
	assert.Contains(t, got, int64(800))
	assert.LessOrEqual(t, len(got), 2, "%v", got)
}

// TestDetectsMetricSpike: a steady gauge with noise, then one spike, is
// reported by the companion metrics (data points untouched).
func TestDetectsMetricSpike(t *testing.T) {
	run := func(spikeAt int) (flags []int) {
		sink := new(consumertest.MetricsSink)
		p := startMetrics(t, testConfig(), sink)
		rng := rand.New(rand.NewPCG(5, 5))
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := range 1000 {
			md := pmetric.NewMetrics()
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr("service.name", "checkout")
			m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
			m.SetName("queue.depth")
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(i) * 10 * time.Second)))
			v := 100 + 5*math.Sin(float64(i)/20) + rng.NormFloat64()
			if i == spikeAt {
				v = 400
			}
			dp.SetDoubleValue(v)
			require.NoError(t, p.ConsumeMetrics(context.Background(), md))
			out := sink.AllMetrics()[i]
			sms := out.ResourceMetrics().At(0).ScopeMetrics()
			if sms.Len() == 2 {
				an := sms.At(1).Metrics()
				for _, cm := range an.All() {
					if cm.Name() == companionAnomalies {
						for _, p := range cm.Sum().DataPoints().All() {
							if p.IntValue() > 0 {
								flags = append(flags, i)
							}
						}
					}
				}
			}
		}
		return flags
	}
	// The core's numeric path flags short runs on a smooth noisy series (seen:
	// 5 runs of 4 points in 1000), so the control bound is a rate, not zero.
	control := run(-1)
	assert.LessOrEqual(t, len(control), 30, "steady series: at most 3%% flagged, got %v", control)
	got := run(900)
	assert.Contains(t, got, 900)
}
