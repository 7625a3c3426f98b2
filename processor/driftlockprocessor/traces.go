package driftlockprocessor

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/driftlock/driftlock/internal/cbad"
	"github.com/driftlock/driftlock/internal/recorddoc"
)

// tracesForm is the traces signal: a span is its name, duration bucket,
// kind, status and configured attributes (appendSpan).
type tracesForm struct{}

func (tracesForm) name() string { return signalTraces }

func (tracesForm) init(e *engine) {
	if e.cfg.Traces.EdgeJoinSize > 0 {
		e.join = newSpanJoin(e.cfg.Traces.EdgeJoinSize, e.cfg.Traces.EdgeJoinTTL.Nanoseconds())
	}
}

// detectorOptions: with traces.latency a burst of a familiar span kind is a
// burst of calls to an operation (traffic, not the service's health); what
// a burst of failures means is scored by the error share per operation
// instead (spans.go), so the text path tests no per-kind bursts.
func (tracesForm) detectorOptions(cfg *Config) []cbad.Option {
	if cfg.Traces.Latency {
		return []cbad.Option{cbad.WithoutKindBursts()}
	}
	return nil
}

// rebuild decodes the stored span and forms it as processTraces did.
func (tracesForm) rebuild(e *engine, s *scratch, record, attrs []byte) (cbad.Record, bool) {
	sp, err := recorddoc.DecodeSpan(record, attrs)
	if err != nil {
		return cbad.Record{}, false
	}
	s.rec = e.appendSpan(s.rec[:0], s, sp, e.cfg.Detector.MaxRecordBytes)
	return cbad.Record{Data: s.rec, Severity: spanSeverity(sp)}, true
}

// processTraces scores every span in order, per stream (by default per
// service), and annotates verdicts on the span's attributes.
func (e *engine) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	s := getScratch()
	defer putScratch(s)
	t := e.newTally()
	limit := e.cfg.Detector.MaxRecordBytes
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		svc := e.joinService(s, res)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			scope := ss.Scope().Name()
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				attrs := span.Attributes()
				key := e.streamKey(s, attrs, res, scope)
				s.rec = e.appendSpan(s.rec[:0], s, span, limit)
				var tm time.Time
				if end := span.EndTimestamp(); end != 0 {
					tm = end.AsTime()
				}
				r := e.det.Score(key, cbad.Record{Data: s.rec, Severity: spanSeverity(span), Time: tm})
				r, call := e.spanNumbers(s, span, svc, key, r)
				t.add(&r)
				if e.wants(&r) {
					e.annotate(attrs, key, &r)
					annotateNumbers(attrs, &r, call)
				}
			}
		}
	}
	e.record(ctx, &t)
	return td, nil
}

// appendSpan appends the canonical span line:
//
//	<name> [~<bucket letter>] kind=<Kind> status=<Code> [attr=value ...]
//
// Trace and span ids, timestamps and the status message are left out: they
// are unique per span and would only add noise. The duration bucket letter
// is there only when traces.latency is off: otherwise durations are scored
// as numbers (spans.go), and a letter in the text would flag the same slow
// span twice, as a weak text surprise.
func (e *engine) appendSpan(b []byte, s *scratch, span ptrace.Span, limit int) []byte {
	name := span.Name()
	if len(name) > limit/2 {
		name = name[:limit/2]
	}
	b = append(b, name...)
	if !e.cfg.Traces.Latency {
		b = appendDurationBucket(b, span)
	}
	b = append(b, " kind="...)
	b = append(b, span.Kind().String()...)
	b = append(b, " status="...)
	b = append(b, span.Status().Code().String()...)
	return appendAttrs(b, span.Attributes(), e.cfg.Traces.Attributes, s, limit)
}

func appendDurationBucket(b []byte, span ptrace.Span) []byte {
	// The duration bucket follows the name directly ("GET /api/users ~k"),
	// so the detector's two-token context for it ends with the operation:
	// a slower span is surprising for its operation, not just rare overall.
	b = append(b, " ~"...)
	return append(b, durationBucket(uint64(span.StartTimestamp()), uint64(span.EndTimestamp())))
}

// spanSeverity maps a span status to an OTel severity number so the
// detector weighs failed spans like ERROR log lines.
func spanSeverity(span ptrace.Span) int {
	if span.Status().Code() == ptrace.StatusCodeError {
		return int(plog.SeverityNumberError)
	}
	return int(plog.SeverityNumberInfo)
}
