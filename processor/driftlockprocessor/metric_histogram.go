package driftlockprocessor

import (
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// histogramSeries scores the points of an explicit-bucket histogram: up to
// three statistics per point, the count, the sum (when the point has one)
// and the configured quantile estimated from the buckets; a cumulative
// histogram is scored by its increases since the previous point.
type histogramSeries struct {
	name       string
	cumulative bool
	quantile   float64 // metrics.histogram_quantile
}

func newHistogramSeries(m pmetric.Metric, quantile float64) histogramSeries {
	return histogramSeries{
		name:       m.Name(),
		cumulative: m.Histogram().AggregationTemporality() == pmetric.AggregationTemporalityCumulative,
		quantile:   quantile,
	}
}

func (h histogramSeries) scorePoints(ms *metricScope, dps pmetric.HistogramDataPointSlice) {
	for i := 0; i < dps.Len(); i++ {
		h.score(ms, dps.At(i))
	}
}

func (h histogramSeries) score(ms *metricScope, dp pmetric.HistogramDataPoint) {
	if dp.Flags().NoRecordedValue() {
		return
	}
	p := ms.point(h.name, dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(), h.cumulative)
	count, sum := float64(dp.Count()), dp.Sum()
	// The bucket counts are copied into the scratch: a cumulative point's
	// are turned into deltas there, without touching the data point.
	bc := dp.BucketCounts()
	counts := ms.s.counts[:0]
	for i := 0; i < bc.Len(); i++ {
		counts = append(counts, bc.At(i))
	}
	ms.s.counts = counts
	if math.IsNaN(sum) || math.IsInf(sum, 0) {
		return
	}
	if h.cumulative {
		var ok bool
		if count, sum, ok = ms.e.series.histogramDelta(p.series, dp.StartTimestamp(), dp.Count(), dp.Sum(), counts); !ok {
			return
		}
	}
	ms.score(&p, statCount, count)
	if dp.HasSum() {
		ms.score(&p, statSum, sum)
	}
	if q, ok := bucketQuantile(dp.ExplicitBounds(), counts, h.quantile); ok {
		ms.score(&p, statQuantile, q)
	}
	ms.emit(&p)
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
