package cbad

// Sorted float slices (calibration scores, numeric baselines) are searched
// and updated on every record. slices.BinarySearch compares floats through
// cmp.Compare, whose NaN handling is most of its cost here; the values
// kept never include NaN (callers drop it first), so plain comparisons give
// the same positions.

// searchSorted returns the first index i with a[i] >= x.
func searchSorted[T float32 | float64](a []T, x T) int {
	lo, hi := 0, len(a)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if a[m] < x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// searchSorted2 is searchSorted for two values at once. The calibration
// sets are searched on every record, mostly out of L1 cache: each step of
// a binary search waits for the load of the step before, and running the
// two searches in lockstep, without branches (lessInt compiles to a flag
// set, not a jump), lets their loads overlap instead of adding up.
func searchSorted2[T float32 | float64](a []T, x, y T) (int, int) {
	n := len(a)
	if n == 0 {
		return 0, 0
	}
	bx, by := 0, 0
	for n > 1 {
		half := n >> 1
		bx += half & -lessInt(a[bx+half], x)
		by += half & -lessInt(a[by+half], y)
		n -= half
	}
	return bx + lessInt(a[bx], x), by + lessInt(a[by], y)
}

// lessInt is 1 if a < b, else 0.
func lessInt[T float32 | float64](a, b T) int {
	var r int
	if a < b {
		r = 1
	}
	return r
}

// replaceSorted replaces one occurrence of old in the ascending a by x and
// keeps a ascending, by shifting the values between the two positions by
// one: one move of at most len(a) values instead of a delete and an insert.
func replaceSorted[T float32 | float64](a []T, old, x T) {
	if old == x {
		return // quantized scores often repeat: nothing moves
	}
	i, j := searchSorted2(a, old, x) // a[i] == old; a[j] is the first >= x
	if j > i {
		copy(a[i:j-1], a[i+1:j])
		a[j-1] = x
		return
	}
	copy(a[j+1:i+1], a[j:i])
	a[j] = x
}

// insertSorted inserts x into the ascending a, which has room for it.
func insertSorted[T float32 | float64](a []T, x T) []T {
	j := searchSorted(a, x)
	a = append(a, x)
	copy(a[j+1:], a[j:len(a)-1])
	a[j] = x
	return a
}
