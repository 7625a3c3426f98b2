package cbad

import (
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
	return r.Anomaly && strings.Contains(r.Explanation, "time of day")
}

// A day whose busy hours reach only half the usual level is made of values
// the baseline has seen (the ramps pass through them), so only the time of
// day tells it apart: the seasonal test flags it within a few points of
// its start, and not before.
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
		flagged := -1
		for i, v := range vs {
			r := d.ScoreValue("s", ts[i], v)
			if isSeasonalFlag(r) {
				if i < start {
					t.Fatalf("level %v: seasonal flag at %d before the anomaly (%d): %s", level, i, start, r.Explanation)
				}
				if flagged < 0 {
					flagged = i
				}
			}
		}
		if flagged < 0 || flagged > start+seasonWindow {
			t.Fatalf("level %v: first seasonal flag at %d, want within %d points of %d", level, flagged, seasonWindow, start)
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
