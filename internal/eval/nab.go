package eval

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/driftlock/driftlock/internal/cbad"
)

// NAB's standard application profile.
const (
	nabTPWeight   = 1.0
	nabFPWeight   = 0.11
	nabFNWeight   = 1.0
	nabProbation  = 0.15
	nabTimeLayout = "2006-01-02 15:04:05"
)

// NABFile is the outcome on one NAB series.
type NABFile struct {
	Name       string
	Points     int
	Windows    int
	Detected   int // windows with at least one detection
	FP         int // detections outside windows (after probation)
	Flags      int
	RawScore   float64
	NullScore  float64
	PerfectRaw float64
}

// NABResult sums the files; Score is NAB's normalized score (0 = null
// detector, 100 = perfect).
type NABResult struct {
	Files []NABFile
	Score float64
}

// ReadNABSeries reads a timestamp,value CSV.
func ReadNABSeries(r io.Reader) ([]time.Time, []float64, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 2
	var ts []time.Time
	var vs []float64
	line := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line++
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", line, err)
		}
		if line == 1 && rec[0] == "timestamp" {
			continue
		}
		t, err := time.Parse(nabTimeLayout, rec[0])
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: bad timestamp %q: %w", line, rec[0], err)
		}
		v, err := strconv.ParseFloat(rec[1], 64)
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: bad value %q: %w", line, rec[1], err)
		}
		ts = append(ts, t)
		vs = append(vs, v)
	}
	return ts, vs, nil
}

// scaledSigmoid is NAB's weighting of a detection by its position relative
// to a window: -1 is the window's left edge (about +0.987), 0 its right edge
// (0), and positive positions are false positives after a window.
func scaledSigmoid(pos float64) float64 {
	if pos >= 3 {
		return -1
	}
	return 2/(1+math.Exp(5*pos)) - 1
}

// ScoreNAB computes NAB's raw score of binary detections on one series,
// following NAB's sweeper: the best detection in each window counts (scaled
// by how early it is), every detection outside windows costs A_FP scaled by
// its distance from the previous window, each missed window costs A_FN, and
// the first 15% of the series (probation) is not scored.
func ScoreNAB(ts []time.Time, flags []bool, windows [][2]time.Time) NABFile {
	n := len(ts)
	f := NABFile{Points: n}
	probation := int(math.Min(math.Floor(nabProbation*float64(n)), nabProbation*5000))
	maxTP := scaledSigmoid(-1)
	idx := func(t time.Time) int {
		i := sort.Search(n, func(i int) bool { return !ts[i].Before(t) })
		if i == n {
			i = n - 1
		}
		return i
	}
	type win struct{ l, r int }
	wins := make([]win, 0, len(windows))
	for _, w := range windows {
		wins = append(wins, win{idx(w[0]), idx(w[1])})
	}
	best := make([]float64, len(wins))
	counted := make([]bool, len(wins))
	for k, w := range wins {
		best[k] = -nabFNWeight
		counted[k] = w.r >= probation // a window wholly in probation is not scored
	}
	fpScore := 0.0
	prevRight, prevWidth := -1, 0.0
	wi := 0
	for i := 0; i < n; i++ {
		for wi < len(wins) && i > wins[wi].r {
			prevRight, prevWidth = wins[wi].r, float64(wins[wi].r-wins[wi].l+1)
			wi++
		}
		if !flags[i] {
			continue
		}
		f.Flags++
		if i < probation {
			continue
		}
		if wi < len(wins) && i >= wins[wi].l && i <= wins[wi].r {
			w := wins[wi]
			width := float64(w.r - w.l + 1)
			s := scaledSigmoid(-float64(w.r-i+1)/width) * nabTPWeight / maxTP
			if s > best[wi] {
				best[wi] = s
			}
			continue
		}
		pos := 3.0
		if prevRight >= 0 {
			pos = math.Abs(float64(prevRight-i)) / (prevWidth - 1)
		}
		fpScore += scaledSigmoid(pos) * nabFPWeight
		f.FP++
	}
	f.RawScore = fpScore
	for k := range wins {
		if !counted[k] {
			continue
		}
		f.Windows++
		f.RawScore += best[k]
		f.NullScore -= nabFNWeight
		f.PerfectRaw += nabTPWeight
		if best[k] > -nabFNWeight {
			f.Detected++
		}
	}
	return f
}

// RunNAB scores every series under dir/data listed in combined_windows.json.
func RunNAB(dir string, cfg cbad.Config) (NABResult, error) {
	wb, err := os.ReadFile(filepath.Join(dir, "combined_windows.json"))
	if err != nil {
		return NABResult{}, err
	}
	var all map[string][][2]string
	if err := json.Unmarshal(wb, &all); err != nil {
		return NABResult{}, fmt.Errorf("combined_windows.json: %w", err)
	}
	names := make([]string, 0, len(all))
	for k := range all {
		if _, err := os.Stat(filepath.Join(dir, "data", k)); err == nil {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var res NABResult
	var raw, null, perfect float64
	for _, name := range names {
		fh, err := os.Open(filepath.Join(dir, "data", name))
		if err != nil {
			return res, err
		}
		ts, vs, err := ReadNABSeries(fh)
		fh.Close()
		if err != nil {
			return res, fmt.Errorf("%s: %w", name, err)
		}
		var wins [][2]time.Time
		for _, w := range all[name] {
			a, err1 := time.Parse(nabTimeLayout+".000000", w[0])
			b, err2 := time.Parse(nabTimeLayout+".000000", w[1])
			if err1 != nil || err2 != nil {
				return res, fmt.Errorf("%s: bad window %v", name, w)
			}
			wins = append(wins, [2]time.Time{a, b})
		}
		flags := DetectSeries(cfg, ts, vs)
		f := ScoreNAB(ts, flags, wins)
		f.Name = name
		res.Files = append(res.Files, f)
		raw += f.RawScore
		null += f.NullScore
		perfect += f.PerfectRaw
	}
	if perfect != null {
		res.Score = 100 * (raw - null) / (perfect - null)
	}
	return res, nil
}

// DetectSeries runs the detector's numeric path over one series.
func DetectSeries(cfg cbad.Config, ts []time.Time, vs []float64) []bool {
	d, err := cbad.New(cfg)
	if err != nil {
		panic(err) // cfg was validated by the caller
	}
	flags := make([]bool, len(vs))
	for i, v := range vs {
		flags[i] = d.ScoreValue("series", ts[i], v).Anomaly
	}
	return flags
}
