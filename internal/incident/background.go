package incident

import "math"

// rate is the background of one evidence stream (a service, a signal and
// a reason): how many anomalies it shows per bucket, as exponentially
// weighted sums over the buckets in which its signal had data. Buckets
// without anomalies count as zeros without being visited: Clock is the
// signal's bucket clock when the stream was last updated, and the decay
// over the buckets since is applied in one step.
type rate struct {
	W, X, X2 float64 // weighted bucket count, sum of counts, sum of squares
	Clock    int64
	// Last holds the counts of the buckets at Clock and Clock-1, for the
	// test over the latest buckets together.
	Last [2]float64
	// S counts the buckets that reached each strength level (strength.go),
	// weighted like W.
	S [strengthLevels]float64
}

// recent returns the counts of the two buckets before clock.
func (r *rate) recent(clock int64) (prev1, prev2 float64) {
	switch clock - r.Clock {
	case 1:
		return r.Last[0], r.Last[1]
	case 2:
		return 0, r.Last[0]
	}
	return 0, 0
}

// test returns log2 of the p-value of n anomalies in the bucket at clock
// whose strongest reaches strength level (strength.go): the smallest of
// the one-bucket count test, the count test of the last three buckets
// together (trouble that builds over minutes) and the strength test
// against the prior share pi, corrected for the tries (Bonferroni). It
// then learns the bucket, its count clipped at the
// background's mean + 6 sd (at least 4) so that one big burst does not
// teach the stream that bursts are routine, while clumps of a few records
// are learned as the stream's habit.
func (r *rate) test(clock int64, n, level int, pi, keep, m0, w0 float64) float64 {
	r.catchUp(clock, keep)
	mean, variance := r.moments(m0, w0)
	l := log2Tail(n, mean, variance)
	tries := 1.0
	p1, p2 := r.recent(clock)
	if p1+p2 > 0 {
		l = min(l, log2Tail(n+int(p1+p2), 3*mean, 3*variance))
		tries++
	}
	if level >= 0 {
		// The prior weighs at least the buckets in which the class shows
		// the level once (strength.go).
		l = min(l, r.strengthLog2(level, pi, max(w0, 1/pi)))
		tries++
	}
	clip := max(4, mean+6*math.Sqrt(variance))
	r.add(clock, min(float64(n), clip), keep)
	r.markStrength(level, 1)
	r.Last = [2]float64{float64(n), p1}
	return min(l+math.Log2(tries), 0)
}

// catchUp accounts for the empty buckets up to, but not including, clock.
func (r *rate) catchUp(clock int64, keep float64) {
	if k := clock - 1 - r.Clock; k > 0 {
		d := math.Pow(keep, float64(k))
		r.W = d*r.W + (1-d)/(1-keep)
		r.X *= d
		r.X2 *= d
		for j := range r.S {
			r.S[j] *= d
		}
		r.Clock = clock - 1
		// The skipped buckets were empty: they are now the latest.
		if k == 1 {
			r.Last = [2]float64{0, r.Last[0]}
		} else {
			r.Last = [2]float64{}
		}
	}
}

// add records a bucket with n anomalies at clock (after catchUp).
func (r *rate) add(clock int64, n float64, keep float64) {
	r.catchUp(clock, keep)
	r.W = keep*r.W + 1
	r.X = keep*r.X + n
	r.X2 = keep*r.X2 + n*n
	for j := range r.S {
		r.S[j] *= keep
	}
	r.Clock = clock
}

// moments are the background mean and variance per bucket, shrunk toward
// the prior: mean m0 weighing w0 buckets, Poisson (variance m0) until the
// stream's own history shows clumps.
func (r *rate) moments(m0, w0 float64) (mean, variance float64) {
	mean = (r.X + m0*w0) / (r.W + w0)
	second := (r.X2 + (m0+m0*m0)*w0) / (r.W + w0)
	variance = max(second-mean*mean, mean)
	return mean, variance
}

// log2Tail returns log2 P(N >= n) for a count N with the given mean and
// variance: Poisson when variance == mean, negative binomial when larger
// (the variance captures a stream's habit of flagging in clumps, so a
// clumpy stream's burst is weaker evidence than a steady one's).
// Computed in logs, so tiny tails do not underflow.
func log2Tail(n int, mean, variance float64) float64 {
	if n <= 0 {
		return 0
	}
	if mean <= 0 {
		return math.Inf(-1)
	}
	// pmf(k+1)/pmf(k) = ratio(k); logPMF(k) gives the start.
	var logPMF func(k int) float64
	var ratio func(k int) float64
	if variance <= mean*(1+1e-9) {
		lm := math.Log(mean)
		logPMF = func(k int) float64 {
			lg, _ := math.Lgamma(float64(k) + 1)
			return float64(k)*lm - mean - lg
		}
		ratio = func(k int) float64 { return mean / float64(k+1) }
	} else {
		r := mean * mean / (variance - mean)
		p := r / (r + mean) // success probability
		lp, lq := math.Log(p), math.Log1p(-p)
		lgr, _ := math.Lgamma(r)
		logPMF = func(k int) float64 {
			a, _ := math.Lgamma(float64(k) + r)
			b, _ := math.Lgamma(float64(k) + 1)
			return a - lgr - b + r*lp + float64(k)*lq
		}
		ratio = func(k int) float64 { return (float64(k) + r) / float64(k+1) * (1 - p) }
	}
	if float64(n) <= mean {
		// The tail is not small: 1 - P(N < n), summed directly.
		cdf := 0.0
		for k := 0; k < n; k++ {
			cdf += math.Exp(logPMF(k))
		}
		return math.Log2(max(1-cdf, 1e-300))
	}
	// Upper tail from n: terms fall (n is past the mode), sum them
	// relative to the first.
	first := logPMF(n)
	sum, term := 1.0, 1.0
	for k := n; k < n+100000; k++ {
		term *= ratio(k)
		sum += term
		if term < 1e-12*sum {
			break
		}
	}
	return min((first+math.Log(sum))/math.Ln2, 0)
}

// fisherLog2 combines k independent tests, given the sum of their log2
// p-values, into one log2 p-value (Fisher's method: -2 sum ln p is
// chi-squared with 2k degrees of freedom, whose tail has a closed form for
// even degrees).
func fisherLog2(sumLog2 float64, k int) float64 {
	if k <= 1 {
		return sumLog2
	}
	x := -sumLog2 * math.Ln2 // -sum ln p = chi2 / 2
	// P = exp(-x) * sum_{i<k} x^i / i!
	term, sum := 1.0, 1.0
	for i := 1; i < k; i++ {
		term *= x / float64(i)
		sum += term
	}
	return min((-x+math.Log(sum))/math.Ln2, 0)
}
