package driftlockexporter

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/driftlock/driftlock/internal/recorddoc"
	"github.com/driftlock/driftlock/internal/store"
)

// What every signal shares when it turns records into rows: the walk over
// resources and scopes, the annotation, the inherited detector config, the
// stream, service and fingerprint, and the common store.Anomaly fields.
// logs.go, traces.go and metrics.go only say what a record of theirs
// contributes (a rowSpec).

// pslice is the read side of the pdata slices (ResourceLogsSlice,
// ScopeSpansSlice, MetricSlice, ...).
type pslice[T any] interface {
	Len() int
	At(i int) T
}

// source is the resource and scope a record comes from: what all the rows
// of one scope share.
type source struct {
	resAttrs   pcommon.Map
	service    string
	resDoc     *resourceDoc // encoded once per resource, on its first row
	scopeAttrs pcommon.Map
	scope      map[string]any // nil for an unnamed, unversioned scope
}

// eachRecord calls fn for every record of every scope of every resource,
// in order. enter, when not nil, is called on each resource before its
// records (metrics index their companion scores per resource there).
func eachRecord[R, S, T any, RS pslice[R], SS pslice[S], TS pslice[T]](
	resources RS, enter func(R),
	resource func(R) pcommon.Resource, scopes func(R) SS,
	scope func(S) pcommon.InstrumentationScope, records func(S) TS,
	fn func(src *source, rec T),
) {
	for i := 0; i < resources.Len(); i++ {
		r := resources.At(i)
		if enter != nil {
			enter(r)
		}
		res := resource(r).Attributes()
		src := source{resAttrs: res, service: serviceName(res), resDoc: &resourceDoc{m: res}}
		ss := scopes(r)
		for j := 0; j < ss.Len(); j++ {
			s := ss.At(j)
			src.scopeAttrs = scope(s).Attributes()
			src.scope = scopeDoc(scope(s))
			recs := records(s)
			for k := 0; k < recs.Len(); k++ {
				fn(&src, recs.At(k))
			}
		}
	}
}

// admit reports whether a record with this annotation is written (see
// annotation.stored), counting it as skipped when it is not.
func (b *batch) admit(a annotation, onlyAnomalies bool) bool {
	if !a.stored(onlyAnomalies) {
		b.skipped++
		return false
	}
	return true
}

// annotated is the per-record step of the signals whose records carry their
// own annotation (log records, spans): a record admitted by its annotation
// becomes a row built by row.
func annotated[T interface{ Attributes() pcommon.Map }](b *batch, onlyAnomalies bool, now time.Time,
	row func(rec T, now time.Time) rowSpec,
) func(*source, T) {
	return func(src *source, rec T) {
		ann := readAnnotation(rec.Attributes())
		if b.admit(ann, onlyAnomalies) {
			b.add(src, ann, now, row(rec, now))
		}
	}
}

// rowSpec is what one signal's record contributes to its row.
type rowSpec struct {
	signal          string
	observed        time.Time
	traceID, spanID string // hex, "" when absent
	// identity is what the fingerprint hashes besides signal, stream,
	// time and ids (see identity and seriesIdentity).
	identity []byte
	severity string
	summary  string // cut to one line by summarize
	// attrs are the record's attributes (AsRaw, owned by the row:
	// driftlock.config is removed from it).
	attrs  map[string]any
	record map[string]any // the record document; the scope is added here
}

// add appends the row of one admitted record, with the detector config it
// references. ann is the record's annotation as the signal resolved it; the
// config hash and config it lacks are inherited from the scope, then the
// resource.
func (b *batch) add(src *source, ann annotation, now time.Time, r rowSpec) {
	ann.inherit(src.scopeAttrs, src.resAttrs)
	stream := streamOr(ann.stream, src.service, r.signal)
	if src.scope != nil {
		r.record[recorddoc.KeyScope] = src.scope
	}
	b.addDetector(ann.configHash, ann.config)
	b.rows = append(b.rows, store.Anomaly{
		Fingerprint:        fingerprint(r.signal, stream, r.observed, r.traceID, r.spanID, r.identity),
		Signal:             r.signal,
		Stream:             stream,
		Service:            src.service,
		ObservedAt:         r.observed,
		DetectedAt:         now,
		Score:              ann.score,
		PValue:             pValueOr(ann),
		NCD:                ann.ncd,
		CompressionRatio:   ann.ratio,
		Entropy:            ann.entropy,
		Severity:           r.severity,
		Summary:            summarize(r.summary),
		Explanation:        ann.explanation,
		TraceID:            r.traceID,
		SpanID:             r.spanID,
		AttributesJSON:     string(store.EncodeJSON(storedAttrs(r.attrs))),
		ResourceJSON:       src.resDoc.json(),
		RecordJSON:         string(store.EncodeJSON(r.record)),
		DetectorConfigHash: ann.configHash,
	})
}

// pValueOr is the record's p-value; an unscored record (stored only with
// only_anomalies off) gets 1, "no evidence of an anomaly".
func pValueOr(a annotation) float64 {
	if !a.hasScore && a.pValue == 0 {
		return 1
	}
	return a.pValue
}

// ids returns a record's trace and span ids as hex, "" for empty ones.
func ids(traceID pcommon.TraceID, spanID pcommon.SpanID) (string, string) {
	t, s := "", ""
	if !traceID.IsEmpty() {
		t = traceID.String()
	}
	if !spanID.IsEmpty() {
		s = spanID.String()
	}
	return t, s
}
