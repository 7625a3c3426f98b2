// Package triage is the contract between the driftlock processor and a
// source of triage feedback read straight from the anomaly store: the
// records people marked false_positive, paged by when they were triaged.
//
// The processor depends on this package only, so it links no database
// driver; the PostgreSQL side (internal/store) implements the query and
// the driftlock_feedback extension (extension/driftlockfeedbackextension)
// offers it to the processor through the Collector's host, the way storage
// extensions offer storage.
package triage

import (
	"context"
	"time"
)

// StatusFalsePositive is the anomaly status a person sets to say "this was
// normal": the records feedback teaches.
const StatusFalsePositive = "false_positive"

// Key is a position in the (updated_at, id) order of triaged anomalies.
type Key struct {
	UpdatedAt time.Time
	ID        int64
}

// FalsePositive is one anomaly marked false_positive, with the record and
// attributes documents the exporter stored (internal/recorddoc).
type FalsePositive struct {
	ID         int64
	Stream     string
	Record     []byte
	Attributes []byte
	UpdatedAt  time.Time
}

// Source reads false positives.
type Source interface {
	// FalsePositives returns up to limit anomalies of signal (logs,
	// traces) marked false_positive whose (updated_at, id) comes after
	// key, in that order. A short page means there are no more.
	FalsePositives(ctx context.Context, signal string, after Key, limit int) ([]FalsePositive, error)
}
