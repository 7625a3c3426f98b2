package incident

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The three-bucket test must see the buckets just before, not the last
// ones that had anomalies long ago.
func TestRecentBucketsAfterQuiet(t *testing.T) {
	keep := 0.99
	var r rate
	r.test(10, 1, noStrength, 1, keep, 0.1, 30)
	r.test(11, 1, noStrength, 1, keep, 0.1, 30)
	p1, p2 := r.recent(12)
	assert.Equal(t, [2]float64{1, 1}, [2]float64{p1, p2})
	r.catchUp(13, keep) // bucket 12 was empty
	p1, p2 = r.recent(13)
	assert.Equal(t, [2]float64{0, 1}, [2]float64{p1, p2})
	r.catchUp(100, keep)
	p1, p2 = r.recent(100)
	assert.Equal(t, [2]float64{0, 0}, [2]float64{p1, p2})
	// A lone flag after a long quiet is judged alone.
	var q rate
	for c := int64(1); c <= 200; c++ {
		n := 0
		if c%50 == 0 {
			n = 1
		}
		q.test(c, n, noStrength, 1, keep, 0.02, 30)
	}
	before := q
	before.catchUp(300, keep)
	mean, v := before.moments(0.02, 30)
	got := q.test(300, 1, noStrength, 1, keep, 0.02, 30)
	assert.InDelta(t, log2Tail(1, mean, v), got, 1e-9, "judged as one flag against its background")
	assert.Equal(t, [2]float64{1, 0}, q.Last)
}
