package incident

import "math"

// Strength evidence. The count test (background.go) weighs how many
// anomalies a stream shows in a bucket, not how surprising they are: one
// pod at 25 times its usual CPU and one routine wobble are one metric flag
// each. The strength test weighs the strongest anomaly of the bucket
// against the stream's own history of strengths, so a stream whose flags
// are routinely extreme (an unfamiliar log template scores p = 1e-100
// every time) gains nothing from extreme p-values, while a stream whose
// flags are routinely mild gains a lot from one extreme flag.
//
// A bucket's strength is the level reached by the smallest p-value among
// its anomalies (strengthLevel). Each stream keeps, beside its counts,
// the exponentially weighted number of past buckets that reached each
// level (rate.S, over the same buckets and decay as the counts). The
// p-value of a bucket reaching level j is the estimated chance that a
// bucket of the stream reaches it,
//
//	(S_j + w0 * pi_j) / (W + w0)
//
// shrunk toward pi_j, the share of the stream-buckets of streams of the
// same signal and evidence class that reached level j (the pooled rate's
// S over its buckets times its streams, itself starting at PriorRate with
// the weight of half a bucket), the prior weighing max(w0, 1/pi_j)
// buckets (a stream's quiet history says little about an event its class
// shows once in thousands of buckets until it has been watched about that
// long): a level the whole class has not reached in
// a day of buckets is rare for a new stream too, and a level common in the
// class is weak evidence everywhere. The detector's p-values need not be
// calibrated for this: only their order within a stream matters.

// strengthBounds are the levels: -log10 of the p-value a bucket's
// strongest anomaly must reach, roughly doubling every two levels (what
// matters is the order of magnitude of the order of magnitude).
var strengthBounds = [...]float64{1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 300}

const strengthLevels = len(strengthBounds)

// noStrength is the level of a bucket whose anomalies carry no p-value
// below the first bound.
const noStrength = -1

// strengthLevel is the highest level p reaches. A p-value of 0 (an
// underflow, or a non-finite metric value) reaches every level; one that
// is missing (NaN) or not below 0.1 none.
func strengthLevel(p float64) int {
	if math.IsNaN(p) || p >= math.Pow(10, -strengthBounds[0]) {
		return noStrength
	}
	if p <= 0 {
		return strengthLevels - 1
	}
	x := -math.Log10(p)
	l := noStrength
	for j, b := range strengthBounds {
		if x >= b {
			l = j
		}
	}
	return l
}

// markStrength counts n buckets (streams, for a pooled rate) that reached
// level in the bucket just added.
func (r *rate) markStrength(level int, n float64) {
	for j := 0; j <= level && j < strengthLevels; j++ {
		r.S[j] += n
	}
}

// strengthLog2 is log2 of the chance that a bucket of the stream reaches
// level, given the prior share pi of stream-buckets reaching it and the
// prior's weight w0 (buckets). It reads the background as of the last
// catchUp.
func (r *rate) strengthLog2(level int, pi, w0 float64) float64 {
	if level < 0 {
		return 0
	}
	p := (r.S[level] + w0*pi) / (r.W + w0)
	return min(math.Log2(p), 0)
}

// strengthPrior is the share pi of the class's stream-buckets that reached
// level: its pooled count over its buckets times its streams, starting at
// PriorRate with the weight of half a bucket.
func (c *Correlator) strengthPrior(signal int, class string, level int) float64 {
	if level < 0 {
		return 1
	}
	const half = 0.5
	k := classKey(signal, class)
	p := c.st.Pooled[k]
	if p == nil {
		return c.cfg.PriorRate
	}
	p.catchUp(c.st.Clocks[signal].Clock+1, c.keep)
	streams := float64(max(c.st.Streams[k], 1))
	return (p.S[level] + half) / (p.W*streams + half/c.cfg.PriorRate)
}
