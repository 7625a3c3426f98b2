package cbad

import (
	"math"
	"time"

	"github.com/driftlock/driftlock/internal/attrs"
)

// Stream-level evidence. Record-level surprise cannot see a burst of a
// familiar record: the tenth "ERROR ... No contacts" line of a minute costs
// few bits once the first one was learned. So beside the text model, each
// stream counts its records per short bucket of record time, per kind (the
// record's template, see kind.go) and for error-severity records as a
// whole, and tests each count against the stream's own background for it:
//
//   - Background: exponentially weighted sums of the per-bucket count and
//     its square over past buckets (half-life rateHalfLife; a bucket in
//     which the kind did not occur counts as a zero), shrunk toward a prior
//     for kinds with little history (rate priorRate over priorSpan).
//   - Tests: the count of the current bucket against a negative binomial
//     with the background's mean and variance; and, for error-severity
//     records (the stream's error count, and kinds whose records are
//     errors), the sum of the last W buckets (the current one included; W
//     buckets span burstWindow) against a negative binomial with W times
//     the mean and the same dispersion r. The window sees an error that
//     builds over minutes at a few lines a bucket, which no single bucket
//     shows. Its dispersion is not W*r (the sum of W independent buckets):
//     a per-bucket dispersion cannot see clumps that span buckets, and
//     with W*r every five lines of an INFO kind within two minutes after a
//     quiet day were a burst (BGL's "generating core" lines: window F1
//     0.68 -> 0.57); r assumes clumps may be as wide as the window. INFO
//     kinds keep the single-bucket test: a slow rise of routine records is
//     workload, not a fault. Two looks: each test at half of RatePValue,
//     the burst's p-value the smaller tail doubled (Bonferroni), so the
//     level stays RatePValue. minBurst applies to the bucket's count and
//     to the window's sum alike. The negative binomial lets kinds that
//     come in clumps (a stack trace, a batch job) have a heavy tail; its
//     dispersion is itself shrunk toward a geometric tail until a few busy
//     buckets were seen, so one past burst does not make every later burst
//     look normal.
//   - For the counters the window tests, a bucket reaches the background
//     W-1 buckets after it closed: the window under test is never part of the background it is judged by
//     (a build-up's first busy buckets would otherwise raise the mean and,
//     worse, the dispersion the next ones are tested against).
//   - The record whose count (or window sum) reaches the threshold leaves
//     flagged (reason rate, or errors for the error-severity count) and
//     opens the kind's episode, remembering the background it rose from.
//     The live background goes on learning, but a burst teaches it at most
//     its threshold (a clipped update: a bucket over its threshold teaches
//     the threshold, the buckets of a window over the window's threshold
//     teach that threshold's share each), so one outage does not make the
//     next look normal. The thresholds are computed from a stream's first
//     record, and the error counter's also during its episodes, so the
//     clip holds while a stream warms up (one that starts in an outage:
//     the prior's threshold bounds what its first minutes teach) and
//     while an outage lasts. The flags wait for the stream's history
//     (priorSpan), except a sharp burst of errors, news from the first
//     minute.
//   - While the episode lasts, every record of the kind carries its start
//     (Result.Episode), and one is flagged every maxFlagGap while the
//     condition is still a burst against the background it rose from:
//     an outage stays visible for as long as it lasts, with a handful of
//     rows rather than one per line. The episode closes when episodeQuiet
//     buckets together are back at that background.
//
// The state is a fixed table of rateSlots kinds per stream, so memory is
// bounded; when it is full, the kind with the least background that is not
// in an episode is replaced. A record without a time (Record.Time zero)
// skips this path entirely.

const (
	// rateSlots bounds the kinds tracked per stream.
	rateSlots = 64
	// rateHalfLife is the memory of the background: long enough to learn
	// that a kind comes in bursts a few hours apart (a cron job, a nightly
	// scan), short enough that last week's outage is not today's normal.
	rateHalfLife = 6 * time.Hour
	// priorSpan and priorRate: a kind without history is believed to occur
	// about once per priorSpan, with the weight of priorSpan of evidence;
	// the stream's burst tests start once it has been watched that long.
	priorSpan = 10 * time.Minute
	// dispersionPrior is how many busy buckets (with the kind present) the
	// estimated dispersion needs before it outweighs the geometric prior.
	dispersionPrior = 4
	// episodeQuiet is how many buckets an episode's test spans: an episode
	// closes when that many buckets together are back at its background.
	episodeQuiet = 4
	// episodeCloseP is the tail probability above which a bucket's count
	// is "at background" for closing an episode.
	episodeCloseP = 0.01
	// maxEpisode is how long an episode may freeze its kind's background;
	// after that a condition that persists is the new normal.
	maxEpisode = time.Hour
	// maxFlagGap is the longest an ongoing episode goes without a flag.
	maxFlagGap = 5 * time.Minute
	// minBurst is the fewest records in a bucket that make a burst: below
	// it a count is too small to tell a burst from a coincidence however
	// rare the kind (two lines of a kind seen once a day are not an
	// incident), and the text path's surprise is the evidence.
	minBurst = 5
	// maxBurstCount caps the threshold search.
	maxBurstCount = 1 << 16
	// burstWindow is the span of the window test: a burst that builds over
	// a couple of minutes (an error logged a few times a minute during a
	// fault) is a burst although no 30 s bucket holds minBurst of it. Two
	// minutes is short enough for the flag to come while the fault is
	// fresh, long enough to gather minBurst records at a few a minute.
	burstWindow = 2 * time.Minute
	// routineHalfLife is the memory of how often a kind bursts: a week, so
	// that a daily or weekly batch (a scan, a backup, a brute-force session
	// a night) is known when it comes back.
	routineHalfLife = 7 * 24 * time.Hour
	// routineOnsets is how many earlier bursts of a kind (exponentially
	// weighted) make its bursts a habit: one earlier burst is a
	// coincidence, not a rate.
	routineOnsets = 0.5
	// maxWindowBuckets bounds the window in buckets (and the history each
	// counter keeps): with buckets narrower than burstWindow/8 the window
	// spans 8 buckets, less than burstWindow.
	maxWindowBuckets = 8
)

// windowBuckets is the window test's span in buckets: burstWindow rounded
// to whole buckets, 1 to maxWindowBuckets (1: no window test, the bucket
// is the window).
func windowBuckets(bucket time.Duration) int {
	w := int((burstWindow + bucket/2) / bucket)
	return min(max(w, 1), maxWindowBuckets)
}

// rateCounter is the background and current count of one kind (or of the
// stream's error-severity records, or of all its records).
type rateCounter struct {
	kind  uint64
	count uint32 // records in the current bucket
	// burst is the smallest count of the current bucket that is a burst
	// (0: not computed yet for this bucket); wburst the smallest sum of
	// the window ending with it (prev plus count) that is one.
	burst, wburst uint32
	// The last window-1 closed buckets, not yet in the background (a ring
	// of nh buckets, at the oldest): their counts, the sum of those
	// (prev), and what each will teach the background (its count, clipped).
	hist   [maxWindowBuckets - 1]uint32
	taught [maxWindowBuckets - 1]float32
	at, nh uint8
	prev   uint32
	// windowed is set once the counter is tested by the window (the
	// stream's errors, a kind of error-severity records): only then do its
	// buckets wait in the ring before they teach the background.
	windowed bool
	// Exponentially weighted sums over closed buckets: of the count, its
	// square, the weights, and the weight of buckets with the kind present.
	s1, s2, w, busy float64
	episode         int64 // unix nanoseconds the episode opened at; 0: none
	lastFlag        int64 // unix nanoseconds of the last flag of this counter
	// The background when the episode opened: the episode lasts until the
	// count is back at it, while the live background goes on learning.
	epMean, epR float64
	epSum       uint32 // records over the buckets of the episode's test
	quiet       uint16 // buckets in that test so far
	// How often the counter's bursts begin: exponentially weighted counts
	// of burst onsets and of buckets watched, over routineHalfLife (see
	// routine). routineEp is set while the open episode began as a
	// routine burst.
	onsets, watched float64
	routineEp       bool
}

// rateState is one stream's stream-level evidence.
type rateState struct {
	bucket int64 // index of the current bucket; 0 before the first record
	total  rateCounter
	errors rateCounter
	kinds  [rateSlots]rateCounter
	n      int // kinds in use
	// lastKindFlag is when a burst of a kind of non-error records was
	// last flagged (unix ns; see newsworthy).
	lastKindFlag int64
	// debuts counts the bursts of kinds in their first bucket, weighted
	// as rateCounter.onsets (see newsworthy).
	debuts float64
}

// Option adjusts a detector beyond its Config, for settings the caller
// derives from its own configuration (they are not part of Config, so they
// neither enter its hash nor its snapshot).
type Option func(*Detector)

// WithoutKindBursts turns off the burst test per record kind: more records
// of a familiar kind are not an anomaly. For spans, a burst of one kind is
// a burst of calls to an operation, which is traffic; the caller scores
// what matters there (durations, error shares) as numbers. Bursts of
// error-severity records are still tested.
func WithoutKindBursts() Option {
	return func(d *Detector) { d.rp.noKindBursts = true }
}

// rateParams are the per-bucket constants derived from the configuration.
type rateParams struct {
	width   int64   // bucket width, ns
	decay   float64 // weight of a bucket one bucket later
	w0, m0  float64 // prior weight (buckets) and prior mean count per bucket
	alpha   float64 // burst level of the stream (both looks together)
	window  int     // buckets in the window test (1: none)
	perHour float64 // buckets per hour
	// decayRoutine is the weight of a bucket one bucket later in the
	// counts of burst onsets (routineHalfLife).
	decayRoutine float64
	// noKindBursts turns the per-kind burst test off (WithoutKindBursts);
	// kinds are still counted, and error bursts still tested.
	noKindBursts bool
	// noRoutine flags habitual and concurrent bursts too (tests measure
	// what newsworthy changes).
	noRoutine bool
}

func newRateParams(cfg *Config) rateParams {
	b := cfg.RateBucket
	w0 := float64(priorSpan) / float64(b)
	p := rateParams{
		width:        int64(b),
		decay:        math.Exp2(-float64(b) / float64(rateHalfLife)),
		w0:           w0,
		m0:           1 / w0,
		alpha:        cfg.RatePValue,
		window:       1,
		perHour:      float64(time.Hour) / float64(b),
		decayRoutine: math.Exp2(-float64(b) / float64(routineHalfLife)),
	}
	if b > 0 {
		p.window = windowBuckets(b)
	}
	return p
}

// fold closes the current bucket of c and adds gap empty buckets after
// it. A bucket reaches the background delay buckets after it closed (delay
// = window-1 for the counters tested by the window, else 0): the window under test is never part of the background it is
// tested against, so a build-up's first buckets neither raise the mean nor
// (worse, being busy) the dispersion the later ones are judged by, and a
// window found to be a burst can still clip all of its buckets.
func (c *rateCounter) fold(p *rateParams, gap int64, delay int) {
	g := math.Pow(p.decayRoutine, float64(gap+1))
	c.onsets *= g
	c.watched = c.watched*g + (1-g)/(1-p.decayRoutine)
	// A burst teaches the background at most its threshold (a clipped,
	// robust update): otherwise one outage would make every later burst of
	// the kind look normal. A bucket over its own threshold teaches
	// threshold-1; a window over its threshold teaches that threshold's
	// share per bucket, the buckets before this one included.
	x := float64(c.count)
	if c.burst > 0 && c.count >= c.burst {
		x = float64(c.burst - 1)
	}
	if c.wburst > 0 && c.prev+c.count >= c.wburst {
		share := float64(c.wburst-1) / float64(p.window)
		x = min(x, share)
		for i := range c.taught[:delay] {
			c.taught[i] = min(c.taught[i], float32(share))
		}
	}
	if delay <= 0 {
		c.learn(p, x, c.count > 0)
		c.learnEmpty(p, gap)
	} else {
		c.delayed(p, delay, c.count, x)
		for i := int64(0); i < min(gap, int64(delay)); i++ {
			c.delayed(p, delay, 0, 0)
		}
		// Empty buckets beyond the ring's length pass straight through.
		c.learnEmpty(p, gap-int64(delay))
		c.prev = 0
		for _, n := range c.hist[:delay] {
			c.prev += n
		}
	}
	c.count, c.burst, c.wburst = 0, 0, 0
}

// delayed puts a closed bucket (count, and x to teach) into the ring of
// delay buckets, the oldest leaving it for the background when it is full.
func (c *rateCounter) delayed(p *rateParams, delay int, count uint32, x float64) {
	d := uint8(delay)
	if c.nh < d {
		i := (c.at + c.nh) % d
		c.hist[i], c.taught[i] = count, float32(x)
		c.nh++
		return
	}
	c.learn(p, float64(c.taught[c.at]), c.hist[c.at] > 0)
	c.hist[c.at], c.taught[c.at] = count, float32(x)
	c.at = (c.at + 1) % d
}

// learn adds one closed bucket that teaches x to the background.
func (c *rateCounter) learn(p *rateParams, x float64, busy bool) {
	c.s1 = c.s1*p.decay + x
	c.s2 = c.s2*p.decay + x*x
	c.w = c.w*p.decay + 1
	c.busy *= p.decay
	if busy {
		c.busy++
	}
}

// learnEmpty adds n empty buckets to the background at once.
func (c *rateCounter) learnEmpty(p *rateParams, n int64) {
	if n <= 0 {
		return
	}
	g := math.Pow(p.decay, float64(n))
	c.s1 *= g
	c.s2 *= g
	c.busy *= g
	c.w = c.w*g + (1-g)/(1-p.decay)
}

// background returns the mean count per bucket and the negative binomial
// dispersion r (+Inf: Poisson) of c's background, prior included.
func (c *rateCounter) background(p *rateParams) (mean, r float64) {
	wt := c.w + p.w0
	mean = (c.s1 + p.w0*p.m0) / wt
	// Prior: geometric (r = 1), whose second moment is m + 2m^2.
	m2 := (c.s2 + p.w0*(p.m0+2*p.m0*p.m0)) / wt
	excess := m2 - mean*mean - mean // variance beyond Poisson
	rEst := math.Inf(1)
	if excess > 1e-12 {
		rEst = mean * mean / excess
	}
	// Shrink log r toward the geometric prior (log 1 = 0) by the evidence:
	// one burst long ago must not make every later one look normal.
	lr := math.Log(min(rEst, 1e6))
	r = math.Exp(lr * c.busy / (c.busy + dispersionPrior))
	return mean, r
}

// burstCount returns the smallest count whose tail probability under the
// negative binomial (mean, r) is below alpha.
func burstCount(mean, r, alpha float64) uint32 {
	if mean <= 0 {
		return 1
	}
	q := mean / (r + mean)
	pmf := math.Exp(r * math.Log1p(-q)) // P(X = 0) = (1-q)^r
	tail := 1.0                         // P(X >= k)
	for k := 0; k < maxBurstCount; k++ {
		if tail < alpha {
			return uint32(k)
		}
		tail -= pmf
		pmf *= (float64(k) + r) / float64(k+1) * q
	}
	return maxBurstCount
}

// threshold computes c's burst count for the current bucket, and with
// window the window's (once per bucket), and reports whether the count (or
// the window's sum) has reached it. With the window test there are two
// looks, each at half the level.
func (c *rateCounter) threshold(p *rateParams, window bool) bool {
	window = window && p.window > 1
	c.windowed = c.windowed || window
	if c.burst == 0 || (window && c.wburst == 0) {
		m, r := c.background(p)
		look := p.alpha
		if window {
			look /= 2
			c.wburst = max(burstCount(float64(p.window)*m, r, look), minBurst)
		}
		c.burst = max(burstCount(m, r, look), minBurst)
	}
	return c.count >= c.burst || (c.wburst > 0 && c.prev+c.count >= c.wburst)
}

// warm reports whether the stream has been watched long enough for its
// burst tests and traffic estimate to mean something.
func (rs *rateState) warm(p *rateParams) bool { return rs.total.w >= p.w0 }

// recordsPerHour is the stream's background traffic.
func (rs *rateState) recordsPerHour(p *rateParams) float64 {
	if rs.total.w <= 0 {
		return 0
	}
	return rs.total.s1 / rs.total.w * p.perHour
}

// advance moves the state to bucket b, closing buckets and episodes, and
// reports whether a record of bucket b is counted. A record up to one
// bucket late counts in the current bucket; one later than that is not
// counted (its bucket is closed), unless it is more than priorSpan late:
// then the stream's clock went back (a reset, records replayed, a sample
// that is not in time order) and the state re-anchors at b, so a single
// far-future timestamp cannot blind the stream.
func (rs *rateState) advance(p *rateParams, b int64) bool {
	if rs.bucket == 0 {
		rs.bucket = b
		return true
	}
	gap := b - rs.bucket - 1
	if b <= rs.bucket {
		switch late := rs.bucket - b; {
		case late <= 1:
			return true
		case late <= int64(p.w0):
			return false
		}
		gap = 0 // re-anchor: close the current bucket, no empty ones
	}
	rs.total.fold(p, gap, 0)
	rs.debuts *= math.Pow(p.decayRoutine, float64(gap+1))
	rs.errors.closeBucket(p, gap, b*p.width)
	for i := 0; i < rs.n; i++ {
		rs.kinds[i].closeBucket(p, gap, b*p.width)
	}
	rs.bucket = b
	return true
}

// closeBucket folds c's bucket and decides whether its episode goes on: it
// ends after episodeQuiet buckets whose count is at the background the
// episode started from (or, after maxEpisode, at the live background: a
// condition that lasts that long is the new normal).
func (c *rateCounter) closeBucket(p *rateParams, gap, now int64) {
	if c.episode != 0 {
		// The episode's test runs over episodeQuiet buckets at a time: a
		// condition of one record a bucket is not a burst in any single
		// bucket, but is far above a background of one an hour. Empty
		// buckets after this one are quiet ones; episodeQuiet of them in a
		// row end the episode.
		c.epSum += c.count
		c.quiet++
		c.episodeTest(p, now)
		if c.episode != 0 && gap > 0 {
			if gap >= episodeQuiet {
				c.episode, c.epSum, c.quiet = 0, 0, 0
			} else {
				c.quiet += uint16(gap)
				c.episodeTest(p, now)
			}
		}
	}
	delay := 0
	if c.windowed {
		delay = p.window - 1
	}
	c.fold(p, gap, delay)
}

// episodeTest closes the episode when its current test spans episodeQuiet
// buckets whose records together are back at the background it rose from
// (or, after maxEpisode, at the live background: a condition that lasts
// that long is the new normal).
func (c *rateCounter) episodeTest(p *rateParams, now int64) {
	if c.quiet < episodeQuiet {
		return
	}
	m, r := c.epMean, c.epR
	if now-c.episode > int64(maxEpisode) {
		m, r = c.background(p)
	}
	k := float64(c.quiet)
	if c.epSum < burstCount(k*m, k*r, episodeCloseP) {
		c.episode = 0
	}
	c.epSum, c.quiet = 0, 0
}

// slot returns the counter of kind k, taking over the least busy slot not
// in an episode when the table is full (nil if every slot is in one).
func (rs *rateState) slot(k uint64) *rateCounter {
	for i := 0; i < rs.n; i++ {
		if rs.kinds[i].kind == k {
			return &rs.kinds[i]
		}
	}
	if rs.n < rateSlots {
		rs.n++
		c := &rs.kinds[rs.n-1]
		*c = rateCounter{kind: k}
		return c
	}
	// The victim is the kind with the least background, a kind with a
	// habit of bursting (routine) only when no other is left: its
	// background fades between bursts hours apart, its habit must not.
	victim := -1
	for i := range rs.kinds {
		c := &rs.kinds[i]
		if c.episode == 0 && c.count == 0 && (victim < 0 || c.evictBefore(&rs.kinds[victim])) {
			victim = i
		}
	}
	if victim < 0 {
		return nil
	}
	rs.kinds[victim] = rateCounter{kind: k}
	return &rs.kinds[victim]
}

// evictBefore reports whether c makes a better victim than v.
func (c *rateCounter) evictBefore(v *rateCounter) bool {
	ch, vh := c.onsets >= routineOnsets/2, v.onsets >= routineOnsets/2
	if ch != vh {
		return vh
	}
	return c.s1 < v.s1
}

// newsworthy reports whether a burst flag of c, a kind of non-error
// records, is news, and notes it when it is. It is not when the kind bursts
// by habit (routine), nor when another kind's burst was flagged in the last
// maxFlagGap: several familiar kinds that surge together (a connection
// storm's dozen messages, a brute-force session's two lines per attempt)
// are one condition of the stream, reported once per maxFlagGap like an
// ongoing episode; each kind's episode still opens and annotates its
// records. Errors are not held back: each error kind's burst is its own
// news.
//
// A kind whose burst opens in its very first bucket (fresh: a new client
// hammering a service, each brute-force session naming a new host) has no
// habit of its own: the stream's habit of such debuts is its null, counted
// as a kind's onsets are (debuts over the stream's watched buckets).
func (rs *rateState) newsworthy(p *rateParams, c *rateCounter, ns int64, fresh bool) bool {
	if p.noRoutine {
		return true
	}
	if fresh && c.episode == ns {
		c.routineEp = rs.debuts >= routineOnsets && rs.debuts > p.alpha*rs.total.watched
		rs.debuts++
	}
	if c.routineEp {
		return false
	}
	if rs.lastKindFlag != 0 && ns-rs.lastKindFlag < int64(maxFlagGap) && ns >= rs.lastKindFlag {
		return false
	}
	rs.lastKindFlag = ns
	return true
}

// rateVerdict is what the stream-level path says about one record.
type rateVerdict struct {
	reason  string
	episode int64 // open episode of the record's kind (or of errors), unix ns
	// kindEpisode is the open episode of the record's kind alone.
	kindEpisode int64
	// ongoing is set when the flag is for an episode opened earlier (not
	// by this record's burst); recent is then its records in the episode's
	// current test, over buckets buckets.
	ongoing         bool
	recent, buckets uint32
	count           uint32
	burst           uint32
	mean            float64
	// pValue is the tail probability of the flagged count (recent, over
	// buckets buckets) under the background the episode rose from: the
	// burst's own p-value, below the burst level when flagged.
	pValue float64
}

// observe counts one record of kind k (isError: error severity) at time
// ns and returns the stream-level verdict on it.
func (rs *rateState) observe(p *rateParams, ns int64, k uint64, isError bool) rateVerdict {
	var v rateVerdict
	if !rs.advance(p, ns/p.width) {
		return v // late: its bucket is closed
	}
	rs.total.count++
	warm := rs.warm(p)
	if c := rs.slot(k); c != nil {
		c.count++
		// The threshold is known even while the stream warms up, so a
		// burst then teaches the background no more than after (a clipped
		// update); only the flag waits for the stream's own history.
		c.threshold(p, isError)
		fresh := c.w == 0 && c.nh == 0 && c.episode == 0 // no closed bucket yet
		if warm && !p.noKindBursts && c.test(p, ns, isError) && (isError || rs.newsworthy(p, c, ns, fresh)) {
			v.reason = attrs.ReasonRate
			v.set(p, c, ns)
		}
		v.episode, v.kindEpisode = c.episode, c.episode
	}
	if isError {
		// Error-severity records are rare in a healthy service: their
		// prior (one per priorSpan) holds from the stream's first minute,
		// so a sharp burst of errors is news even before the stream has
		// history. A build-up over minutes is judged against the stream's
		// own history (the window test waits for warm): against the prior
		// alone, a service that routinely logs a few errors a minute would
		// look like an outage from its first minutes.
		c := &rs.errors
		c.count++
		c.threshold(p, true) // for the clip, also while an episode lasts
		if c.test(p, ns, warm) {
			v.reason = attrs.ReasonErrors
			v.set(p, c, ns)
		}
		if v.episode == 0 || (c.episode != 0 && c.episode < v.episode) {
			v.episode = c.episode
		}
	}
	return v
}

// set fills the verdict's figures from the counter that flagged.
func (v *rateVerdict) set(p *rateParams, c *rateCounter, ns int64) {
	v.count, v.burst, v.mean = c.count, c.burst, c.epMean
	v.ongoing = c.episode != ns
	v.recent, v.buckets = c.epSum+c.count, uint32(c.quiet)+1
	k := float64(v.buckets)
	v.pValue = nbTail(k*c.epMean, k*c.epR, v.recent)
	if v.ongoing || c.wburst == 0 {
		return // one look
	}
	// A new burst: the smaller of the two looks' tails, doubled. The
	// figures reported are those of the look that flagged (the window's
	// when the bucket alone is below its threshold).
	w := float64(p.window)
	pw := nbTail(w*c.epMean, c.epR, c.prev+c.count)
	v.pValue = min(1, 2*min(v.pValue, pw))
	if c.count < c.burst {
		v.recent, v.buckets, v.burst = c.prev+c.count, uint32(p.window), c.wburst
	}
}

// nbTail returns P(X >= count) under the negative binomial (mean, r),
// floored at the smallest positive float so a flag never reads p = 0.
func nbTail(mean, r float64, count uint32) float64 {
	if mean <= 0 || count == 0 {
		if count == 0 {
			return 1
		}
		return math.SmallestNonzeroFloat64
	}
	q := mean / (r + mean)
	pmf := math.Exp(r * math.Log1p(-q))
	tail := 1.0
	for k := uint32(0); k < count && k < maxBurstCount; k++ {
		tail -= pmf
		pmf *= (float64(k) + r) / float64(k+1) * q
	}
	return max(tail, math.SmallestNonzeroFloat64)
}

// test reports whether the record of c at ns (counted, its thresholds
// computed) is flagged: the record whose count reaches the bucket's burst
// threshold, or with window whose window sum reaches the window's, opens
// an episode and is flagged; while an episode is open, a record is flagged when due
// (see due) if the condition is still a burst against the background it
// rose from (see ongoing).
func (c *rateCounter) test(p *rateParams, ns int64, window bool) bool {
	switch {
	case c.episode != 0:
		if !c.due(ns) || !c.ongoing(p) {
			return false
		}
	case c.count >= c.burst || (window && c.wburst > 0 && c.prev+c.count >= c.wburst):
		c.openAt(p, ns)
		c.routineEp = c.routine(p)
		c.onsets++
	default:
		return false
	}
	c.lastFlag = ns
	return true
}

// routine reports whether c's bursts are a habit of the stream: the
// counts that reach the burst threshold are clipped when they teach the
// background (see fold), so the background alone never learns that a kind
// comes in bursts, and a kind that bursts every night (a brute-force
// session, a batch job) would be flagged every night. So the onsets are
// counted on their own: a kind that has begun at least routineOnsets
// bursts, at a rate per bucket above the burst level, bursts as a habit,
// and its next burst is what the stream does (the episode still opens and
// annotates its records, but is not flagged). A kind that never burst
// before keeps being flagged on its first burst. The caller applies it to
// kinds of non-error records only: a burst of errors is news however
// often it happens.
func (c *rateCounter) routine(p *rateParams) bool {
	return c.onsets >= routineOnsets && c.onsets > p.alpha*c.watched
}

// ongoing reports whether the episode's recent buckets (those of its
// current test, the current one included) are still a burst against the
// background it rose from, at the burst level: an admitted kind that now
// recurs at a modest rate keeps its episode open (and annotated) without
// being flagged, while an outage that goes on is flagged when due.
func (c *rateCounter) ongoing(p *rateParams) bool {
	k := float64(c.quiet + 1)
	sum := c.epSum + c.count
	return sum >= minBurst && sum >= burstCount(k*c.epMean, k*c.epR, p.alpha)
}

// openAt opens an episode at ns, remembering the background it rose from.
func (c *rateCounter) openAt(p *rateParams, ns int64) {
	if c.episode == 0 {
		c.episode = ns
		c.epMean, c.epR = c.background(p)
		c.epSum, c.quiet = 0, 0
	}
}

// due reports whether a record of c at ns is flagged for its ongoing
// episode: maxFlagGap after the last flag, so an ongoing condition stays
// visible (a flag at least every maxFlagGap while it lasts) without a row
// per record for hours.
func (c *rateCounter) due(ns int64) bool {
	return ns-c.lastFlag >= int64(maxFlagGap)
}

// openEpisode opens an episode for kind k at ns (a recurring anomalous kind
// was admitted to the baseline: the condition is ongoing, not over).
func (rs *rateState) openEpisode(p *rateParams, k uint64, ns int64, isError bool) int64 {
	c := rs.slot(k)
	if c == nil {
		return 0
	}
	c.openAt(p, ns)
	c.lastFlag = ns
	if isError {
		rs.errors.openAt(p, ns)
		rs.errors.lastFlag = ns
	}
	return c.episode
}
