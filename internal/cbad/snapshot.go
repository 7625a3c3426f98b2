package cbad

import (
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// snapshotVersion changes whenever the snapshot layout does. Version 2 adds
// the stream-level evidence (counts per kind and bucket, episodes); a
// version 1 snapshot is refused and the streams warm up once.
const snapshotVersion = 2

// ErrSnapshotConfig is returned by Restore when a snapshot was taken with
// settings that change the meaning of the state (a different compressor or
// ring sizes); the caller should start fresh instead.
var ErrSnapshotConfig = errors.New("cbad: snapshot was taken with an incompatible configuration")

type snapshotFile struct {
	Version    int
	Compressor string
	Baseline   int
	Hop        int
	Calib      int
	NumBase    int
	NumCalib   int
	// RateBucket is the bucket width of the streams' rate state; restored
	// under another width, that state is dropped (it re-learns in minutes)
	// and the rest of the stream kept.
	RateBucket time.Duration
	Streams    []streamSnap
	Families   []familySnap // cold-start pools of metric families
}

type streamSnap struct {
	Key       string
	Index     uint64
	Baseline  [][]uint64
	Ref       [][]byte
	Window    []windowSnap
	Cal       []float32
	NCDs      []float64
	DriftRun  int
	RNG       uint64
	NumValues []float64
	NumPrev   int
	NumRecent []float64
	NumSince  int
	NumModel  *numModelSnap
	NumSeason *seasonSnap // the time-of-day test (seasonal.go)
	Median    float64
	Rate      *rateSnap
	Lat       *latencySnap // latency path (latency_snapshot.go)
	// The calibration's tail fit as of its last refresh.
	TailU, TailBeta float64
	// The peak-cost calibration (ngram streams), with its cached figures.
	PeakCal                             []float32
	PeakMedian, PeakTailU, PeakTailBeta float64
	// The stream's rate of new kinds (novelty.go; absent from older
	// snapshots: it is measured afresh).
	Disc *discoverySnap
}

// rateSnap mirrors rateState with exported fields (gob needs them).
type rateSnap struct {
	Bucket        int64
	Total, Errors counterSnap
	Kinds         []counterSnap
	LastKindFlag  int64
	Debuts        float64
}

type counterSnap struct {
	Kind              uint64
	Count, Burst      uint32
	S1, S2, W, Busy   float64
	Episode, LastFlag int64
	EpMean, EpR       float64
	EpSum             uint32
	Quiet             uint16
	// The window test's history (absent from snapshots taken before it:
	// they restore with an empty history, the window then fills again
	// within burstWindow).
	WBurst, Prev uint32
	Hist         [maxWindowBuckets - 1]uint32
	Taught       [maxWindowBuckets - 1]float32
	At, NH       uint8
	Windowed     bool
	// The kind's habit of bursting (see routine).
	Onsets, Watched float64
	RoutineEp       bool
}

func (c *rateCounter) snap() counterSnap {
	return counterSnap{Kind: c.kind, Count: c.count, Burst: c.burst, S1: c.s1, S2: c.s2, W: c.w, Busy: c.busy,
		Episode: c.episode, LastFlag: c.lastFlag, EpMean: c.epMean, EpR: c.epR, EpSum: c.epSum, Quiet: c.quiet,
		WBurst: c.wburst, Prev: c.prev, Hist: c.hist, Taught: c.taught, At: c.at, NH: c.nh, Windowed: c.windowed,
		Onsets: c.onsets, Watched: c.watched, RoutineEp: c.routineEp}
}

func (s counterSnap) restore() rateCounter {
	return rateCounter{kind: s.Kind, count: s.Count, burst: s.Burst, s1: s.S1, s2: s.S2, w: s.W, busy: s.Busy,
		episode: s.Episode, lastFlag: s.LastFlag, epMean: s.EpMean, epR: s.EpR, epSum: s.EpSum, quiet: s.Quiet,
		wburst: s.WBurst, prev: s.Prev, hist: s.Hist, taught: s.Taught,
		at: min(s.At, maxWindowBuckets-2), nh: min(s.NH, maxWindowBuckets-1), windowed: s.Windowed,
		onsets: s.Onsets, watched: s.Watched, routineEp: s.RoutineEp}
}

// numModelSnap is the numeric model as of its last rebuild: restoring it
// (rather than rebuilding from the values) makes a restored stream score
// exactly as the original would have.
type numModelSnap struct {
	Edges          [numBins - 1]float64
	Lo, Hi, Q1, Q3 float64
	C0             [numSymbols]float64
	C1             [numSymbols][numSymbols]float64
	N0             float64
	Ready, PrevFar bool
	Quiet          int
	// Episode and LastFlag (unix ns) are the open episode's start and last
	// flag (absent in older snapshots: no episode open).
	Episode, LastFlag int64
}

type windowSnap struct {
	Toks    []uint64
	Text    []byte
	Flagged bool
}

// Snapshot writes every stream's state (baseline, window, calibration set,
// numeric baseline) so that Restore can resume without a new warm-up.
// Streams are written in key order, so equal states give equal bytes.
func (d *Detector) Snapshot(w io.Writer) error {
	d.mu.Lock()
	streams := make([]*stream, 0, len(d.streams))
	for _, st := range d.streams {
		streams = append(streams, st)
	}
	d.mu.Unlock()
	slices.SortFunc(streams, func(a, b *stream) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	f := snapshotFile{Version: snapshotVersion, Compressor: d.cfg.Compressor,
		Baseline: d.cfg.BaselineSize, Hop: d.cfg.Hop, Calib: d.cfg.CalibrationSize,
		NumBase: d.cfg.NumericBaselineSize, NumCalib: d.cfg.NumericCalibrationSize, RateBucket: d.cfg.RateBucket}
	for _, st := range streams {
		st.mu.Lock()
		f.Streams = append(f.Streams, st.snap())
		st.mu.Unlock()
	}
	f.Families = d.snapFamilies()
	return gob.NewEncoder(w).Encode(&f)
}

func (st *stream) snap() streamSnap {
	s := streamSnap{Key: st.key, Index: st.index, DriftRun: st.driftRun, RNG: uint64(st.rng)}
	for i := 0; i < st.baseline.n; i++ {
		s.Baseline = append(s.Baseline, slices.Clone(st.baseline.at(i).toks))
	}
	for i := 0; i < st.ref.n; i++ {
		s.Ref = append(s.Ref, slices.Clone(st.ref.at(i).text))
	}
	for i := 0; i < st.window.n; i++ {
		w := st.window.at(i)
		s.Window = append(s.Window, windowSnap{Toks: slices.Clone(w.toks), Text: slices.Clone(w.text), Flagged: w.flagged})
	}
	s.Cal = st.cal.ordered()
	for i := 0; i < st.ncds.n; i++ {
		j := (st.ncds.head - st.ncds.n + i + ncdHistory) % ncdHistory
		s.NCDs = append(s.NCDs, st.ncds.vals[j])
	}
	if ns := st.num; ns != nil {
		for i := 0; i < ns.values.n; i++ {
			s.NumValues = append(s.NumValues, ns.values.at(i))
		}
		s.NumPrev = ns.prevSym
		s.NumRecent = slices.Clone(ns.recentCost[:ns.nRecent])
		s.NumSince = ns.sinceHop
		s.NumModel = &numModelSnap{Edges: ns.edges, Lo: ns.lo, Hi: ns.hi, Q1: ns.q1, Q3: ns.q3,
			C0: ns.c0, C1: ns.c1, N0: ns.n0, Ready: ns.ready, PrevFar: ns.prevFar, Quiet: ns.quiet,
			Episode: ns.episode, LastFlag: ns.lastFlag}
		s.NumSeason = ns.season.snap()
	}
	s.Median, s.TailU, s.TailBeta = st.cal.median, st.cal.tailU, st.cal.tailBeta
	if st.calPeak.scores != nil {
		s.PeakCal = st.calPeak.ordered()
		s.PeakMedian, s.PeakTailU, s.PeakTailBeta = st.calPeak.median, st.calPeak.tailU, st.calPeak.tailBeta
	}
	if st.disc != nil {
		s.Disc = st.disc.snap()
	}
	if rs := st.rate; rs != nil {
		s.Rate = &rateSnap{Bucket: rs.bucket, Total: rs.total.snap(), Errors: rs.errors.snap(), LastKindFlag: rs.lastKindFlag, Debuts: rs.debuts}
		for i := 0; i < rs.n; i++ {
			s.Rate.Kinds = append(s.Rate.Kinds, rs.kinds[i].snap())
		}
	}
	if st.lat != nil {
		s.Lat = st.lat.snap()
	}
	return s
}

// Restore replaces the detector's streams with a snapshot written by
// Snapshot. On error the detector is left unchanged.
func (d *Detector) Restore(r io.Reader) error {
	var f snapshotFile
	if err := gob.NewDecoder(r).Decode(&f); err != nil {
		return fmt.Errorf("cbad: decode snapshot: %w", err)
	}
	if f.Version != snapshotVersion || f.Compressor != d.cfg.Compressor || f.Baseline != d.cfg.BaselineSize ||
		f.Hop != d.cfg.Hop || f.Calib != d.cfg.CalibrationSize ||
		f.NumBase != d.cfg.NumericBaselineSize || f.NumCalib != d.cfg.NumericCalibrationSize {
		return fmt.Errorf("%w (version %d, compressor %s, baseline %d, hop %d, calibration %d)",
			ErrSnapshotConfig, f.Version, f.Compressor, f.Baseline, f.Hop, f.Calib)
	}
	streams := make(map[string]*stream, len(f.Streams))
	var order []*stream
	for i := range f.Streams {
		s := &f.Streams[i]
		st := newStream(s.Key, &d.cfg)
		st.index, st.driftRun, st.rng = s.Index, s.DriftRun, splitmix64(s.RNG)
		if len(s.NumValues) > 0 && len(s.Baseline) == 0 {
			st.ensureNumeric(&d.cfg)
		} else if s.Lat == nil || len(s.Baseline) > 0 {
			st.ensureText(&d.cfg)
		}
		if s.Lat != nil {
			st.restoreLatency(&d.cfg, s.Lat)
		}
		for _, toks := range s.Baseline {
			if len(toks) > maxModelTokens {
				return fmt.Errorf("cbad: snapshot stream %q: record of %d tokens exceeds %d", s.Key, len(toks), maxModelTokens)
			}
			b, _ := st.baseline.push()
			b.toks = append(b.toks[:0], toks...)
			st.model.update(b.toks, 1)
		}
		for _, t := range s.Ref {
			x, _ := st.ref.push()
			x.text = append(x.text[:0], t...)
		}
		for _, w := range s.Window {
			x, _ := st.window.push()
			x.toks, x.text, x.flagged = append(x.toks[:0], w.Toks...), append(x.text[:0], w.Text...), w.Flagged
		}
		for _, v := range s.Cal {
			st.cal.add(float64(v))
		}
		st.cal.median, st.cal.tailU, st.cal.tailBeta = s.Median, s.TailU, s.TailBeta
		if st.calPeak.scores != nil {
			for _, v := range s.PeakCal {
				st.calPeak.add(float64(v))
			}
			st.calPeak.median, st.calPeak.tailU, st.calPeak.tailBeta = s.PeakMedian, s.PeakTailU, s.PeakTailBeta
		}
		if s.Disc != nil && st.disc != nil {
			st.disc.restore(s.Disc)
		}
		if r := s.Rate; r != nil && f.RateBucket == d.cfg.RateBucket && d.cfg.RateBucket > 0 {
			if len(r.Kinds) > rateSlots {
				return fmt.Errorf("cbad: snapshot stream %q: %d kinds exceed %d", s.Key, len(r.Kinds), rateSlots)
			}
			rs := &rateState{bucket: r.Bucket, total: r.Total.restore(), errors: r.Errors.restore(), n: len(r.Kinds), lastKindFlag: r.LastKindFlag, debuts: r.Debuts}
			for i, k := range r.Kinds {
				rs.kinds[i] = k.restore()
			}
			st.rate = rs
		}
		for _, v := range s.NCDs {
			st.ncds.add(v)
		}
		if len(s.NumValues) > 0 {
			ns := st.ensureNumeric(&d.cfg)
			ns.prevSym, ns.sinceHop = s.NumPrev, s.NumSince
			for _, v := range s.NumValues {
				ns.pushValue(v)
			}
			ns.nRecent = copy(ns.recentCost[:], s.NumRecent)
			if m := s.NumModel; m != nil {
				ns.edges, ns.lo, ns.hi, ns.q1, ns.q3 = m.Edges, m.Lo, m.Hi, m.Q1, m.Q3
				ns.c0, ns.c1, ns.n0, ns.ready, ns.prevFar, ns.quiet = m.C0, m.C1, m.N0, m.Ready, m.PrevFar, m.Quiet
				ns.episode, ns.lastFlag = m.Episode, m.LastFlag
			} else {
				ns.rebuild()
			}
			ns.season.restore(s.NumSeason, len(ns.values.v))
		}
		if d.cfg.Compressor != CompressorNgram {
			st.dict.rebuild(d.cfg.Compressor, &st.ref, &st.window)
		}
		streams[s.Key] = st
		order = append(order, st)
	}
	d.restoreFamilies(f.Families)
	d.mu.Lock()
	d.streams = streams
	d.head, d.tail = nil, nil
	for _, st := range order {
		d.pushFront(st)
	}
	for len(d.streams) > d.cfg.MaxStreams {
		d.evictLocked(d.tail)
	}
	d.mu.Unlock()
	return nil
}
