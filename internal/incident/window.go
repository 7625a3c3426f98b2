package incident

// The window test. A service's trouble often shows as moderate evidence in
// a few consecutive buckets, in different signals: an error line this
// minute, a slow call to it the next, its CPU the minute after. No bucket
// alone clears the open level, although together they are far from
// routine. So beside its bucket's p-value, a service's evidence is judged
// over its last windowBuckets buckets together: Fisher's combination of
// their p-values, buckets without evidence counting as p = 1 (so a window
// is never judged on its busy buckets alone). The smaller of the two,
// doubled for the two tries, is the service's p-value for the bucket.
// Only the current bucket's evidence is new: a window without earlier
// evidence is the bucket test alone, and needs no correction.

// windowBuckets is the length of the window test in buckets: three, as
// the count test's own window (background.go), so that a cascade that
// unfolds over a few minutes is weighed as one.
const windowBuckets = 3

// bucketEvidence is a service's evidence (log2 p) in one bucket.
type bucketEvidence struct {
	B     int64
	Log2P float64
}

// windowTest returns the service's log2 p-value for bucket b whose own
// evidence is l, and remembers l for the buckets after it.
func (c *Correlator) windowTest(b int64, service string, l float64) float64 {
	past := c.st.Recent[service]
	kept := past[:0]
	sum := l
	for _, e := range past {
		if b-e.B < windowBuckets && e.B < b {
			kept = append(kept, e)
			sum += e.Log2P
		}
	}
	c.st.Recent[service] = append(kept, bucketEvidence{B: b, Log2P: l})
	if len(kept) == 0 {
		return l
	}
	w := fisherLog2(sum, windowBuckets)
	return min(min(l, w)+1, 0)
}

// forgetRecent drops the window evidence older than the window before
// bucket next (services that went quiet).
func (c *Correlator) forgetRecent(next int64) {
	for s, past := range c.st.Recent {
		if len(past) == 0 || next-past[len(past)-1].B >= windowBuckets {
			delete(c.st.Recent, s)
		}
	}
}
