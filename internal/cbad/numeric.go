package cbad

import (
	"fmt"
	"math"
	"time"

	"github.com/driftlock/driftlock/internal/attrs"
)

// The numeric path scores a value stream (one metric series) the same way
// the text path scores records: values are symbolized against the
// baseline's own distribution (quantile bins, plus one bin below the
// baseline's minimum and one above its maximum), and the cost of the recent
// symbol subsequence under an adaptive order-1 symbol model is the score.
// A point far outside the baseline's range is flagged on its own.

const (
	numBins = 10
	// Symbols: 0 = below the baseline's range, 1..numBins quantile bins,
	// numBins+1 = above the range.
	numSymbols = numBins + 2
	// subseqLen is the length of the recent subsequence that is scored.
	subseqLen = 16
	// farOutside flags a value beyond the baseline range by this many
	// inter-quartile ranges on its own.
	farOutside = 3.0
)

type numericState struct {
	values ring1     // baseline values, oldest first
	sorted []float64 // the same values in order, kept in step by pushValue
	edges  [numBins - 1]float64
	lo, hi float64 // baseline range
	q1, q3 float64

	// Symbol model counts over the baseline's symbol sequence, rebuilt
	// every hop (bins move with the baseline).
	c0 [numSymbols]float64
	c1 [numSymbols][numSymbols]float64
	n0 float64

	// recentCost holds the costs of the points before the current one in
	// the scored subsequence, oldest first.
	recentCost [subseqLen - 1]float64
	nRecent    int
	prevSym    int
	ready      bool
	sinceHop   int
	prevFar    bool
	quiet      int // points left in the current episode quiet period
	// episode is when the current episode began and lastFlag when it was
	// last flagged (record time, unix ns; 0: none, or points without time).
	episode, lastFlag int64

	season seasonalState // the time-of-day test (seasonal.go)
}

// ring1 is a ring of float64.
type ring1 struct {
	v    []float64
	head int
	n    int
}

func (r *ring1) push(x float64) {
	r.v[r.head] = x
	r.head++
	if r.head == len(r.v) {
		r.head = 0
	}
	if r.n < len(r.v) {
		r.n++
	}
}

func (r *ring1) at(i int) float64 {
	j := r.head - r.n + i
	if j < 0 {
		j += len(r.v)
	}
	return r.v[j]
}

// pushValue adds v to the baseline values and keeps sorted in step, so a
// rebuild needs no sort: when the ring is full, v takes the oldest value's
// place in sorted and the values between the two positions shift by one.
func (ns *numericState) pushValue(v float64) {
	if ns.values.n < len(ns.values.v) {
		ns.sorted = insertSorted(ns.sorted, v)
	} else {
		replaceSorted(ns.sorted, ns.values.at(0), v)
	}
	ns.values.push(v)
}

func (ns *numericState) bytes() int {
	return 512 + len(ns.values.v)*8 + cap(ns.sorted)*8 + ns.season.bytes()
}

func (ns *numericState) symbol(v float64) int {
	if !ns.ready {
		return 1
	}
	if v < ns.lo {
		return 0
	}
	if v > ns.hi {
		return numSymbols - 1
	}
	// The number of edges below v (a rebuild symbolizes the whole baseline,
	// so this is the numeric path's inner loop: plain comparisons, values
	// are never NaN here).
	k := 0
	for k < len(ns.edges) && ns.edges[k] < v {
		k++
	}
	return 1 + k
}

// rebuild recomputes bins and the symbol model from the baseline values.
func (ns *numericState) rebuild() {
	n := ns.values.n
	if n < 8 {
		return
	}
	ns.lo, ns.hi = ns.sorted[0], ns.sorted[n-1]
	ns.q1, ns.q3 = ns.sorted[n/4], ns.sorted[(3*n)/4]
	for k := range ns.edges {
		ns.edges[k] = ns.sorted[(k+1)*n/numBins]
	}
	ns.ready = true
	ns.c0 = [numSymbols]float64{}
	ns.c1 = [numSymbols][numSymbols]float64{}
	prev := -1
	for i := 0; i < n; i++ {
		s := ns.symbol(ns.values.at(i))
		ns.c0[s]++
		if prev >= 0 {
			ns.c1[prev][s]++
		}
		prev = s
	}
	ns.n0 = float64(n)
}

// symCost is the code length of symbol s after prev (order-1 with escape to
// order-0, Krichevsky-Trofimov smoothing so unseen symbols stay finite).
func (ns *numericState) symCost(prev, s int) float64 {
	if prev >= 0 {
		row := &ns.c1[prev]
		tot := 0.0
		for _, c := range row {
			tot += c
		}
		if tot > 0 {
			return -math.Log2((row[s] + 0.5*ns.p0(s)) / (tot + 0.5))
		}
	}
	return -math.Log2(ns.p0(s))
}

func (ns *numericState) p0(s int) float64 {
	return (ns.c0[s] + 0.5) / (ns.n0 + 0.5*numSymbols)
}

// Fixed choices of the numeric path, measured on NAB (see README).
const (
	numSubseq     = subseqLen
	numRefractory = -1 // the episode quiet period: -1 means Config.Hop points
	numPScale     = 1.0
	numFar        = farOutside
)

// ScoreValue scores one numeric point of stream key (a metric series). NaN
// and infinite values are reported as anomalies without touching the
// baseline.
func (d *Detector) ScoreValue(key string, t time.Time, v float64) Result {
	return d.ScoreSeries(key, "", t, v)
}

// ScoreSeries is ScoreValue for a series of a family (e.g. the metric name
// and statistic, shared by the same metric of every pod): while the series
// is young it is judged against the family's pooled residuals (cold start,
// see coldstart.go) instead of waiting Config.Warmup points. An empty
// family scores as ScoreValue.
func (d *Detector) ScoreSeries(key, family string, t time.Time, v float64) Result {
	fam := d.family(family)
	st := d.acquire(key, t)
	res := d.scoreValue(st, fam, t, v)
	st.mu.Unlock()
	d.records.Add(1)
	return res
}

func (d *Detector) scoreValue(st *stream, fam *family, t time.Time, v float64) Result {
	cfg := &d.cfg
	ns := st.ensureNumeric(cfg)
	if ns.season.hist.v == nil {
		ns.season = newSeasonal(len(ns.values.v))
	}
	var tn int64
	if !t.IsZero() {
		tn = t.UnixNano()
	}
	res := Result{Index: st.index, PValue: 1, Observed: v}
	st.index++
	if math.IsNaN(v) || math.IsInf(v, 0) {
		res.Anomaly = ns.ready
		res.Calibrating = !ns.ready
		if res.Anomaly {
			res.PValue = 0
			res.Reason = attrs.ReasonValue
			res.Explanation = fmt.Sprintf("value %v is not a finite number", v)
			d.anomalies.Add(1)
		}
		return res
	}

	ns.season.observeTime(tn)
	s := ns.symbol(v)
	cost := ns.symCost(ns.prevSym, s)
	total := cost
	n := 1
	for i := ns.nRecent - 1; i >= 0 && n < numSubseq; i-- {
		total += ns.recentCost[i]
		n++
	}
	res.Score = total / float64(n)

	res.Calibrating = !ns.ready || ns.values.n < cfg.Warmup || st.cal.n == 0
	coldStart := false
	res.Median = st.cal.median
	seasonScored, seasonE, seasonThr, seasonFlag := false, 0.0, 0.0, false
	outside := 0.0
	if ns.ready {
		iqr := ns.q3 - ns.q1
		if iqr <= 0 {
			iqr = math.Max(math.Abs(ns.hi-ns.lo), 1e-9)
		}
		if v > ns.hi {
			outside = (v - ns.hi) / iqr
		} else if v < ns.lo {
			outside = (ns.lo - v) / iqr
		}
	}
	unusual, continued := false, false
	if !res.Calibrating {
		res.PValue = st.cal.pValue(res.Score)
		far := outside >= numFar
		unusual = (res.PValue*numPScale < cfg.PValue && res.Score-st.cal.median >= cfg.MinEffect) || far
		seasonal := false
		if sp, e, thr, ok := ns.season.score(v); ok {
			seasonScored, seasonE, seasonThr = true, e, thr
			if sp < seasonPValue {
				seasonal, unusual = true, true
				if !far {
					res.PValue = sp
				}
			}
		}
		if far {
			// Beyond the baseline's range by numFar spreads: the p-value of
			// the value itself, its conformal rank among the baseline (above
			// or below all of them) extrapolated by the baseline's tail, so
			// a 25x jump does not read like a routine wobble.
			res.PValue = math.Min(res.PValue, ns.valueP(v))
		}
		res.ExpectedLow, res.ExpectedHigh = ns.quantile(numRangeTail), ns.quantile(1-numRangeTail)
		if seasonal && !far {
			// What this time of day usually shows.
			res.ExpectedLow, res.ExpectedHigh = seasonE-seasonThr, seasonE+seasonThr
			seasonFlag = true
		}
		// One flag per episode: an unusual point shortly after another
		// continues the same incident and is not flagged again, except a
		// value far outside the baseline's range that follows an ordinary
		// point (a spike is its own incident).
		res.Anomaly = unusual && (ns.quiet <= 0 || (far && !ns.prevFar))
		ns.prevFar = far
		if far && !res.Anomaly && ns.ongoing(tn) {
			// A condition that lasts stays visible: while the episode goes
			// on, a point is flagged again every maxFlagGap of record time
			// (as a log episode is), so an incident built on it does not
			// close while the value is still out of line.
			res.Anomaly = true
			continued = true
		}
	} else if fam != nil {
		// Cold start: judged by the family's pooled residuals.
		if p, pTail, lo, hi, ok := fam.coldVerdict(ns, v, cfg.PValue*coldAlphaShare); ok {
			res.Calibrating = false
			res.PValue, res.ExpectedLow, res.ExpectedHigh = p, lo, hi
			res.Score = 0
			unusual = p < cfg.PValue*coldAlphaShare && (v < lo || v > hi)
			if unusual {
				res.PValue = pTail // the rank decides; a far value reports its tail
			}
			res.Anomaly = unusual && ns.quiet <= 0
			coldStart = true
		}
	}
	if fam != nil && !unusual {
		fam.contribute(ns, v, cfg.Warmup)
	}
	ns.pushRecent(cost)
	ns.prevSym = s
	ns.season.push(v, seasonE, seasonThr, seasonScored)
	if ns.quiet > 0 {
		ns.quiet--
	}

	if unusual {
		// The episode lasts while unusual points keep coming.
		if ns.quiet <= 0 || ns.episode == 0 {
			ns.episode = tn
		}
		ns.quiet = numRefractory
		if ns.quiet < 0 {
			ns.quiet = cfg.Hop
		}
		if ns.episode != 0 {
			res.Episode = time.Unix(0, ns.episode).UTC()
		}
		if res.Anomaly {
			d.anomalies.Add(1)
			ns.lastFlag = tn
			res.Reason = attrs.ReasonValue
			res.Explanation = numericExplanation(&res, coldStart, ns.values.n)
			if seasonFlag {
				res.Explanation = seasonalExplanation(&res, &ns.season)
			}
			if continued {
				res.Explanation += "; still out of line since " + res.Episode.Format(time.RFC3339)
			}
		}
		if cfg.AdmitAfter > 0 && st.novelty.observe(uint64(s)+1) >= cfg.AdmitAfter {
			ns.pushValue(v)
			st.cal.add(res.Score)
		}
	} else {
		if ns.ready {
			st.cal.add(res.Score)
		}
		ns.pushValue(v)
	}
	ns.sinceHop++
	// The model is rebuilt every hop, and while the series is young also
	// whenever its history doubles and when it reaches Warmup (the point
	// from which it judges on its own): a range built from its first 16
	// points would call a slowly growing series (memory) far outside it.
	have := ns.values.n
	young := have < len(ns.values.v) && have >= 16 && (have&(have-1) == 0 || have == cfg.Warmup)
	if ns.sinceHop >= cfg.Hop || (!ns.ready && have >= 16) || (young && ns.sinceHop > 0) {
		ns.sinceHop = 0
		ns.rebuild()
		ns.season.rebuild(ns.q3 - ns.q1)
		if st.cal.n > 0 {
			st.cal.refresh()
		}
	}
	return res
}

// ongoing reports whether an episode with a flag at least maxFlagGap of
// record time before tn is still open (points with times only).
func (ns *numericState) ongoing(tn int64) bool {
	return ns.quiet > 0 && ns.lastFlag != 0 && tn != 0 && tn-ns.lastFlag >= int64(maxFlagGap)
}

// valueP is the p-value of a value v outside the baseline's range: the
// conformal rank 1/(n+1), or below it the peaks-over-threshold estimate of
// the baseline's tail on v's side (exceedP: an exponential fitted to the
// excesses of the tailK(n) most extreme values).
//
// The tail's scale is floored at numTailIQR inter-quartile ranges and at
// numTailRel of the threshold's magnitude: when the extreme values tie (a
// quantized or constant series), their mean excess is 0, which would make
// any step beyond them impossible (p = 0), while the data only say the tail
// is narrower than their resolution. The IQR floor sits just below a normal
// tail's own scale (its top 3% exceed their threshold by 0.29 IQR on
// average), so it binds only for ties or unusually short tails; the
// relative floor is the cold start's (coldResidual) and gives a constant
// series a scale: a step of 0.1% of its level is ordinary, one of 1% has
// p ~ 1e-6. A constant series at 0 has no scale at all and keeps 1/(n+1).
func (ns *numericState) valueP(v float64) float64 {
	n := len(ns.sorted)
	p := 1 / float64(n+1)
	lower := v < ns.lo
	t := ns.sorted[n-tailK(n)]
	if lower {
		t = ns.sorted[tailK(n)-1]
	}
	floor := max(numTailIQR*(ns.q3-ns.q1), numTailRel*math.Abs(t))
	if pt, ok := exceedP(ns.sorted, v, lower, floor); ok {
		p = min(p, pt)
	}
	return p
}

// The floors of the scale of a baseline's tail (see valueP).
const (
	numTailIQR = 0.25
	numTailRel = 1e-3
)

// numRangeTail is the tail left out of a series' expected range on each
// side: the range shown is the baseline's 1st to 99th percentile.
const numRangeTail = 0.01

// coldAlphaShare is the share of Config.PValue a young series is flagged
// at: its first hour is judged at a tenth of the level, since every series
// of a new pod or deploy is young at once and their false flags would
// otherwise arrive together. (The family pools are sized so that this
// level is reachable: 1/(coldPoolSize+1) < 0.1 * 0.01.)
const coldAlphaShare = 0.1

// quantile returns the q-quantile of the baseline values.
func (ns *numericState) quantile(q float64) float64 {
	n := len(ns.sorted)
	if n == 0 {
		return math.NaN()
	}
	return ns.sorted[min(max(int(q*float64(n-1)+0.5), 0), n-1)]
}

// numericExplanation is the sentence on a flagged metric point.
func numericExplanation(r *Result, coldStart bool, n int) string {
	where := "above"
	if r.Observed < r.ExpectedLow {
		where = "below"
	} else if r.Observed <= r.ExpectedHigh {
		where = "inside"
	}
	if coldStart {
		return fmt.Sprintf("value %.6g is %s the expected range [%.6g, %.6g] (a new series: %d points of its own, spread judged by its metric's other series); p=%.2g",
			r.Observed, where, r.ExpectedLow, r.ExpectedHigh, n, r.PValue)
	}
	if where == "inside" {
		return fmt.Sprintf("value %.6g is inside the expected range [%.6g, %.6g] but the recent sequence is unusual (%.2f bits/point, median %.2f); p=%.2g",
			r.Observed, r.ExpectedLow, r.ExpectedHigh, r.Score, r.Median, r.PValue)
	}
	return fmt.Sprintf("value %.6g is %s the expected range [%.6g, %.6g] (%.2f bits/point, median %.2f); p=%.2g",
		r.Observed, where, r.ExpectedLow, r.ExpectedHigh, r.Score, r.Median, r.PValue)
}

func (ns *numericState) pushRecent(c float64) {
	if ns.nRecent < len(ns.recentCost) {
		ns.recentCost[ns.nRecent] = c
		ns.nRecent++
		return
	}
	copy(ns.recentCost[:], ns.recentCost[1:])
	ns.recentCost[len(ns.recentCost)-1] = c
}

// seasonalExplanation is the sentence on a point flagged by the seasonal
// test: the evidence is the run of recent points, the point the last of it.
func seasonalExplanation(r *Result, ss *seasonalState) string {
	c, period := ss.recent()
	return fmt.Sprintf("%d of the last %d points are off what this time of %s usually shows; this one is %.6g where earlier %ss show %.6g (+-%.3g); p=%.2g",
		c, seasonWindow, period, r.Observed, period, (r.ExpectedLow+r.ExpectedHigh)/2, (r.ExpectedHigh-r.ExpectedLow)/2, r.PValue)
}
