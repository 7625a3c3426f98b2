package driftlockprocessor

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/driftlock/driftlock/internal/attrs"
)

// spanVerdict is what a flagged span carries.
type spanVerdict struct {
	service, name, reason, peer string
	caller                      string
	seq                         int64
	observed, high              float64
	kind                        string
}

func spanVerdicts(td ptrace.Traces) []spanVerdict {
	var out []spanVerdict
	for _, rs := range td.ResourceSpans().All() {
		svc, _ := rs.Resource().Attributes().Get("service.name")
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				a := sp.Attributes()
				if v, ok := a.Get(attrAnomaly); !ok || !v.Bool() {
					continue
				}
				sv := spanVerdict{service: svc.Str(), name: sp.Name()}
				if v, ok := a.Get(attrs.Reason); ok {
					sv.reason = v.Str()
				}
				if v, ok := a.Get(attrs.PeerService); ok {
					sv.peer = v.Str()
				}
				if v, ok := a.Get(attrs.CallerService); ok {
					sv.caller = v.Str()
				}
				if v, ok := a.Get("seq"); ok {
					sv.seq = v.Int()
				}
				if v, ok := a.Get(attrs.Observed); ok {
					sv.observed = v.Double()
				}
				if v, ok := a.Get(attrs.ExpectedHigh); ok {
					sv.high = v.Double()
				}
				if v, ok := a.Get(attrs.Kind); ok {
					sv.kind = v.Str()
				}
				out = append(out, sv)
			}
		}
	}
	return out
}

// callRequests builds n requests of frontend -> checkout: the frontend's
// span "GET /cart" has a child "POST /charge" in checkout. The callee takes
// callee(i); the caller takes that plus gap(i) (network and queueing). The
// callee's resource comes first in the batch, as an exporter that sends
// ended spans would (the child ends before its parent).
func callRequests(rng *rand.Rand, from, n int, callee, gap func(i int) time.Duration) ptrace.Traces {
	td := ptrace.NewTraces()
	mk := func(svc string) ptrace.SpanSlice {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		return rs.ScopeSpans().AppendEmpty().Spans()
	}
	children, parents := mk("checkout"), mk("frontend")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := from; i < from+n; i++ {
		var tid pcommon.TraceID
		binary.BigEndian.PutUint64(tid[8:], uint64(i)+1)
		var pid, cid pcommon.SpanID
		binary.BigEndian.PutUint64(pid[:], uint64(i)<<1|1)
		binary.BigEndian.PutUint64(cid[:], uint64(i+1)<<1)
		start := t0.Add(time.Duration(i) * 50 * time.Millisecond)
		jitter := func(d time.Duration) time.Duration { return d + time.Duration(rng.IntN(int(d/4)+1)) }
		c, g := jitter(callee(i)), jitter(gap(i))
		ch := children.AppendEmpty()
		ch.SetName("POST /charge")
		ch.SetKind(ptrace.SpanKindServer)
		ch.SetTraceID(tid)
		ch.SetSpanID(cid)
		ch.SetParentSpanID(pid)
		ch.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(g / 2)))
		ch.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(g/2 + c)))
		ch.Attributes().PutInt("seq", int64(i))
		p := parents.AppendEmpty()
		p.SetName("GET /cart")
		p.SetKind(ptrace.SpanKindClient)
		p.SetTraceID(tid)
		p.SetSpanID(pid)
		p.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		p.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(g + c)))
		p.Attributes().PutInt("seq", int64(i))
	}
	return td
}

func runCalls(t *testing.T, n int, callee, gap func(i int) time.Duration) []spanVerdict {
	return runCallsOrdered(t, n, false, callee, gap)
}

// runCallsOrdered is runCalls with, when parentsFirst, each batch's caller
// resource before the callee's (a batch that arrives parents first: the
// callee's span then completes each call's pair).
func runCallsOrdered(t *testing.T, n int, parentsFirst bool, callee, gap func(i int) time.Duration) []spanVerdict {
	sink := new(consumertest.TracesSink)
	p := startTraces(t, testConfig(), sink)
	rng := rand.New(rand.NewPCG(21, 21))
	for from := 0; from < n; from += 50 {
		td := callRequests(rng, from, 50, callee, gap)
		if parentsFirst {
			rss := td.ResourceSpans()
			rss.At(0).CopyTo(rss.AppendEmpty()) // the callee's resource after the caller's
			seen := 0
			rss.RemoveIf(func(ptrace.ResourceSpans) bool { seen++; return seen == 1 })
		}
		require.NoError(t, p.ConsumeTraces(context.Background(), td))
	}
	var out []spanVerdict
	for _, td := range sink.AllTraces() {
		out = append(out, spanVerdicts(td)...)
	}
	return out
}

// TestDetectsSlowCallee: network delay in front of checkout (its callers
// wait 300 ms more, its own spans do not move) is invisible in checkout's
// telemetry and visible in the call gap: the caller's span is flagged with
// reason edge_latency and the callee as peer, and nothing is flagged on the
// callee's own latency.
func TestDetectsSlowCallee(t *testing.T) {
	callee := func(int) time.Duration { return 5 * time.Millisecond }
	normalGap := func(int) time.Duration { return time.Millisecond }
	control := runCalls(t, 1000, callee, normalGap)
	assert.Empty(t, control, "steady calls: nothing flagged")

	delayed := runCalls(t, 1000, callee, func(i int) time.Duration {
		if i >= 700 {
			return 300 * time.Millisecond
		}
		return time.Millisecond
	})
	var edge []spanVerdict
	for _, v := range delayed {
		if v.service == "checkout" {
			assert.NotEqual(t, attrs.ReasonLatency, v.reason, "the callee's own spans did not slow down: %+v", v)
		}
		if v.reason == attrs.ReasonEdgeLatency {
			edge = append(edge, v)
		}
	}
	require.NotEmpty(t, edge, "the delay must be flagged on the edge: %+v", delayed)
	first := edge[0]
	assert.Equal(t, "frontend", first.service, "flagged on the caller's span")
	assert.Equal(t, "GET /cart", first.name)
	assert.Equal(t, "checkout", first.peer)
	assert.Equal(t, "frontend", first.caller)
	assert.Len(t, first.kind, 16, "a flagged span carries its template id whatever the reason")
	assert.GreaterOrEqual(t, first.seq, int64(700))
	assert.Less(t, first.seq, int64(706), "flagged within a few calls of the delay")
	assert.Greater(t, first.observed, 0.2, "observed gap in seconds")
	assert.Less(t, first.high, 0.01, "expected gap (the baseline's upper bound) stays at the normal few ms")
}

// When the caller's span arrives first, the callee's span completes the
// call's pair and carries the flag: it names both ends of the call, so the
// caller is not lost (the record's service.name is the callee's).
func TestSlowCalleeFlaggedOnItsOwnSpanNamesTheCaller(t *testing.T) {
	delayed := runCallsOrdered(t, 1000, true, func(int) time.Duration { return 5 * time.Millisecond }, func(i int) time.Duration {
		if i >= 700 {
			return 300 * time.Millisecond
		}
		return time.Millisecond
	})
	var edge []spanVerdict
	for _, v := range delayed {
		if v.reason == attrs.ReasonEdgeLatency {
			edge = append(edge, v)
		}
	}
	require.NotEmpty(t, edge, "the delay must be flagged on the edge: %+v", delayed)
	assert.Equal(t, "checkout", edge[0].service, "flagged on the callee's span")
	assert.Equal(t, "checkout", edge[0].peer)
	assert.Equal(t, "frontend", edge[0].caller)
}

// TestDetectsSlowOperation: cpu contention in checkout slows its own
// spans: flagged with reason latency, observed and expected in seconds.
func TestDetectsSlowOperation(t *testing.T) {
	got := runCalls(t, 1000, func(i int) time.Duration {
		if i >= 700 {
			return 90 * time.Millisecond
		}
		return 8 * time.Millisecond
	}, func(int) time.Duration { return time.Millisecond })
	var own []spanVerdict
	for _, v := range got {
		if v.reason == attrs.ReasonLatency && v.service == "checkout" {
			own = append(own, v)
		}
	}
	require.NotEmpty(t, own, "%+v", got)
	assert.Equal(t, "POST /charge", own[0].name)
	assert.GreaterOrEqual(t, own[0].seq, int64(700))
	assert.Less(t, own[0].seq, int64(706))
	assert.Greater(t, own[0].observed, 0.08)
	assert.Less(t, own[0].high, 0.02)
}

func TestSpanJoin(t *testing.T) {
	j := newSpanJoin(256, int64(time.Minute))
	// Child first, then its parent: the pair completes at the caller.
	_, ok := j.observe(1, 11, 10, "checkout", 1_000, 6_000)
	assert.False(t, ok)
	call, ok := j.observe(1, 10, 0, "frontend", 0, 9_000)
	require.True(t, ok)
	assert.Equal(t, joinedCall{caller: "frontend", callee: "checkout", callerDur: 9_000, calleeDur: 5_000, atCaller: true}, call)
	assert.InDelta(t, 4e-6, call.gapSeconds(), 1e-12)
	// Parent first, then its child: the pair completes at the callee.
	_, ok = j.observe(2, 20, 0, "frontend", 0, 9_000)
	assert.False(t, ok)
	call, ok = j.observe(2, 21, 20, "checkout", 1_000, 3_000)
	require.True(t, ok)
	assert.Equal(t, "frontend", call.caller)
	assert.False(t, call.atCaller)
	// A child in the same service is no edge; another trace with the same
	// span id is not a match.
	_, ok = j.observe(2, 22, 20, "frontend", 1_000, 3_000)
	assert.False(t, ok)
	_, ok = j.observe(3, 23, 20, "payment", 1_000, 3_000)
	assert.False(t, ok)
	// An entry older than the TTL (in span time) is forgotten.
	_, _ = j.observe(4, 40, 0, "frontend", 0, 9_000)
	_, _ = j.observe(5, 50, 0, "other", 0, 9_000+2*int64(time.Minute))
	_, ok = j.observe(4, 41, 40, "checkout", 1_000, 3_000)
	assert.False(t, ok, "the caller's entry expired")
	// Bounded: a flood of spans never grows the table.
	before := j.bytes()
	for i := range 100_000 {
		j.observe(uint64(i), uint64(i)+1000, uint64(i)+999, "x", int64(i), int64(i)+1)
	}
	assert.Equal(t, before, j.bytes())
}

// TestMetricAnomalyExplained: the companion anomaly point of a flagged
// metric point carries its p-value, explanation, reason, observed value
// and expected range; the data point itself is untouched.
func TestMetricAnomalyExplained(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	p := startMetrics(t, testConfig(), sink)
	rng := rand.New(rand.NewPCG(5, 5))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 901 {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "checkout")
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("queue.depth")
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(i) * 10 * time.Second)))
		v := 100 + rng.NormFloat64()
		if i == 900 {
			v = 400
		}
		dp.SetDoubleValue(v)
		require.NoError(t, p.ConsumeMetrics(context.Background(), md))
	}
	out := sink.AllMetrics()[900]
	sms := out.ResourceMetrics().At(0).ScopeMetrics()
	require.Equal(t, 2, sms.Len())
	_, annotated := sms.At(0).Metrics().At(0).Gauge().DataPoints().At(0).Attributes().Get(attrs.Reason)
	assert.False(t, annotated, "the data point keeps its identity")
	var found bool
	for _, cm := range sms.At(1).Metrics().All() {
		if cm.Name() != companionAnomalies {
			continue
		}
		a := cm.Sum().DataPoints().At(0).Attributes()
		found = true
		get := func(k string) pcommon.Value { v, ok := a.Get(k); require.True(t, ok, k); return v }
		assert.Equal(t, attrs.ReasonValue, get(attrs.Reason).Str())
		assert.Equal(t, 400.0, get(attrs.Observed).Double())
		assert.Greater(t, get(attrs.ExpectedHigh).Double(), 101.0)
		assert.Less(t, get(attrs.ExpectedHigh).Double(), 105.0)
		assert.Less(t, get(attrs.ExpectedLow).Double(), 99.0)
		pv := get(attrPValue).Double()
		assert.Greater(t, pv, 0.0)
		assert.Less(t, pv, 0.01)
		assert.Contains(t, get(attrExplanation).Str(), "above the expected range")
	}
	assert.True(t, found)
}
