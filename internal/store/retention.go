package store

import (
	"context"
	"fmt"
	"time"
)

// DeleteOlderThan deletes anomalies detected before cutoff, batchSize rows
// per statement (each its own short transaction), so that a large backlog
// never holds locks or bloats WAL in one go. It stops when a batch deletes
// fewer than batchSize rows or ctx ends, and returns the total deleted.
// Audit log entries keep their history (their anomaly_id becomes NULL).
func (s *Store) DeleteOlderThan(ctx context.Context, cutoff time.Time, batchSize int) (int64, error) {
	return s.DeleteOlderThanEach(ctx, cutoff, batchSize, nil)
}

// DeleteOlderThanEach is DeleteOlderThan calling each (when non-nil) with
// the number of rows every batch deleted, for progress logs and tests.
func (s *Store) DeleteOlderThanEach(ctx context.Context, cutoff time.Time, batchSize int, each func(deleted int64)) (int64, error) {
	if batchSize <= 0 {
		return 0, fmt.Errorf("store: retention batch size must be positive (got %d)", batchSize)
	}
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `
DELETE FROM anomalies WHERE id IN (
  SELECT id FROM anomalies WHERE detected_at < $1
  ORDER BY detected_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, cutoff, batchSize)
		if err != nil {
			return total, fmt.Errorf("store: retention delete: %w", err)
		}
		n := tag.RowsAffected()
		total += n
		if each != nil {
			each(n)
		}
		if n < int64(batchSize) {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}
