package cbad

import (
	"slices"
	"time"
)

// latencySnap is a stream's latency-path state in a snapshot: the baseline
// values in arrival order (the sorted copy is rebuilt), the calls waiting
// to join it and the windows of exceedance and error bits.
type latencySnap struct {
	Values    []float64
	Pend      [64]float64
	Group     [64]uint64
	Calls     uint64
	Exceed    uint64
	Bulk      uint64 // the shift test's bits (absent in older snapshots: zero)
	Shifted   bool
	Held      uint64
	Slow      int
	Quiet     int
	Episode   time.Time
	ErrBits   [latencyErrorHistory / 64]uint64
	ErrHead   int
	ErrN      int
	ErrTotal  int
	ErrRecent uint64
	ErrQuiet  int
}

func (ls *latencyState) snap() *latencySnap {
	s := &latencySnap{Pend: ls.pend, Group: ls.group, Calls: ls.calls, Exceed: ls.exceed, Bulk: ls.bulk, Shifted: ls.shifted, Held: ls.held,
		Slow: ls.slow, Quiet: ls.quiet, Episode: ls.episode, ErrBits: ls.errBits, ErrHead: ls.errHead, ErrN: ls.errN,
		ErrTotal: ls.errTotal, ErrRecent: ls.errRecent, ErrQuiet: ls.errQuiet}
	for i := 0; i < ls.values.n; i++ {
		s.Values = append(s.Values, ls.values.at(i))
	}
	return s
}

func (st *stream) restoreLatency(cfg *Config, s *latencySnap) {
	ls := st.ensureLatency(cfg)
	for _, v := range s.Values {
		ls.push(v)
	}
	ls.pend, ls.group, ls.calls, ls.exceed, ls.held = s.Pend, s.Group, s.Calls, s.Exceed, s.Held
	ls.bulk, ls.shifted = s.Bulk, s.Shifted
	ls.slow, ls.quiet, ls.episode = s.Slow, s.Quiet, s.Episode
	ls.errBits, ls.errHead, ls.errN, ls.errTotal, ls.errRecent, ls.errQuiet = s.ErrBits, s.ErrHead%latencyErrorHistory, min(s.ErrN, latencyErrorHistory), s.ErrTotal, s.ErrRecent, s.ErrQuiet
}

// familySnap is one cold-start family's residual pools, oldest first.
type familySnap struct {
	Name  string
	Pools [coldPools][]float32
}

func (d *Detector) snapFamilies() []familySnap {
	ft := &d.families
	ft.mu.Lock()
	names := make([]string, 0, len(ft.m))
	for name := range ft.m {
		names = append(names, name)
	}
	ft.mu.Unlock()
	slices.Sort(names)
	out := make([]familySnap, 0, len(names))
	for _, name := range names {
		f := d.family(name)
		fs := familySnap{Name: name}
		f.mu.Lock()
		for i := range f.pools {
			fs.Pools[i] = f.pools[i].ordered()
		}
		f.mu.Unlock()
		out = append(out, fs)
	}
	return out
}

func (d *Detector) restoreFamilies(fams []familySnap) {
	d.families.mu.Lock()
	d.families.m = nil
	d.families.mu.Unlock()
	for _, fs := range fams {
		f := d.family(fs.Name)
		if f == nil {
			return // the table is full
		}
		f.mu.Lock()
		for i := range f.pools {
			for _, r := range fs.Pools[i] {
				f.pools[i].add(float64(r))
			}
		}
		f.mu.Unlock()
	}
}
