package driftlockexporter

import (
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// maxSpanEvents bounds the span events copied into the stored record.
const maxSpanEvents = 32

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
	record := map[string]any{
		"name":        sp.Name(),
		"kind":        sp.Kind().String(),
		"status":      map[string]any{"code": sp.Status().Code().String(), "message": sp.Status().Message()},
		"start_time":  rfc3339(sp.StartTimestamp()),
		"end_time":    rfc3339(sp.EndTimestamp()),
		"duration_ms": float64(sp.EndTimestamp()-sp.StartTimestamp()) / 1e6,
	}
	if sp.EndTimestamp() < sp.StartTimestamp() {
		record["duration_ms"] = nil
	}
	if id := sp.ParentSpanID(); !id.IsEmpty() {
		record["parent_span_id"] = id.String()
	}
	if ts := sp.TraceState().AsRaw(); ts != "" {
		record["trace_state"] = ts
	}
	if ev := sp.Events(); ev.Len() > 0 {
		events := make([]any, 0, min(ev.Len(), maxSpanEvents))
		for e := 0; e < ev.Len() && e < maxSpanEvents; e++ {
			event := ev.At(e)
			events = append(events, map[string]any{
				"name": event.Name(), "time": rfc3339(event.Timestamp()),
				"attributes": event.Attributes().AsRaw(),
			})
		}
		record["events"] = events
		record["events_total"] = int64(ev.Len())
	}
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
		record:   record,
	}
}
