// Package eval measures the detector's quality on real labeled data (BGL,
// NAB) and its false-positive rate on unlabeled normal logs (loghub), and
// prints the results beside published and trivial references.
package eval

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/driftlock/driftlock/internal/cbad"
)

// Report is everything Run measured.
type Report struct {
	BGL    *BGLResult
	NAB    *NABResult
	FP     []FPFile
	FPRate float64 // all flagged lines / all lines over the loghub samples
}

// Run measures what the data under shared (the repository's ../shared/data)
// allows; parts whose data is missing are left nil.
func Run(shared string, cfg cbad.Config) (Report, error) {
	var r Report
	if p := filepath.Join(shared, "loghub", "BGL_2k.log"); exists(p) {
		b, err := RunBGL(p, cfg)
		if err != nil {
			return r, fmt.Errorf("BGL: %w", err)
		}
		r.BGL = &b
	}
	if p := filepath.Join(shared, "nab"); exists(filepath.Join(p, "combined_windows.json")) {
		n, err := RunNAB(p, cfg)
		if err != nil {
			return r, fmt.Errorf("NAB: %w", err)
		}
		r.NAB = &n
	}
	if p := filepath.Join(shared, "loghub"); exists(p) {
		fp, err := RunLoghubFP(p, cfg)
		if err != nil {
			return r, fmt.Errorf("loghub: %w", err)
		}
		r.FP = fp
		lines, flagged := 0, 0
		for _, f := range fp {
			lines += f.Lines
			flagged += f.Flagged
		}
		if lines > 0 {
			r.FPRate = float64(flagged) / float64(lines)
		}
	}
	return r, nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// Print writes the report as Markdown tables.
func (r Report) Print(w io.Writer) {
	if b := r.BGL; b != nil {
		fmt.Fprintf(w, "## BGL_2k (%d lines, %d alerts; windows of %d lines)\n\n", b.Lines, b.Alerts, BGLWindow)
		fmt.Fprintln(w, "| detector | line P | line R | line F1 | window F1 | PR-AUC |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|")
		fmt.Fprintf(w, "| driftlock (defaults) | %.3f | %.3f | **%.3f** | **%.3f** | %.3f |\n", b.Line.Precision, b.Line.Recall, b.Line.F1, b.Window.F1, b.PRAUC)
		fmt.Fprintf(w, "| reference: every FATAL/FAILURE line | %.3f | %.3f | %.3f | %.3f | - |\n", b.SeverityLine.Precision, b.SeverityLine.Recall, b.SeverityLine.F1, b.SeverityWindow.F1)
		fmt.Fprintf(w, "| reference: random 1%% flags | - | - | %.3f | %.3f | - |\n\n", b.RandomLine.F1, b.RandomWindow.F1)
	}
	if n := r.NAB; n != nil {
		fmt.Fprintf(w, "## NAB standard profile (%d files in shared)\n\n", len(n.Files))
		fmt.Fprintln(w, "| file | points | windows | detected | false pos. | raw score |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|")
		for _, f := range n.Files {
			fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %.2f |\n", f.Name, f.Points, f.Windows, f.Detected, f.FP, f.RawScore)
		}
		fmt.Fprintf(w, "\n| detector | NAB standard score |\n|---|---|\n| **driftlock (defaults, this subset)** | **%.1f** |\n", n.Score)
		for _, ref := range []struct {
			name  string
			score float64
		}{{"Numenta HTM", 70.5}, {"CAD OSE", 69.9}, {"KNN CAD", 58.0}, {"Relative Entropy", 54.6}, {"Random Cut Forest", 51.7}, {"Twitter ADVec", 47.1}, {"Windowed Gaussian", 39.6}, {"random", 11.0}} {
			fmt.Fprintf(w, "| %s (published, full corpus) | %.1f |\n", ref.name, ref.score)
		}
		fmt.Fprintln(w)
	}
	if len(r.FP) > 0 {
		fmt.Fprintln(w, "## False positives on unlabeled loghub samples (mostly normal)")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| file | lines | record time | flagged | rate | flags per stream-hour |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|")
		for _, f := range r.FP {
			fmt.Fprintf(w, "| %s | %d | %v | %d | %.2f%% | %.1f |\n", f.Name, f.Lines, f.Span.Round(time.Second), f.Flagged, 100*f.Rate, f.PerHour)
		}
		fmt.Fprintf(w, "| **all** | | | | **%.2f%%** | |\n\n", 100*r.FPRate)
	}
}
