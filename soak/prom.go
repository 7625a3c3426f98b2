package soak

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Histogram is a Prometheus histogram's cumulative buckets (upper bound ->
// count), summed over every series whose name matched.
type Histogram map[float64]float64

// ParseHistogram reads Prometheus text exposition and returns the buckets of
// the histogram whose bucket series start with name and end in _bucket
// (the exporter may add a unit suffix such as _seconds), summed over series.
// It fails when no bucket line matched.
func ParseHistogram(r io.Reader, name string) (Histogram, error) {
	h := Histogram{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, name) {
			continue
		}
		metric, labels, ok := strings.Cut(line, "{")
		if !ok || !strings.HasSuffix(metric, "_bucket") {
			continue
		}
		labels, value, ok := strings.Cut(labels, "} ")
		if !ok {
			return nil, fmt.Errorf("prometheus: malformed line %q", line)
		}
		le := labelValue(labels, "le")
		if le == "" {
			return nil, fmt.Errorf("prometheus: bucket without le: %q", line)
		}
		bound, err := strconv.ParseFloat(le, 64)
		if err != nil {
			return nil, fmt.Errorf("prometheus: le %q: %w", le, err)
		}
		fields := strings.Fields(value)
		if len(fields) == 0 {
			return nil, fmt.Errorf("prometheus: no value: %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("prometheus: value %q: %w", fields[0], err)
		}
		h[bound] += v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(h) == 0 {
		return nil, fmt.Errorf("prometheus: no %s*_bucket series", name)
	}
	return h, nil
}

func labelValue(labels, key string) string {
	for _, kv := range strings.Split(labels, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.TrimSpace(k) == key {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// Add sums another histogram into h (a collector restarted mid-run starts
// its counts again, so both lives are added).
func (h Histogram) Add(o Histogram) {
	for b, v := range o {
		h[b] += v
	}
}

// Count is the number of observations (the +Inf bucket).
func (h Histogram) Count() float64 { return h[math.Inf(1)] }

// Quantile estimates the q-quantile by linear interpolation inside the
// bucket that holds it, as PromQL's histogram_quantile does. When it falls
// in the +Inf bucket the highest finite bound is returned.
func (h Histogram) Quantile(q float64) float64 {
	bounds := make([]float64, 0, len(h))
	for b := range h {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	total := h.Count()
	if total == 0 || len(bounds) == 0 {
		return math.NaN()
	}
	rank := q * total
	prevBound, prevCount := 0.0, 0.0
	for _, b := range bounds {
		c := h[b]
		if c >= rank {
			if math.IsInf(b, 1) {
				return prevBound
			}
			if c == prevCount {
				return b
			}
			return prevBound + (b-prevBound)*(rank-prevCount)/(c-prevCount)
		}
		prevBound, prevCount = b, c
	}
	return prevBound
}
