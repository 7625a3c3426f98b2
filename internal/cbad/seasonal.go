package cbad

import (
	"math"
	"math/bits"
	"slices"
)

// The seasonal test of the numeric path. Operational metrics repeat by the
// day (traffic, batch jobs, temperatures), and the range test and the
// symbol model only see a value's place in the baseline's distribution: a
// day whose busy hours stay at the night's level, or reach only half the
// usual peak, is made of ordinary values. What is unusual is the value at
// that time of day.
//
// The expectation is the seasonal naive forecast made robust: the median of
// the values one, two, ... K days earlier (K <= seasonMaxLags, at least 2),
// each with its two neighbours (a daily pattern whose steps jitter by a
// point is still one pattern). The residual |v - expectation| is an
// exceedance when it is above the 99th percentile of the residuals of the
// series' own last seasonCalSize points (computed the same way), and the
// evidence is the number of exceedances among the last seasonWindow points,
// tested at level seasonPValue against what the series' normal residuals
// allow: their exceedances as a two-state Markov chain (see countTail), so
// a series whose normal deviations come in runs needs a longer run. One odd
// point is not a changed day; a run of them is.
//
// The test runs only when it fits the series: the period (a day or a week,
// in points from the median spacing of the timestamps) fits twice in the
// history, and the residuals' spread (inter-quartile range) is at most
// seasonGate times the values' own spread, i.e. the time of day explains
// most of the series' variation. A series without a daily pattern (noise,
// a random walk) keeps the other tests only.
//
// Memory: the history ring (NumericBaselineSize values, all points in time
// order, unusual ones included: the median of K days absorbs one odd day)
// and the residual calibration (seasonCalSize values, sorted and in time
// order), allocated with the series: 8 * (NumericBaselineSize +
// 2*seasonCalSize) bytes, 24 KiB at the defaults.

const (
	seasonPeriod   = 24 * 60 * 60 // seconds in the period tested: a day
	seasonMaxLags  = 7            // days the expectation looks back
	seasonCalSize  = 512          // residuals the exceedance threshold is taken from
	seasonMinCal   = 64           // residuals needed before the test judges
	seasonWindow   = 16           // points the exceedances are counted over
	seasonQuantile = 0.99         // residual quantile that makes an exceedance
	seasonPValue   = 1e-4         // level of the binomial count
	seasonGate     = 0.5          // residual IQR / value IQR at most this
	seasonMinStep  = 8            // points per day at least (a point every 3 h)
	seasonSteps    = 16           // timestamp spacings the step is the median of
)

type seasonalState struct {
	hist ring1 // every finite point, oldest first

	// Spacing of the last points' timestamps (nanoseconds).
	lastT  int64
	steps  [seasonSteps]int64
	nSteps int

	period int     // points per period; 0 while the test does not apply
	weekly bool    // the period is a week (else a day)
	thr    float64 // exceedance threshold on |residual|
	// The exceedances of normal residuals as a two-state Markov chain:
	// rate is the stationary exceedance rate, after1 the chance of an
	// exceedance right after one, after0 right after none.
	rate, after1, after0 float64
	resid                []float64 // residuals of the calibration stretch, sorted
	inTime               []float64 // the same in time order
	// exceed is the last seasonWindow exceedance bits, newest lowest.
	exceed uint32
}

func newSeasonal(size int) seasonalState {
	return seasonalState{hist: ring1{v: make([]float64, size)},
		resid: make([]float64, 0, seasonCalSize), inTime: make([]float64, 0, seasonCalSize)}
}

func (ss *seasonalState) bytes() int {
	return 256 + len(ss.hist.v)*8 + cap(ss.resid)*8 + cap(ss.inTime)*8
}

// observeTime records a point's timestamp (UnixNano; 0 = none). Points
// missing before it (a gap of k steps: a scrape that failed, a collector
// restart) take k-1 empty places in the history, so "the same time
// yesterday" stays the same time; a timestamp at or before the last one
// changes nothing.
func (ss *seasonalState) observeTime(t int64) {
	if t == 0 {
		return
	}
	if ss.lastT != 0 && t > ss.lastT {
		d := t - ss.lastT
		if step := ss.medianStep(); step > 0 {
			if missing := int(math.Round(float64(d)/float64(step))) - 1; missing > 0 {
				for i := 0; i < min(missing, len(ss.hist.v)); i++ {
					ss.hist.push(math.NaN())
					ss.exceed <<= 1
				}
			}
		}
		ss.steps[ss.nSteps%seasonSteps] = d
		ss.nSteps++
	}
	ss.lastT = t
}

// medianStep is the median spacing of the last seasonSteps timestamps in
// nanoseconds, 0 until there are that many.
func (ss *seasonalState) medianStep() int64 {
	if ss.nSteps < seasonSteps {
		return 0
	}
	st := ss.steps
	slices.Sort(st[:])
	return st[seasonSteps/2]
}

// expectAt returns the seasonal expectation for history position pos (pos
// may be hist.n: the point being scored) and whether there were enough
// earlier days.
func (ss *seasonalState) expectAt(pos int) (float64, bool) {
	p := ss.period
	var buf [3 * seasonMaxLags]float64
	m := 0
	for k := 1; k <= seasonMaxLags; k++ {
		c := pos - k*p
		if c-1 < 0 {
			break
		}
		for d := -1; d <= 1; d++ {
			if c+d < ss.hist.n {
				if x := ss.hist.at(c + d); !math.IsNaN(x) { // not an empty place
					buf[m] = x
					m++
				}
			}
		}
	}
	if m < 6 { // two days
		return 0, false
	}
	xs := buf[:m]
	insertionSort(xs)
	if m%2 == 1 {
		return xs[m/2], true
	}
	return (xs[m/2-1] + xs[m/2]) / 2, true
}

// rebuild re-derives the period, the gate and the exceedance threshold
// from the history (every hop). The candidate periods are a day and a week
// (traffic that differs on weekends is weekly); the one whose residuals are
// smaller is used. A candidate needs two periods of history before the
// residuals it calibrates on, and those must cover a whole period (or
// seasonCalSize points), so every time of day is in the threshold.
func (ss *seasonalState) rebuild(valueIQR float64) {
	ss.period = 0
	step := float64(ss.medianStep()) / 1e9
	if step <= 0 {
		return
	}
	day := int(math.Round(seasonPeriod / step))
	if day < seasonMinStep {
		return
	}
	best, bestMed, last := 0, math.Inf(1), 0
	for _, p := range [2]int{day, 7 * day} {
		if !ss.fits(p) {
			continue
		}
		ss.calibrate(p)
		last = p
		if len(ss.resid) < seasonMinCal {
			continue
		}
		if med := ss.resid[len(ss.resid)/2]; med < bestMed {
			best, bestMed = p, med
		}
	}
	if best == 0 {
		return
	}
	// The residuals are absolute: twice their median is about the
	// inter-quartile range of the signed residuals, compared with the
	// values' own.
	if 2*bestMed > seasonGate*valueIQR {
		return
	}
	if best != last { // resid holds the other candidate's residuals
		ss.calibrate(best)
	}
	m := len(ss.resid)
	ss.period, ss.weekly = best, best != day
	ss.thr = ss.resid[min(int(seasonQuantile*float64(m)), m-1)]
	// Exceedances of real residuals cluster (a busy evening runs late for
	// an hour, not a point): count the transitions of the calibration
	// stretch's exceedance sequence, smoothed (Krichevsky-Trofimov, as the
	// symbol model), so the count test below charges a run of exceedances
	// what runs cost in this series' normal days.
	var n0, n1, n01, n11 float64
	prev := false
	for i, r := range ss.inTime {
		cur := r > ss.thr
		if i > 0 {
			if prev {
				n1++
				if cur {
					n11++
				}
			} else {
				n0++
				if cur {
					n01++
				}
			}
		}
		prev = cur
	}
	ss.after1 = (n11 + 0.5) / (n1 + 1)
	ss.after0 = (n01 + 0.5) / (n0 + 1)
	ss.rate = ss.after0 / (1 - ss.after1 + ss.after0)
}

// fits reports whether period p has two periods of history before a
// calibration stretch covering a period (or seasonCalSize points).
func (ss *seasonalState) fits(p int) bool {
	return 2*p+1+max(min(p, seasonCalSize), seasonMinCal) <= ss.hist.n
}

// calibrate fills resid with the sorted absolute residuals of the last
// seasonCalSize points under period p.
func (ss *seasonalState) calibrate(p int) {
	ss.period = p
	n := ss.hist.n
	ss.inTime = ss.inTime[:0]
	for pos := max(2*p+1, n-seasonCalSize); pos < n; pos++ {
		e, ok := ss.expectAt(pos)
		if x := ss.hist.at(pos); ok && !math.IsNaN(x) { // an empty place has no residual
			ss.inTime = append(ss.inTime, math.Abs(x-e))
		}
	}
	ss.resid = append(ss.resid[:0], ss.inTime...)
	slices.Sort(ss.resid)
	ss.period = 0
}

// score judges v (not yet in the history): the p-value (countTail) of the
// exceedances among the last seasonWindow points including v, and the
// expectation. ok is false when the test does not apply.
func (ss *seasonalState) score(v float64) (p, expect, thr float64, ok bool) {
	if ss.period == 0 {
		return 1, 0, 0, false
	}
	e, ok := ss.expectAt(ss.hist.n)
	if !ok {
		return 1, 0, 0, false
	}
	// A residual within a thousandth of the level is ordinary even when the
	// history repeats exactly (the floor a constant series gets elsewhere).
	thr = math.Max(ss.thr, numTailRel*math.Abs(e))
	ex := ss.exceed << 1
	if math.Abs(v-e) > thr {
		ex |= 1
	}
	return ss.countTail(ex), e, thr, true
}

// countTail is the chance that a stretch of seasonWindow normal points
// holds at least as many exceedances as the last seasonWindow bits of ex,
// under the two-state Markov chain fitted in rebuild (started from its
// stationary rate). With unclustered exceedances (after1 = after0 = rate)
// it is the binomial tail.
func (ss *seasonalState) countTail(ex uint32) float64 {
	c := bits.OnesCount32(ex & (1<<seasonWindow - 1))
	if c == 0 {
		return 1
	}
	// prob[k][b]: k exceedances so far, last point exceeded (b = 1) or not.
	var prob [seasonWindow + 1][2]float64
	prob[0][0], prob[1][1] = 1-ss.rate, ss.rate
	for step := 1; step < seasonWindow; step++ {
		var next [seasonWindow + 1][2]float64
		for k := 0; k <= step; k++ {
			p0, p1 := prob[k][0], prob[k][1]
			stay := p0*(1-ss.after0) + p1*(1-ss.after1)
			next[k][0] += stay
			next[k+1][1] += p0*ss.after0 + p1*ss.after1
		}
		prob = next
	}
	tail := 0.0
	for k := c; k <= seasonWindow; k++ {
		tail += prob[k][0] + prob[k][1]
	}
	return min(tail, 1)
}

// recent returns the exceedances among the last seasonWindow points pushed
// and the period's name, for a flag's sentence.
func (ss *seasonalState) recent() (int, string) {
	name := "day"
	if ss.weekly {
		name = "week"
	}
	return bits.OnesCount32(ss.exceed & (1<<seasonWindow - 1)), name
}

// push adds v to the history, with its exceedance bit.
func (ss *seasonalState) push(v, e, thr float64, scored bool) {
	ss.exceed <<= 1
	if scored && math.Abs(v-e) > thr {
		ss.exceed |= 1
	}
	ss.hist.push(v)
}

// seasonSnap is the seasonal state in a snapshot: the history and the
// figures of the last rebuild, so a restored series scores as the original.
type seasonSnap struct {
	Hist                      []float64
	LastT                     int64
	Steps                     [seasonSteps]int64
	NSteps, Period            int
	Weekly                    bool
	Thr, Rate, After1, After0 float64
	Exceed                    uint32
}

func (ss *seasonalState) snap() *seasonSnap {
	if ss.hist.v == nil {
		return nil
	}
	s := &seasonSnap{LastT: ss.lastT, Steps: ss.steps, NSteps: ss.nSteps, Period: ss.period, Weekly: ss.weekly,
		Thr: ss.thr, Rate: ss.rate, After1: ss.after1, After0: ss.after0, Exceed: ss.exceed}
	for i := 0; i < ss.hist.n; i++ {
		s.Hist = append(s.Hist, ss.hist.at(i))
	}
	return s
}

// restore loads a snapshot's seasonal state (nil: none, the test starts
// over) into a history of size values.
func (ss *seasonalState) restore(s *seasonSnap, size int) {
	*ss = newSeasonal(size)
	if s == nil {
		return
	}
	for _, v := range s.Hist {
		ss.hist.push(v)
	}
	ss.lastT, ss.steps, ss.nSteps, ss.period, ss.weekly = s.LastT, s.Steps, s.NSteps, s.Period, s.Weekly
	ss.thr, ss.rate, ss.after1, ss.after0, ss.exceed = s.Thr, s.Rate, s.After1, s.After0, s.Exceed
}
