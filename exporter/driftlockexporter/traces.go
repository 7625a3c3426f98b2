package driftlockexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/driftlock/driftlock/internal/store"
)

// maxSpanEvents bounds the span events copied into the stored record.
const maxSpanEvents = 32

func (w *writer) pushTraces(ctx context.Context, td ptrace.Traces) error {
	return w.write(ctx, w.tracesBatch(td, time.Now().UTC()))
}

// tracesBatch turns the flagged spans into rows.
func (w *writer) tracesBatch(td ptrace.Traces, now time.Time) *batch {
	b := &batch{}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		service := serviceName(res)
		resDoc := resourceDoc{m: res}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			scope := scopeDoc(ss.Scope())
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				ann := readAnnotation(sp.Attributes())
				if !ann.stored(w.cfg.OnlyAnomalies) {
					b.skipped++
					continue
				}
				ann.inherit(ss.Scope().Attributes(), res)
				attrs := storedAttrs(sp.Attributes().AsRaw())
				observed := timeOr(now, sp.StartTimestamp(), sp.EndTimestamp())
				stream := streamOr(ann.stream, service, signalTraces)
				traceID, spanID := "", ""
				if id := sp.TraceID(); !id.IsEmpty() {
					traceID = id.String()
				}
				if id := sp.SpanID(); !id.IsEmpty() {
					spanID = id.String()
				}
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
				if scope != nil {
					record["scope"] = scope
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
				b.addDetector(ann.configHash, ann.config)
				b.rows = append(b.rows, store.Anomaly{
					// Trace and span ids identify a span; name and
					// attributes guard against producers reusing ids.
					Fingerprint: fingerprint(signalTraces, stream, observed, traceID, spanID,
						identity(sp.Name(), sp.Attributes(), "", "")),
					Signal:             signalTraces,
					Stream:             stream,
					Service:            service,
					ObservedAt:         observed,
					DetectedAt:         now,
					Score:              ann.score,
					PValue:             pValueOr(ann),
					NCD:                ann.ncd,
					CompressionRatio:   ann.ratio,
					Entropy:            ann.entropy,
					Severity:           sp.Status().Code().String(),
					Summary:            summarize(summary),
					Explanation:        ann.explanation,
					TraceID:            traceID,
					SpanID:             spanID,
					AttributesJSON:     string(store.EncodeJSON(attrs)),
					ResourceJSON:       resDoc.json(),
					RecordJSON:         string(store.EncodeJSON(record)),
					DetectorConfigHash: ann.configHash,
				})
			}
		}
	}
	return b
}
