package cbad

import "math"

// calibration is a bounded window of a stream's recent normal scores. The
// p-value of a new score s is the conformal (split-conformal, "plus one")
// estimate (1 + #{c >= s}) / (n + 1): under exchangeability of normal
// scores it is a valid p-value, so flagging at p < alpha gives a
// false-positive rate of at most alpha on normal data.
//
// The scores are kept twice: in arrival order (a ring, to know which one
// leaves) and sorted (so a p-value is a binary search and the median a
// lookup). Inserting into the sorted copy moves at most n floats, which is
// cheaper than scanning them on every record.
type calibration struct {
	scores []float32 // ring, arrival order
	head   int
	n      int
	sorted []float32 // the same n scores, ascending
	median float64
	res    float64 // score resolution; 0 compares exact scores
	// The exponential tail fitted at the last refresh (see tailPValue):
	// scores above tailU are rare, and their excesses over it have mean
	// tailBeta.
	tailU, tailBeta float64
}

func newCalibration(size int, res float64) calibration {
	return calibration{scores: make([]float32, size), sorted: make([]float32, 0, size), res: res}
}

// textResolution is the resolution at which text scores are compared:
// costs within the same quarter bit per token are the same cost (the
// model's own noise is larger than that). Without it, a common kind of
// record whose cost creeps up by hundredths of a bit as counts change would
// rank at the top of its own cluster about 1% of the time and be flagged
// for nothing; with it, the cluster ties and its p-value is its true share
// of the stream. Numeric scores are means over many symbols and are
// compared as they are.
const textResolution = 0.25

func (c *calibration) quantize(s float64) float32 {
	if c.res <= 0 {
		return float32(s)
	}
	return float32(math.Floor(s/c.res) * c.res)
}

func (c *calibration) add(s float64) {
	x := c.quantize(s)
	if x != x {
		return // NaN is no score (and would break the order of sorted)
	}
	if c.n == len(c.scores) {
		replaceSorted(c.sorted, c.scores[c.head], x)
	} else {
		c.sorted = insertSorted(c.sorted, x)
		c.n++
	}
	c.scores[c.head] = x
	c.head++
	if c.head == len(c.scores) {
		c.head = 0
	}
}

// pValue returns the conformal p-value of s.
func (c *calibration) pValue(s float64) float64 {
	if c.n == 0 {
		return 1
	}
	ge := c.n - searchSorted(c.sorted, c.quantize(s)) // #{sorted >= s}
	return float64(1+ge) / float64(c.n+1)
}

// refresh updates the cached median and tail fit (read on the hot path).
func (c *calibration) refresh() {
	if c.n == 0 {
		c.median = 0
		return
	}
	c.median = float64(c.sorted[c.n/2])
	k := tailK(c.n)
	c.tailU = float64(c.sorted[c.n-k])
	excess := 0.0
	for _, v := range c.sorted[c.n-k:] {
		excess += float64(v) - c.tailU
	}
	c.tailBeta = max(excess/float64(k), c.res, minTailBeta)
}

// minTailBeta keeps the tail fit from collapsing when the top scores tie.
const minTailBeta = 0.05

// tailK is how many of the n highest calibration scores the tail fit uses:
// about 3% of them, at least 4.
func tailK(n int) int { return max(min(4, n), n/32) }

// tailPValue is pValue with the tail extrapolated: the conformal p-value
// cannot go below 1/(n+1), so with n = 512 a per-record level stricter than
// 0.002 could never flag anything. Above the k-th highest score u, the
// excesses of a light-tailed score are close to exponential (the
// peaks-over-threshold view of extreme value theory), so the p-value is
// (k/(n+1)) * exp(-(s-u)/beta), beta the mean excess of the top k. Inside
// the calibrated range the rank p-value is kept (it is exact); beyond the
// highest score the smaller of the two is used, so the p-value keeps
// falling for scores far beyond every normal one. It is what makes a per-record level tied to the stream's
// traffic (Config.FlagBudget) possible.
func (c *calibration) tailPValue(s float64) float64 {
	if c.n == 0 || c.tailBeta == 0 {
		return c.pValue(s)
	}
	p := c.pValue(s)
	q := float64(c.quantize(s))
	if q <= float64(c.sorted[c.n-1]) {
		return p // inside the calibrated range the rank is exact
	}
	k := tailK(c.n)
	return min(p, float64(k)/float64(c.n+1)*math.Exp(-(q-c.tailU)/c.tailBeta))
}

// Peaks over threshold for values (numeric baselines, cold-start pools):
// tailPValue above extrapolates a score's tail from a fit cached at
// refresh; exceedP fits the same exponential tail on the spot, from a
// sorted slice, for the rare value beyond the baseline's range (no state,
// nothing to snapshot, no allocation).

// minTailP is the smallest p-value an extrapolated tail reports: far below
// any level, but a number (0 would read as "impossible", and a product of
// p-values downstream would collapse).
const minTailP = 1e-300

// exceedP returns the peaks-over-threshold p-value of x against the
// ascending, NaN-free sorted, beyond its upper (or, with lower, its lower)
// tail: the k = tailK(n) most extreme values define the threshold t (the
// k-th most extreme) and the scale beta (their mean excess over t, at least
// betaFloor), and x beyond t gets (k/(n+1)) * exp(-(x-t)/beta): the
// conformal rank k/(n+1) at t, falling exponentially with the excess. At the
// most extreme value the estimate is within a small factor of 1/(n+1) (for
// exponential excesses, the largest is about ln k mean excesses above t;
// k/(n+1) * exp(-ln k) = 1/(n+1)), so it takes over from the conformal rank
// where the rank stops. ok is false when x is
// not beyond t or the tail has no scale (every extreme value ties and the
// floor is 0): there is nothing to extrapolate from, and the caller keeps
// its rank p-value. The result is never NaN and never below minTailP.
func exceedP[T float32 | float64](sorted []T, x float64, lower bool, betaFloor float64) (p float64, ok bool) {
	n := len(sorted)
	if n == 0 {
		return 1, false
	}
	k := tailK(n)
	var t, sum float64
	if lower {
		t = float64(sorted[k-1])
		for _, v := range sorted[:k] {
			sum += t - float64(v)
		}
	} else {
		t = float64(sorted[n-k])
		for _, v := range sorted[n-k:] {
			sum += float64(v) - t
		}
	}
	d := x - t
	if lower {
		d = t - x
	}
	beta := max(sum/float64(k), betaFloor)
	if !(d > 0) || !(beta > 0) || math.IsInf(beta, 0) {
		return 1, false
	}
	p = float64(k) / float64(n+1) * math.Exp(-d/beta)
	if !(p >= minTailP) { // underflow (or an infinite excess)
		p = minTailP
	}
	return p, true
}

// quantile returns the q-quantile of the scores.
func (c *calibration) quantile(q float64) float64 {
	if c.n == 0 {
		return 0
	}
	return float64(c.sorted[int(q*float64(c.n-1))])
}

// ordered returns the scores oldest first (for snapshots).
func (c *calibration) ordered() []float32 {
	out := make([]float32, 0, c.n)
	for i := 0; i < c.n; i++ {
		j := c.head - c.n + i
		if j < 0 {
			j += len(c.scores)
		}
		out = append(out, c.scores[j])
	}
	return out
}
