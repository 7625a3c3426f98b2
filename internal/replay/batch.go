package replay

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// resKey identifies one resource; records of the same service and pod share
// a ResourceLogs/ResourceSpans/ResourceMetrics in a batch.
type resKey struct{ service, pod string }

// batch accumulates records of all three signals into OTLP payloads.
type batch struct {
	logs    plog.Logs
	traces  ptrace.Traces
	metrics pmetric.Metrics

	logScopes    map[resKey]plog.LogRecordSlice
	spanScopes   map[resKey]ptrace.SpanSlice
	metricScopes map[resKey]pmetric.MetricSlice

	n [3]int // records per signal
}

const scopeName = "github.com/driftlock/driftlock/internal/replay"

func newBatch() *batch {
	return &batch{
		logs:         plog.NewLogs(),
		traces:       ptrace.NewTraces(),
		metrics:      pmetric.NewMetrics(),
		logScopes:    map[resKey]plog.LogRecordSlice{},
		spanScopes:   map[resKey]ptrace.SpanSlice{},
		metricScopes: map[resKey]pmetric.MetricSlice{},
	}
}

func (b *batch) len() int { return b.n[0] + b.n[1] + b.n[2] }

func setResource(r pcommon.Resource, k resKey) {
	if k.service != "" {
		r.Attributes().PutStr("service.name", k.service)
	}
	if k.pod != "" {
		r.Attributes().PutStr("k8s.pod.name", k.pod)
	}
}

func putAttrs(m pcommon.Map, attrs map[string]any) {
	for k, v := range attrs {
		switch x := v.(type) {
		case string:
			m.PutStr(k, x)
		case int:
			m.PutInt(k, int64(x))
		case int64:
			m.PutInt(k, x)
		case float64:
			m.PutDouble(k, x)
		case bool:
			m.PutBool(k, x)
		}
	}
}

// add appends r to the batch.
func (b *batch) add(r Record) {
	k := resKey{r.Service, r.Pod}
	switch r.Signal {
	case Logs:
		s, ok := b.logScopes[k]
		if !ok {
			rl := b.logs.ResourceLogs().AppendEmpty()
			setResource(rl.Resource(), k)
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName(scopeName)
			s = sl.LogRecords()
			b.logScopes[k] = s
		}
		lr := s.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(r.Time))
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(r.Time))
		lr.Body().SetStr(r.Body)
		lr.SetSeverityNumber(r.Severity)
		lr.SetSeverityText(r.SeverityText)
		if r.TraceID != [16]byte{} {
			lr.SetTraceID(r.TraceID)
		}
		if r.SpanID != [8]byte{} {
			lr.SetSpanID(r.SpanID)
		}
		putAttrs(lr.Attributes(), r.Attrs)
	case Traces:
		s, ok := b.spanScopes[k]
		if !ok {
			rs := b.traces.ResourceSpans().AppendEmpty()
			setResource(rs.Resource(), k)
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(scopeName)
			s = ss.Spans()
			b.spanScopes[k] = s
		}
		sp := s.AppendEmpty()
		sp.SetTraceID(r.TraceID)
		sp.SetSpanID(r.SpanID)
		if r.ParentID != [8]byte{} {
			sp.SetParentSpanID(r.ParentID)
		}
		sp.SetName(r.Name)
		sp.SetKind(r.Kind)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(r.Time))
		end := r.End
		if end.Before(r.Time) {
			end = r.Time
		}
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
		sp.Status().SetCode(r.StatusCode)
		sp.Status().SetMessage(r.StatusMsg)
		putAttrs(sp.Attributes(), r.Attrs)
	case Metrics:
		s, ok := b.metricScopes[k]
		if !ok {
			rm := b.metrics.ResourceMetrics().AppendEmpty()
			setResource(rm.Resource(), k)
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.Scope().SetName(scopeName)
			s = sm.Metrics()
			b.metricScopes[k] = s
		}
		ts := pcommon.NewTimestampFromTime(r.Time)
		for _, p := range r.Points {
			m := s.AppendEmpty()
			m.SetName(p.Name)
			m.SetUnit(p.Unit)
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(ts)
			dp.SetDoubleValue(p.Value)
			putAttrs(dp.Attributes(), p.Attrs)
		}
	}
	b.n[r.Signal]++
}
