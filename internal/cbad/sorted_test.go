package cbad

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPushValueKeepsSorted: the incrementally kept order is the sorted
// baseline at every step, with duplicates, through many wraps of the ring.
func TestPushValueKeepsSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	ns := &numericState{values: ring1{v: make([]float64, 37)}}
	want := make([]float64, 0, 37)
	for step := 0; step < 3000; step++ {
		v := float64(rng.IntN(20)) // many ties
		if step%7 == 0 {
			v = rng.NormFloat64() * 100
		}
		ns.pushValue(v)
		want = want[:0]
		for i := 0; i < ns.values.n; i++ {
			want = append(want, ns.values.at(i))
		}
		slices.Sort(want)
		if !slices.Equal(ns.sorted, want) {
			t.Fatalf("step %d: sorted %v, want %v", step, ns.sorted, want)
		}
	}
}

// TestCalibrationKeepsSorted: the calibration set's sorted copy matches its
// ring after many wraps, and NaN never enters it.
func TestCalibrationKeepsSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	c := newCalibration(29, textResolution)
	for step := 0; step < 2000; step++ {
		c.add(rng.Float64() * 8)
		if step%97 == 0 {
			c.add(math.NaN())
		}
		want := slices.Clone(c.scores[:c.n])
		slices.Sort(want)
		if !slices.Equal(c.sorted, want) {
			t.Fatalf("step %d: sorted %v, want %v", step, c.sorted, want)
		}
	}
	if p := c.pValue(1e9); p != 1.0/30 {
		t.Fatalf("a score above all 29 gives p = %v, want 1/30", p)
	}
}

// TestSearchSortedIsLowerBound: both searches return the first index whose
// value is >= x, for every length from empty up, with ties, and for x
// below, between, on and above the values.
func TestSearchSortedIsLowerBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for n := 0; n < 70; n++ {
		a := make([]float32, n)
		for i := range a {
			a[i] = float32(rng.IntN(12)) / 4 // many ties
		}
		slices.Sort(a)
		for q := -2; q <= 14; q++ {
			x := float32(q) / 4
			for _, x := range []float32{x, x + 0.1} {
				want := 0
				for want < n && a[want] < x {
					want++
				}
				if got := searchSorted(a, x); got != want {
					t.Fatalf("n=%d x=%v: searchSorted = %d, want %d (a=%v)", n, x, got, want, a)
				}
				y := float32(rng.IntN(14)-1) / 4
				wantY := searchSorted(a, y)
				if gx, gy := searchSorted2(a, x, y); gx != want || gy != wantY {
					t.Fatalf("n=%d: searchSorted2(%v, %v) = %d, %d, want %d, %d (a=%v)", n, x, y, gx, gy, want, wantY, a)
				}
			}
		}
	}
}
