package cbad

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// dailySeries returns n points, one every 5 minutes, of a day that is low
// (20) at night and high (80) from 09:00 to 18:00, plus N(0, sd) noise.
// peak(day) gives the day's high level (80 for an ordinary day).
func dailySeries(n int, sd float64, seed uint64, peak func(day int) float64) ([]time.Time, []float64) {
	r := rand.New(rand.NewPCG(seed, seed+1))
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	ts := make([]time.Time, n)
	vs := make([]float64, n)
	for i := range vs {
		ts[i] = start.Add(time.Duration(i) * 5 * time.Minute)
		h := ts[i].Hour()
		v := 20.0
		if h >= 9 && h < 18 {
			v = peak(i / 288)
		}
		vs[i] = v + sd*r.NormFloat64()
	}
	return ts, vs
}

func isSeasonalFlag(r Result) bool {
	return r.Anomaly && strings.Contains(r.Explanation, "usually shows")
}

// A day whose busy hours reach only half the usual level is made of values
// the baseline has seen (the ramps pass through them), so only the time of
// day tells it apart: the seasonal test flags it within a few points of
// its start (the first flag of the day may be another test's, in the same
// episode), and not before.
func TestSeasonalFlagsAMissingPeak(t *testing.T) {
	for _, level := range []float64{20, 50} { // no peak at all; half a peak
		const anomalousDay = 9
		ts, vs := dailySeries(11*288, 2, 7, func(day int) float64 {
			if day == anomalousDay {
				return level
			}
			return 80
		})
		d, _ := New(DefaultConfig())
		start := anomalousDay*288 + 9*12 // 09:00 of that day
		first, seasonal := -1, false
		for i, v := range vs {
			r := d.ScoreValue("s", ts[i], v)
			if r.Anomaly && i >= 2*288 && i < start {
				t.Fatalf("level %v: flag at %d before the anomaly (%d): %s", level, i, start, r.Explanation)
			}
			if r.Anomaly && first < 0 && i >= start {
				first = i
			}
			if isSeasonalFlag(r) && i/288 == anomalousDay {
				seasonal = true
			}
		}
		if first < 0 || first > start+seasonWindow || !seasonal {
			t.Fatalf("level %v: first flag at %d (want within %d points of %d), a time-of-day flag that day: %v",
				level, first, seasonWindow, start, seasonal)
		}
	}
}

// Normal days: the seasonal test stays quiet on 10,000 points of a noisy
// daily pattern, and does not run at all on a series without one.
func TestSeasonalQuietOnNormalData(t *testing.T) {
	ts, vs := dailySeries(10000, 3, 11, func(int) float64 { return 80 })
	d, _ := New(DefaultConfig())
	n := 0
	for i, v := range vs {
		if isSeasonalFlag(d.ScoreValue("s", ts[i], v)) {
			n++
		}
	}
	if n > 2 {
		t.Fatalf("%d seasonal flags on 10,000 normal points of a daily pattern, want <= 2", n)
	}
	if p := d.streams["s"].num.season.period; p != 7*288 && p != 288 {
		t.Fatalf("period %d, want a day (288) or a week of points", p)
	}

	r := rand.New(rand.NewPCG(3, 4))
	d2, _ := New(DefaultConfig())
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 10000; i++ {
		d2.ScoreValue("s", start.Add(time.Duration(i)*5*time.Minute), 50+5*r.NormFloat64())
		if p := d2.streams["s"].num.season.period; p != 0 {
			t.Fatalf("white noise got a seasonal period %d at point %d", p, i)
		}
	}
}

// The metric path, seasonal test included, allocates nothing per point
// once the series is warm.
func TestMetricAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	ts, vs := dailySeries(5000, 2, 5, func(int) float64 { return 80 })
	d, _ := New(DefaultConfig())
	for i := 0; i < 4000; i++ {
		d.ScoreValue("s", ts[i], vs[i])
	}
	if d.streams["s"].num.season.period == 0 {
		t.Fatal("the seasonal test is not running: the allocation check would not cover it")
	}
	i := 4000
	allocs := testing.AllocsPerRun(900, func() {
		d.ScoreValue("s", ts[i], vs[i])
		i++
	})
	if allocs > 0.01 {
		t.Fatalf("%.3f allocations per metric point, want 0", allocs)
	}
}

// Real residuals are autocorrelated: a day that runs a little high stays
// high for a while. The count test charges runs of exceedances what runs
// cost in the series' own normal days (a Markov chain of exceedances), so
// 10,000 normal points whose noise is AR(1) (phi 0.95) give at most three
// seasonal flags (the level 1e-4 expects about one; an
// independent-exceedance binomial gives 9), while a
// missing peak is still flagged.
func TestSeasonalClusteredResidualsQuiet(t *testing.T) {
	const phi = 0.95
	r := rand.New(rand.NewPCG(17, 18))
	noise := 0.0
	ts, vs := dailySeries(10000, 0, 1, func(day int) float64 {
		if day == 30 {
			return 20
		}
		return 80
	})
	for i := range vs {
		noise = phi*noise + math.Sqrt(1-phi*phi)*3*r.NormFloat64()
		vs[i] += noise
	}
	d, _ := New(DefaultConfig())
	n, missing := 0, false
	for i, v := range vs {
		if isSeasonalFlag(d.ScoreValue("s", ts[i], v)) {
			if i/288 == 30 {
				missing = true
				continue
			}
			n++
		}
	}
	if n > 3 {
		t.Fatalf("%d seasonal flags on normal days of AR(1) noise, want <= 3", n)
	}
	if !missing {
		t.Fatal("the day without its peak was not flagged")
	}
}

// A snapshot carries the seasonal state: a restored series flags the same
// points, with the same p-values, as the original.
func TestSeasonalSurvivesSnapshot(t *testing.T) {
	ts, vs := dailySeries(3500, 2, 9, func(day int) float64 {
		if day == 11 {
			return 40
		}
		return 80
	})
	d1, _ := New(DefaultConfig())
	for i := 0; i < 3000; i++ {
		d1.ScoreValue("s", ts[i], vs[i])
	}
	if d1.streams["s"].num.season.period == 0 {
		t.Fatal("the seasonal test is not running before the snapshot")
	}
	var buf bytes.Buffer
	if err := d1.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	d2, _ := New(DefaultConfig())
	if err := d2.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	seasonal := 0
	for i := 3000; i < len(vs); i++ {
		a, b := d1.ScoreValue("s", ts[i], vs[i]), d2.ScoreValue("s", ts[i], vs[i])
		if a.Anomaly != b.Anomaly || a.PValue != b.PValue || a.Explanation != b.Explanation {
			t.Fatalf("point %d: original %+v, restored %+v", i, a, b)
		}
		if isSeasonalFlag(a) {
			seasonal++
		}
	}
	if seasonal == 0 {
		t.Fatal("the half-height day after the restore was not flagged by the time-of-day test")
	}
}

// A gap in the scrapes (two hours missing) keeps "the same time yesterday"
// aligned: the days after it are not flagged, and a missing peak after it
// still is.
func TestSeasonalGapKeepsAlignment(t *testing.T) {
	ts, vs := dailySeries(14*288, 2, 13, func(day int) float64 {
		if day == 12 {
			return 20
		}
		return 80
	})
	gapFrom, gapTo := 8*288+10*12, 8*288+12*12 // day 8, 10:00 to 12:00
	d, _ := New(DefaultConfig())
	missing := false
	for i, v := range vs {
		if i >= gapFrom && i < gapTo {
			continue
		}
		r := d.ScoreValue("s", ts[i], v)
		if !isSeasonalFlag(r) {
			continue
		}
		if i/288 == 12 {
			missing = true
			continue
		}
		t.Fatalf("point %d (day %d, %s) flagged after a gap: %s", i, i/288, ts[i].Format("15:04"), r.Explanation)
	}
	if !missing {
		t.Fatal("the day without its peak after the gap was not flagged")
	}
}

// BenchmarkScoreValueSeasonal is BenchmarkScoreValue on a series whose
// time-of-day test runs (5-minute points of a daily pattern): compare the
// two in one run for the test's cost per point.
func BenchmarkScoreValueSeasonal(b *testing.B) {
	ts, vs := dailySeries(20000, 2, 5, func(int) float64 { return 80 })
	d, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 5000; i++ {
		d.ScoreValue("s", ts[i], vs[i])
	}
	if d.streams["s"].num.season.period == 0 {
		b.Fatal("the seasonal test is not running")
	}
	step := ts[1].Sub(ts[0])
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := 5000 + i%15000
		d.ScoreValue("s", ts[j].Add(time.Duration(i/15000)*15000*step), vs[j])
	}
}
