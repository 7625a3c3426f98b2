package driftlockexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/driftlock/driftlock/internal/store"
)

func (w *writer) pushLogs(ctx context.Context, ld plog.Logs) error {
	return w.write(ctx, w.logsBatch(ld, time.Now().UTC()))
}

// logsBatch turns the flagged log records into rows.
func (w *writer) logsBatch(ld plog.Logs, now time.Time) *batch {
	b := &batch{}
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := rl.Resource().Attributes()
		service := serviceName(res)
		resDoc := resourceDoc{m: res}
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			scope := scopeDoc(sl.Scope())
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				ann := readAnnotation(lr.Attributes())
				if !ann.stored(w.cfg.OnlyAnomalies) {
					b.skipped++
					continue
				}
				ann.inherit(sl.Scope().Attributes(), res)
				attrs := storedAttrs(lr.Attributes().AsRaw())
				body := lr.Body().AsRaw()
				observed := timeOr(now, lr.Timestamp(), lr.ObservedTimestamp())
				stream := streamOr(ann.stream, service, signalLogs)
				traceID, spanID := "", ""
				if id := lr.TraceID(); !id.IsEmpty() {
					traceID = id.String()
				}
				if id := lr.SpanID(); !id.IsEmpty() {
					spanID = id.String()
				}
				severity := lr.SeverityText()
				if severity == "" && lr.SeverityNumber() != plog.SeverityNumberUnspecified {
					severity = lr.SeverityNumber().String()
				}
				record := map[string]any{
					"body":            body,
					"severity_text":   lr.SeverityText(),
					"severity_number": int64(lr.SeverityNumber()),
					"time":            rfc3339(lr.Timestamp()),
					"observed_time":   rfc3339(lr.ObservedTimestamp()),
					"flags":           int64(lr.Flags()),
				}
				if lr.EventName() != "" {
					record["event_name"] = lr.EventName()
				}
				if scope != nil {
					record["scope"] = scope
				}
				b.addDetector(ann.configHash, ann.config)
				b.rows = append(b.rows, store.Anomaly{
					Fingerprint: fingerprint(signalLogs, stream, observed, traceID, spanID,
						identity(lr.Body().AsString(), lr.Attributes(), "", "")),
					Signal:             signalLogs,
					Stream:             stream,
					Service:            service,
					ObservedAt:         observed,
					DetectedAt:         now,
					Score:              ann.score,
					PValue:             pValueOr(ann),
					NCD:                ann.ncd,
					CompressionRatio:   ann.ratio,
					Entropy:            ann.entropy,
					Severity:           severity,
					Summary:            summarize(lr.Body().AsString()),
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

// pValueOr is the record's p-value; an unscored record (stored only with
// only_anomalies off) gets 1, "no evidence of an anomaly".
func pValueOr(a annotation) float64 {
	if !a.hasScore && a.pValue == 0 {
		return 1
	}
	return a.pValue
}
