package cbad

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
)

func TestNCD(t *testing.T) {
	if got := ncd(100, 80, 120); math.Abs(got-0.4) > 1e-12 { // (120-80)/100
		t.Fatalf("ncd(100,80,120) = %v, want 0.4", got)
	}
	if got := ncd(0, 0, 0); got != 0 {
		t.Fatalf("ncd of empty = %v, want 0", got)
	}
	var sc scratch
	text := bytes.Repeat([]byte("GET /index.html 200 OK\n"), 200)
	same, _, _ := sc.ncdOf(text, text)
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, len(text))
	for i := range noise {
		noise[i] = byte(rng.IntN(256))
	}
	diff, _, _ := sc.ncdOf(text, noise)
	if !(same < 0.1 && diff > 0.9) {
		t.Fatalf("NCD(x,x)=%.3f should be near 0 and NCD(x,noise)=%.3f near 1", same, diff)
	}
}

func TestEntropy(t *testing.T) {
	cases := []struct {
		in   []byte
		want float64
	}{
		{nil, 0},
		{[]byte("aaaaaaaa"), 0},
		{[]byte("abababab"), 1},
		{[]byte("abcd"), 2},
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	cases = append(cases, struct {
		in   []byte
		want float64
	}{all, 8})
	for _, c := range cases {
		if got := entropy(c.in); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("entropy(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestConformalPValue(t *testing.T) {
	c := newCalibration(99, 0)
	for i := 1; i <= 99; i++ {
		c.add(float64(i))
	}
	cases := map[float64]float64{
		100: 1.0 / 100,  // above every score: the smallest possible p
		99:  2.0 / 100,  // ties count as at least as extreme
		50:  51.0 / 100, // 50..99 are >= 50
		0:   1,          // below every score
	}
	for s, want := range cases {
		if got := c.pValue(s); math.Abs(got-want) > 1e-12 {
			t.Errorf("pValue(%v) = %v, want %v", s, got, want)
		}
	}
	// At a resolution, scores in one step tie: 50.3 counts as 50.
	q := newCalibration(10, 1)
	for i := 0; i < 10; i++ {
		q.add(50 + float64(i)/100)
	}
	if got := q.pValue(50.3); got != 1 {
		t.Fatalf("quantized pValue(50.3) = %v, want 1 (all ten tie)", got)
	}
	c.refresh()
	if c.median != 50 {
		t.Fatalf("median = %v, want 50", c.median)
	}
	// The ring forgets the oldest score: after 99 more adds of 1000 every
	// old score is gone and the sorted view must agree.
	for i := 0; i < 99; i++ {
		c.add(1000)
	}
	if got := c.pValue(999); math.Abs(got-1) > 1e-12 {
		t.Fatalf("after sliding, pValue(999) = %v, want 1", got)
	}
	for i, v := range c.sorted {
		if v != 1000 {
			t.Fatalf("sorted[%d] = %v after sliding, want 1000", i, v)
		}
	}
}

func TestCountTableMatchesMap(t *testing.T) {
	var tab countTable
	ref := map[uint64]int64{}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200000; i++ {
		k := mixKey(uint64(rng.IntN(3000)))
		d := int64(1)
		if rng.IntN(2) == 0 && ref[k] > 0 {
			d = -1
		}
		got := tab.add64(k, d)
		ref[k] += d
		if ref[k] == 0 {
			delete(ref, k)
		}
		if int64(got) != ref[k] {
			t.Fatalf("step %d: add64 returned %d, map says %d", i, got, ref[k])
		}
	}
	if tab.n != len(ref) {
		t.Fatalf("table holds %d keys, map %d", tab.n, len(ref))
	}
	for k, v := range ref {
		if got := tab.get64(k); int64(got) != v {
			t.Fatalf("get64 = %d, want %d", got, v)
		}
	}
}

func TestPermutationTestSeparates(t *testing.T) {
	mk := func(prefix string, n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = []byte(prefix + " request served in <num> ms status 200\n")
		}
		return out
	}
	var sc scratch
	// Same kind of records on both sides: no evidence of drift.
	recs := append(mk("GET /a", 32), mk("GET /a", 32)...)
	x := bytes.Join(recs[:32], nil)
	y := bytes.Join(recs[32:], nil)
	obs, _, _ := sc.ncdOf(x, y)
	rng := splitmix64(7)
	p, _ := sc.permutationTest(recs, 32, obs, 200, &rng)
	if p < 0.05 {
		t.Fatalf("identical halves gave permutation p = %v", p)
	}
	// A window of another kind entirely: strong evidence.
	other := make([][]byte, 32)
	for i := range other {
		other[i] = []byte("kernel panic: unable to mount root fs on unknown-block(0,0)\n")
	}
	recs = append(mk("GET /a", 32), other...)
	y = bytes.Join(other, nil)
	obs, _, _ = sc.ncdOf(x, y)
	rng = splitmix64(7)
	p2, n := sc.permutationTest(recs, 32, obs, 200, &rng)
	if p2 > 0.01 {
		t.Fatalf("different halves gave permutation p = %v after %d shuffles", p2, n)
	}
	// Seeded: the same call gives the same answer.
	rng = splitmix64(7)
	p3, n3 := sc.permutationTest(recs, 32, obs, 200, &rng)
	if p3 != p2 || n3 != n {
		t.Fatalf("permutation test not deterministic: %v/%d vs %v/%d", p2, n, p3, n3)
	}
}

// TestStopHitsSettlesTheDecision: the curtailed test stops at the fewest
// exceedances with which the full test's p-value can no longer be below
// driftAlpha, so stopping early never changes the decision.
func TestStopHitsSettlesTheDecision(t *testing.T) {
	for _, m := range []int{minPermutations, 150, 200, 999, 1000} {
		h := stopHits(m, driftAlpha)
		if float64(1+h)/float64(1+m) < driftAlpha {
			t.Errorf("%d shuffles: stopping at %d hits could still end below alpha", m, h)
		}
		if h > 1 && float64(h)/float64(1+m) >= driftAlpha {
			t.Errorf("%d shuffles: %d hits is not the fewest that settle the test", m, h)
		}
	}
	if float64(1)/float64(1+minPermutations) >= driftAlpha {
		t.Errorf("minPermutations %d cannot show p < %v", minPermutations, driftAlpha)
	}
}
