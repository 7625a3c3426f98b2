// Package recorddoc is the stored record document: the JSON object the
// driftlock exporter writes in the anomaly store's record column for a log
// record or a span, and reads back into pdata for the processor's triage
// feedback (and the keys of a metric point's document). Both sides use this one codec, so a renamed key cannot make the
// reader silently rebuild a different record than the one stored.
//
// Writing returns a map for the store's JSON encoder (which bounds and
// sanitizes documents); reading takes the stored record and attributes
// documents. Only what a document carries comes back: ids, resource and
// scope live in their own columns, and span events are not read back.
package recorddoc

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Keys of the record document. Log records and spans share "scope" (added
// by the exporter from the record's instrumentation scope).
const (
	KeyScope = "scope"

	// Log records.
	KeyBody           = "body"
	KeySeverityText   = "severity_text"
	KeySeverityNumber = "severity_number"
	KeyTime           = "time"
	KeyObservedTime   = "observed_time"
	KeyFlags          = "flags"
	KeyEventName      = "event_name"

	// Spans.
	KeyName          = "name"
	KeyKind          = "kind"
	KeyStatus        = "status"
	KeyStatusCode    = "code"
	KeyStatusMessage = "message"
	KeyStartTime     = "start_time"
	KeyEndTime       = "end_time"
	KeyDurationMS    = "duration_ms"
	KeyParentSpanID  = "parent_span_id"
	KeyTraceState    = "trace_state"
	KeyEvents        = "events"
	KeyEventsTotal   = "events_total"
	KeyAttributes    = "attributes" // of a span event

	// Metric data points (written by the exporter only: metric rows are
	// not taught back). Times use KeyTime and KeyStartTime.
	KeyMetric      = "metric"
	KeySeries      = "series" // the point's attributes
	KeyValue       = "value"  // a gauge or sum point
	KeyCount       = "count"  // a distribution point (histogram, summary)
	KeySum         = "sum"
	KeyType        = "type"
	KeyUnit        = "unit"
	KeyDescription = "description"
	KeySource      = "source"    // a companion point: the companion metric
	KeyAnomalies   = "anomalies" // a companion point: its anomaly count
)

// MaxSpanEvents bounds the span events copied into a span's document.
const MaxSpanEvents = 32

// ErrNotDocument: the stored bytes are not a JSON object.
var ErrNotDocument = errors.New("recorddoc: not a JSON object")

// Log is the record document of a log record.
func Log(lr plog.LogRecord) map[string]any {
	doc := map[string]any{
		KeyBody:           lr.Body().AsRaw(),
		KeySeverityText:   lr.SeverityText(),
		KeySeverityNumber: int64(lr.SeverityNumber()),
		KeyTime:           Timestamp(lr.Timestamp()),
		KeyObservedTime:   Timestamp(lr.ObservedTimestamp()),
		KeyFlags:          int64(lr.Flags()),
	}
	if lr.EventName() != "" {
		doc[KeyEventName] = lr.EventName()
	}
	return doc
}

// Span is the record document of a span: its own fields and up to
// MaxSpanEvents events (events_total counts them all).
func Span(sp ptrace.Span) map[string]any {
	doc := map[string]any{
		KeyName:       sp.Name(),
		KeyKind:       sp.Kind().String(),
		KeyStatus:     map[string]any{KeyStatusCode: sp.Status().Code().String(), KeyStatusMessage: sp.Status().Message()},
		KeyStartTime:  Timestamp(sp.StartTimestamp()),
		KeyEndTime:    Timestamp(sp.EndTimestamp()),
		KeyDurationMS: float64(sp.EndTimestamp()-sp.StartTimestamp()) / 1e6,
	}
	if sp.EndTimestamp() < sp.StartTimestamp() {
		doc[KeyDurationMS] = nil
	}
	if id := sp.ParentSpanID(); !id.IsEmpty() {
		doc[KeyParentSpanID] = id.String()
	}
	if ts := sp.TraceState().AsRaw(); ts != "" {
		doc[KeyTraceState] = ts
	}
	if ev := sp.Events(); ev.Len() > 0 {
		events := make([]any, 0, min(ev.Len(), MaxSpanEvents))
		for i := 0; i < ev.Len() && i < MaxSpanEvents; i++ {
			event := ev.At(i)
			events = append(events, map[string]any{
				KeyName: event.Name(), KeyTime: Timestamp(event.Timestamp()),
				KeyAttributes: event.Attributes().AsRaw(),
			})
		}
		doc[KeyEvents] = events
		doc[KeyEventsTotal] = int64(ev.Len())
	}
	return doc
}

// Timestamp is a document time: RFC 3339 with nanoseconds in UTC, or null
// for an unset one.
func Timestamp(t pcommon.Timestamp) any {
	if t == 0 {
		return nil
	}
	return t.AsTime().UTC().Format(time.RFC3339Nano)
}

// DecodeLog rebuilds a log record from its stored record document and
// attributes document (a JSON object of the record's attributes; empty or
// null for none).
func DecodeLog(record, attrs []byte) (plog.LogRecord, error) {
	lr := plog.NewLogRecord()
	doc, err := decodeObject(record)
	if err != nil {
		return lr, err
	}
	if err := lr.Body().FromRaw(doc[KeyBody]); err != nil {
		return lr, fmt.Errorf("recorddoc: %s: %w", KeyBody, err)
	}
	lr.SetSeverityText(str(doc[KeySeverityText]))
	if n, ok := integer(doc[KeySeverityNumber]); ok && n >= math.MinInt32 && n <= math.MaxInt32 {
		lr.SetSeverityNumber(plog.SeverityNumber(n))
	}
	lr.SetTimestamp(parseTime(doc[KeyTime]))
	lr.SetObservedTimestamp(parseTime(doc[KeyObservedTime]))
	if n, ok := integer(doc[KeyFlags]); ok && n >= 0 && n <= math.MaxUint32 {
		lr.SetFlags(plog.LogRecordFlags(n))
	}
	lr.SetEventName(str(doc[KeyEventName]))
	return lr, decodeAttributes(attrs, lr.Attributes())
}

// DecodeSpan rebuilds a span (name, kind, status, times, parent, trace
// state and attributes) from its stored documents.
func DecodeSpan(record, attrs []byte) (ptrace.Span, error) {
	sp := ptrace.NewSpan()
	doc, err := decodeObject(record)
	if err != nil {
		return sp, err
	}
	sp.SetName(str(doc[KeyName]))
	sp.SetKind(spanKind(str(doc[KeyKind])))
	if st, ok := doc[KeyStatus].(map[string]any); ok {
		sp.Status().SetCode(statusCode(str(st[KeyStatusCode])))
		sp.Status().SetMessage(str(st[KeyStatusMessage]))
	}
	// Both times or neither: a span with one end has no duration.
	if start, end := parseTime(doc[KeyStartTime]), parseTime(doc[KeyEndTime]); start != 0 && end != 0 {
		sp.SetStartTimestamp(start)
		sp.SetEndTimestamp(end)
	}
	var parent pcommon.SpanID
	if id := str(doc[KeyParentSpanID]); hex.DecodedLen(len(id)) == len(parent) {
		if _, err := hex.Decode(parent[:], []byte(id)); err == nil {
			sp.SetParentSpanID(parent)
		}
	}
	sp.TraceState().FromRaw(str(doc[KeyTraceState]))
	return sp, decodeAttributes(attrs, sp.Attributes())
}

// decodeObject reads a JSON object, keeping numbers exact (see number).
func decodeObject(b []byte) (map[string]any, error) {
	var v any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotDocument, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, ErrNotDocument
	}
	return numbers(m).(map[string]any), nil
}

// decodeAttributes fills m from an attributes document; empty and null
// documents are no attributes.
func decodeAttributes(b []byte, m pcommon.Map) error {
	if len(bytes.TrimSpace(b)) == 0 || bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil
	}
	doc, err := decodeObject(b)
	if err != nil {
		return fmt.Errorf("recorddoc: attributes: %w", err)
	}
	return m.FromRaw(doc)
}

// numbers replaces json.Number values in a decoded document by int64 when
// they are integers that fit and float64 otherwise, so an integer attribute
// (a status code, an id) comes back as the integer it was, exact beyond
// 2^53.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
		return x
	}
	return v
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func integer(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), true
		}
	}
	return 0, false
}

func parseTime(v any) pcommon.Timestamp {
	t, err := time.Parse(time.RFC3339Nano, str(v))
	if err != nil {
		return 0
	}
	return pcommon.NewTimestampFromTime(t)
}

func spanKind(s string) ptrace.SpanKind {
	for k := ptrace.SpanKindUnspecified; k <= ptrace.SpanKindConsumer; k++ {
		if k.String() == s {
			return k
		}
	}
	return ptrace.SpanKindUnspecified
}

func statusCode(s string) ptrace.StatusCode {
	for c := ptrace.StatusCodeUnset; c <= ptrace.StatusCodeError; c++ {
		if c.String() == s {
			return c
		}
	}
	return ptrace.StatusCodeUnset
}
