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

// replaceSorted replaces one occurrence of old in the ascending a by x and
// keeps a ascending, by shifting the values between the two positions by
// one: one move of at most len(a) values instead of a delete and an insert.
func replaceSorted[T float32 | float64](a []T, old, x T) {
	if old == x {
		return // quantized scores often repeat: nothing moves
	}
	i := searchSorted(a, old) // a[i] == old
	j := searchSorted(a, x)   // first position >= x
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
