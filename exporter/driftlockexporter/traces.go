package driftlockexporter

import (
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/driftlock/driftlock/internal/recorddoc"
)

// tracesBatch turns the flagged spans into rows.
func (w *writer) tracesBatch(td ptrace.Traces, now time.Time) *batch {
	b := &batch{}
	eachRecord(td.ResourceSpans(), nil, ptrace.ResourceSpans.Resource, ptrace.ResourceSpans.ScopeSpans,
		ptrace.ScopeSpans.Scope, ptrace.ScopeSpans.Spans, annotated(b, w.cfg.OnlyAnomalies, now, spanRow))
	return b
}

// spanRow is what a span contributes to its row.
func spanRow(sp ptrace.Span, now time.Time) rowSpec {
	traceID, spanID := ids(sp.TraceID(), sp.SpanID())
	summary := sp.Name()
	if msg := sp.Status().Message(); msg != "" {
		summary += ": " + msg
	}
	return rowSpec{
		signal:   signalTraces,
		observed: timeOr(now, sp.StartTimestamp(), sp.EndTimestamp()),
		traceID:  traceID,
		spanID:   spanID,
		// Trace and span ids identify a span; name and attributes guard
		// against producers reusing ids.
		identity: identity(sp.Name(), sp.Attributes(), "", ""),
		severity: sp.Status().Code().String(),
		summary:  summary,
		attrs:    sp.Attributes().AsRaw(),
		record:   recorddoc.Span(sp),
	}
}
