package driftlockexporter

import (
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/driftlock/driftlock/internal/recorddoc"
)

// logsBatch turns the flagged log records into rows.
func (w *writer) logsBatch(ld plog.Logs, now time.Time) *batch {
	b := &batch{}
	eachRecord(ld.ResourceLogs(), nil, plog.ResourceLogs.Resource, plog.ResourceLogs.ScopeLogs,
		plog.ScopeLogs.Scope, plog.ScopeLogs.LogRecords, annotated(b, w.cfg.OnlyAnomalies, now, logRow))
	return b
}

// logRow is what a log record contributes to its row.
func logRow(lr plog.LogRecord, now time.Time) rowSpec {
	traceID, spanID := ids(lr.TraceID(), lr.SpanID())
	severity := lr.SeverityText()
	if severity == "" && lr.SeverityNumber() != plog.SeverityNumberUnspecified {
		severity = lr.SeverityNumber().String()
	}
	body := lr.Body().AsString()
	return rowSpec{
		signal:   signalLogs,
		observed: timeOr(now, lr.Timestamp(), lr.ObservedTimestamp()),
		traceID:  traceID,
		spanID:   spanID,
		identity: identity(body, lr.Attributes(), "", ""),
		severity: severity,
		summary:  body,
		attrs:    lr.Attributes().AsRaw(),
		record:   recorddoc.Log(lr),
	}
}
