package cbad

import (
	"math/rand/v2"
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
	if fast.order0 != slow.order0 {
		t.Fatalf("order-0 context: %x vs %x", fast.order0, slow.order0)
	}
	if fast.t.n == 0 {
		t.Fatal("the model holds no counts: the test exercised nothing")
	}
}

// ctxHash is the definition of a context hash: the order-o context of
// position i of toks hashes the o tokens before it, bosToken standing for
// those before the record's start.
func ctxHash(toks []uint64, i, order int) uint64 {
	h := uint64(order+1) * ctxSeed
	for k := i - order; k < i; k++ {
		var tk uint64 = bosToken
		if k >= 0 {
			tk = toks[k]
		}
		h = (h ^ tk) * 0x100000001b3
		h ^= h >> 29
	}
	return h
}

// TestContextsMatchDefinition: the unrolled context hashes of the hot path
// are the defined ones at every position, the record's start included.
func TestContextsMatchDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	toks := make([]uint64, 20)
	for i := range toks {
		toks[i] = rng.Uint64() | 1
	}
	p2, p1 := uint64(bosToken), uint64(bosToken)
	for i, tok := range toks {
		got := contexts(p2, p1)
		for o := 0; o <= ngramOrder; o++ {
			if want := ctxHash(toks, i, o); got[o] != want {
				t.Fatalf("position %d order %d: %x, want %x", i, o, got[o], want)
			}
		}
		p2, p1 = p1, tok
	}
}
