package driftlockprocessor

import (
	"context"
	"slices"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/driftlock/driftlock/internal/attrs"
	"github.com/driftlock/driftlock/internal/cbad"
	"github.com/driftlock/driftlock/processor/driftlockprocessor/internal/metadata"
)

// metricsForm is the metrics signal: each series (metric name and
// attributes) is a numeric stream per statistic; see numberSeries and
// histogramSeries.
type metricsForm struct{}

func (metricsForm) name() string { return signalMetrics }

func (metricsForm) detectorOptions(*Config) []cbad.Option { return nil }

// init makes the table of previous points that cumulative series need.
func (metricsForm) init(e *engine) {
	e.series = newSeriesTable(e.cfg.Metrics.MaxSeries)
	e.scrapes = newScrapeFlags(e.cfg.Metrics.MaxSeries)
}

// Companion metric names and the statistics scored per series.
const (
	companionScore     = attrs.MetricScore
	companionAnomalies = attrs.MetricAnomalies

	statValue    = "value"
	statCount    = "count"
	statSum      = "sum"
	statQuantile = "quantile"
)

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
	// One metricScope serves the whole batch (the tally lives in it, by
	// value, so that it stays on the stack); each scope sets its source.
	ms := metricScope{e: e, s: s, t: e.newTally()}
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
			ms.res, ms.scope, ms.out = res, scope, batch
			metrics := sm.Metrics()
			for k := 0; k < metrics.Len(); k++ {
				ms.scoreMetric(metrics.At(k))
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
	e.record(ctx, &ms.t)
	return md, nil
}

// metricScope is what the data points of one scope share while scored:
// the batch's scratch and tally, the resource and scope that open every
// stream id, and where companion points go (nil with
// annotate_data_points).
type metricScope struct {
	e     *engine
	s     *scratch
	t     tally
	res   pcommon.Map
	scope string
	out   *metricsBatch
}

// scoreMetric scores the points of one metric with the scorer of its kind.
func (ms *metricScope) scoreMetric(m pmetric.Metric) {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		gaugeSeries(m).scorePoints(ms, m.Gauge().DataPoints())
	case pmetric.MetricTypeSum:
		sumSeries(m).scorePoints(ms, m.Sum().DataPoints())
	case pmetric.MetricTypeHistogram:
		newHistogramSeries(m, ms.e.cfg.Metrics.HistogramQuantile).scorePoints(ms, m.Histogram().DataPoints())
	default:
		// Summaries and exponential histograms pass through untouched.
	}
}

// seriesPoint is one data point of a series while it is scored: where it
// comes from, its series key and the verdicts of its statistics.
type seriesPoint struct {
	name       string // metric name
	attrs      pcommon.Map
	start, ts  pcommon.Timestamp
	cumulative bool
	// series is "<stream id>/<metric name>{k=v,...}", built in the
	// scratch's key buffer; its first streamLen bytes are the stream id
	// written as driftlock.stream.
	series    []byte
	streamLen int
	verdicts  []verdict // in the scratch's verdict buffer
}

// point starts scoring a data point: it builds the series key.
func (ms *metricScope) point(name string, attrs pcommon.Map, start, ts pcommon.Timestamp, cumulative bool) seriesPoint {
	streamLen := ms.e.seriesKey(ms.s, ms.res, attrs, ms.scope, name)
	return seriesPoint{
		name: name, attrs: attrs, start: start, ts: ts, cumulative: cumulative,
		series: ms.s.key, streamLen: streamLen, verdicts: ms.s.verdicts[:0],
	}
}

// score scores value v as statistic stat of the point's series.
func (ms *metricScope) score(p *seriesPoint, stat string, v float64) {
	r := ms.e.scoreValue(ms.statKey(p, stat), ms.familyKey(p, stat), p.ts.AsTime(), v)
	p.verdicts = append(p.verdicts, verdict{stat: stat, r: r})
	ms.s.verdicts = p.verdicts // a grown buffer goes back to the scratch
}

// statKey interns the detector key "<series>#<stat>" of one statistic.
// familyKey interns "<stream id>/<metric name>#<statistic>": the series of
// one metric within one stream (every pod's CPU of a service, every route's
// latency) form a family, from which a new series borrows its spread while
// it is young (cbad cold start). The family stays inside its stream so that
// a fleet routing streams to different collectors decides exactly as one
// collector would: no verdict depends on series another collector sees.
func (ms *metricScope) familyKey(p *seriesPoint, stat string) string {
	n := len(p.series)
	b := append(p.series, p.series[:p.streamLen]...)
	b = append(b, '#')
	b = append(b, stat...)
	key := ms.e.keys.intern(b[n:])
	p.series = b[:n]
	ms.s.key = p.series // a grown buffer goes back to the scratch
	return key
}

func (ms *metricScope) statKey(p *seriesPoint, stat string) string {
	b := append(p.series, '#')
	b = append(b, stat...)
	key := ms.e.keys.intern(b)
	p.series = b[:len(p.series)]
	ms.s.key = p.series // a grown buffer goes back to the scratch
	return key
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

// emit records the point's verdicts: on the data point's attributes
// (annotate_data_points) or as companion points carrying the series'
// attributes plus metric.name, driftlock.stream and driftlock.statistic.
func (ms *metricScope) emit(p *seriesPoint) {
	e := ms.e
	var stream string
	best := -1
	for i := range p.verdicts {
		v := &p.verdicts[i]
		if v.r.Anomaly {
			// The scrape is the stream id without the metric name.
			svc := e.keys.intern(p.series[:max(p.streamLen-len(p.name)-1, 0)])
			if !e.scrapes.first(svc, p.ts) {
				v.r.Anomaly, v.r.Explanation, v.r.Reason = false, "", ""
			}
		}
		ms.t.add(&v.r)
		if !e.wants(&v.r) {
			continue
		}
		if stream == "" {
			stream = e.keys.intern(p.series[:p.streamLen])
		}
		if ms.out == nil {
			if best < 0 || moreSevere(&v.r, &p.verdicts[best].r) {
				best = i
			}
			continue
		}
		if v.r.Calibrating {
			continue // no score yet; the calibrating count is in telemetry
		}
		ms.out.add(p, stream, v)
	}
	if best >= 0 {
		e.annotate(p.attrs, stream, &p.verdicts[best].r)
		annotateNumbers(p.attrs, &p.verdicts[best].r, callEnds{})
		if e.annotAll || p.verdicts[best].r.Anomaly {
			p.attrs.PutStr(attrStatistic, p.verdicts[best].stat)
		}
	}
}

// add appends the companion score and anomaly-count points of one verdict.
func (b *metricsBatch) add(p *seriesPoint, stream string, v *verdict) {
	sp := b.score.AppendEmpty()
	p.attrs.CopyTo(sp.Attributes())
	pa := sp.Attributes()
	pa.PutStr(attrMetricName, p.name)
	pa.PutStr(attrStream, stream)
	pa.PutStr(attrStatistic, v.stat)
	sp.SetTimestamp(p.ts)
	sp.SetDoubleValue(v.r.Score)
	c := b.anomalies.AppendEmpty()
	pa.CopyTo(c.Attributes())
	// A delta point covers the interval since the previous point; for a
	// cumulative input the series start is not that, so use the instant.
	if p.cumulative || p.start == 0 {
		c.SetStartTimestamp(p.ts)
	} else {
		c.SetStartTimestamp(p.start)
	}
	c.SetTimestamp(p.ts)
	if v.r.Anomaly {
		c.SetIntValue(1)
		// The explanation travels with the anomaly (only points of value 1
		// carry it, so the companion series of a quiet metric keeps one
		// attribute set): what was seen, what was expected, why, and how
		// unlikely.
		ca := c.Attributes()
		ca.PutDouble(attrPValue, v.r.PValue)
		if v.r.Explanation != "" {
			ca.PutStr(attrExplanation, v.r.Explanation)
		}
		if v.r.Reason != "" {
			ca.PutStr(attrs.Reason, v.r.Reason)
		}
		annotateNumbers(ca, &v.r, callEnds{})
	} else {
		c.SetIntValue(0)
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
