package driftlockexporter

import (
	"encoding/binary"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/driftlock/driftlock/internal/attrs"
	"github.com/driftlock/driftlock/internal/store"
)

// Attributes the driftlock processor writes on log records, spans and
// annotated metric points (named once, in internal/attrs).
const (
	attrAnomaly          = attrs.Anomaly
	attrScore            = attrs.Score
	attrPValue           = attrs.PValue
	attrStream           = attrs.Stream
	attrExplanation      = attrs.Explanation
	attrNCD              = attrs.NCD
	attrCompressionRatio = attrs.CompressionRatio
	attrEntropy          = attrs.Entropy
	attrDrift            = attrs.Drift
	attrConfigHash       = attrs.ConfigHash
	attrConfig           = attrs.Config
	attrStatistic        = attrs.Statistic
	attrMetricName       = attrs.MetricName
	driftlockPrefix      = attrs.Prefix

	// Companion metrics the processor emits for numeric series.
	metricAnomalies = attrs.MetricAnomalies
	metricScore     = attrs.MetricScore

	serviceNameKey = "service.name"
)

// summaryRunes bounds the one-line summary taken from a body or span name.
const summaryRunes = 240

// annotation is what the processor wrote on one record.
type annotation struct {
	hasAnomaly  bool // driftlock.anomaly is present
	anomaly     bool
	hasScore    bool
	score       float64
	pValue      float64
	stream      string
	explanation string
	ncd         *float64
	ratio       *float64
	entropy     *float64
	configHash  string
	config      string
}

func readAnnotation(m pcommon.Map) annotation {
	var a annotation
	if v, ok := m.Get(attrAnomaly); ok {
		a.hasAnomaly = true
		a.anomaly = asBool(v)
	}
	if v, ok := m.Get(attrScore); ok {
		a.score, a.hasScore = asFloat(v)
	}
	if v, ok := m.Get(attrPValue); ok {
		a.pValue, _ = asFloat(v)
	}
	a.stream = getString(m, attrStream)
	a.explanation = getString(m, attrExplanation)
	a.ncd = getFloatPtr(m, attrNCD)
	a.ratio = getFloatPtr(m, attrCompressionRatio)
	a.entropy = getFloatPtr(m, attrEntropy)
	a.configHash = getString(m, attrConfigHash)
	a.config = getString(m, attrConfig)
	return a
}

// merge fills what the record lacks from its scope or resource (the
// processor may put the config hash at either level).
func (a *annotation) inherit(maps ...pcommon.Map) {
	for _, m := range maps {
		if a.configHash == "" {
			a.configHash = getString(m, attrConfigHash)
		}
		if a.config == "" {
			a.config = getString(m, attrConfig)
		}
	}
}

// stored reports whether the record is written: flagged ones always,
// the others only when only_anomalies is off.
func (a *annotation) stored(onlyAnomalies bool) bool {
	return a.anomaly || !onlyAnomalies
}

func asBool(v pcommon.Value) bool {
	switch v.Type() {
	case pcommon.ValueTypeBool:
		return v.Bool()
	case pcommon.ValueTypeStr:
		b, _ := strconv.ParseBool(strings.TrimSpace(v.Str()))
		return b
	case pcommon.ValueTypeInt:
		return v.Int() != 0
	}
	return false
}

func asFloat(v pcommon.Value) (float64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeDouble:
		return v.Double(), true
	case pcommon.ValueTypeInt:
		return float64(v.Int()), true
	case pcommon.ValueTypeStr:
		f, err := strconv.ParseFloat(strings.TrimSpace(v.Str()), 64)
		return f, err == nil
	}
	return 0, false
}

func getString(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok {
		return v.AsString()
	}
	return ""
}

func getFloatPtr(m pcommon.Map, key string) *float64 {
	if v, ok := m.Get(key); ok {
		if f, ok := asFloat(v); ok {
			return &f
		}
	}
	return nil
}

// identity is the byte string a fingerprint hashes besides signal,
// stream, time and ids: head (a body, a span or metric name), then the
// attributes with sorted keys, skipping driftlock.* (the same record scored
// twice is still the same record) except the keys in keep, and skipping
// the keys in drop. Every part is length-prefixed.
func identity(head string, attrs pcommon.Map, keep, drop string) []byte {
	keys := make([]string, 0, attrs.Len())
	attrs.Range(func(k string, _ pcommon.Value) bool {
		if k == drop || (strings.HasPrefix(k, driftlockPrefix) && k != keep) {
			return true
		}
		keys = append(keys, k)
		return true
	})
	sort.Strings(keys)
	b := make([]byte, 0, 64+len(head)+32*len(keys))
	b = appendPart(b, head)
	for _, k := range keys {
		v, _ := attrs.Get(k)
		b = appendPart(b, k)
		b = append(b, byte(v.Type()))
		b = appendPart(b, v.AsString())
	}
	return b
}

func appendPart(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// seriesAttrs is a metric series' attributes for display: without
// driftlock.* and metric.name, with driftlock.statistic (the processor
// scores several statistics of one series, each its own anomaly).
func seriesAttrs(raw map[string]any) map[string]any {
	out := make(map[string]any, len(raw))
	for k, v := range raw {
		if k != attrMetricName && (!strings.HasPrefix(k, driftlockPrefix) || k == attrStatistic) {
			out[k] = v
		}
	}
	return out
}

// seriesIdentity identifies a metric series at one time, the same way for
// the processor's companion points and for annotated points.
func seriesIdentity(name string, attrs pcommon.Map) []byte {
	return identity(name, attrs, attrStatistic, attrMetricName)
}

// storedAttrs drops driftlock.config from the attributes to store: the
// full configuration document is kept once, in the detectors table, under
// driftlock.config_hash.
func storedAttrs(raw map[string]any) map[string]any {
	delete(raw, attrConfig)
	return raw
}

func serviceName(res pcommon.Map) string {
	return getString(res, serviceNameKey)
}

// streamOr is the stream key, or a fallback naming the service.
func streamOr(stream, service, signal string) string {
	if stream != "" {
		return stream
	}
	if service != "" {
		return service + "/" + signal
	}
	return "unknown/" + signal
}

// summarize returns the first line of s, cut to summaryRunes runes.
func summarize(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if utf8.RuneCountInString(s) <= summaryRunes {
		return s
	}
	r := []rune(s)
	return string(r[:summaryRunes]) + "…"
}

// timeOr returns the first non-zero timestamp as a time, or now.
func timeOr(now time.Time, ts ...pcommon.Timestamp) time.Time {
	for _, t := range ts {
		if t != 0 {
			return t.AsTime()
		}
	}
	return now
}

func scopeDoc(s pcommon.InstrumentationScope) map[string]any {
	if s.Name() == "" && s.Version() == "" {
		return nil
	}
	return map[string]any{"name": s.Name(), "version": s.Version()}
}

func fingerprint(signal, stream string, observed time.Time, traceID, spanID string, id []byte) string {
	return store.Fingerprint(signal, stream, observed, traceID, spanID, id)
}

// resourceDoc encodes a resource's attributes once for all its rows.
type resourceDoc struct {
	m   pcommon.Map
	doc string
}

func (r *resourceDoc) json() string {
	if r.doc == "" {
		r.doc = string(store.EncodeJSON(r.m.AsRaw()))
	}
	return r.doc
}
