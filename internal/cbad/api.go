// Package cbad is Driftlock's compression-based anomaly detector. It scores
// ordered streams of records (log lines, canonical spans) by how many bits
// they cost to encode given the stream's recent normal baseline, turns that
// cost into a calibrated p-value, and tests whole windows for drift.
//
// Beside record-level surprise it keeps stream-level evidence (rate.go):
// each text record has a kind (its template, kind.go), counted per short
// bucket of record time against the stream's own background, so a burst of
// familiar records or of errors is flagged (Result.Reason) and an ongoing
// condition stays visible (Result.Episode). The per-record level follows a
// false-flag budget per stream-hour (Config.FlagBudget), and long records
// are tested on their rarest token as well as their mean cost.
//
// The package imports no Collector code: the processor, the CLI and the
// evaluation harness all drive the same Detector with the same defaults.
package cbad

import "time"

// Record is one textual record handed to the detector.
type Record struct {
	// Data is the record's text (a log body plus the attributes the caller
	// chose, or a canonical span line). It is canonicalized internally; the
	// caller's slice is never retained or modified.
	Data []byte
	// Severity is the OpenTelemetry severity number (1-24) when known, 0
	// otherwise. When 0 the detector looks for a level word in the text.
	Severity int
	// Time is the record's observation time. It only drives idle-stream
	// eviction; zero means "unknown" and never evicts by age.
	Time time.Time
}

// Result is the verdict on one record or numeric point.
type Result struct {
	// Index is the 0-based position of the record in its stream.
	Index uint64
	// Score is the record's cost given the baseline, in bits per token for
	// text records (after the severity weighting) and in excess bits per
	// symbol for numeric points.
	Score float64
	// PValue is the conformal p-value of Score against the stream's recent
	// normal scores; 1 while calibrating.
	PValue float64
	// Anomaly is true when PValue < Config.PValue and the score exceeds the
	// calibrated median by at least Config.MinEffect.
	Anomaly bool
	// Calibrating is true while the stream's baseline or calibration set is
	// still too small to decide; no record is flagged for its text then
	// (a burst of error-severity records still is, see Reason).
	Calibrating bool
	// Median is the median of the stream's calibration scores.
	Median float64
	// Explanation is a short human sentence; set only when Anomaly is true.
	Explanation string
	// Reason says why the record was flagged (an attrs.Reason* value); set
	// with Anomaly by the numeric paths.
	Reason string
	// Observed, ExpectedLow and ExpectedHigh explain a numeric verdict: the
	// value seen and the range the baseline expected (for durations, in
	// seconds). Zero when the path has no range (text records).
	Observed, ExpectedLow, ExpectedHigh float64
	// Window is non-nil on the record that closed a window (every
	// Config.Hop records of a stream).
	Window *WindowResult

	// Kind is the record's template id (see FormatKind): the same canonical
	// shape has the same kind in every stream, restart and collector. Set on
	// every scored text record.
	Kind uint64
	// Episode is when the ongoing condition the record belongs to started
	// (record time), zero when there is none: set from the burst that
	// opened it, or the admission of a recurring anomalous kind, until the
	// kind's rate is back at its background.
	Episode time.Time
}

// WindowResult holds the window-level drift figures of one stream.
type WindowResult struct {
	// CompressionRatio is compressed/raw size of the window (lower is more
	// repetitive).
	CompressionRatio float64
	// BaselineCompressionRatio is the same figure for the baseline.
	BaselineCompressionRatio float64
	// NCD is the normalized compression distance between baseline and window.
	NCD float64
	// Entropy is the Shannon entropy of the window's bytes, in bits per byte.
	Entropy float64
	// PermutationPValue is the permutation-test p-value of NCD; 1 when the
	// test was not needed (NCD inside its calibrated range).
	PermutationPValue float64
	// Permutations is how many shuffles the sequential test ran.
	Permutations int
	// Drift is true when this window differs significantly from the baseline.
	Drift bool
	// Rebased is true on the window that confirmed a sustained drift and
	// replaced the baseline; it is reported once per regime change.
	Rebased bool
}

// Stats are detector-wide counters, cheap to read.
type Stats struct {
	ActiveStreams  int
	EvictedStreams uint64
	Records        uint64
	Anomalies      uint64
	DriftEvents    uint64
}
