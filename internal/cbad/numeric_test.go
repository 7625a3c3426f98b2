package cbad

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/attrs"
)

// gaussSeries returns a detector whose series "g" has seen n points of
// N(mean, sd) (seeded), and the sorted baseline it holds.
func gaussSeries(t *testing.T, n int, mean, sd float64) *Detector {
	t.Helper()
	d, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(21, 22))
	for i := 0; i < n; i++ {
		d.ScoreValue("g", time.Unix(int64(i), 0), mean+sd*r.NormFloat64())
	}
	return d
}

// A value far outside its baseline gets the p-value of the baseline's
// tail, not the conformal floor 1/(n+1): 10 sd out is not a routine wobble.
// Farther is smaller, on both sides, and the flag decision is the one the
// range test makes (far outside: flagged).
func TestFarValuePValueFromTail(t *testing.T) {
	const n = 3000 // fills the 2048-value baseline
	floor := 1 / float64(DefaultConfig().NumericBaselineSize+1)
	prev := map[bool]float64{false: 1, true: 1}
	// 10 sd and more are far outside (3 IQR beyond the baseline's range).
	for _, sds := range []float64{10, 20, 100, 1e6} {
		for _, below := range []bool{false, true} {
			x := 50 + sds*5
			if below {
				x = 50 - sds*5
			}
			d := gaussSeries(t, n, 50, 5)
			r := d.ScoreValue("g", time.Unix(n, 0), x)
			if !r.Anomaly || r.Reason != attrs.ReasonValue {
				t.Fatalf("%v sd (below %v): not flagged: %+v", sds, below, r)
			}
			if math.IsNaN(r.PValue) || r.PValue < minTailP || r.PValue > floor {
				t.Fatalf("%v sd (below %v): p = %v, want in [%v, %v]", sds, below, r.PValue, minTailP, floor)
			}
			if sds >= 10 && r.PValue >= 1e-6 {
				t.Errorf("%v sd (below %v): p = %v, want < 1e-6", sds, below, r.PValue)
			}
			if r.PValue > prev[below] || (r.PValue == prev[below] && r.PValue > minTailP) {
				t.Errorf("%v sd (below %v): p = %v not below the nearer point's %v", sds, below, r.PValue, prev[below])
			}
			t.Logf("%v sd (below %v): p = %.3g", sds, below, r.PValue)
			prev[below] = r.PValue
		}
	}
}

// Where the conformal rank stops (just beyond the most extreme baseline
// value), the tail estimate is within a small factor of it: the two join.
func TestTailJoinsRankAtTheEdge(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, n := range []int{300, 2048} {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = r.NormFloat64()
		}
		slices.Sort(xs)
		rank := 1 / float64(n+1)
		for _, lower := range []bool{false, true} {
			x := xs[n-1] + 1e-9
			if lower {
				x = xs[0] - 1e-9
			}
			p, ok := exceedP(xs, x, lower, 0)
			if !ok || p < rank/10 || p > 3*rank {
				t.Errorf("n=%d lower=%v: p just beyond the extreme = %v (ok %v), want within [1/10, 3] x 1/(n+1) = %v", n, lower, p, ok, rank)
			}
		}
		// Inside the tail's threshold there is nothing to extrapolate.
		if _, ok := exceedP(xs, xs[n/2], false, 0); ok {
			t.Errorf("n=%d: the median was extrapolated", n)
		}
	}
}

// A constant series gets a scale from its level, not p = 0 for any step:
// a tiny step stays near the rank floor, a bigger one is smaller; a
// constant series at 0 has no scale and keeps the rank.
func TestConstantBaselineTailIsFinite(t *testing.T) {
	floor := 1 / float64(DefaultConfig().NumericBaselineSize+1)
	for _, c := range []struct {
		level, step float64
		lo, hi      float64 // wanted p range
	}{
		{100, 0.01, floor / 2, floor}, // 0.01% of the level
		{100, 1, 1e-7, 1e-5},          // 1% of the level
		{0, 1, floor, floor},          // no scale: the rank
		{-40, -0.004, floor / 2, floor},
	} {
		d, _ := New(DefaultConfig())
		for i := 0; i < 3000; i++ {
			d.ScoreValue("c", time.Unix(int64(i), 0), c.level)
		}
		r := d.ScoreValue("c", time.Unix(3000, 0), c.level+c.step)
		if !r.Anomaly {
			t.Fatalf("level %v step %v: not flagged: %+v", c.level, c.step, r)
		}
		if !(r.PValue >= c.lo && r.PValue <= c.hi) {
			t.Errorf("level %v step %v: p = %v, want in [%v, %v]", c.level, c.step, r.PValue, c.lo, c.hi)
		}
	}
}

// Values at the edge of float64 never give a NaN p-value.
func TestTailPValueNaNSafe(t *testing.T) {
	d, _ := New(DefaultConfig())
	for i := 0; i < 3000; i++ {
		v := 1e307 * float64(i%7-3) // -3e307 .. 3e307
		d.ScoreValue("h", time.Unix(int64(i), 0), v)
	}
	for _, x := range []float64{math.MaxFloat64, -math.MaxFloat64} {
		r := d.ScoreValue("h", time.Unix(3000, 0), x)
		if math.IsNaN(r.PValue) || r.PValue <= 0 || r.PValue > 1 {
			t.Fatalf("x=%v: p = %v: %+v", x, r.PValue, r)
		}
	}
	huge := []float64{-math.MaxFloat64, -math.MaxFloat64 / 2, 0, math.MaxFloat64 / 2, math.MaxFloat64}
	for _, x := range []float64{math.Inf(1), math.Inf(-1), math.MaxFloat64} {
		for _, lower := range []bool{false, true} {
			if p, _ := exceedP(huge, x, lower, 0); math.IsNaN(p) || p <= 0 || p > 1 {
				t.Errorf("exceedP(huge, %v, %v) = %v", x, lower, p)
			}
		}
	}
	if p, ok := exceedP([]float64{}, 1, false, 1); ok || p != 1 {
		t.Errorf("empty baseline: p %v ok %v", p, ok)
	}
}

// A young series judged by its family reports the family's tail for a
// value far beyond every pooled residual, and the decision is the rank's.
func TestColdStartFarValueUsesPoolTail(t *testing.T) {
	d, _ := New(DefaultConfig())
	r := rand.New(rand.NewPCG(25, 26))
	t0 := time.Unix(0, 0)
	for i := 0; i < 200; i++ {
		for pod := 0; pod < 20; pod++ {
			d.ScoreSeries(fmt.Sprintf("cpu/pod%d", pod), "cpu", t0, 10*float64(pod+1)*(1+0.05*r.NormFloat64()))
		}
	}
	prev := 1.0
	for _, x := range []float64{900, 3000, 30000} {
		key := fmt.Sprintf("cpu/young%v", x)
		for i := 0; i < 4; i++ {
			d.ScoreSeries(key, "cpu", t0, 300*(1+0.05*r.NormFloat64()))
		}
		res := d.ScoreSeries(key, "cpu", t0, x)
		if !res.Anomaly || res.Calibrating {
			t.Fatalf("%v on a young series of ~300: %+v", x, res)
		}
		if math.IsNaN(res.PValue) || res.PValue >= 1.0/(coldPoolSize+1) || res.PValue >= prev {
			t.Errorf("%v on a young series: p = %v, want below the pool's rank floor %v and the nearer spike's %v",
				x, res.PValue, 1.0/(coldPoolSize+1), prev)
		}
		prev = res.PValue
	}
}

// A slowly growing series (a JVM's memory) reaching Warmup is judged
// against its whole history, not the range of its first 16 points: the
// moment it starts judging on its own, and the hop after it, are not an
// anomaly. (Later its new highs may be: a trend is judged by its sequence.)
func TestGrowingSeriesGraduatesQuietly(t *testing.T) {
	d, _ := New(DefaultConfig())
	r := rand.New(rand.NewPCG(5, 6))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	warm := DefaultConfig().Warmup
	for i := 0; i < warm+DefaultConfig().Hop; i++ {
		v := 330 + 0.25*float64(i) + 0.05*r.NormFloat64()
		if res := d.ScoreValue("mem", t0.Add(time.Duration(i)*time.Minute), v); res.Anomaly {
			t.Fatalf("point %d (%.2f) of a steadily growing series flagged: %s", i, v, res.Explanation)
		}
	}
}

// A metric that stays far out of line (a pod pegged at 40 times its CPU for
// half an hour) stays visible: its episode is flagged at the onset and
// again every maxFlagGap of record time while it lasts, every flag
// carrying the episode's start; the incident built on it does not close
// while the condition goes on. Points without times cannot tell how long
// the condition lasted: one flag.
func TestMetricEpisodeStaysVisible(t *testing.T) {
	for _, timed := range []bool{true, false} {
		d, _ := New(DefaultConfig())
		r := rand.New(rand.NewPCG(31, 32))
		at := func(i int) time.Time {
			if !timed {
				return time.Time{}
			}
			return time.Unix(int64(i)*60, 0) // one point a minute
		}
		i := 0
		for ; i < 600; i++ {
			d.ScoreValue("cpu", at(i), 10+r.NormFloat64())
		}
		start := at(i).UTC()
		var flags []Result
		for end := i + 30; i < end; i++ {
			if res := d.ScoreValue("cpu", at(i), 400+10*r.NormFloat64()); res.Anomaly {
				flags = append(flags, res)
			}
		}
		if !timed {
			if len(flags) != 1 {
				t.Errorf("without times: %d flags in 30 far points, want the onset only", len(flags))
			}
			continue
		}
		// Onset, then at 5, 10, 15, 20 and 25 minutes.
		if len(flags) != 6 {
			t.Fatalf("%d flags in 30 minutes far out of line, want 6 (the onset and one every %v)", len(flags), maxFlagGap)
		}
		for k, f := range flags {
			if !f.Episode.Equal(start) {
				t.Errorf("flag %d carries episode %v, want its start %v", k, f.Episode, start)
			}
			if k > 0 && !strings.Contains(f.Explanation, "still out of line since") {
				t.Errorf("flag %d explained as %q, want it to say the condition goes on", k, f.Explanation)
			}
		}
	}
}
