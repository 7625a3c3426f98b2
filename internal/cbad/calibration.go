package cbad

import "slices"

// calibration is a bounded ring of a stream's recent normal scores. The
// p-value of a new score s is the conformal (split-conformal, "plus one")
// estimate (1 + #{c >= s}) / (n + 1): under exchangeability of normal
// scores it is a valid p-value, so flagging at p < alpha gives a
// false-positive rate of at most alpha on normal data.
type calibration struct {
	scores []float32
	head   int
	n      int
	// median is refreshed every hop from a sorted copy, not per record.
	median float64
	sorted []float32
}

func newCalibration(size int) calibration {
	return calibration{scores: make([]float32, size)}
}

func (c *calibration) add(s float64) {
	c.scores[c.head] = float32(s)
	c.head++
	if c.head == len(c.scores) {
		c.head = 0
	}
	if c.n < len(c.scores) {
		c.n++
	}
}

// pValue returns the conformal p-value of s. It scans the ring (at most
// calibration_size comparisons), which is cheaper than keeping it sorted.
func (c *calibration) pValue(s float64) float64 {
	if c.n == 0 {
		return 1
	}
	x := float32(s)
	ge := 0
	for _, v := range c.scores[:c.n] {
		if v >= x {
			ge++
		}
	}
	return float64(1+ge) / float64(c.n+1)
}

// refresh recomputes the median.
func (c *calibration) refresh() {
	if c.n == 0 {
		c.median = 0
		return
	}
	c.sorted = append(c.sorted[:0], c.scores[:c.n]...)
	slices.Sort(c.sorted)
	c.median = float64(c.sorted[c.n/2])
}

// quantile returns the q-quantile of the last refresh.
func (c *calibration) quantile(q float64) float64 {
	if len(c.sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(c.sorted)-1))
	return float64(c.sorted[i])
}
