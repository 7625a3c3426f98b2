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
