package cbad

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// sameCounts reports the first key whose value differs between a and b.
func sameCounts(t *testing.T, what string, a, b *countTable) {
	t.Helper()
	if a.n != b.n {
		t.Fatalf("%s: %d keys vs %d", what, a.n, b.n)
	}
	for _, e := range a.e {
		if e.k != 0 && b.get64(e.k) != e.v {
			t.Fatalf("%s: key %x holds %d vs %d", what, e.k, e.v, b.get64(e.k))
		}
	}
}

// TestReplaceMatchesRemoveThenAdd: the cancelling update leaves exactly the
// counts that removing the old record and adding the new one would.
func TestReplaceMatchesRemoveThenAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	// Records of a few templates with variable slots, so that neighbours
	// share most positions but not all, and some differ in length.
	gen := func() []uint64 {
		n := 3 + rng.IntN(6)
		toks := make([]uint64, n)
		tmpl := uint64(rng.IntN(3))
		for i := range toks {
			toks[i] = tmpl*100 + uint64(i)
			if rng.IntN(4) == 0 {
				toks[i] = 1000 + uint64(rng.IntN(5))
			}
		}
		return toks
	}
	var fast, slow ngramModel
	var ring [][]uint64
	for step := 0; step < 5000; step++ {
		toks := gen()
		if len(ring) < 16 {
			fast.update(toks, 1)
			slow.update(toks, 1)
			ring = append(ring, toks)
			continue
		}
		old := ring[step%16]
		fast.replace(old, toks)
		slow.update(old, -1)
		slow.update(toks, 1)
		ring[step%16] = toks
	}
	sameCounts(t, "n-gram counts", &fast.t, &slow.t)
	sameCounts(t, "context totals", &fast.ctx, &slow.ctx)
	if fast.t.n == 0 {
		t.Fatal("the model holds no counts: the test exercised nothing")
	}
}

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
