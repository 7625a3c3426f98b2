package driftlockexporter

import (
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/driftlock/driftlock/internal/attrs"
	"github.com/driftlock/driftlock/internal/recorddoc"
)

// point is one metric data point reduced to what a row needs.
type point struct {
	attrs pcommon.Map
	start pcommon.Timestamp
	ts    pcommon.Timestamp
	value map[string]any // "value" for numbers; count/sum/... for distributions
}

// metricsBatch stores, per data point:
//   - every point of the companion sum `driftlock.anomalies` whose value is
//     > 0: the series is named by its `metric.name` attribute, and the
//     score comes from the matching `driftlock.anomaly.score` gauge point
//     (same series attributes and timestamp) unless the point carries
//     driftlock.score itself;
//   - every point of any other metric annotated driftlock.anomaly=true
//     (or, with only_anomalies off, annotated at all).
//
// Both views of one anomaly get the same fingerprint (signal, stream,
// timestamp, metric name, series attributes without driftlock.*), so a
// processor that emits both produces one row.
func (w *writer) metricsBatch(md pmetric.Metrics, now time.Time) *batch {
	b := &batch{}
	var scores map[string]float64 // of the current resource
	eachRecord(md.ResourceMetrics(),
		func(rm pmetric.ResourceMetrics) { scores = companionScores(rm) },
		pmetric.ResourceMetrics.Resource, pmetric.ResourceMetrics.ScopeMetrics,
		pmetric.ScopeMetrics.Scope, pmetric.ScopeMetrics.Metrics,
		func(src *source, m pmetric.Metric) {
			if m.Name() == metricScore {
				return // read through `scores`
			}
			companion := m.Name() == metricAnomalies
			cumulative := companion && m.Type() == pmetric.MetricTypeSum &&
				m.Sum().AggregationTemporality() == pmetric.AggregationTemporalityCumulative
			for _, p := range points(m) {
				ann := readAnnotation(p.attrs)
				name := m.Name()
				if companion {
					v, _ := p.value[recorddoc.KeyValue].(float64)
					name = getString(p.attrs, attrMetricName)
					if cumulative {
						v = w.cumulativeIncrease(seriesKey(name, p.attrs, 0), v)
					}
					if v <= 0 {
						b.skipped++
						continue
					}
					if !ann.hasScore {
						ann.score, ann.hasScore = scores[seriesKey(name, p.attrs, p.ts)]
					}
				} else if !ann.hasAnomaly || !b.admit(ann, w.cfg.OnlyAnomalies) {
					continue // not scored by the processor (not a candidate), or not stored
				}
				b.add(src, ann, now, pointRow(m, name, companion, p, ann.score, now))
			}
		})
	return b
}

// pointRow is what a data point contributes to its row; name is the
// series' metric name (for a companion point, its metric.name attribute).
func pointRow(m pmetric.Metric, name string, companion bool, p point, score float64, now time.Time) rowSpec {
	attrs := p.attrs.AsRaw()
	record := map[string]any{
		recorddoc.KeyMetric:    name,
		recorddoc.KeyTime:      recorddoc.Timestamp(p.ts),
		recorddoc.KeyStartTime: recorddoc.Timestamp(p.start),
		recorddoc.KeySeries:    seriesAttrs(attrs),
	}
	for key, v := range p.value {
		record[key] = v
	}
	if companion {
		record[recorddoc.KeySource] = metricAnomalies
		record[recorddoc.KeyAnomalies] = record[recorddoc.KeyValue]
		delete(record, recorddoc.KeyValue)
	} else {
		record[recorddoc.KeyType] = m.Type().String()
		record[recorddoc.KeyUnit] = m.Unit()
		record[recorddoc.KeyDescription] = m.Description()
	}
	return rowSpec{
		signal:   signalMetrics,
		observed: timeOr(now, p.ts, p.start),
		identity: seriesIdentity(name, p.attrs),
		summary:  metricSummary(name, companion, p.value, p.attrs, score),
		attrs:    attrs,
		record:   record,
	}
}

// companionScores indexes the `driftlock.anomaly.score` gauge points of a
// resource by series (metric.name, attributes without driftlock.*) and time.
func companionScores(rm pmetric.ResourceMetrics) map[string]float64 {
	var out map[string]float64
	sms := rm.ScopeMetrics()
	for j := 0; j < sms.Len(); j++ {
		ms := sms.At(j).Metrics()
		for k := 0; k < ms.Len(); k++ {
			m := ms.At(k)
			if m.Name() != metricScore {
				continue
			}
			for _, p := range points(m) {
				v, ok := p.value[recorddoc.KeyValue].(float64)
				if !ok {
					continue
				}
				if out == nil {
					out = map[string]float64{}
				}
				out[seriesKey(getString(p.attrs, attrMetricName), p.attrs, p.ts)] = v
			}
		}
	}
	return out
}

func seriesKey(name string, attrs pcommon.Map, ts pcommon.Timestamp) string {
	return fmt.Sprintf("%d\x00%s", ts, seriesIdentity(name, attrs))
}

// points flattens a metric's data points of any type.
func points(m pmetric.Metric) []point {
	var out []point
	number := func(dps pmetric.NumberDataPointSlice) {
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			v := dp.DoubleValue()
			if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
				v = float64(dp.IntValue())
			}
			out = append(out, point{dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(), map[string]any{recorddoc.KeyValue: v}})
		}
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		number(m.Gauge().DataPoints())
	case pmetric.MetricTypeSum:
		number(m.Sum().DataPoints())
	case pmetric.MetricTypeHistogram:
		out = distributions(out, m.Histogram().DataPoints())
	case pmetric.MetricTypeExponentialHistogram:
		out = distributions(out, m.ExponentialHistogram().DataPoints())
	case pmetric.MetricTypeSummary:
		out = distributions(out, m.Summary().DataPoints())
	}
	return out
}

// distributionPoint is what histogram, exponential histogram and summary
// points share: each is stored as its count and sum.
type distributionPoint interface {
	Attributes() pcommon.Map
	StartTimestamp() pcommon.Timestamp
	Timestamp() pcommon.Timestamp
	Count() uint64
	Sum() float64
}

// distributions appends the points of a histogram, exponential histogram
// or summary to out.
func distributions[P distributionPoint, S pslice[P]](out []point, dps S) []point {
	for i := 0; i < dps.Len(); i++ {
		dp := dps.At(i)
		out = append(out, point{dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(),
			map[string]any{recorddoc.KeyCount: int64(dp.Count()), recorddoc.KeySum: dp.Sum()}})
	}
	return out
}

// metricSummary is the row's one line. A point the processor explained
// (driftlock.observed and the expected range, on the flagged point or its
// companion) says what was seen against what was expected, which is what a
// person reads first ("nezha.cpu_usage = 499.7 (expected 1.29..12)").
func metricSummary(name string, companion bool, value map[string]any, labels pcommon.Map, score float64) string {
	var b strings.Builder
	b.WriteString(name)
	observed, okObs := labels.Get(attrs.Observed)
	lo, okLo := labels.Get(attrs.ExpectedLow)
	hi, okHi := labels.Get(attrs.ExpectedHigh)
	if okObs && okLo && okHi && observed.Type() == pcommon.ValueTypeDouble && lo.Type() == pcommon.ValueTypeDouble && hi.Type() == pcommon.ValueTypeDouble {
		fmt.Fprintf(&b, " = %.6g (expected %.6g..%.6g)", observed.Double(), lo.Double(), hi.Double())
		return b.String()
	}
	if companion {
		b.WriteString(" anomalous")
	} else if v, ok := value[recorddoc.KeyValue]; ok && len(value) == 1 {
		fmt.Fprintf(&b, " = %v", v)
	} else {
		fmt.Fprintf(&b, " count=%v sum=%v", value[recorddoc.KeyCount], value[recorddoc.KeySum])
	}
	fmt.Fprintf(&b, " (score %.3g)", score)
	return b.String()
}

// maxCumulativeSeries bounds the memory of cumulativeIncrease; past it the
// table restarts (at worst one extra row per series).
const maxCumulativeSeries = 100_000

// cumulativeIncrease turns a cumulative `driftlock.anomalies` value into
// the increase since the series' previous point, so that a cumulative
// counter stores one row per new anomaly rather than one per export. The
// first point of a series counts in full (after a collector restart that
// may store one extra row for a series that was already non-zero).
func (w *writer) cumulativeIncrease(key string, v float64) float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cumulative == nil || len(w.cumulative) >= maxCumulativeSeries {
		w.cumulative = map[string]float64{}
	}
	prev, seen := w.cumulative[key]
	w.cumulative[key] = v
	if !seen || v < prev { // first point, or the counter was reset
		return v
	}
	return v - prev
}
