package driftlockprocessor

import (
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
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

// sumDelta records point v (started at start) of the cumulative sum key
// and returns its increase since the previous point. ok is false for the
// first point of a series, and after a reset (a new start time, or a
// monotonic sum that went down): such a point has no delta.
func (t *seriesTable) sumDelta(key []byte, start pcommon.Timestamp, v float64, monotonic bool) (delta float64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, fresh := t.get(key)
	prev, reset := st.value, fresh || st.start != start || (monotonic && v < st.value)
	st.start, st.value = start, v
	if reset {
		return 0, false
	}
	return v - prev, true
}

// histogramDelta records a point of the cumulative histogram key (count,
// sum and bucket counts, started at start) and turns counts, in place,
// into the bucket increases since the previous point; it returns the
// count and sum increases. ok is false for a first point and after a reset
// (a new start time, fewer observations, another bucket layout); counts
// then hold the point's own cumulative counts.
func (t *seriesTable) histogramDelta(key []byte, start pcommon.Timestamp, count uint64, sum float64, counts []uint64) (dCount, dSum float64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, fresh := t.get(key)
	reset := fresh || st.start != start || count < st.count || len(st.buckets) != len(counts)
	prevCount, prevSum := st.count, st.value
	for i := 0; i < len(counts) && !reset; i++ {
		if counts[i] < st.buckets[i] {
			reset = true
		}
	}
	if reset {
		st.buckets = append(st.buckets[:0], counts...)
	} else {
		for i := range counts {
			counts[i], st.buckets[i] = counts[i]-st.buckets[i], counts[i]
		}
	}
	st.start, st.count, st.value = start, count, sum
	if reset {
		return 0, 0, false
	}
	return float64(count - prevCount), sum - prevSum, true
}
