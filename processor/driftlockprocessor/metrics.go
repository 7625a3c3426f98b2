package driftlockprocessor

import (
	"context"
	"math"
	"slices"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/driftlock/driftlock/internal/attrs"
	"github.com/driftlock/driftlock/internal/cbad"
	"github.com/driftlock/driftlock/processor/driftlockprocessor/internal/metadata"
)

// Companion metric names and the statistics scored per series.
const (
	companionScore     = attrs.MetricScore
	companionAnomalies = attrs.MetricAnomalies

	statValue    = "value"
	statCount    = "count"
	statSum      = "sum"
	statQuantile = "quantile"
)

// seriesState is what a cumulative series needs to turn its next point into
// a delta.
type seriesState struct {
	start   pcommon.Timestamp
	value   float64  // sum value, or histogram sum
	count   uint64   // histogram count
	buckets []uint64 // histogram bucket counts
}

// seriesTable keeps the previous point of cumulative series, bounded by
// max_series: when full, about an eighth of the entries (Go's map iteration
// order is random, so a random eighth) is dropped; a dropped series just
// skips one point while it re-learns its previous value.
type seriesTable struct {
	mu  sync.Mutex
	m   map[string]*seriesState
	max int
}

func newSeriesTable(maxSeries int) *seriesTable {
	return &seriesTable{m: make(map[string]*seriesState), max: maxSeries}
}

// get returns the state of key, creating it when absent (fresh=true). The
// caller holds t.mu.
func (t *seriesTable) get(key []byte) (st *seriesState, fresh bool) {
	if st, ok := t.m[string(key)]; ok {
		return st, false
	}
	if len(t.m) >= t.max {
		drop := max(1, len(t.m)/8)
		for k := range t.m {
			delete(t.m, k)
			if drop--; drop == 0 {
				break
			}
		}
	}
	st = &seriesState{}
	t.m[string(key)] = st
	return st, true
}

// verdict is one scored statistic of a data point.
type verdict struct {
	stat string
	r    cbad.Result
}

// metricsBatch carries the companion metrics of one resource while its
// scopes are scored.
type metricsBatch struct {
	sm        pmetric.ScopeMetrics
	score     pmetric.NumberDataPointSlice
	anomalies pmetric.NumberDataPointSlice
}

func newMetricsBatch() *metricsBatch {
	sm := pmetric.NewScopeMetrics()
	sm.Scope().SetName(metadata.ScopeName)
	g := sm.Metrics().AppendEmpty()
	g.SetName(companionScore)
	g.SetDescription("Driftlock anomaly score of the series' latest point (excess bits per symbol).")
	g.SetUnit("bit")
	c := sm.Metrics().AppendEmpty()
	c.SetName(companionAnomalies)
	c.SetDescription("Number of points of the series flagged anomalous by Driftlock.")
	c.SetUnit("{anomaly}")
	sum := c.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	return &metricsBatch{sm: sm, score: g.SetEmptyGauge().DataPoints(), anomalies: sum.DataPoints()}
}

// processMetrics scores each series (metric name + attributes) as a numeric
// stream. By default the verdicts leave as companion metrics in a scope of
// their own appended to the resource, so the data points keep their
// identity; with metrics.annotate_data_points they are written on the points.
func (e *engine) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	s := getScratch()
	defer putScratch(s)
	t := e.newTally()
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		res := rm.Resource().Attributes()
		var batch *metricsBatch
		if !e.cfg.Metrics.AnnotateDataPoints {
			batch = s.batch
			if batch == nil {
				batch = newMetricsBatch()
			}
			s.batch = nil
		}
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			sm := sms.At(j)
			scope := sm.Scope().Name()
			if scope == metadata.ScopeName {
				continue // our own companion metrics from an upstream driftlock
			}
			ms := sm.Metrics()
			for k := 0; k < ms.Len(); k++ {
				e.scoreMetric(s, &t, res, scope, ms.At(k), batch)
			}
		}
		if batch != nil {
			if batch.score.Len() > 0 || batch.anomalies.Len() > 0 {
				batch.sm.Metrics().RemoveIf(func(m pmetric.Metric) bool {
					return (m.Type() == pmetric.MetricTypeGauge && m.Gauge().DataPoints().Len() == 0) ||
						(m.Type() == pmetric.MetricTypeSum && m.Sum().DataPoints().Len() == 0)
				})
				batch.sm.MoveTo(sms.AppendEmpty())
			} else {
				s.batch = batch // unused: keep it for the next resource
			}
		}
	}
	e.record(ctx, &t)
	return md, nil
}

func (e *engine) scoreMetric(s *scratch, t *tally, res pcommon.Map, scope string, m pmetric.Metric, batch *metricsBatch) {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			e.scoreNumber(s, t, res, scope, m.Name(), dps.At(i), false, false, batch)
		}
	case pmetric.MetricTypeSum:
		sum := m.Sum()
		cumulative := sum.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		dps := sum.DataPoints()
		for i := 0; i < dps.Len(); i++ {
			e.scoreNumber(s, t, res, scope, m.Name(), dps.At(i), cumulative, sum.IsMonotonic(), batch)
		}
	case pmetric.MetricTypeHistogram:
		h := m.Histogram()
		cumulative := h.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		dps := h.DataPoints()
		for i := 0; i < dps.Len(); i++ {
			e.scoreHistogram(s, t, res, scope, m.Name(), dps.At(i), cumulative, batch)
		}
	default:
		// Summaries and exponential histograms pass through untouched.
	}
}

// seriesKey builds "<stream id>/<metric name>{k=v,...}" in s.key, with the
// point's attributes sorted, and returns the length of the stream-id part
// ("<stream id>/<metric name>", written as driftlock.stream).
func (e *engine) seriesKey(s *scratch, res, attrs pcommon.Map, scope, name string) int {
	b := e.appendStreamKey(s.key[:0], s, attrs, res, scope)
	b = append(b, '/')
	b = append(b, name...)
	streamLen := len(b)
	base := len(s.keys)
	for k := range attrs.All() {
		s.keys = append(s.keys, k)
	}
	keys := s.keys[base:]
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, k...)
		b = append(b, '=')
		v, _ := attrs.Get(k)
		b = appendValue(b, v, s, len(b)+1024, 0)
	}
	b = append(b, '}')
	clear(keys)
	s.keys = s.keys[:base]
	s.key = b
	return streamLen
}

// statKey interns the detector key of one statistic of the series in s.key.
func (e *engine) statKey(s *scratch, stat string) string {
	n := len(s.key)
	s.key = append(s.key, '#')
	s.key = append(s.key, stat...)
	key := e.keys.intern(s.key)
	s.key = s.key[:n]
	return key
}

func pointValue(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

func (e *engine) scoreNumber(s *scratch, t *tally, res pcommon.Map, scope, name string, dp pmetric.NumberDataPoint, cumulative, monotonic bool, batch *metricsBatch) {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeEmpty || dp.Flags().NoRecordedValue() {
		return
	}
	v := pointValue(dp)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return // "no data" in many sources (e.g. a latency with no requests): not a value to learn
	}
	streamLen := e.seriesKey(s, res, dp.Attributes(), scope, name)
	if cumulative {
		e.series.mu.Lock()
		st, fresh := e.series.get(s.key)
		prev, reset := st.value, fresh || st.start != dp.StartTimestamp() || (monotonic && v < st.value)
		st.start, st.value = dp.StartTimestamp(), v
		e.series.mu.Unlock()
		if reset {
			return // the first point of a cumulative series has no delta yet
		}
		v -= prev
	}
	s.verdicts = append(s.verdicts[:0], verdict{stat: statValue,
		r: e.scoreValue(e.statKey(s, statValue), dp.Timestamp().AsTime(), v)})
	e.emit(s, t, name, streamLen, dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(), cumulative, batch)
}

func (e *engine) scoreHistogram(s *scratch, t *tally, res pcommon.Map, scope, name string, dp pmetric.HistogramDataPoint, cumulative bool, batch *metricsBatch) {
	if dp.Flags().NoRecordedValue() {
		return
	}
	streamLen := e.seriesKey(s, res, dp.Attributes(), scope, name)
	count, sum := float64(dp.Count()), dp.Sum()
	bc := dp.BucketCounts()
	s.counts = s.counts[:0]
	for i := 0; i < bc.Len(); i++ {
		s.counts = append(s.counts, bc.At(i))
	}
	if math.IsNaN(sum) || math.IsInf(sum, 0) {
		return
	}
	if cumulative {
		e.series.mu.Lock()
		st, fresh := e.series.get(s.key)
		reset := fresh || st.start != dp.StartTimestamp() || dp.Count() < st.count || len(st.buckets) != len(s.counts)
		prevCount, prevSum := st.count, st.value
		for i := 0; i < len(s.counts) && !reset; i++ {
			if s.counts[i] < st.buckets[i] {
				reset = true
			}
		}
		if !reset {
			for i := range s.counts {
				s.counts[i], st.buckets[i] = s.counts[i]-st.buckets[i], s.counts[i]
			}
		} else {
			st.buckets = append(st.buckets[:0], s.counts...)
		}
		st.start, st.count, st.value = dp.StartTimestamp(), dp.Count(), dp.Sum()
		e.series.mu.Unlock()
		if reset {
			return
		}
		count, sum = float64(dp.Count()-prevCount), dp.Sum()-prevSum
	}
	tm := dp.Timestamp().AsTime()
	s.verdicts = append(s.verdicts[:0], verdict{stat: statCount, r: e.scoreValue(e.statKey(s, statCount), tm, count)})
	if dp.HasSum() {
		s.verdicts = append(s.verdicts, verdict{stat: statSum, r: e.scoreValue(e.statKey(s, statSum), tm, sum)})
	}
	if q, ok := bucketQuantile(dp.ExplicitBounds(), s.counts, e.cfg.Metrics.HistogramQuantile); ok {
		s.verdicts = append(s.verdicts, verdict{stat: statQuantile, r: e.scoreValue(e.statKey(s, statQuantile), tm, q)})
	}
	e.emit(s, t, name, streamLen, dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(), cumulative, batch)
}

// bucketQuantile estimates quantile q of one interval's distribution from
// explicit-bucket counts, interpolating linearly inside the bucket that holds
// the rank. The first bucket has no lower bound and the last no upper bound:
// their edges stand in for the whole bucket.
func bucketQuantile(bounds pcommon.Float64Slice, counts []uint64, q float64) (float64, bool) {
	nb := bounds.Len()
	if nb == 0 || len(counts) != nb+1 {
		return 0, false
	}
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0, false
	}
	rank := q * float64(total)
	var cum float64
	for i, c := range counts {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank {
			switch {
			case i == 0:
				return bounds.At(0), true
			case i == nb:
				return bounds.At(nb - 1), true
			}
			lo, hi := bounds.At(i-1), bounds.At(i)
			return lo + (hi-lo)*(rank-cum)/float64(c), true
		}
		cum += float64(c)
	}
	return bounds.At(nb - 1), true
}

// emit records the verdicts in s.verdicts: on the data point's attributes
// (annotate_data_points) or as companion points carrying the series'
// attributes plus metric.name, driftlock.stream and driftlock.statistic.
func (e *engine) emit(s *scratch, t *tally, name string, streamLen int, attrs pcommon.Map, start, ts pcommon.Timestamp, cumulative bool, batch *metricsBatch) {
	var stream string
	best := -1
	for i := range s.verdicts {
		v := &s.verdicts[i]
		t.add(&v.r)
		if !e.wants(&v.r) {
			continue
		}
		if stream == "" {
			stream = e.keys.intern(s.key[:streamLen])
		}
		if batch == nil {
			if best < 0 || moreSevere(&v.r, &s.verdicts[best].r) {
				best = i
			}
			continue
		}
		if v.r.Calibrating {
			continue // no score yet; the calibrating count is in telemetry
		}
		p := batch.score.AppendEmpty()
		attrs.CopyTo(p.Attributes())
		pa := p.Attributes()
		pa.PutStr(attrMetricName, name)
		pa.PutStr(attrStream, stream)
		pa.PutStr(attrStatistic, v.stat)
		p.SetTimestamp(ts)
		p.SetDoubleValue(v.r.Score)
		c := batch.anomalies.AppendEmpty()
		pa.CopyTo(c.Attributes())
		// A delta point covers the interval since the previous point; for a
		// cumulative input the series start is not that, so use the instant.
		if cumulative || start == 0 {
			c.SetStartTimestamp(ts)
		} else {
			c.SetStartTimestamp(start)
		}
		c.SetTimestamp(ts)
		if v.r.Anomaly {
			c.SetIntValue(1)
		} else {
			c.SetIntValue(0)
		}
	}
	if best >= 0 {
		e.annotate(attrs, stream, &s.verdicts[best].r)
		if e.annotAll || s.verdicts[best].r.Anomaly {
			attrs.PutStr(attrStatistic, s.verdicts[best].stat)
		}
	}
}

// moreSevere orders verdicts for annotate_data_points, where a histogram
// point carries only one: anomalies first, then drift, then lower p-values.
func moreSevere(a, b *cbad.Result) bool {
	if a.Anomaly != b.Anomaly {
		return a.Anomaly
	}
	ad, bd := a.Window != nil && a.Window.Drift, b.Window != nil && b.Window.Drift
	if ad != bd {
		return ad
	}
	return a.PValue < b.PValue
}
