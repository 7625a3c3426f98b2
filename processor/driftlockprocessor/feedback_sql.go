package driftlockprocessor

import (
	"context"
	"fmt"
	"time"

	"github.com/driftlock/driftlock/internal/store"
)

// feedback.dsn: false positives read straight from the anomaly store's
// PostgreSQL, keyset-paged on (updated_at, id) so a pull reads only what
// changed since the last one.

// feedbackOverlap re-reads rows updated this long before the cursor: a
// triage transaction that commits late can carry an updated_at older than
// rows already seen. Rows already learned are skipped by id.
const feedbackOverlap = time.Minute

// feedbackQuery reads the false positives of one signal changed since the
// cursor, oldest first. It relies on the anomalies table of
// internal/store/migrations (status, signal, stream, record, attributes,
// updated_at).
const feedbackQuery = `SELECT id, stream, record, attributes, updated_at
 FROM anomalies
 WHERE status = 'false_positive' AND signal = $1 AND (updated_at, id) > ($2, $3)
 ORDER BY updated_at, id
 LIMIT $4`

type sqlFeedback struct {
	dsn      string
	pageSize int
	store    *store.Store
	cursor   time.Time // newest updated_at seen
}

func newSQLFeedback(cfg FeedbackConfig) *sqlFeedback {
	return &sqlFeedback{dsn: string(cfg.DSN), pageSize: cfg.MaxRecords}
}

// start opens a lazy pool: the pipeline starts even while PostgreSQL is
// down.
func (q *sqlFeedback) start(context.Context) error {
	s, err := store.New(q.dsn)
	if err != nil {
		return fmt.Errorf("driftlock: feedback: %w", err)
	}
	q.store = s
	return nil
}

func (q *sqlFeedback) close() {
	if q.store != nil {
		q.store.Close()
		q.store = nil
	}
}

// pull reads pages in (updated_at, id) order from the cursor less
// feedbackOverlap.
func (q *sqlFeedback) pull(ctx context.Context, f *feedback) (int, error) {
	learned := 0
	pageTS, pageID := q.cursor.Add(-feedbackOverlap), int64(0)
	for {
		n, err := q.pullPage(ctx, f, &pageTS, &pageID, &learned)
		if err != nil {
			return learned, err
		}
		if n < q.pageSize {
			return learned, nil
		}
	}
}

// pullPage reads one page after (pageTS, pageID), advances the page key and
// the cursor, and returns the number of rows read.
func (q *sqlFeedback) pullPage(ctx context.Context, f *feedback, pageTS *time.Time, pageID *int64, learned *int) (int, error) {
	rows, err := q.store.Pool().Query(ctx, feedbackQuery, f.e.signal, *pageTS, *pageID, q.pageSize)
	if err != nil {
		return 0, fmt.Errorf("query false positives: %w", err)
	}
	defer rows.Close()
	n := 0
	s := getScratch()
	defer putScratch(s)
	for rows.Next() {
		n++
		var (
			id            int64
			stream        string
			record, attrs []byte
			updated       time.Time
		)
		if err := rows.Scan(&id, &stream, &record, &attrs, &updated); err != nil {
			return 0, fmt.Errorf("scan false positive: %w", err)
		}
		*pageTS, *pageID = updated, id
		if updated.After(q.cursor) {
			q.cursor = updated
		}
		if f.wanted(id, stream) && f.learn(s, id, stream, record, attrs) {
			*learned++
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read false positives: %w", err)
	}
	return n, nil
}
