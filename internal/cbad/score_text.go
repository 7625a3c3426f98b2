package cbad

import (
	"fmt"
	"math"
	"time"

	"github.com/driftlock/driftlock/internal/attrs"
)

// scoreText scores one text record of st. Called with st.mu held.
func (d *Detector) scoreText(st *stream, sc *scratch, rec Record) Result {
	cfg := &d.cfg
	st.ensureText(cfg)
	data := rec.Data
	if len(data) > cfg.MaxRecordBytes {
		data = data[:cfg.MaxRecordBytes]
	}
	if cfg.Canonicalize {
		sc.canon, sc.redact = Canonicalize(sc.canon[:0], sc.redact, data)
	} else {
		sc.canon = Redact(sc.canon[:0], data)
	}
	sc.toks, sc.spans, sc.kind = tokenize(sc.toks[:0], sc.spans[:0], sc.canon)

	res := Result{Index: st.index, PValue: 1, Kind: sc.kind}
	st.index++

	// Cost of the record given the baseline, in bits per token.
	var bits, peak float64
	switch cfg.Compressor {
	case CompressorNgram:
		bits, peak, sc.costs = st.model.cost(sc.toks, sc.spans, sc.canon, sc.costs[:0])
	default:
		sc.costs = sc.costs[:0]
		bits = st.dict.cost(sc, sc.canon)
		peak = bits
	}
	ntok := len(sc.toks)
	if ntok == 0 {
		ntok = 1
	}
	res.Score = bits / float64(ntok)

	sev := rec.Severity
	if sev == 0 && cfg.UseSeverity {
		sev = severityFromTokens(sc.canon)
	}
	lr := 1.0
	if cfg.UseSeverity {
		lr = severityLikelihood(sev)
		// A kind the stream admitted to its baseline (a recurring error
		// that is the new normal) is weighed by its cost alone: its
		// severity was the evidence that kept it out, and was used up.
		// (Looked up only when severity weighs: not for INFO records.)
		if lr != 1 && !d.keepAdmittedSeverity && st.novelty.admittedKind(sc.kind) {
			lr = 1
		}
	}

	// Until the baseline holds Warmup records nothing is flagged. After
	// that the conformal p-value itself limits what can be flagged: with n
	// calibration scores no p-value is below 1/(n+1), so a stream needs
	// about 1/p_value normal scores before an ordinary record can be
	// flagged, while severity evidence (lr < 1) lets an error-level record
	// through with fewer.
	res.Calibrating = st.baseline.n < cfg.Warmup || st.cal.n == 0
	res.Median = st.cal.median

	// Stream-level evidence: the record's kind counted in its time bucket.
	var rv rateVerdict
	alpha := cfg.PValue
	timed := cfg.RateBucket > 0 && !rec.Time.IsZero() && inNanoRange(rec.Time)
	if timed {
		if st.rate == nil {
			st.rate = new(rateState)
		}
		rv = st.rate.observe(&d.rp, rec.Time.UnixNano(), sc.kind, sev >= 17)
		// The false-alarm budget: on a stream of R records an hour, a
		// per-record level of budget/R gives about budget false flags an
		// hour whatever R is.
		if cfg.FlagBudget > 0 && st.rate.warm(&d.rp) {
			if r := st.rate.recordsPerHour(&d.rp); r > 0 {
				alpha = min(alpha, cfg.FlagBudget/r)
			}
		}
	}

	// Whether the record's kind is new to the stream (novelty.go).
	newKind := !st.disc.seen.visit(sc.kind)

	peakTest := st.calPeak.scores != nil && ntok >= peakMinTokens && st.calPeak.n > 0
	if !res.Calibrating {
		res.PValue = st.cal.tailPValue(res.Score)
		// Severity is evidence beside the compression cost, never the whole
		// answer: it scales the p-value the decision uses (an error-level
		// record needs less surprise, a debug line more), while the effect
		// size must still clear min_effect over the stream's median.
		meanHit := res.Score-st.cal.median >= cfg.MinEffect
		// The stream's own rate of novelty (novelty.go: discovery) weighs
		// on a record the known kinds alone would flag. The mixture only
		// raises a p-value, so it is computed for those records alone.
		mix := newKind && !d.noDiscovery
		if peakTest {
			// Peak evidence beside the mean: the rarest token of a long
			// record (one rare transition in a session of event ids) is
			// tested against the stream's recent peaks, so one rare event is
			// not averaged away by the record's length. Two tests: each at
			// half the level (Bonferroni), the p-value the smaller of the two
			// doubled.
			pPeak := st.calPeak.tailPValue(peak)
			peakHit := peak-st.calPeak.median >= peakMinEffect
			pm := 2 * res.PValue
			pp := 2 * pPeak
			if mix && ((pm*lr < alpha && meanHit) || (pp*lr < alpha && peakHit)) {
				pm = 2 * st.disc.mix(res.PValue, &st.disc.novel, res.Score, sev >= 17)
				pp = 2 * st.disc.mix(pPeak, &st.disc.novelPk, peak, sev >= 17)
			}
			res.PValue = min(1, pm, pp)
			res.Anomaly = (pm*lr < alpha && meanHit) || (pp*lr < alpha && peakHit)
		} else {
			if mix && res.PValue*lr < alpha && meanHit {
				res.PValue = st.disc.mix(res.PValue, &st.disc.novel, res.Score, sev >= 17)
			}
			res.Anomaly = res.PValue*lr < alpha && meanHit
		}
		if res.Anomaly {
			res.Reason = attrs.ReasonNovel
		}
	}
	// A novel kind is reported once per episode: its first flag opens the
	// kind's episode, and while that lasts a repeat is evidence of the same
	// condition (the burst tests flag it when the repeats form a burst, and
	// when due), not a new surprise. It is learned like an admitted kind,
	// but its score stays out of the calibration set.
	repeat := res.Anomaly && rv.kindEpisode != 0 && rv.reason == "" && sev < 17
	if repeat {
		res.Anomaly, res.Reason = false, ""
	}
	if rv.episode != 0 {
		res.Episode = time.Unix(0, rv.episode).UTC()
	}

	// Records scored against a nearly empty baseline (before
	// calibrationStart) are remembered but not counted: every kind is new
	// then, and costs all it can.
	if st.baseline.n >= calibrationStart(cfg) {
		st.disc.observe(newKind, sev >= 17, res.Score, peak)
	}

	// Window bookkeeping: every record goes into the window.
	st.pushWindow(sc.canon, sc.toks, res.Anomaly)

	if res.Anomaly {
		d.anomalies.Add(1)
		res.Explanation = explain(res, st, peak, sev, ntok)
		if cfg.AdmitAfter > 0 && st.recurrences(sc, lr) >= admitAfter(cfg.AdmitAfter, lr) {
			// A recurring kind is a regime, not an incident: learn it, and let
			// its cost count as a normal score from now on. Its condition is
			// still ongoing: the kind's episode stays open until its rate is
			// back at background.
			st.learn(sc.toks)
			st.novelty.admit(sc.kind)
			st.cal.add(res.Score)
			if st.calPeak.scores != nil {
				st.calPeak.add(peak)
			}
			st.window.at(st.window.n - 1).flagged = false // normal text from now on
			res.Explanation += "; recurring kind, now admitted to the baseline"
		}
		if timed {
			res.Episode = time.Unix(0, st.rate.openEpisode(&d.rp, sc.kind, rec.Time.UnixNano(), sev >= 17)).UTC()
		}
	} else if repeat {
		st.learn(sc.toks)
		st.window.at(st.window.n - 1).flagged = false
	} else {
		if rv.reason != "" {
			// A burst of familiar records: each is normal text (it still
			// teaches the baseline below), the burst is not. The burst
			// tests have their own warm-up (rate.go), so a burst of errors
			// is reported even while the text path still calibrates.
			res.Anomaly, res.Reason = true, rv.reason
			res.PValue = rv.pValue
			d.anomalies.Add(1)
			res.Explanation = explainBurst(rv, cfg.RateBucket, cfg.RatePValue)
		}
		// Only normal records teach the baseline and the calibration set.
		if st.baseline.n >= calibrationStart(cfg) {
			st.cal.add(res.Score)
			if st.calPeak.scores != nil {
				st.calPeak.add(peak)
			}
		}
		st.learn(sc.toks)
	}

	closes := st.index%uint64(cfg.Hop) == 0
	if closes {
		res.Window = d.closeWindow(st, sc)
	}
	if st.cal.n > 0 && (closes || st.cal.median == 0) {
		st.cal.refresh()
		if st.calPeak.n > 0 {
			st.calPeak.refresh()
		}
	}
	return res
}

const (
	// peakMinTokens is the record length from which the peak test runs:
	// in a short record the mean already reflects its rarest token.
	peakMinTokens = 16
	// peakMinEffect is the peak's minimum excess over the stream's median
	// peak, in bits: one token at least 256 times less likely than the
	// rarest token of a typical record.
	peakMinEffect = 8.0
	// peakResolution is the resolution at which peak costs compare.
	peakResolution = 0.5
)

// inNanoRange reports whether t is representable in Unix nanoseconds
// (years 1678 to 2262); a time outside is treated as no time.
func inNanoRange(t time.Time) bool {
	// Any time more than a day inside the range is in it whatever its
	// zone; only times near its ends need the calendar (Year is several
	// times the cost of Unix, and this runs on every record).
	if u := t.Unix(); u > nanoRangeFrom+86400 && u < nanoRangeTo-86400 {
		return true
	}
	y := t.Year()
	return y > 1678 && y < 2262
}

// The range inNanoRange accepts, in Unix seconds (UTC): 1679-01-01 to
// 2262-01-01.
var (
	nanoRangeFrom = time.Date(1679, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	nanoRangeTo   = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
)

func explainBurst(v rateVerdict, bucket time.Duration, alpha float64) string {
	what := "records of this kind"
	if v.reason == attrs.ReasonErrors {
		what = "error-severity records"
	}
	if v.ongoing {
		return fmt.Sprintf("ongoing since %s: %d %s in the last %d buckets of %v; background before it %.2f per bucket",
			time.Unix(0, v.episode).UTC().Format(time.RFC3339), v.recent, what, v.buckets, bucket, v.mean)
	}
	if v.buckets > 1 { // the window test's burst (rate.go)
		return fmt.Sprintf("burst: %d %s in the last %d buckets of %v; background %.2f per bucket, a burst from %d over them (tail p < %g)",
			v.recent, what, v.buckets, bucket, v.mean, v.burst, alpha)
	}
	return fmt.Sprintf("burst: %d %s in this %v bucket; background %.2f per bucket, a burst from %d (tail p < %g)",
		v.count, what, bucket, v.mean, v.burst, alpha)
}

func explain(res Result, st *stream, peak float64, sev int, ntok int) string {
	s := fmt.Sprintf("record costs %.2f bits/token given the baseline; stream median %.2f, 99th pct %.2f; p=%.4f; %d tokens, most surprising %.1f bits",
		res.Score, st.cal.median, st.cal.quantile(0.99), res.PValue, ntok, peak)
	if name := severityName(sev); name != "" && sev >= 13 {
		s += "; severity " + name
	}
	return s
}

// closeWindow runs the window-level drift test of st.
func (d *Detector) closeWindow(st *stream, sc *scratch) *WindowResult {
	cfg := &d.cfg
	sc.xy = sc.xy[:0]
	for i := 0; i < st.ref.n; i++ {
		sc.xy = append(sc.xy, st.ref.at(i).text...)
	}
	nx := len(sc.xy)
	for i := 0; i < st.window.n; i++ {
		sc.xy = append(sc.xy, st.window.at(i).text...)
	}
	ny := len(sc.xy) - nx
	wr := &WindowResult{PermutationPValue: 1, Entropy: entropy(sc.xy[nx:])}
	// When every record of the last window moved on to the reference
	// block (none was flagged) and the block holds just them, the block is
	// that window's text, whose compressed size is known.
	cx := -1
	if st.lastWindowC > 0 && st.movedSinceClose == len(st.window.slots) && len(st.ref.slots) == len(st.window.slots) {
		cx = st.lastWindowC
	}
	st.lastWindowC, st.movedSinceClose = 0, 0
	if nx == 0 || ny == 0 {
		return wr
	}
	v, cx, cy := sc.ncdJoined(sc.xy, nx, cx)
	st.lastWindowC = cy
	wr.NCD = v
	wr.BaselineCompressionRatio = float64(cx) / float64(nx)
	wr.CompressionRatio = float64(cy) / float64(ny)

	if st.ncds.unusual(v) && st.ref.n >= st.window.n {
		recs := sc.pool[:0]
		for i := 0; i < st.ref.n; i++ {
			recs = append(recs, st.ref.at(i).text)
		}
		for i := 0; i < st.window.n; i++ {
			recs = append(recs, st.window.at(i).text)
		}
		sc.pool = recs
		wr.PermutationPValue, wr.Permutations = sc.permutationTest(recs, st.ref.n, v, cfg.Permutations, &st.rng)
		for i := range sc.pool {
			sc.pool[i] = nil // do not pin stream buffers from the pool
		}
	}
	wr.Drift = wr.PermutationPValue < driftAlpha
	if wr.Drift {
		st.driftRun++
	} else {
		st.driftRun = 0
		st.ncds.add(v)
	}
	if st.driftRun >= cfg.DriftWindows {
		// The new regime persisted: it becomes the baseline. Records that
		// were held out as anomalous in this window are admitted, and the
		// NCD range is learned afresh.
		for i := 0; i < st.window.n; i++ {
			if s := st.window.at(i); s.flagged {
				st.learn(s.toks)
				s.flagged = false
			}
		}
		st.ncds = ncdRange{}
		st.driftRun = 0
		wr.Rebased = true
		d.driftEvents.Add(1)
	}
	if cfg.Compressor != CompressorNgram {
		st.dict.rebuild(cfg.Compressor, &st.ref, &st.window)
	}
	return wr
}

// calibrationStart is the baseline size from which scores enter the
// calibration set: the very first records cost a lot only because the
// baseline is empty, and would make the stream insensitive for a long time.
func calibrationStart(cfg *Config) int {
	n := cfg.Warmup / 2
	if n > 32 {
		n = 32
	}
	return n
}

// admitAfter scales the recurrences needed before a kind of anomaly is
// admitted by the severity evidence: an error-level kind must recur
// 1/lr times as often before it counts as the new normal.
func admitAfter(base int, lr float64) int {
	if lr <= fatalLR {
		return int(math.Ceil(float64(base) / (lr * lr)))
	}
	return int(math.Ceil(float64(base) / lr))
}

// recurrences counts a flagged record's kind of anomaly and returns how
// often it has recurred: by its template with the surprising tokens as
// wildcards (a new host name each time), or, below FATAL, by its kind
// (kind.go: the same message, whose surprising tokens differ as the
// baseline moves), whichever has recurred more. A FATAL kind counts by
// its template alone: its admission is meant to take long.
func (st *stream) recurrences(sc *scratch, lr float64) int {
	a := st.novelty.observe(anomalyKind(sc.toks, sc.costs))
	if lr <= fatalLR {
		return a
	}
	return max(a, st.novelty.observe(sc.kind))
}
