package driftlockprocessor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/driftlock/driftlock/internal/triage"
)

// feedback.source: false positives read straight from the anomaly store
// through an extension that implements triage.Source (driftlock_feedback,
// which holds the PostgreSQL connection), keyset-paged on (updated_at, id)
// so a pull reads only what changed since the last one. The processor
// itself links no database driver.

// feedbackOverlap re-reads rows updated this long before the cursor: a
// triage transaction that commits late can carry an updated_at older than
// rows already seen. Rows already learned are skipped by id.
const feedbackOverlap = time.Minute

var (
	errSourceNotFound = errors.New("extension not found (add it under extensions: and service::extensions)")
	errNotSource      = errors.New("extension does not read false positives (use a driftlock_feedback extension)")
)

type storeFeedback struct {
	id       component.ID
	pageSize int
	src      triage.Source
	cursor   time.Time // newest updated_at seen
}

func newStoreFeedback(cfg FeedbackConfig) *storeFeedback {
	return &storeFeedback{id: *cfg.Source, pageSize: cfg.MaxRecords}
}

// start finds the extension; it connects lazily, so the pipeline starts
// while the store is down.
func (q *storeFeedback) start(_ context.Context, host component.Host) error {
	ext, ok := host.GetExtensions()[q.id]
	if !ok {
		return fmt.Errorf("driftlock: feedback.source %q: %w", q.id, errSourceNotFound)
	}
	src, ok := ext.(triage.Source)
	if !ok {
		return fmt.Errorf("driftlock: feedback.source %q: %w", q.id, errNotSource)
	}
	q.src = src
	return nil
}

// close leaves the connection to the extension, which may serve others.
func (q *storeFeedback) close() { q.src = nil }

// pull reads pages in (updated_at, id) order from the cursor less
// feedbackOverlap.
func (q *storeFeedback) pull(ctx context.Context, f *feedback) (int, error) {
	s := getScratch()
	defer putScratch(s)
	learned := 0
	page := triage.Key{UpdatedAt: q.cursor.Add(-feedbackOverlap)}
	for {
		items, err := q.src.FalsePositives(ctx, f.e.signal, page, q.pageSize)
		if err != nil {
			return learned, fmt.Errorf("read false positives: %w", err)
		}
		for _, it := range items {
			page = triage.Key{UpdatedAt: it.UpdatedAt, ID: it.ID}
			if it.UpdatedAt.After(q.cursor) {
				q.cursor = it.UpdatedAt
			}
			if f.wanted(it.ID, it.Stream) && f.learn(s, it.ID, it.Stream, it.Record, it.Attributes) {
				learned++
			}
		}
		if len(items) < q.pageSize {
			return learned, nil
		}
	}
}
