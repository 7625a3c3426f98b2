package eval

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/driftlock/driftlock/internal/cbad"
)

// BGLWindow is the window length (lines) of the windowed BGL metric.
const BGLWindow = 20

// Metrics are precision, recall and F1 of binary predictions.
type Metrics struct {
	TP, FP, FN int
	Precision  float64
	Recall     float64
	F1         float64
}

func metrics(pred, truth []bool) Metrics {
	var m Metrics
	for i := range pred {
		switch {
		case pred[i] && truth[i]:
			m.TP++
		case pred[i]:
			m.FP++
		case truth[i]:
			m.FN++
		}
	}
	if m.TP+m.FP > 0 {
		m.Precision = float64(m.TP) / float64(m.TP+m.FP)
	}
	if m.TP+m.FN > 0 {
		m.Recall = float64(m.TP) / float64(m.TP+m.FN)
	}
	if m.Precision+m.Recall > 0 {
		m.F1 = 2 * m.Precision * m.Recall / (m.Precision + m.Recall)
	}
	return m
}

// windowed turns per-line values into per-window ones (any line set).
func windowed(v []bool, w int) []bool {
	out := make([]bool, 0, (len(v)+w-1)/w)
	for i := 0; i < len(v); i += w {
		any := false
		for j := i; j < i+w && j < len(v); j++ {
			any = any || v[j]
		}
		out = append(out, any)
	}
	return out
}

// PRAUC is the area under the precision-recall curve of scores against
// truth (average precision, ties broken by input order).
func PRAUC(scores []float64, truth []bool) float64 {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] > scores[idx[b]] })
	pos := 0
	for _, t := range truth {
		if t {
			pos++
		}
	}
	if pos == 0 {
		return 0
	}
	tp, ap := 0, 0.0
	for k, i := range idx {
		if truth[i] {
			tp++
			ap += float64(tp) / float64(k+1)
		}
	}
	return ap / float64(pos)
}

// BGLResult is the outcome on the labeled BGL sample.
type BGLResult struct {
	Lines, Alerts int
	Line, Window  Metrics
	PRAUC         float64
	// References on the same lines.
	SeverityLine, SeverityWindow Metrics
	RandomLine, RandomWindow     Metrics
}

// ReadLabeledLines reads BGL-style lines: the first whitespace-separated
// column is "-" for a normal line, otherwise an alert category. It is
// stripped: the detector never sees it.
func ReadLabeledLines(path string) (lines [][]byte, truth []bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		l := sc.Bytes()
		sp := bytes.IndexByte(l, ' ')
		if sp < 0 {
			return nil, nil, fmt.Errorf("%s:%d: no label column", path, n)
		}
		truth = append(truth, string(l[:sp]) != "-")
		lines = append(lines, bytes.Clone(l[sp+1:]))
	}
	return lines, truth, sc.Err()
}

// ScoreLines runs the text path over lines as one stream, each line at the
// time written in it (see lineTime).
func ScoreLines(cfg cbad.Config, lines [][]byte) ([]cbad.Result, error) {
	d, err := cbad.New(cfg)
	if err != nil {
		return nil, err
	}
	out := make([]cbad.Result, len(lines))
	for i, l := range lines {
		out[i] = d.Score("lines", cbad.Record{Data: l, Time: lineTime(l)})
	}
	return out, nil
}

// span is the record time the lines cover (latest minus earliest time
// found: a sample without years may wrap around New Year).
func span(lines [][]byte) time.Duration {
	var first, last time.Time
	for _, l := range lines {
		if t := lineTime(l); !t.IsZero() {
			if first.IsZero() || t.Before(first) {
				first = t
			}
			if t.After(last) {
				last = t
			}
		}
	}
	return last.Sub(first)
}

// RunBGL scores the BGL sample and its references.
func RunBGL(path string, cfg cbad.Config) (BGLResult, error) {
	lines, truth, err := ReadLabeledLines(path)
	if err != nil {
		return BGLResult{}, err
	}
	res, err := ScoreLines(cfg, lines)
	if err != nil {
		return BGLResult{}, err
	}
	pred := make([]bool, len(res))
	scores := make([]float64, len(res))
	sev := make([]bool, len(res))
	for i, r := range res {
		pred[i] = r.Anomaly
		scores[i] = r.Score
		s := string(lines[i])
		sev[i] = strings.Contains(s, "FATAL") || strings.Contains(s, "FAILURE")
	}
	out := BGLResult{Lines: len(lines)}
	for _, t := range truth {
		if t {
			out.Alerts++
		}
	}
	out.Line = metrics(pred, truth)
	out.Window = metrics(windowed(pred, BGLWindow), windowed(truth, BGLWindow))
	out.PRAUC = PRAUC(scores, truth)
	out.SeverityLine = metrics(sev, truth)
	out.SeverityWindow = metrics(windowed(sev, BGLWindow), windowed(truth, BGLWindow))
	// Random 1% flags, averaged over seeds.
	const seeds = 20
	var lf, wf float64
	for s := uint64(1); s <= seeds; s++ {
		rng := s * 0x9e3779b97f4a7c15
		rnd := make([]bool, len(lines))
		for i := range rnd {
			rng ^= rng << 13
			rng ^= rng >> 7
			rng ^= rng << 17
			rnd[i] = rng%100 == 0
		}
		lf += metrics(rnd, truth).F1
		wf += metrics(windowed(rnd, BGLWindow), windowed(truth, BGLWindow)).F1
	}
	out.RandomLine.F1 = lf / seeds
	out.RandomWindow.F1 = wf / seeds
	return out, nil
}

// FPFile is the flag rate on one unlabeled, mostly normal log sample.
type FPFile struct {
	Name    string
	Lines   int
	Flagged int
	Rate    float64
	// Span is the record time the sample covers; PerHour is Flagged per
	// hour of it (the sample is one stream), 0 when Span is unknown.
	Span    time.Duration
	PerHour float64
}

// RunLoghubFP scores every unlabeled *_2k.log sample in dir (BGL excluded)
// and returns the share of lines flagged.
func RunLoghubFP(dir string, cfg cbad.Config) ([]FPFile, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*_2k.log"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []FPFile
	for _, p := range paths {
		name := filepath.Base(p)
		if name == "BGL_2k.log" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
		res, err := ScoreLines(cfg, lines)
		if err != nil {
			return nil, err
		}
		f := FPFile{Name: name, Lines: len(lines)}
		for _, r := range res {
			if r.Anomaly {
				f.Flagged++
			}
		}
		f.Rate = float64(f.Flagged) / float64(f.Lines)
		if f.Span = span(lines); f.Span > 0 {
			f.PerHour = float64(f.Flagged) / f.Span.Hours()
		}
		out = append(out, f)
	}
	return out, nil
}
