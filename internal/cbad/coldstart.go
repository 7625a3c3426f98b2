package cbad

import (
	"math"
	"sync"
)

// Cold start of metric series. The numeric model needs Config.Warmup
// points of its own before it scores; at one point a minute that is an hour
// blind after every deploy, scale-out or new pod. A young series borrows
// instead from the series of the same family (the caller names it: the
// processor uses the metric name and statistic within one stream, so a
// fleet routed by stream decides as one collector does):
//
//   - from its own last m points (coldMin <= m <= coldMax) it takes only
//     a location and a scale: the median and the median absolute
//     deviation (floored at a thousandth of the median, so a flat series
//     still has a scale);
//   - the point's residual r = |v - median| / scale is judged against the
//     family's pool of residuals computed the same way, with the same m,
//     from every series of the family (a young series one residual per
//     point and m, a mature one per point for each m in turn). Its p-value
//     is the conformal rank of r in that pool.
//
// The p-value is honest in the sense that matters: a residual from three
// points is noisier than one from eight, and it is compared with other
// three-point residuals, so an uncertain series gets a wider range, not
// more flags. What it assumes is that series of one family fluctuate alike
// relative to their own level and spread; a series unlike its family is
// judged by its own history once that is long enough (Config.Warmup).
//
// Memory: per family, (coldMax-coldMin+1) pools of coldPoolSize residuals
// (8 bytes each with the sorted copy): 32 KiB; at most coldMaxFamilies
// families (16 MiB), further families get no pool and wait for warm-up.

const (
	coldMin         = 3
	coldMax         = 6
	coldPools       = coldMax - coldMin + 1
	coldPoolSize    = 1024
	coldMaxFamilies = 512
	// coldMinPool is how many residuals a pool needs before it judges: the
	// smallest conformal p-value is 1/(n+1).
	coldMinPool = 64
)

type family struct {
	mu    sync.Mutex
	pools [coldPools]calibration
	turn  int // the m a mature series contributes to next
}

type familyTable struct {
	mu sync.Mutex
	m  map[string]*family
}

// family returns the pool set of name, creating it while there is room;
// nil when name is empty or the table is full.
func (d *Detector) family(name string) *family {
	if name == "" {
		return nil
	}
	ft := &d.families
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if f, ok := ft.m[name]; ok {
		return f
	}
	if len(ft.m) >= coldMaxFamilies {
		return nil
	}
	if ft.m == nil {
		ft.m = make(map[string]*family)
	}
	f := &family{}
	for i := range f.pools {
		f.pools[i] = newCalibration(coldPoolSize, 0)
	}
	ft.m[name] = f
	return f
}

// coldResidual returns the residual of v against the last m baseline
// values of ns, with their median and scale.
func (ns *numericState) coldResidual(m int, v float64) (r, med, scale float64) {
	var buf [coldMax]float64
	n := ns.values.n
	for i := 0; i < m; i++ {
		buf[i] = ns.values.at(n - m + i)
	}
	xs := buf[:m]
	insertionSort(xs)
	med = xs[m/2]
	if m%2 == 0 {
		med = (xs[m/2-1] + xs[m/2]) / 2
	}
	for i := range xs {
		xs[i] = math.Abs(xs[i] - med)
	}
	insertionSort(xs)
	mad := xs[m/2]
	if m%2 == 0 {
		mad = (xs[m/2-1] + xs[m/2]) / 2
	}
	scale = math.Max(1.4826*mad, 1e-3*math.Abs(med))
	scale = math.Max(scale, 1e-12)
	return math.Abs(v-med) / scale, med, scale
}

func insertionSort(xs []float64) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j] < xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}

// coldVerdict judges v for a young series: it returns the pool's p-value
// (the conformal rank of v's residual, which decides), the p-value to
// report (below the rank for a residual beyond every one in the pool: the
// pool's tail extrapolated, as valueP does for a mature series), the
// expected range (the values whose residual the pool would not call
// unusual at level alpha) and ok=false when there is no pool to judge by.
func (f *family) coldVerdict(ns *numericState, v, alpha float64) (p, pTail, lo, hi float64, ok bool) {
	m := min(ns.values.n, coldMax)
	if m < coldMin {
		return 1, 1, 0, 0, false
	}
	r, med, scale := ns.coldResidual(m, v)
	f.mu.Lock()
	pool := &f.pools[m-coldMin]
	if pool.n < coldMinPool {
		f.mu.Unlock()
		return 1, 1, 0, 0, false
	}
	p, pTail = pool.pValue(r), 1
	if r > float64(pool.sorted[pool.n-1]) {
		// Residuals are scale-free, so the tail's scale is floored by the
		// pool's own spread only (numTailIQR, as for values).
		pTail, _ = exceedP(pool.sorted[:pool.n], r, false, numTailIQR*(pool.quantile(0.75)-pool.quantile(0.25)))
	}
	pTail = min(p, pTail)
	crit := pool.quantile(1 - alpha)
	f.mu.Unlock()
	return p, pTail, med - crit*scale, med + crit*scale, true
}

// contribute adds a normal point's residuals to the family's pools. A
// young series adds one for each m its history allows, so that the pools
// fill at the family's combined rate when a fleet is new; a mature one
// (warm points or more) adds one, for each m in turn, which keeps the pools
// current at a quarter of the cost.
func (f *family) contribute(ns *numericState, v float64, warm int) {
	top := min(ns.values.n, coldMax)
	if top < coldMin {
		return
	}
	lo := coldMin
	if ns.values.n >= warm {
		f.mu.Lock()
		lo = coldMin + f.turn
		f.turn = (f.turn + 1) % coldPools
		f.mu.Unlock()
		top = lo
	}
	var rs [coldPools]float64
	for m := lo; m <= top; m++ {
		rs[m-coldMin], _, _ = ns.coldResidual(m, v)
	}
	f.mu.Lock()
	for m := lo; m <= top; m++ {
		f.pools[m-coldMin].add(rs[m-coldMin])
	}
	f.mu.Unlock()
}
