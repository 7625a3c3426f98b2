package cbad

import (
	"io"
	"sync"
	"time"
)

// Detector owns many streams, each keyed by a string, and scores records in
// each stream's order. It is safe for concurrent use; records of one stream
// are scored one at a time in the order the calls arrive.
//
// NOTE: this is the interface contract; the scoring internals are being
// filled in (see stream.go).
type Detector struct {
	cfg Config
	mu  sync.Mutex
}

// New validates cfg and returns a Detector.
func New(cfg Config) (*Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Detector{cfg: cfg}, nil
}

// Config returns the detector's effective configuration.
func (d *Detector) Config() Config { return d.cfg }

// Score scores one text record of stream key and, unless it is anomalous,
// adds it to the stream's baseline.
func (d *Detector) Score(key string, rec Record) Result {
	return Result{PValue: 1, Calibrating: true}
}

// ScoreValue scores one numeric point of stream key (a metric series).
func (d *Detector) ScoreValue(key string, t time.Time, v float64) Result {
	return Result{PValue: 1, Calibrating: true}
}

// Learn adds a record to a stream's baseline without scoring it: the triage
// feedback path for records a person marked as false positives.
func (d *Detector) Learn(key string, rec Record) {}

// Stats returns detector-wide counters.
func (d *Detector) Stats() Stats { return Stats{} }

// Snapshot writes every stream's state (baseline, model, calibration set)
// so that Restore can resume without a new warm-up.
func (d *Detector) Snapshot(w io.Writer) error { return nil }

// Restore replaces the detector's streams with a snapshot written by Snapshot.
func (d *Detector) Restore(r io.Reader) error { return nil }
