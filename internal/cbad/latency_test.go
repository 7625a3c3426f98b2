package cbad

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/attrs"
)

// lognormal durations around median seconds with log-sd sigma.
func lognormal(r *rand.Rand, median, sigma float64) float64 {
	return median * math.Exp(sigma*r.NormFloat64())
}

// Stable series stay quiet under the latency tests: a lognormal span
// duration (the tail test), and a heavy-tailed call gap whose requests
// make 1 to 4 calls each (the tail and the shift tests).
func TestLatencyStableSeriesRarelyFlagged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reason string
		draw   func(*rand.Rand) float64
	}{
		{"lognormal duration", attrs.ReasonLatency, func(r *rand.Rand) float64 { return lognormal(r, 0.012, 0.4) }},
		{"bimodal call gap", attrs.ReasonEdgeLatency, bimodalGap},
	} {
		d, _ := New(DefaultConfig())
		r := rand.New(rand.NewPCG(1, 2))
		t0 := time.Unix(0, 0)
		flagged, ex := 0, 0
		const n = 50000
		request, left := uint64(0), 0
		for i := 0; i < n; i++ {
			if left == 0 {
				request, left = request+1, 1+r.IntN(4)
			}
			left--
			res := d.ScoreLatency("op", t0, tc.draw(r), request, tc.reason)
			if res.Anomaly {
				flagged++
			}
			if res.PValue < 1 {
				ex++
			}
		}
		// Exceedances (above the 99th percentile) are about 1% of calls
		// (a shift test's p-value is only computed for calls above the
		// upper quartile and rarely below 1); flags need several in a
		// window: p < 1e-4 per call at most, with the effect size on top.
		if ex > n/50 {
			t.Errorf("%s: %d of %d calls had a p-value below 1, want about 1%%", tc.name, ex, n)
		}
		if flagged > 3 {
			t.Errorf("%s: a stable series flagged %d of %d calls", tc.name, flagged, n)
		}
	}
}

// A wrong baseline (e.g. the median, or a mean dragged by the tail, in
// place of the upper quantile) would show in the expected range: it must
// bracket the true 1st and 99th percentiles of the series.
func TestLatencyExpectedRangeIsTheBaselineQuantiles(t *testing.T) {
	d, _ := New(DefaultConfig())
	r := rand.New(rand.NewPCG(3, 4))
	t0 := time.Unix(0, 0)
	const median, sigma = 0.010, 0.3
	for i := 0; i < 5000; i++ {
		d.ScoreLatency("op", t0, lognormal(r, median, sigma), 0, attrs.ReasonLatency)
	}
	res := d.ScoreLatency("op", t0, 0.5, 0, attrs.ReasonLatency)
	z99 := 2.326
	wantHi, wantLo := median*math.Exp(sigma*z99), median*math.Exp(-sigma*z99)
	if math.Abs(math.Log(res.ExpectedHigh/wantHi)) > 0.15 || math.Abs(math.Log(res.ExpectedLow/wantLo)) > 0.15 {
		t.Fatalf("expected range [%g, %g], want about [%g, %g]", res.ExpectedLow, res.ExpectedHigh, wantLo, wantHi)
	}
	if math.Abs(math.Log(res.Median/median)) > 0.1 {
		t.Fatalf("median %g, want about %g", res.Median, median)
	}
	if res.Observed != 0.5 {
		t.Fatalf("observed %g, want 0.5", res.Observed)
	}
	// One slow call proves nothing: its p-value is about the tail level.
	if res.Anomaly || res.PValue > 0.1 || res.PValue < 0.005 {
		t.Fatalf("a lone slow call: anomaly %v p %g, want no flag and p near 0.08 (1 of 8 at 1%%)", res.Anomaly, res.PValue)
	}
}

func TestLatencySlowdownFlaggedOncePerEpisode(t *testing.T) {
	d, _ := New(DefaultConfig())
	r := rand.New(rand.NewPCG(5, 6))
	t0 := time.Unix(0, 0)
	for i := 0; i < 2000; i++ {
		d.ScoreLatency("op", t0, lognormal(r, 0.012, 0.3), 0, attrs.ReasonLatency)
	}
	// cpu contention: 12 ms -> 98 ms.
	first, flags := -1, 0
	for i := 0; i < 64; i++ {
		res := d.ScoreLatency("op", t0, lognormal(r, 0.098, 0.3), 0, attrs.ReasonLatency)
		if res.Anomaly {
			flags++
			if first < 0 {
				first = i
				if res.Reason != attrs.ReasonLatency || res.Explanation == "" || res.PValue >= 1e-4 {
					t.Fatalf("flag without reason, explanation or p-value: %+v", res)
				}
				if res.ExpectedHigh > 0.04 || res.Observed < 0.04 {
					t.Fatalf("expected high %g should hold the old regime, observed %g the new", res.ExpectedHigh, res.Observed)
				}
			}
		}
	}
	if first < 0 || first > 4 {
		t.Fatalf("a 8x slowdown was first flagged at call %d, want within 5", first)
	}
	// Every flag of the episode carries its start; it ends after a whole
	// window of normal calls.
	for i := 0; i < 20; i++ {
		d.ScoreLatency("op", t0.Add(time.Hour), lognormal(r, 0.012, 0.3), 0, attrs.ReasonLatency)
	}
	episodeFlags := 0
	var start time.Time
	for i := 0; i < 16; i++ {
		tm := t0.Add(2*time.Hour + time.Duration(i)*time.Second)
		if res := d.ScoreLatency("op", tm, 0.3, 0, attrs.ReasonLatency); res.Anomaly {
			episodeFlags++
			if start.IsZero() {
				start = tm // the episode starts when the slowdown is proven
			}
			if !res.Episode.Equal(start) {
				t.Fatalf("flag %d of a new episode carries start %v, want %v", episodeFlags, res.Episode, start)
			}
		}
	}
	if episodeFlags < 2 {
		t.Fatalf("%d flags in 16 slow calls of a new episode, want one per window", episodeFlags)
	}
	// One flag per window of calls: an episode, not every span.
	if flags > 64/8+1 {
		t.Fatalf("%d flags in 64 slow calls, want at most one per window", flags)
	}
	// The slow calls stayed out of the baseline: still flagged after 64.
	res := d.ScoreLatency("op", t0, 0.1, 0, attrs.ReasonLatency)
	if res.ExpectedHigh > 0.04 {
		t.Fatalf("the slowdown leaked into the baseline: expected high %g", res.ExpectedHigh)
	}
}

func TestLatencyYoungSeriesHonest(t *testing.T) {
	d, _ := New(DefaultConfig())
	t0 := time.Unix(0, 0)
	// A call waits a window before it joins the baseline.
	calib := latencyMinPoints + DefaultConfig().LatencyWindow - 1
	for i := 0; i < calib; i++ {
		if res := d.ScoreLatency("op", t0, 0.01, 0, attrs.ReasonLatency); !res.Calibrating {
			t.Fatalf("call %d scored before %d baseline values", i, latencyMinPoints)
		}
	}
	if res := d.ScoreLatency("op", t0, 0.01, 0, attrs.ReasonLatency); res.Calibrating {
		t.Fatalf("call %d still calibrating", calib)
	}
	// With 16 values "above every value" has probability 1/17: one such call
	// is no evidence, five of eight are.
	r := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 4; i++ {
		if res := d.ScoreLatency("op", t0, 0.5+r.Float64(), 0, attrs.ReasonLatency); res.Anomaly {
			t.Fatalf("flagged after %d slow calls on a 16-value baseline (p %g)", i+1, res.PValue)
		}
	}
	flagged := false
	for i := 0; i < 4 && !flagged; i++ {
		flagged = d.ScoreLatency("op", t0, 0.5+r.Float64(), 0, attrs.ReasonLatency).Anomaly
	}
	if !flagged {
		t.Fatal("eight calls 50x slower than a young series' every value were not flagged")
	}
}

func TestErrorBurstFlagged(t *testing.T) {
	d, _ := New(DefaultConfig())
	r := rand.New(rand.NewPCG(9, 10))
	t0 := time.Unix(0, 0)
	flagged := 0
	for i := 0; i < 20000; i++ {
		if d.ScoreError("op", t0, r.Float64() < 0.01).Anomaly {
			flagged++
		}
	}
	if flagged > 2 {
		t.Fatalf("a 1%% background error rate flagged %d of 20000 calls", flagged)
	}
	first := -1
	for i := 0; i < 8 && first < 0; i++ {
		if res := d.ScoreError("op", t0, true); res.Anomaly {
			first = i
			if res.Reason != attrs.ReasonErrors || res.Explanation == "" {
				t.Fatalf("error flag without reason or explanation: %+v", res)
			}
		}
	}
	if first < 0 || first > 4 {
		t.Fatalf("a burst of errors was first flagged at call %d, want within 5", first)
	}
	// A series that always fails is not surprising.
	for i := 0; i < 2000; i++ {
		d.ScoreError("always", t0, true)
	}
	if d.ScoreError("always", t0, true).Anomaly {
		t.Fatal("an always-failing series flagged its usual error")
	}
}

func TestLatencyAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	d, _ := New(DefaultConfig())
	r := rand.New(rand.NewPCG(11, 12))
	t0 := time.Unix(0, 0)
	for i := 0; i < 2000; i++ {
		d.ScoreLatency("op", t0, lognormal(r, 0.01, 0.3), 0, attrs.ReasonLatency)
		d.ScoreError("op", t0, false)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		d.ScoreLatency("op", t0, lognormal(r, 0.01, 0.3), 0, attrs.ReasonLatency)
		d.ScoreError("op", t0, r.Float64() < 0.01)
	})
	if allocs > 0 {
		t.Fatalf("%.2f allocations per call, want 0", allocs)
	}
}

func TestBinomTail(t *testing.T) {
	for _, c := range []struct {
		n, c    int
		q, want float64
	}{
		{8, 0, 0.01, 1},
		{8, 1, 0.5, 1 - 1.0/256},
		{8, 8, 0.5, 1.0 / 256},
		{8, 9, 0.5, 0},
		{4, 2, 0.1, 1 - math.Pow(0.9, 4) - 4*0.1*math.Pow(0.9, 3)},
	} {
		if got := binomTail(c.n, c.c, c.q); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("binomTail(%d, %d, %g) = %g, want %g", c.n, c.c, c.q, got, c.want)
		}
	}
}

// A new series of a known metric scores from its third point, judged by
// the spread of its family; without a family it waits for warm-up.
func TestColdStartBorrowsFromFamily(t *testing.T) {
	d, _ := New(DefaultConfig())
	r := rand.New(rand.NewPCG(13, 14))
	t0 := time.Unix(0, 0)
	// Twenty mature pods of one metric, each at its own level.
	for i := 0; i < 200; i++ {
		for pod := 0; pod < 20; pod++ {
			level := 10 * float64(pod+1)
			d.ScoreSeries(fmt.Sprintf("cpu/pod%d", pod), "cpu", t0, level*(1+0.05*r.NormFloat64()))
		}
	}
	// New pods: ordinary points are rarely flagged...
	flagged, scored := 0, 0
	for pod := 0; pod < 50; pod++ {
		key := fmt.Sprintf("cpu/new%d", pod)
		for i := 0; i < 20; i++ {
			res := d.ScoreSeries(key, "cpu", t0, 500*(1+0.05*r.NormFloat64()))
			if !res.Calibrating {
				scored++
			}
			if res.Anomaly {
				flagged++
			}
		}
	}
	if scored < 50*15 {
		t.Fatalf("young series scored %d of %d points, want all from their third", scored, 50*20)
	}
	if flagged > 5 {
		t.Fatalf("young series of a quiet family flagged %d of %d ordinary points", flagged, scored)
	}
	// ... and a spike on the fifth point of a new pod is.
	for i := 0; i < 4; i++ {
		d.ScoreSeries("cpu/spiky", "cpu", t0, 300*(1+0.05*r.NormFloat64()))
	}
	res := d.ScoreSeries("cpu/spiky", "cpu", t0, 900)
	if !res.Anomaly || res.Reason != attrs.ReasonValue || res.ExpectedHigh >= 900 || res.ExpectedHigh <= 300 || res.PValue > 0.01 {
		t.Fatalf("a 3x spike on a young series: %+v", res)
	}
	// Without a family the same series calibrates.
	d2, _ := New(DefaultConfig())
	for i := 0; i < 5; i++ {
		if res := d2.ScoreValue("cpu/alone", t0, 300); !res.Calibrating {
			t.Fatalf("point %d of a series without family scored: %+v", i, res)
		}
	}
}

func TestMetricAnomalyExplained(t *testing.T) {
	d, _ := New(DefaultConfig())
	t0 := time.Unix(0, 0)
	for i := 0; i < 3000; i++ {
		d.ScoreValue("cpu", t0, 50+10*math.Sin(float64(i)/20)+float64((i*7)%5))
	}
	res := d.ScoreValue("cpu", t0, 500)
	if !res.Anomaly || res.Observed != 500 || res.ExpectedHigh < 55 || res.ExpectedHigh > 70 || res.ExpectedLow > 45 || res.ExpectedLow < 35 {
		t.Fatalf("spike verdict: %+v", res)
	}
	if res.PValue <= 0 || res.PValue > 0.01 || res.Reason != attrs.ReasonValue || !strings.Contains(res.Explanation, "above the expected range") {
		t.Fatalf("spike verdict lacks a p-value, reason or sentence: %+v", res)
	}
}

// A restored detector scores latency, errors and young metric series
// exactly as the original would have.
func TestLatencyAndFamiliesSnapshot(t *testing.T) {
	d1, _ := New(DefaultConfig())
	r := rand.New(rand.NewPCG(15, 16))
	t0 := time.Unix(0, 0)
	for i := 0; i < 600; i++ {
		d1.ScoreLatency("op", t0, lognormal(r, 0.01, 0.3), uint64(i), attrs.ReasonLatency)
		d1.ScoreError("op", t0, r.Float64() < 0.02)
		for pod := 0; pod < 5; pod++ {
			d1.ScoreSeries(fmt.Sprintf("cpu/%d", pod), "cpu", t0, float64(10*(pod+1))*(1+0.05*r.NormFloat64()))
		}
	}
	var buf bytes.Buffer
	if err := d1.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	d2, _ := New(DefaultConfig())
	if err := d2.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		v := 0.2 + float64(i)/100
		a, b := d1.ScoreLatency("op", t0, v, uint64(1000+i), attrs.ReasonLatency), d2.ScoreLatency("op", t0, v, uint64(1000+i), attrs.ReasonLatency)
		if a != b {
			t.Fatalf("call %d: original %+v, restored %+v", i, a, b)
		}
		ea, eb := d1.ScoreError("op", t0, true), d2.ScoreError("op", t0, true)
		if ea != eb {
			t.Fatalf("error %d: original %+v, restored %+v", i, ea, eb)
		}
	}
	// A new pod after the restore is judged by the restored family pools.
	for i := 0; i < 5; i++ {
		a, b := d1.ScoreSeries("cpu/new", "cpu", t0, 70), d2.ScoreSeries("cpu/new", "cpu", t0, 70)
		if a != b {
			t.Fatalf("young point %d: original %+v, restored %+v", i, a, b)
		}
	}
	if d2.StreamBytes("op") > 64<<10 {
		t.Fatalf("a restored latency stream holds %d bytes (text rings allocated?)", d2.StreamBytes("op"))
	}
}

func TestScoreCallIsLatencyAndError(t *testing.T) {
	d1, _ := New(DefaultConfig())
	d2, _ := New(DefaultConfig())
	r := rand.New(rand.NewPCG(17, 18))
	t0 := time.Unix(0, 0)
	for i := 0; i < 1000; i++ {
		v, failed := lognormal(r, 0.01, 0.3), r.Float64() < 0.05
		if i > 900 {
			v, failed = 0.2, true
		}
		lat, errs := d1.ScoreCall("op", t0, v, failed, uint64(i), attrs.ReasonLatency)
		l2 := d2.ScoreLatency("op", t0, v, uint64(i), attrs.ReasonLatency)
		e2 := d2.ScoreError("op", t0, failed)
		lat.Index, l2.Index, errs.Index, e2.Index = 0, 0, 0, 0
		if lat != l2 || errs != e2 {
			t.Fatalf("call %d: ScoreCall %+v %+v, separately %+v %+v", i, lat, errs, l2, e2)
		}
	}
}

// draws returns n values of draw from a generator seeded with seed.
func draws(seed uint64, n int, draw func(*rand.Rand) float64) []float64 {
	r := rand.New(rand.NewPCG(seed, seed+1))
	vs := make([]float64, n)
	for i := range vs {
		vs[i] = draw(r)
	}
	return vs
}

// BenchmarkScoreCall is the per-span cost of the latency path (duration and
// error status of one call), beside BenchmarkScoreValue's numeric path.
func BenchmarkScoreCall(b *testing.B) {
	d, _ := New(DefaultConfig())
	t0 := time.Unix(0, 0)
	vs := draws(19, 4096, func(r *rand.Rand) float64 { return lognormal(r, 0.01, 0.3) })
	for i := 0; i < 4096; i++ {
		d.ScoreCall("op", t0, vs[i], false, uint64(i), attrs.ReasonLatency)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.ScoreCall("op", t0, vs[i%len(vs)], i%100 == 0, uint64(i), attrs.ReasonLatency)
	}
}

// BenchmarkScoreSeriesFamily is BenchmarkScoreValue's series scored with a
// family (cold-start pools fed by every point).
func BenchmarkScoreSeriesFamily(b *testing.B) {
	for _, family := range []string{"", "cpu"} {
		b.Run("family="+family, func(b *testing.B) {
			d, _ := New(DefaultConfig())
			t0 := time.Unix(0, 0)
			for i := 0; i < 4096; i++ {
				d.ScoreSeries("s", family, t0, float64(i%288))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				d.ScoreSeries("s", family, t0, float64(i%288)+float64(i%7))
			}
		})
	}
}

// bimodalGap draws a call gap as seen on real edges: a few milliseconds
// for most calls and, for about one in ten, a 200 ms mode (TCP's delayed
// acknowledgement) that puts the 99th percentile far above the median.
func bimodalGap(r *rand.Rand) float64 {
	if r.Float64() < 0.1 {
		return lognormal(r, 0.220, 0.05)
	}
	return lognormal(r, 0.0025, 0.4)
}

// A constant added delay of 100 ms on an edge whose tail is at 200 ms stays
// below the tail (the exceedance count never sees it) but moves nearly
// every call above the usual upper quartile: the shift test flags the
// edge within a few requests. The same series scored as a span's own
// duration is left to the tail test alone (own durations drift with the
// data they work on), so it must not flag: that is the test of the shift
// path being the one that flags.
func TestLatencyEdgeShiftBelowTheTail(t *testing.T) {
	for _, tc := range []struct {
		reason   string
		wantFlag bool
	}{{attrs.ReasonEdgeLatency, true}, {attrs.ReasonLatency, false}} {
		d, _ := New(DefaultConfig())
		r := rand.New(rand.NewPCG(5, 6))
		t0 := time.Unix(0, 0)
		call := func(i int, extra float64) Result {
			// Three calls per request, as a caller that fans out.
			return d.ScoreLatency("edge", t0.Add(time.Duration(i)*100*time.Millisecond), bimodalGap(r)+extra, uint64(i/3+1), tc.reason)
		}
		i := 0
		for ; i < 5000; i++ {
			if res := call(i, 0); res.Anomaly {
				t.Fatalf("%s: a stable bimodal series flagged call %d: %s", tc.reason, i, res.Explanation)
			}
		}
		first := -1
		for j := 0; j < 300; j, i = j+1, i+1 {
			if res := call(i, 0.100); res.Anomaly && first < 0 {
				first = j
				if !strings.Contains(res.Explanation, "upper quartile") {
					t.Errorf("%s: flag explained as %q, want the shift test's sentence", tc.reason, res.Explanation)
				}
			}
		}
		switch {
		case tc.wantFlag && (first < 0 || first > 60):
			t.Errorf("%s: a 100 ms delay on every call was flagged at call %d of 300, want within 60 (20 requests)", tc.reason, first)
		case !tc.wantFlag && first >= 0:
			t.Errorf("%s: own durations flagged by the shift test at call %d; only call gaps take it", tc.reason, first)
		}
	}
}

// BenchmarkScoreEdgeGap is the per-call cost of a call gap, whose calls
// above the upper quartile (a quarter of them) take the shift test too;
// compare with BenchmarkScoreCall in the same run.
func BenchmarkScoreEdgeGap(b *testing.B) {
	d, _ := New(DefaultConfig())
	t0 := time.Unix(0, 0)
	vs := draws(21, 4096, bimodalGap)
	for i := 0; i < 4096; i++ {
		d.ScoreLatency("edge", t0, vs[i], uint64(i/3), attrs.ReasonEdgeLatency)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.ScoreLatency("edge", t0, vs[i%len(vs)], uint64(i/3), attrs.ReasonEdgeLatency)
	}
}
