package cbad

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/attrs"
)

// timedNormal is a service's routine INFO traffic: one record every `every`,
// four templates with varying values.
func timedNormal(i int) []byte {
	templates := []string{
		"INFO http request method=GET path=/api/orders/%d status=200 duration_ms=%d",
		"INFO cache hit key=user:%d ttl=%d",
		"INFO worker %d finished job in %d ms",
		"INFO pool stats idle=%d busy=%d",
	}
	return []byte(fmt.Sprintf(templates[(i*7+i/3)%len(templates)], (i*31)%97, (i*17)%13))
}

var t0 = time.Date(2026, 1, 29, 8, 0, 0, 0, time.UTC)

// A burst of a KNOWN error kind is an anomaly even though every line of it
// is familiar text: the contacts fault, 18 identical ERROR lines in
// a minute, the second time round (the first burst was learned).
func TestBurstOfKnownErrorFlagged(t *testing.T) {
	d, _ := New(DefaultConfig())
	contacts := func(i int) []byte {
		return []byte(fmt.Sprintf("ERROR [No contacts according to contactsId] contactsId=%08x-aaaa-bbbb-cccc-%012x", i, i))
	}
	bursts := []time.Duration{30 * time.Minute, 150 * time.Minute}
	inBurst := func(tm time.Time) int {
		for k, b := range bursts {
			if !tm.Before(t0.Add(b)) && tm.Before(t0.Add(b+time.Minute)) {
				return k
			}
		}
		return -1
	}
	flagged := make([]int, len(bursts))
	var outside []string
	n := 0
	for s := 0; s < 4*3600; s++ { // 4 hours, one routine record every 2 s
		tm := t0.Add(time.Duration(s) * time.Second)
		if s%300 == 1 { // the kind is familiar: one line every 5 minutes
			d.Score("svc", Record{Data: contacts(s), Time: tm})
		}
		if s%2 == 0 {
			r := d.Score("svc", Record{Data: timedNormal(n), Time: tm})
			n++
			if r.Anomaly && (r.Reason == attrs.ReasonRate || r.Reason == attrs.ReasonErrors) {
				outside = append(outside, r.Explanation)
			}
		}
		if k := inBurst(tm); k >= 0 && s%3 == 0 { // 20 lines in the minute
			r := d.Score("svc", Record{Data: contacts(s), Time: tm})
			if r.Anomaly && (r.Reason == attrs.ReasonErrors || r.Reason == attrs.ReasonRate) {
				flagged[k]++
				if r.Kind == 0 || r.Episode.IsZero() {
					t.Errorf("burst flag without kind or episode: %+v", r)
				}
				// The flag carries the burst's own p-value, below the
				// burst level, not the familiar text's p-value (about 1).
				if !(r.PValue > 0 && r.PValue < DefaultConfig().RatePValue) {
					t.Errorf("burst flag p-value %v, want in (0, %v)", r.PValue, DefaultConfig().RatePValue)
				}
			}
		}
	}
	if flagged[0] == 0 || flagged[1] == 0 {
		t.Fatalf("bursts of a known ERROR kind (20 lines in a minute) got %v rate/errors flags, want some in each", flagged)
	}
	if len(outside) > 0 {
		t.Fatalf("%d rate/errors flags on routine traffic, e.g. %q", len(outside), outside[0])
	}
}

// A long outage (120 error lines of 3 kinds over 20 minutes) stays visible
// while it lasts, as one episode, even after its kinds were admitted to the
// baseline; the episode survives a snapshot and closes once the errors stop.
func TestLongOutageStaysVisibleAsOneEpisode(t *testing.T) {
	d, _ := New(DefaultConfig())
	kinds := []string{
		"ERROR order service: connection refused to db-primary:5432 id=%d",
		"ERROR payment timeout after 3000 ms order=%d",
		"WARN retry budget exhausted for request %d",
	}
	outStart, outEnd := 60*time.Minute, 80*time.Minute
	var episode time.Time
	flagsPer5 := map[int]int{}
	n := 0
	var d2 *Detector
	for s := 0; s < 2*3600; s++ {
		tm := t0.Add(time.Duration(s) * time.Second)
		el := time.Duration(s) * time.Second
		if s == int((70 * time.Minute).Seconds()) { // mid-outage: checkpoint and restore
			var buf bytes.Buffer
			if err := d.Snapshot(&buf); err != nil {
				t.Fatal(err)
			}
			d2, _ = New(DefaultConfig())
			if err := d2.Restore(&buf); err != nil {
				t.Fatal(err)
			}
			d = d2
		}
		if s%2 == 0 {
			d.Score("svc", Record{Data: timedNormal(n), Time: tm})
			n++
		}
		if el >= outStart && el < outEnd && s%10 == 0 { // 6 a minute, 120 in all
			k := (s / 10) % 3
			r := d.Score("svc", Record{Data: []byte(fmt.Sprintf(kinds[k], s)), Time: tm, Severity: 17})
			if r.Anomaly {
				flagsPer5[int((el-outStart)/(5*time.Minute))]++
				if r.Reason != attrs.ReasonNovel && r.Episode.IsZero() {
					t.Fatalf("flag at %v of the outage without an episode: %+v", el-outStart, r)
				}
				if r.Reason == attrs.ReasonErrors {
					if episode.IsZero() {
						episode = r.Episode
					} else if !r.Episode.Equal(episode) {
						t.Fatalf("the outage's errors episode moved from %v to %v (lost across the snapshot?)", episode, r.Episode)
					}
				}
			}
		}
	}
	for q := 0; q < 4; q++ {
		if flagsPer5[q] == 0 {
			t.Fatalf("outage went silent in its minutes %d-%d (flags per 5 min: %v)", 5*q, 5*q+5, flagsPer5)
		}
	}
	if episode.IsZero() || episode.Before(t0.Add(outStart)) || episode.After(t0.Add(outStart+5*time.Minute)) {
		t.Fatalf("errors episode started at %v, want within the outage's first minutes (%v)", episode, t0.Add(outStart))
	}
	// After the outage the stream is back at background: a single error
	// record does not belong to the outage's episode (it may open its own,
	// if the baseline has forgotten its kind).
	at := t0.Add(2*time.Hour + time.Second)
	r := d.Score("svc", Record{Data: []byte(fmt.Sprintf(kinds[1], 1)), Time: at, Severity: 17})
	if !r.Episode.IsZero() && r.Episode.Before(at) {
		t.Fatalf("episode %v still open 40 minutes after the outage ended", r.Episode)
	}
}

// The record-level false-alarm budget holds at any traffic: the same kind
// of normal data at 1 and at 20 records a second yields about the same
// number of false flags per hour, not 20 times as many.
func TestFlagBudgetHoldsAtAnyTraffic(t *testing.T) {
	// Every record names a random user (letters, so it is not masked): a
	// stream whose scores are exchangeable, so a per-record level alpha
	// flags about alpha of its records.
	rng := splitmix64(7)
	word := func() string {
		n := 3 // a long tail of lengths: scores spread, not tied
		for n < 20 && rng.intn(10) < 8 {
			n++
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + rng.intn(26))
		}
		return string(b)
	}
	line := func() []byte { return []byte("INFO user " + word() + " opened " + word()) }
	flagsPerHour := func(cfg Config, perSecond int) float64 {
		d, _ := New(cfg)
		flags := 0
		const hours = 2
		for i := 0; i < hours*3600*perSecond; i++ {
			tm := t0.Add(time.Duration(i) * time.Second / time.Duration(perSecond))
			if r := d.Score("s", Record{Data: line(), Time: tm}); r.Anomaly && r.Reason == attrs.ReasonNovel && tm.After(t0.Add(15*time.Minute)) {
				flags++
			}
		}
		return float64(flags) / (hours - 0.25)
	}
	cfg := DefaultConfig()
	slow, fast := flagsPerHour(cfg, 1), flagsPerHour(cfg, 20)
	off := cfg
	off.FlagBudget = 0
	fastNoBudget := flagsPerHour(off, 20)
	t.Logf("false flags per stream-hour: 1 rec/s %.1f, 20 rec/s %.1f (without the budget %.1f)", slow, fast, fastNoBudget)
	if fast > 3*cfg.FlagBudget+1 {
		t.Fatalf("%.1f false flags per hour at 20 records/s, budget %v", fast, cfg.FlagBudget)
	}
	if fastNoBudget <= 3*fast {
		t.Fatalf("the budget made no difference at 20 records/s (%.1f with, %.1f without)", fast, fastNoBudget)
	}
}

// A kind is the canonical shape: stable across values, streams and
// detectors, and written as 16 hex digits.
func TestKindIsTheCanonicalShape(t *testing.T) {
	a := KindOf([]byte("INFO took 12 ms for order 123456 from 10.0.0.1"))
	b := KindOf([]byte("INFO took 7 ms for order 99 from 10.9.8.7"))
	c := KindOf([]byte("INFO took 7 ms for invoice 99 from 10.9.8.7"))
	if a != b || a == c {
		t.Fatalf("kinds: same shape %x %x, other shape %x", a, b, c)
	}
	d1, _ := New(DefaultConfig())
	d2, _ := New(DefaultConfig())
	r1 := d1.Score("one", Record{Data: []byte("ERROR [No contacts according to contactsId] 42")})
	r2 := d2.Score("other", Record{Data: []byte("ERROR [No contacts according to contactsId] 43")})
	if r1.Kind != r2.Kind || r1.Kind != KindOf([]byte("ERROR [No contacts according to contactsId] 7")) {
		t.Fatalf("kind differs across streams or detectors: %x %x", r1.Kind, r2.Kind)
	}
	// The value is part of the stored contract: it must not change between
	// releases for the same canonical text.
	if got := FormatKind(r1.Kind); got != kindGolden || len(got) != 16 {
		t.Fatalf("FormatKind = %q, want %q", got, kindGolden)
	}
}

const kindGolden = "5910f299915e6b13"

func TestBurstCountIsTheTail(t *testing.T) {
	// Poisson-like (large r): mean 1, P(X >= 6) = 5.9e-4, P(X >= 7) = 8.3e-5.
	if got := burstCount(1, 1e6, 1e-4); got != 7 {
		t.Fatalf("burst count at mean 1, Poisson, 1e-4: %d, want 7", got)
	}
	// Geometric (r = 1): P(X >= c) = q^c with q = m/(1+m) = 0.5 at m = 1.
	if got := burstCount(1, 1, 1e-3); got != 10 {
		t.Fatalf("burst count at mean 1, geometric, 1e-3: %d, want 10 (0.5^10 < 1e-3 < 0.5^9)", got)
	}
}

// One rare event in a long record (a session of 48 event names, in random
// order) is not averaged away: the peak test flags a session with one
// never-seen event although its mean cost per token stays within
// min_effect of the stream's median, where the mean test alone cannot.
func TestPeakEvidenceInLongRecords(t *testing.T) {
	d, _ := New(DefaultConfig())
	events := []string{"open", "read", "seek", "stat", "write", "sync", "lock", "unlock", "flush", "close"}
	rng := splitmix64(3)
	session := func(rare bool) []byte {
		var b []byte
		for k := 0; k < maxModelTokens; k++ {
			e := events[rng.intn(len(events))]
			if rare && k == 20 {
				e = "x"
			}
			b = append(b, e...)
			b = append(b, ' ')
		}
		return b
	}
	flagged := 0
	for i := 0; i < 1500; i++ {
		if r := d.Score("sessions", Record{Data: session(false)}); r.Anomaly && i > 600 {
			flagged++
		}
	}
	if flagged > 9 { // 1% of 900 routine sessions
		t.Fatalf("%d of 900 routine sessions flagged", flagged)
	}
	r := d.Score("sessions", Record{Data: session(true)})
	if r.Score-r.Median >= DefaultConfig().MinEffect {
		t.Fatalf("test premise: the mean alone clears min_effect (%.2f over the median)", r.Score-r.Median)
	}
	if !r.Anomaly {
		t.Fatalf("a session with one never-seen event was not flagged: score %.2f median %.2f p %.4f", r.Score, r.Median, r.PValue)
	}
}

// WithoutKindBursts turns off the per-kind burst test only: twenty lines of
// a familiar INFO kind in a minute are a rate flag by default and nothing
// with the option, while the kinds are still counted.
func TestWithoutKindBursts(t *testing.T) {
	rateFlags := func(opts ...Option) int {
		d, err := New(DefaultConfig(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		n, flags := 0, 0
		for s := 0; s < 2*3600; s++ {
			tm := t0.Add(time.Duration(s) * time.Second)
			if s%2 == 0 {
				d.Score("svc", Record{Data: timedNormal(n), Time: tm})
				n++
			}
			burst := s >= 3600 && s < 3660 && s%3 == 0
			if s%300 == 1 || burst {
				r := d.Score("svc", Record{Data: []byte(fmt.Sprintf("INFO cache refresh for region %d done", s)), Time: tm})
				if burst && r.Anomaly && r.Reason == attrs.ReasonRate {
					flags++
				}
			}
		}
		return flags
	}
	if got := rateFlags(); got == 0 {
		t.Fatalf("a burst of a familiar kind got no rate flag at the defaults")
	}
	if got := rateFlags(WithoutKindBursts()); got != 0 {
		t.Fatalf("WithoutKindBursts: %d rate flags, want none", got)
	}
}

// rateRun scores routine INFO traffic (one record every 2 s) and, at each
// second s of the run for which errAt(s) is true, one line of a familiar
// ERROR kind; it returns the rate/errors flags on the error lines (and
// fails on any on the routine traffic). window false turns the window test
// off (one bucket only).
func rateRun(t *testing.T, dur time.Duration, errAt func(s int) bool, window bool) []Result {
	t.Helper()
	d, _ := New(DefaultConfig())
	if !window {
		d.rp.window = 1
	}
	var flags []Result
	n := 0
	for s := 0; s < int(dur.Seconds()); s++ {
		tm := t0.Add(time.Duration(s) * time.Second)
		if s%2 == 0 {
			r := d.Score("svc", Record{Data: timedNormal(n), Time: tm})
			n++
			if r.Anomaly && (r.Reason == attrs.ReasonRate || r.Reason == attrs.ReasonErrors) {
				t.Fatalf("rate flag on routine traffic at %v: %s", tm.Sub(t0), r.Explanation)
			}
		}
		if errAt(s) {
			line := fmt.Sprintf("ERROR [No contacts according to contactsId] contactsId=%08x-aaaa-bbbb-cccc-%012x", s, s)
			r := d.Score("svc", Record{Data: []byte(line), Time: tm, Severity: 17})
			if r.Anomaly && (r.Reason == attrs.ReasonRate || r.Reason == attrs.ReasonErrors) {
				r.Observed = float64(s) // when (seconds into the run)
				flags = append(flags, r)
			}
		}
	}
	return flags
}

// buildUp is an error logged 3 times in each 30 s bucket for two minutes
// from second from: 12 lines, never 5 in one bucket.
func buildUp(s, from int) bool { return s >= from && s < from+120 && s%10 == 0 }

// A familiar error that builds over minutes (background one line per 10
// minutes, then 3 lines in each of four 30 s buckets) is a burst for the
// window test, while no single bucket is one.
func TestWindowCatchesAnErrorThatBuildsOverMinutes(t *testing.T) {
	const at = 90 * 60
	sched := func(s int) bool { return s%600 == 7 || buildUp(s, at) }
	flags := rateRun(t, 2*time.Hour, sched, true)
	if len(flags) == 0 {
		t.Fatalf("a familiar error at 3 lines per bucket for 2 minutes (background 0.1/min) was not flagged")
	}
	f := flags[0]
	if int(f.Observed) < at || int(f.Observed) >= at+120 {
		t.Fatalf("first flag at %vs, want within the build-up [%d, %d): %s", f.Observed, at, at+120, f.Explanation)
	}
	if !(f.PValue > 0 && f.PValue < DefaultConfig().RatePValue) || !strings.Contains(f.Explanation, "in the last 4 buckets") || f.Episode.IsZero() {
		t.Fatalf("window flag: p %v, episode %v, %q", f.PValue, f.Episode, f.Explanation)
	}
	t.Logf("flagged %vs into the build-up: %s (p=%.2g)", int(f.Observed)-at, f.Explanation, f.PValue)
	if got := rateRun(t, 2*time.Hour, sched, false); len(got) != 0 {
		t.Fatalf("the single-bucket test alone flagged the build-up (%s): the case does not test the window", got[0].Explanation)
	}
}

// An error kind steady at 3 lines per bucket is the stream's normal, not a
// burst, when it has been so from the stream's start (the window test
// judges by the stream's own history, which by then is that rate). One
// that becomes so after an hour at one line per 10 minutes is a burst, one
// episode flagged while
// it lasts (every maxFlagGap), and learned: the flags stop once the
// episode reaches maxEpisode.
func TestSteadyRateIsNotABurst(t *testing.T) {
	steady := func(s int) bool { return s%10 == 0 }
	if flags := rateRun(t, 2*time.Hour, steady, true); len(flags) != 0 {
		t.Fatalf("an error steady at 3 per bucket from the stream's start: %d flags, first at %vs: %s",
			len(flags), flags[0].Observed, flags[0].Explanation)
	}
	late := func(s int) bool { return s%600 == 307 || (s >= 3600 && s%10 == 0) } // familiar, then steady
	flags := rateRun(t, 4*time.Hour, late, true)
	if len(flags) == 0 || flags[0].Observed > 3600+120 {
		for _, f := range flags {
			t.Logf("%vs %s", f.Observed, f.Explanation)
		}
		t.Fatalf("an error that starts at 3 per bucket after an hour without: %d flags", len(flags))
	}
	last := flags[len(flags)-1]
	t.Logf("a new steady error: %d flags, the last %v after it began", len(flags), time.Duration(last.Observed-3600)*time.Second)
	if last.Observed > 3600+float64((maxEpisode+2*maxFlagGap)/time.Second) {
		t.Fatalf("an error steady for 3 hours is still flagged after %v (%d flags): %s",
			time.Duration(last.Observed-3600)*time.Second, len(flags), last.Explanation)
	}
}

// A stream that starts during an outage (its first minutes a burst of a
// familiar error, then the error's usual one line per 10 minutes) does not
// take the outage for its normal: the same burst 30 minutes later is
// flagged by the burst tests. Both for a build-up (3 a bucket for two
// minutes) and a sharp burst (10 a bucket for 5 minutes).
func TestStreamStartingInABurstFlagsTheNextOne(t *testing.T) {
	for _, c := range []struct {
		name  string
		burst func(s, from int) bool
	}{
		{"build-up", buildUp},
		{"sharp", func(s, from int) bool { return s >= from && s < from+300 && s%3 == 0 }},
	} {
		sched := func(s int) bool { return s%600 == 307 || c.burst(s, 0) || c.burst(s, 1800) }
		flags := rateRun(t, 2*time.Hour, sched, true)
		second := 0
		for _, f := range flags {
			if f.Observed >= 1800 && f.Observed < 1800+300 {
				second++
			}
		}
		if second == 0 {
			t.Errorf("%s: the burst 30 minutes after the stream started in one was not flagged (%d flags)", c.name, len(flags))
		}
	}
}
