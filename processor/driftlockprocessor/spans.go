package driftlockprocessor

import (
	"encoding/binary"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/driftlock/driftlock/internal/attrs"
	"github.com/driftlock/driftlock/internal/cbad"
)

// A span's numbers go through the detector's latency path, not its text
// (traces.latency, on by default):
//
//   - its duration and its error status, per (stream, operation): series
//     "<stream>/<name>#call";
//   - when the span completes a call between two services seen by this
//     collector (spanjoin.go), the call's gap (caller-side minus
//     callee-side duration), per edge: "traces/<caller>-><callee>#gap".
//
// The span carries the most significant verdict of these and of its text;
// a numeric one adds driftlock.reason (latency, errors, edge_latency),
// driftlock.observed and driftlock.expected.low/high (seconds, or for
// errors the share of failed calls), and for an edge driftlock.peer.service
// (the callee) and driftlock.caller.service (the caller).

const serviceNameKey = "service.name"

// joinService is the interned service.name of a resource, as the span join
// names the ends of a call; "" when the join is off. Once per resource,
// not per span.
func (e *engine) joinService(s *scratch, res pcommon.Map) string {
	if e.join == nil {
		return ""
	}
	s.key = s.key[:0]
	if v, ok := res.Get(serviceNameKey); ok {
		s.key = append(s.key, v.AsString()...)
	} else {
		s.key = append(s.key, '-')
	}
	return e.keys.intern(s.key)
}

// callEnds names the two services of a call (empty when a verdict is not
// about a call).
type callEnds struct{ caller, callee string }

// spanNumbers scores the numbers of one span and returns the verdict to
// annotate: text when nothing numeric is more significant. svc is the
// span's service (joinService). ends are the call's services for an edge
// verdict, empty otherwise.
func (e *engine) spanNumbers(s *scratch, span ptrace.Span, svc, key string, text cbad.Result) (best cbad.Result, ends callEnds) {
	best = text
	start, end := int64(span.StartTimestamp()), int64(span.EndTimestamp()) //nolint:gosec // unix nanoseconds fit int64 until 2262
	tm := span.EndTimestamp().AsTime()
	tid := span.TraceID()
	group := binary.BigEndian.Uint64(tid[8:])
	if e.cfg.Traces.Latency && end >= start && start > 0 {
		lat, errs := e.det.ScoreCall(e.subKey(s, key, span.Name(), "#call"), tm, float64(end-start)/1e9,
			span.Status().Code() == ptrace.StatusCodeError, group, attrs.ReasonLatency)
		best = moreTelling(moreTelling(best, lat), errs)
	}
	if e.join == nil || end < start {
		return best, callEnds{}
	}
	sid, pid := span.SpanID(), span.ParentSpanID()
	call, ok := e.join.observe(group, binary.BigEndian.Uint64(sid[:]),
		binary.BigEndian.Uint64(pid[:]), svc, start, end)
	if !ok {
		return best, callEnds{}
	}
	s.key = append(s.key[:0], signalTraces...)
	s.key = append(s.key, '/')
	s.key = append(s.key, call.caller...)
	s.key = append(s.key, "->"...)
	s.key = append(s.key, call.callee...)
	s.key = append(s.key, "#gap"...)
	r := e.det.ScoreLatency(e.keys.intern(s.key), tm, call.gapSeconds(), group, attrs.ReasonEdgeLatency)
	if r.Anomaly {
		// The call's gap explains a slow caller better than the caller's
		// own duration does (which the gap is part of): the edge wins.
		keepRecord(&r, &best)
		return r, callEnds{caller: call.caller, callee: call.callee}
	}
	return best, callEnds{}
}

// subKey interns "<key>/<name><suffix>".
func (e *engine) subKey(s *scratch, key, name, suffix string) string {
	s.key = append(s.key[:0], key...)
	s.key = append(s.key, '/')
	if len(name) > 256 {
		name = name[:256]
	}
	s.key = append(s.key, name...)
	s.key = append(s.key, suffix...)
	return e.keys.intern(s.key)
}

// moreTelling returns the verdict to annotate of two: an anomaly over none,
// then the lower p-value. The text verdict's record figures stay: its
// window, index and kind (a flagged span carries its template id whatever
// the reason).
func moreTelling(a, b cbad.Result) cbad.Result {
	if b.Anomaly && (!a.Anomaly || b.PValue < a.PValue) {
		keepRecord(&b, &a)
		return b
	}
	return a
}

func keepRecord(dst, text *cbad.Result) {
	dst.Window, dst.Index = text.Window, text.Index
	if dst.Kind == 0 {
		dst.Kind = text.Kind
	}
}

// annotateNumbers writes the numeric explanation of a flagged verdict (its
// reason is written with the rest by annotate).
func annotateNumbers(m pcommon.Map, r *cbad.Result, call callEnds) {
	if !r.Anomaly || r.Reason == "" {
		return
	}
	m.PutDouble(attrs.Observed, r.Observed)
	m.PutDouble(attrs.ExpectedLow, r.ExpectedLow)
	m.PutDouble(attrs.ExpectedHigh, r.ExpectedHigh)
	if call.callee != "" {
		m.PutStr(attrs.PeerService, call.callee)
		m.PutStr(attrs.CallerService, call.caller)
	}
}
