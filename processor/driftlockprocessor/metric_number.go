package driftlockprocessor

import (
	"math"

	"go.opentelemetry.io/collector/pdata/pmetric"
)

// numberSeries scores the points of a gauge or a sum: one statistic,
// "value", per point; a cumulative sum is scored by its increase since the
// previous point.
type numberSeries struct {
	name       string
	cumulative bool // cumulative sum: score the delta
	monotonic  bool // a monotonic sum that goes down was reset
}

func gaugeSeries(m pmetric.Metric) numberSeries { return numberSeries{name: m.Name()} }

func sumSeries(m pmetric.Metric) numberSeries {
	sum := m.Sum()
	return numberSeries{
		name:       m.Name(),
		cumulative: sum.AggregationTemporality() == pmetric.AggregationTemporalityCumulative,
		monotonic:  sum.IsMonotonic(),
	}
}

func (n numberSeries) scorePoints(ms *metricScope, dps pmetric.NumberDataPointSlice) {
	for i := 0; i < dps.Len(); i++ {
		n.score(ms, dps.At(i))
	}
}

func (n numberSeries) score(ms *metricScope, dp pmetric.NumberDataPoint) {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeEmpty || dp.Flags().NoRecordedValue() {
		return
	}
	v := pointValue(dp)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return // "no data" in many sources (e.g. a latency with no requests): not a value to learn
	}
	p := ms.point(n.name, dp.Attributes(), dp.StartTimestamp(), dp.Timestamp(), n.cumulative)
	if n.cumulative {
		var ok bool
		if v, ok = ms.e.series.sumDelta(p.series, dp.StartTimestamp(), v, n.monotonic); !ok {
			return // the first point of a cumulative series has no delta yet
		}
	}
	ms.score(&p, statValue, v)
	ms.emit(&p)
}

func pointValue(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}
