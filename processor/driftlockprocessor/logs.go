package driftlockprocessor

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/driftlock/driftlock/internal/cbad"
	"github.com/driftlock/driftlock/internal/recorddoc"
)

// logsForm is the logs signal: a record is its severity text, body and
// configured attributes (appendLogRecord).
type logsForm struct{}

func (logsForm) name() string { return signalLogs }

func (logsForm) init(*engine) {}

func (logsForm) detectorOptions(*Config) []cbad.Option { return nil }

// rebuild decodes the stored log record and forms it as processLogs did.
func (logsForm) rebuild(e *engine, s *scratch, record, attrs []byte) (cbad.Record, bool) {
	lr, err := recorddoc.DecodeLog(record, attrs)
	if err != nil {
		return cbad.Record{}, false
	}
	s.rec = e.appendLogRecord(s.rec[:0], s, lr, e.cfg.Detector.MaxRecordBytes)
	return cbad.Record{Data: s.rec, Severity: int(lr.SeverityNumber())}, true
}

// processLogs scores every log record in order and annotates verdicts in
// place. Records are never dropped or reordered.
func (e *engine) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	s := getScratch()
	defer putScratch(s)
	t := e.newTally()
	limit := e.cfg.Detector.MaxRecordBytes
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := rl.Resource().Attributes()
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			scope := sl.Scope().Name()
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				attrs := lr.Attributes()
				key := e.streamKey(s, attrs, res, scope)
				s.rec = e.appendLogRecord(s.rec[:0], s, lr, limit)
				ts := lr.Timestamp()
				if ts == 0 {
					ts = lr.ObservedTimestamp()
				}
				var tm time.Time
				if ts != 0 {
					tm = ts.AsTime()
				}
				r := e.det.Score(key, cbad.Record{Data: s.rec, Severity: int(lr.SeverityNumber()), Time: tm})
				t.add(&r)
				if e.wants(&r) {
					e.annotate(attrs, key, &r)
				}
			}
		}
	}
	e.record(ctx, &t)
	return ld, nil
}

// appendLogRecord appends the canonical form of a log record: severity text,
// body (structured bodies with sorted keys), then the configured attributes
// as key=value. The severity number travels beside it in cbad.Record.
func (e *engine) appendLogRecord(b []byte, s *scratch, lr plog.LogRecord, limit int) []byte {
	if st := lr.SeverityText(); st != "" && len(st) < 32 {
		b = append(b, st...)
		b = append(b, ' ')
	}
	b = appendValue(b, lr.Body(), s, limit, 0)
	return appendAttrs(b, lr.Attributes(), e.cfg.Logs.Attributes, s, limit)
}
