package cbad

import (
	"math"

	"github.com/klauspost/compress/s2"
)

// Window-level drift. Every hop records a stream compares its current
// window (the last hop records, flagged or not) with a reference block (its
// most recent normal records) by compression:
//
//	NCD(x, y) = (C(xy) - min(C(x), C(y))) / max(C(x), C(y))
//
// with C the s2-compressed length. When the NCD leaves its calibrated range
// (the stream's recent NCDs), a seeded permutation test decides whether the
// difference is real: records are shuffled between reference and window and
// the NCD recomputed. The test is curtailed: it stops as soon as enough
// shuffles were at least as extreme that the p-value after all
// Config.Permutations shuffles could no longer fall below driftAlpha, so a
// window that is not different costs a handful of shuffles and the decision
// is the same as the full test's.

const (
	// ncdHistory is how many past window NCDs define the calibrated range.
	ncdHistory = 32
	// driftAlpha is the permutation p-value below which a window drifts.
	driftAlpha = 0.01
	// minPermutations is the fewest shuffles whose smallest p-value,
	// 1/(1+n), is below driftAlpha.
	minPermutations = 100
)

// compressedLen returns the s2 block size of b, using *buf as scratch.
func compressedLen(buf *[]byte, b []byte) int {
	if len(b) == 0 {
		return 0
	}
	if need := s2.MaxEncodedLen(len(b)); cap(*buf) < need {
		*buf = make([]byte, need)
	}
	return len(s2.Encode((*buf)[:cap(*buf)], b))
}

// ncd computes the normalized compression distance from compressed sizes.
func ncd(cx, cy, cxy int) float64 {
	lo, hi := cx, cy
	if lo > hi {
		lo, hi = hi, lo
	}
	if hi == 0 {
		return 0
	}
	return float64(cxy-lo) / float64(hi)
}

// entropy is the Shannon entropy of b's byte distribution, in bits per byte.
func entropy(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	// Four interleaved histograms: a byte that repeats (spaces, common
	// letters) would otherwise make each increment wait for the previous.
	var part [4][256]int32
	i := 0
	for ; i+4 <= len(b); i += 4 {
		part[0][b[i]]++
		part[1][b[i+1]]++
		part[2][b[i+2]]++
		part[3][b[i+3]]++
	}
	for ; i < len(b); i++ {
		part[0][b[i]]++
	}
	var counts [256]int
	for c := range counts {
		counts[c] = int(part[0][c]) + int(part[1][c]) + int(part[2][c]) + int(part[3][c])
	}
	n := float64(len(b))
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// splitmix64 is a tiny seeded PRNG: the permutation test must give the same
// answer for the same input and seed on every run and platform.
type splitmix64 uint64

func (s *splitmix64) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (s *splitmix64) intn(n int) int { return int(s.next() % uint64(n)) }

// scratch holds the buffers one scoring call needs; pooled per Detector so
// the steady state allocates nothing.
type scratch struct {
	canon, redact []byte
	toks          []uint64
	kind          uint64 // the record's kind (template id)
	spans         []tokenSpan
	costs         []float32
	enc           []byte
	xy            []byte // a reference block and a window, joined
	perm          []int
	pool          [][]byte
}

// ncdOf returns NCD(x, y) and the compressed sizes of x and y, using the
// scratch buffers.
func (sc *scratch) ncdOf(x, y []byte) (float64, int, int) {
	sc.xy = append(append(sc.xy[:0], x...), y...)
	return sc.ncdJoined(sc.xy, len(x), -1)
}

// ncdJoined is ncdOf for x and y already joined in xy (x is xy[:nx]): the
// callers assemble both sides from records, and build only the joined
// text. cx, when not negative, is x's compressed size, known already.
func (sc *scratch) ncdJoined(xy []byte, nx, cx int) (float64, int, int) {
	if cx < 0 {
		cx = compressedLen(&sc.enc, xy[:nx])
	}
	cy := compressedLen(&sc.enc, xy[nx:])
	cxy := compressedLen(&sc.enc, xy)
	return ncd(cx, cy, cxy), cx, cy
}

// permutationTest returns the p-value of observed NCD between the first
// nRef records of recs and the rest, by shuffling records between the two
// sides, at most maxPerm times, and how many shuffles it ran.
func (sc *scratch) permutationTest(recs [][]byte, nRef int, observed float64, maxPerm int, rng *splitmix64) (float64, int) {
	if maxPerm == 0 || nRef == 0 || nRef == len(recs) {
		return 1, 0
	}
	if cap(sc.perm) < len(recs) {
		sc.perm = make([]int, len(recs))
	}
	perm := sc.perm[:len(recs)]
	for i := range perm {
		perm[i] = i
	}
	stop := stopHits(maxPerm, driftAlpha)
	hits := 0
	n := 0
	for n < maxPerm {
		n++
		for i := len(perm) - 1; i > 0; i-- {
			j := rng.intn(i + 1)
			perm[i], perm[j] = perm[j], perm[i]
		}
		sc.xy = sc.xy[:0]
		for _, k := range perm[:nRef] {
			sc.xy = append(sc.xy, recs[k]...)
		}
		nx := len(sc.xy)
		for _, k := range perm[nRef:] {
			sc.xy = append(sc.xy, recs[k]...)
		}
		d, _, _ := sc.ncdJoined(sc.xy, nx, -1)
		if d >= observed {
			hits++
			if hits >= stop {
				break // (1+hits)/(1+n) >= (1+hits)/(1+maxPerm) >= alpha
			}
		}
	}
	return float64(1+hits) / float64(1+n), n
}

// stopHits is how many shuffles at least as extreme as the observed NCD
// settle a test of maxPerm shuffles at level alpha: with that many, the
// p-value (1+hits)/(1+maxPerm) can no longer fall below alpha.
func stopHits(maxPerm int, alpha float64) int {
	h := 1
	for float64(1+h)/float64(1+maxPerm) < alpha {
		h++
	}
	return h
}

// ncdRange tracks recent window NCDs of a stream to tell when a new one is
// outside its usual range and deserves the permutation test.
type ncdRange struct {
	vals [ncdHistory]float64
	n    int
	head int
}

func (r *ncdRange) add(v float64) {
	r.vals[r.head] = v
	r.head = (r.head + 1) % ncdHistory
	if r.n < ncdHistory {
		r.n++
	}
}

// unusual reports whether v exceeds the mean of the recent NCDs by more
// than three standard deviations (or any value, before 4 are known).
func (r *ncdRange) unusual(v float64) bool {
	if r.n < 4 {
		return true
	}
	mean := 0.0
	for _, x := range r.vals[:r.n] {
		mean += x
	}
	mean /= float64(r.n)
	sd := 0.0
	for _, x := range r.vals[:r.n] {
		sd += (x - mean) * (x - mean)
	}
	sd = math.Sqrt(sd / float64(r.n-1))
	return v > mean+3*sd+0.01
}
