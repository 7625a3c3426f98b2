package cbad

import (
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/driftlock/driftlock/internal/attrs"
)

// The latency path scores durations (a span's own duration per service and
// operation, or the network/queueing gap of calls on one caller -> callee
// edge) and error statuses as numbers, not as text.
//
// Durations: each series keeps a robust baseline, the last
// Config.LatencyBaselineSize normal durations (on a log scale), sorted. A
// duration is an *exceedance* when it is above the baseline's upper
// quantile at level q = max(Config.LatencyQuantile, 1/(n+1)) (for a young
// series with n values, "above every value seen"); under a stable series
// an exceedance has probability at most q (the conformal rank argument:
// the new value is as likely to take any rank among the n+1). One slow span
// proves nothing, so the evidence is the number c of exceedances among the
// last LatencyWindow durations, and the p-value is the binomial tail
// P(C >= c) with C ~ Binomial(window, q): a sustained slowdown (cpu
// contention, a slow callee, network delay on an edge) drives it to
// 1e-6 in a handful of calls, while a lone outlier stays near q. The
// decision is that p-value below Config.LatencyPValue, on an exceedance at
// least Config.LatencyMinRatio times the expected upper bound (an effect
// size, so that a statistically clear but practically nil change of a very
// stable operation is not a flag), and at most one flag per window of
// durations (an episode is flagged, not each of its spans).
//
// Errors: each series keeps the error bits of its last latencyErrorHistory
// calls; an error is flagged when the errors among the last LatencyWindow
// calls are improbable under the series' background error rate, estimated
// from the calls before that window with one pseudo-error (so a series that
// never failed does not make its first error infinitely surprising, and a
// series that always fails is not surprising).
//
// Memory per series: 16 bytes per baseline value (the ring and its sorted
// copy) plus ~200 bytes: about 8 KiB at the default 512.

const (
	// latencyMinPoints is how many baseline durations a series needs before
	// it scores: with fewer, even "above every value seen" is too common an
	// event (probability 1/(n+1)) for a window of them to be conclusive.
	latencyMinPoints = 8
	// latencyErrorHistory is how many recent calls back the background error
	// rate (a fixed bitset: 8 words).
	latencyErrorHistory = 512
)

type latencyState struct {
	values ring1     // log durations of normal calls, oldest first
	sorted []float64 // the same values, ascending

	// The last calls wait in pend for LatencyWindow calls before they join
	// the baseline, so that the calls of a slowdown can be held out once
	// the window proves it (the first slow calls of an episode are not yet
	// evidence when they arrive).
	pend   [64]float64 // log durations of the last calls, ring by call count
	group  [64]uint64  // the request (trace) of each of the last calls
	calls  uint64      // calls seen
	exceed uint64      // exceedance bits of the last calls, newest in bit 0
	// bulk marks the last calls above the baseline's upper quartile (the
	// shift test), newest in bit 0.
	bulk    uint64
	shifted bool   // the current episode was proven by the shift test
	held    uint64 // bits of calls held out (exceedances of an episode)
	slow    int    // calls held out since the last normal one
	// episode is when the current slowdown was first proven (record time),
	// zero outside one.
	episode time.Time
	quiet   int // calls left before another flag of the same episode

	errBits   [latencyErrorHistory / 64]uint64 // error bits of the history, ring
	errHead   int
	errN      int
	errTotal  int    // errors in the history
	errRecent uint64 // error bits of the last calls, newest in bit 0
	errQuiet  int
}

func (ls *latencyState) bytes() int { return 256 + len(ls.values.v)*8 + cap(ls.sorted)*8 }

func (st *stream) ensureLatency(cfg *Config) *latencyState {
	if st.lat == nil {
		n := cfg.LatencyBaselineSize
		st.lat = &latencyState{values: ring1{v: make([]float64, n)}, sorted: make([]float64, 0, n)}
	}
	return st.lat
}

func (ls *latencyState) push(x float64) {
	if ls.values.n < len(ls.values.v) {
		ls.sorted = insertSorted(ls.sorted, x)
	} else {
		replaceSorted(ls.sorted, ls.values.at(0), x)
	}
	ls.values.push(x)
}

// binomTail returns P(C >= c) for C ~ Binomial(n, q).
func binomTail(n, c int, q float64) float64 {
	if c <= 0 {
		return 1
	}
	if c > n {
		return 0
	}
	// Sum the terms from c up; the pmf is built incrementally from its
	// value at c (no factorial overflow, no allocation).
	lq, l1q := math.Log(q), math.Log1p(-q)
	lg := func(k int) float64 { v, _ := math.Lgamma(float64(k) + 1); return v }
	term := math.Exp(lg(n) - lg(c) - lg(n-c) + float64(c)*lq + float64(n-c)*l1q)
	sum := 0.0
	for k := c; k <= n; k++ {
		sum += term
		term *= float64(n-k) / float64(k+1) * q / (1 - q)
	}
	return math.Min(sum, 1)
}

// latencyFloor is the resolution of durations in seconds: durations below
// a microsecond are treated as a microsecond (log scale needs a floor, and
// no clock that times spans resolves less).
const latencyFloor = 1e-6

// ScoreLatency scores one duration (in seconds) of series key: a span's own
// duration per (service, operation) or a call's network/queueing gap per
// caller -> callee edge. reason is the attrs.Reason* value a flag carries
// (attrs.ReasonLatency or attrs.ReasonEdgeLatency). The result carries the
// observed value and the expected range (in seconds).
//
// group names the request the call belongs to (e.g. the low half of its
// trace id; 0 for none): calls of one request are slow together (one slow
// request slows its every query), so exceedances of one request count
// once in the window.
func (d *Detector) ScoreLatency(key string, t time.Time, seconds float64, group uint64, reason string) Result {
	st := d.acquire(key, t)
	res := d.scoreLatency(st, t, seconds, group, reason)
	st.mu.Unlock()
	d.records.Add(1)
	return res
}

func (d *Detector) scoreLatency(st *stream, t time.Time, v float64, group uint64, reason string) Result {
	cfg := &d.cfg
	ls := st.ensureLatency(cfg)
	res := Result{Index: st.index, PValue: 1, Observed: v}
	st.index++
	if math.IsNaN(v) || math.IsInf(v, 0) {
		res.Calibrating = true // no duration: nothing to learn or judge
		return res
	}
	x := math.Log(math.Max(v, latencyFloor))
	w := cfg.LatencyWindow
	ls.enter(x, group, w)
	n := ls.values.n
	if ls.quiet > 0 {
		ls.quiet--
	}
	if n < latencyMinPoints {
		res.Calibrating = true
		return res
	}
	// The exceedance level: the configured quantile, or "above every value"
	// while the baseline is too short to have that quantile. Values
	// strictly above sorted[k] are exceedances.
	k := quantileIndex(n, math.Max(cfg.LatencyQuantile, 1/float64(n+1)))
	hi := ls.sorted[k]
	lo := ls.sorted[n-1-k]
	med := ls.sorted[n/2]
	res.ExpectedLow, res.ExpectedHigh = math.Exp(lo), math.Exp(hi)
	res.Median = math.Exp(med)
	res.Score = (x - med) / math.Ln2 // doublings above the median
	mask := uint64(1)<<uint(w) - 1
	gap := reason == attrs.ReasonEdgeLatency // only gaps take the shift test
	if gap && x > ls.sorted[quantileIndex(n, shiftQuantile)] {
		ls.bulk |= 1
	}
	if x <= hi {
		if ls.exceed&mask == 0 && (!ls.shifted || ls.bulk&mask == 0) {
			// A whole window without a slow call (or, in a shift, without
			// a call above the upper quartile).
			ls.episode, ls.shifted = time.Time{}, false
		}
		if ls.bulk&1 != 0 {
			return d.shiftTest(ls, res, t, reason, n)
		}
		return res
	}
	ls.exceed |= 1
	c := ls.distinctExceedances(w)
	// The window's bits were judged against baselines up to w values
	// shorter than this one: use their (larger) level, conservatively.
	qw := math.Max(cfg.LatencyQuantile, 1/float64(max(n-w, 1)+1))
	res.PValue = binomTail(w, c, qw)
	if res.PValue < cfg.LatencyPValue &&
		ls.proven(d, &res, t, reason, ls.exceed&mask, v >= cfg.LatencyMinRatio*res.ExpectedHigh) {
		res.Explanation = fmt.Sprintf("%s %s: %d of the last %d calls above the expected %s (median %s); p=%.2g",
			latencyWhat(reason), fmtSeconds(v), c, w, fmtSeconds(res.ExpectedHigh), fmtSeconds(res.Median), res.PValue)
		return res
	}
	if gap {
		// Not proven, or proven but small beside the tail (a 300 ms delay
		// on a gap whose tail is 240 ms): the shift test may still show it.
		return d.shiftTest(ls, res, t, reason, n)
	}
	return res
}

// proven records a slowdown the window proved: its slow calls (slow, bits
// of the window) stay out of the baseline, and the verdict carries the
// episode's start (record time) until a whole window passes without a
// slow call. It reports whether the verdict is flagged: large enough
// (large) and the first of its window of calls (one flag per window of an
// episode).
func (ls *latencyState) proven(d *Detector, res *Result, t time.Time, reason string, slow uint64, large bool) bool {
	ls.held |= slow
	if ls.episode.IsZero() {
		ls.episode = t
	}
	res.Episode = ls.episode
	if !large || ls.quiet > 0 {
		return false
	}
	res.Anomaly, res.Reason = true, reason
	ls.quiet = d.cfg.LatencyWindow
	d.anomalies.Add(1)
	return true
}

// shiftQuantile is the upper tail of the shift test: a call above the
// baseline's upper quartile.
const shiftQuantile = 0.25

// quantileIndex is the index in a sorted baseline of n values of its
// q-upper edge: at most floor(q(n+1)) values lie above it.
func quantileIndex(n int, q float64) int {
	k := n - int(math.Floor(q*float64(n+1)))
	return min(max(k, 0), n-1)
}

// shiftTest is the second look at a call gap (reason edge_latency; the
// caller checks) that is slow but not in the tail: the bulk of the
// distribution moved. A heavy-tailed gap (a median of 2 ms and a 99th
// percentile at 200 ms, the delayed-ACK mode of TCP) hides a constant
// added delay of 100 ms below its tail, where the exceedance count never
// sees it; but then nearly every call lands above the usual upper
// quartile. Among the last 2 x LatencyWindow requests (the latest call of
// each, within the last 64 calls), the count above the upper quartile is
// tested under Binomial(requests, 1/4) at LatencyPValue, and the shift
// must be large: the median of those calls at least LatencyMinRatio times
// the usual upper quartile. Only gaps: a call's gap is network and
// queueing, which a delay shifts as a whole, while a span's own duration
// also drifts with the data it works on (a query over a table that grows
// all day), which only the tail test judges. Flags share the exceedance
// test's episode and its one flag per window.
func (d *Detector) shiftTest(ls *latencyState, res Result, t time.Time, reason string, n int) Result {
	cfg := &d.cfg
	w := cfg.LatencyWindow
	ws := min(2*w, 64)
	if ls.calls < uint64(ws) {
		return res
	}
	var vals [64]float64
	c, trials := ls.requestVotes(ws, &vals)
	if trials < w {
		return res
	}
	p75 := ls.sorted[quantileIndex(n, shiftQuantile)]
	if med := medianOf(vals[:trials]); med < p75+math.Log(cfg.LatencyMinRatio) {
		return res
	}
	p := binomTail(trials, c, math.Max(shiftQuantile, 1/float64(max(n-ws, 1)+1)))
	if p >= cfg.LatencyPValue {
		return res
	}
	res.PValue = min(res.PValue, p)
	ls.shifted = true
	if ls.proven(d, &res, t, reason, ls.bulk&(uint64(1)<<uint(w)-1), true) {
		res.Explanation = fmt.Sprintf("%s %s: %d of the last %d requests above the usual upper quartile %s (median %s); p=%.2g",
			latencyWhat(reason), fmtSeconds(res.Observed), c, trials, fmtSeconds(math.Exp(p75)), fmtSeconds(res.Median), p)
	}
	return res
}

// medianOf returns the median of xs, sorting it in place (a few values:
// insertion sort, no allocation).
func medianOf(xs []float64) float64 {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j] < xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
	return xs[len(xs)/2]
}

// requestVotes looks back over the last 64 calls for up to max requests
// (groups; a call without one is its own) and returns how many of them had
// their latest call above the upper quartile, and how many requests voted;
// vals receives the voting calls' log durations.
func (ls *latencyState) requestVotes(max int, vals *[64]float64) (above, trials int) {
	var seen [64]uint64
	for i := 0; i < 64 && uint64(i) < ls.calls && trials < max; i++ {
		at := (ls.calls - 1 - uint64(i)) % 64
		g := ls.group[at]
		if g != 0 {
			dup := false
			for _, s := range seen[:trials] {
				if s == g {
					dup = true
					break
				}
			}
			if dup {
				continue
			}
		}
		seen[trials], vals[trials] = g, ls.pend[at]
		trials++
		if ls.bulk&(1<<uint(i)) != 0 {
			above++
		}
	}
	return above, trials
}

// enter shifts call x into the window; the call that leaves it (w calls
// ago) joins the baseline unless it was held out as part of an episode.
// Held calls are learned anyway once an episode outlasts half the
// baseline: that is the new normal.
func (ls *latencyState) enter(x float64, group uint64, w int) {
	if ls.calls >= uint64(w) {
		old := ls.pend[(ls.calls-uint64(w))%64]
		if ls.held&(1<<uint(w-1)) == 0 {
			ls.push(old)
			if ls.exceed&(1<<uint(w-1)) == 0 {
				ls.slow = 0
			}
		} else if ls.slow++; ls.slow >= len(ls.values.v)/2 {
			ls.push(old)
		}
	}
	ls.pend[ls.calls%64] = x
	ls.group[ls.calls%64] = group
	ls.calls++
	ls.exceed <<= 1
	ls.bulk <<= 1
	ls.held <<= 1
}

// distinctExceedances counts the exceedances among the last w calls,
// those of one request (group) once.
func (ls *latencyState) distinctExceedances(w int) int { return ls.distinct(ls.exceed, w) }

// distinct counts the calls marked in bits among the last w, those of one
// request (group) once.
func (ls *latencyState) distinct(bits uint64, w int) int {
	c := 0
	for i := 0; i < w && uint64(i) < ls.calls; i++ {
		if bits&(1<<uint(i)) == 0 {
			continue
		}
		g := ls.group[(ls.calls-1-uint64(i))%64]
		dup := false
		for j := 0; j < i && g != 0; j++ {
			if bits&(1<<uint(j)) != 0 && ls.group[(ls.calls-1-uint64(j))%64] == g {
				dup = true
				break
			}
		}
		if !dup {
			c++
		}
	}
	return c
}

// ScoreCall scores one call's duration and error status together, in one
// series (one lookup): ScoreLatency and ScoreError of the same key.
func (d *Detector) ScoreCall(key string, t time.Time, seconds float64, isError bool, group uint64, reason string) (latency, errors Result) {
	st := d.acquire(key, t)
	latency = d.scoreLatency(st, t, seconds, group, reason)
	errors = d.scoreError(st, isError)
	st.mu.Unlock()
	d.records.Add(1)
	return latency, errors
}

func latencyWhat(reason string) string {
	if reason == attrs.ReasonEdgeLatency {
		return "call gap"
	}
	return "duration"
}

// fmtSeconds prints a duration in seconds as a Go duration ("98ms").
func fmtSeconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Microsecond).String()
}

// ScoreError scores the error status of one call of series key (a span's
// status per service and operation). Only an error can be flagged: when
// the errors among the last LatencyWindow calls are improbable under the
// series' background error rate.
func (d *Detector) ScoreError(key string, t time.Time, isError bool) Result {
	st := d.acquire(key, t)
	res := d.scoreError(st, isError)
	st.mu.Unlock()
	d.records.Add(1)
	return res
}

func (d *Detector) scoreError(st *stream, isError bool) Result {
	cfg := &d.cfg
	ls := st.ensureLatency(cfg)
	res := Result{Index: st.index, PValue: 1}
	st.index++
	w := cfg.LatencyWindow
	// Errors among the last w-1 calls (plus this one) and among the calls
	// before them in the history.
	recent := bits.OnesCount64(ls.errRecent & (1<<uint(w-1) - 1))
	before := ls.errTotal - recent
	if isError {
		recent++
	}
	nBefore := ls.errN - (w - 1)
	if ls.errQuiet > 0 {
		ls.errQuiet--
	}
	res.Calibrating = nBefore < latencyMinPoints
	if isError && !res.Calibrating {
		// Background rate with one pseudo-error and one pseudo-success.
		rate := (float64(before) + 1) / (float64(nBefore) + 2)
		res.PValue = binomTail(w, recent, rate)
		res.Observed = float64(recent) / float64(w)
		res.ExpectedLow, res.ExpectedHigh = 0, rate
		res.Score = float64(recent) - rate*float64(w)
		if res.PValue < cfg.LatencyPValue && ls.errQuiet == 0 {
			res.Anomaly = true
			res.Reason = attrs.ReasonErrors
			ls.errQuiet = w
			d.anomalies.Add(1)
			res.Explanation = fmt.Sprintf("errors: %d of the last %d calls failed, background error rate %.2g%%; p=%.2g",
				recent, w, 100*rate, res.PValue)
		}
	}
	j := ls.errHead
	if ls.errN == latencyErrorHistory && ls.errBits[j/64]&(1<<uint(j%64)) != 0 {
		ls.errTotal-- // the oldest call leaves the history
	}
	ls.errRecent <<= 1
	if isError {
		ls.errBits[j/64] |= 1 << uint(j%64)
		ls.errRecent |= 1
		ls.errTotal++
	} else {
		ls.errBits[j/64] &^= 1 << uint(j%64)
	}
	ls.errHead = (j + 1) % latencyErrorHistory
	if ls.errN < latencyErrorHistory {
		ls.errN++
	}
	return res
}
