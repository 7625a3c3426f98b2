package nezhaeval

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/driftlock/driftlock/internal/attrs"
	"github.com/driftlock/driftlock/internal/incident"
	"github.com/driftlock/driftlock/internal/replay"
	"github.com/driftlock/driftlock/internal/servicegraph"
	"github.com/driftlock/driftlock/processor/driftlockprocessor"
)

// pipeline is the processor (the real factory, its default config unless
// told otherwise) run in process as a replay.Sender: each request goes
// through it into a consumertest sink, and what leaves is read the way the
// driftlock exporter reads it (flagged log records and spans, positive
// companion anomaly points). Before the processor sees a request, the
// trivial rules and the call graph (internal/servicegraph) see its records.
type pipeline struct {
	logs    processor.Logs
	traces  processor.Traces
	metrics processor.Metrics
	logSink *consumertest.LogsSink
	trSink  *consumertest.TracesSink
	mSink   *consumertest.MetricsSink

	anomalies []incident.Anomaly
	graph     *servicegraph.Learner // the call graph, learned as the exporter learns it
	rules     *rules
	activity  activity
}

func newPipeline(ctx context.Context, cfg *driftlockprocessor.Config) (*pipeline, error) {
	f := driftlockprocessor.NewFactory()
	set := processortest.NewNopSettings(f.Type())
	p := &pipeline{
		logSink: new(consumertest.LogsSink), trSink: new(consumertest.TracesSink), mSink: new(consumertest.MetricsSink),
		graph: servicegraph.New(servicegraph.Options{}), rules: newRules(), activity: newActivity(),
	}
	var err error
	if p.logs, err = f.CreateLogs(ctx, set, cfg, p.logSink); err != nil {
		return nil, err
	}
	if p.traces, err = f.CreateTraces(ctx, set, cfg, p.trSink); err != nil {
		return nil, err
	}
	if p.metrics, err = f.CreateMetrics(ctx, set, cfg, p.mSink); err != nil {
		return nil, err
	}
	host := componenttest.NewNopHost()
	if err := p.logs.Start(ctx, host); err != nil {
		return nil, err
	}
	if err := p.traces.Start(ctx, host); err != nil {
		return nil, err
	}
	if err := p.metrics.Start(ctx, host); err != nil {
		return nil, err
	}
	return p, nil
}

// learnedEdges is the call graph of the whole replay (one period of the
// learner): each caller -> callee edge at its first call.
func (p *pipeline) learnedEdges() []incident.Edge {
	var out []incident.Edge
	for _, e := range p.graph.Drain(nil) {
		out = append(out, incident.Edge{Caller: e.Caller, Callee: e.Callee, At: e.First})
	}
	return out
}

// Close shuts the processors down.
func (p *pipeline) Close() error {
	ctx := context.Background()
	return errors.Join(p.logs.Shutdown(ctx), p.traces.Shutdown(ctx), p.metrics.Shutdown(ctx))
}

func (p *pipeline) SendLogs(ctx context.Context, ld plog.Logs) error {
	for _, rl := range ld.ResourceLogs().All() {
		svc := serviceOf(rl.Resource().Attributes())
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				t := lr.Timestamp().AsTime()
				p.activity.see(sigLogs, svc, t)
				severe := lr.SeverityNumber() >= plog.SeverityNumberWarn
				if severe {
					p.activity.severe(svc, t)
				}
				p.rules.log(svc, t, severe, lr.Body().AsString())
			}
		}
	}
	if err := p.logs.ConsumeLogs(ctx, ld); err != nil {
		return err
	}
	for _, out := range p.logSink.AllLogs() {
		for _, rl := range out.ResourceLogs().All() {
			svc := serviceOf(rl.Resource().Attributes())
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					m := lr.Attributes()
					if !flagged(m) {
						continue
					}
					a := annotation(m, incident.SignalLogs, svc, lr.Timestamp().AsTime())
					a.Severity = lr.SeverityText()
					a.Summary = firstLine(lr.Body().AsString())
					a.TraceID = traceHex(lr.TraceID())
					p.anomalies = append(p.anomalies, a)
				}
			}
		}
	}
	p.logSink.Reset()
	return nil
}

func (p *pipeline) SendTraces(ctx context.Context, td ptrace.Traces) error {
	p.graph.ObserveTraces(td, time.Time{})
	for _, rs := range td.ResourceSpans().All() {
		svc := serviceOf(rs.Resource().Attributes())
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				t := sp.StartTimestamp().AsTime()
				p.activity.see(sigTraces, svc, t)
				p.rules.span(svc, sp.Name(), t, sp.EndTimestamp().AsTime().Sub(t))
			}
		}
	}
	if err := p.traces.ConsumeTraces(ctx, td); err != nil {
		return err
	}
	for _, out := range p.trSink.AllTraces() {
		for _, rs := range out.ResourceSpans().All() {
			svc := serviceOf(rs.Resource().Attributes())
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					m := sp.Attributes()
					if !flagged(m) {
						continue
					}
					a := annotation(m, incident.SignalTraces, svc, sp.StartTimestamp().AsTime())
					a.Summary = sp.Name()
					a.TraceID = traceHex(sp.TraceID())
					p.anomalies = append(p.anomalies, a)
				}
			}
		}
	}
	p.trSink.Reset()
	return nil
}

func (p *pipeline) SendMetrics(ctx context.Context, md pmetric.Metrics) error {
	for _, rm := range md.ResourceMetrics().All() {
		svc := serviceOf(rm.Resource().Attributes())
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				if m.Type() != pmetric.MetricTypeGauge {
					continue
				}
				for _, dp := range m.Gauge().DataPoints().All() {
					t := dp.Timestamp().AsTime()
					p.activity.see(sigMetrics, svc, t)
					p.rules.metric(svc, m.Name(), t, pointValue(dp))
				}
			}
		}
	}
	if err := p.metrics.ConsumeMetrics(ctx, md); err != nil {
		return err
	}
	for _, out := range p.mSink.AllMetrics() {
		for _, rm := range out.ResourceMetrics().All() {
			svc := serviceOf(rm.Resource().Attributes())
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					p.metricAnomalies(svc, m)
				}
			}
		}
	}
	p.mSink.Reset()
	return nil
}

// metricAnomalies reads one metric of the processor's output: positive
// points of the companion `driftlock.anomalies` sum, or data points
// annotated driftlock.anomaly=true (metrics.annotate_data_points).
func (p *pipeline) metricAnomalies(svc string, m pmetric.Metric) {
	if m.Name() == attrs.MetricAnomalies && m.Type() == pmetric.MetricTypeSum {
		for _, dp := range m.Sum().DataPoints().All() {
			if pointValue(dp) <= 0 {
				continue
			}
			a := annotation(dp.Attributes(), incident.SignalMetrics, svc, dp.Timestamp().AsTime())
			name := getStr(dp.Attributes(), attrs.MetricName)
			a.Summary = metricSummary(name, dp.Attributes())
			if a.Reason == "" {
				a.Reason = incident.ReasonValue
			}
			p.anomalies = append(p.anomalies, a)
		}
		return
	}
	if m.Type() != pmetric.MetricTypeGauge {
		return
	}
	for _, dp := range m.Gauge().DataPoints().All() {
		if !flagged(dp.Attributes()) {
			continue
		}
		a := annotation(dp.Attributes(), incident.SignalMetrics, svc, dp.Timestamp().AsTime())
		a.Summary = metricSummary(m.Name(), dp.Attributes())
		if a.Reason == "" {
			a.Reason = incident.ReasonValue
		}
		p.anomalies = append(p.anomalies, a)
	}
}

var _ replay.Sender = (*senderAdapter)(nil)

// senderAdapter gives pipeline the replay.Sender's Close without shutting
// the processors down mid-run.
type senderAdapter struct{ *pipeline }

func (senderAdapter) Close() error { return nil }

func flagged(m pcommon.Map) bool {
	v, ok := m.Get(attrs.Anomaly)
	return ok && v.Type() == pcommon.ValueTypeBool && v.Bool()
}

// annotation reads the driftlock.* verdict of one record into an anomaly.
func annotation(m pcommon.Map, signal, service string, at time.Time) incident.Anomaly {
	a := incident.Anomaly{
		Signal: signal, Service: service, ObservedAt: at.UTC(),
		Stream:      getStr(m, attrs.Stream),
		Score:       getFloat(m, attrs.Score),
		PValue:      getFloat(m, attrs.PValue),
		Reason:      getStr(m, attrs.Reason),
		Kind:        getStr(m, attrs.Kind),
		PeerService: getStr(m, attrs.PeerService),
		Caller:      getStr(m, attrs.CallerService),
		Explanation: getStr(m, attrs.Explanation),
	}
	if ep := getStr(m, attrs.Episode); ep != "" {
		if t, err := time.Parse(time.RFC3339Nano, ep); err == nil {
			a.Episode = t.UTC()
		}
	}
	return a
}

func getStr(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return v.AsString()
	}
	return ""
}

func getFloat(m pcommon.Map, k string) float64 {
	v, ok := m.Get(k)
	if !ok {
		return 0
	}
	switch v.Type() {
	case pcommon.ValueTypeDouble:
		return v.Double()
	case pcommon.ValueTypeInt:
		return float64(v.Int())
	}
	return 0
}

func serviceOf(m pcommon.Map) string {
	if s := getStr(m, "service.name"); s != "" {
		return s
	}
	return "-"
}

func pointValue(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

func traceHex(id pcommon.TraceID) string {
	if id.IsEmpty() {
		return ""
	}
	return hex.EncodeToString(id[:])
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 240 {
		s = s[:240]
	}
	return s
}

func metricSummary(name string, m pcommon.Map) string {
	s := name
	if v := getStr(m, attrs.Observed); v != "" {
		s += " = " + v
	}
	lo, hi := getStr(m, attrs.ExpectedLow), getStr(m, attrs.ExpectedHigh)
	if lo != "" || hi != "" {
		s += " (expected " + lo + ".." + hi + ")"
	}
	return s
}
