package store

import (
	"context"
	"fmt"

	"github.com/driftlock/driftlock/internal/triage"
)

// falsePositivesQuery reads the false positives of one signal triaged
// after a key, oldest first (keyset paging on (updated_at, id)).
const falsePositivesQuery = `SELECT id, stream, record, attributes, updated_at
 FROM anomalies
 WHERE status = $1 AND signal = $2 AND (updated_at, id) > ($3, $4)
 ORDER BY updated_at, id
 LIMIT $5`

var _ triage.Source = (*Store)(nil)

// FalsePositives implements triage.Source: the records the processor's
// feedback teaches its detector.
func (s *Store) FalsePositives(ctx context.Context, signal string, after triage.Key, limit int) ([]triage.FalsePositive, error) {
	rows, err := s.pool.Query(ctx, falsePositivesQuery, StatusFalsePositive, signal, after.UpdatedAt, after.ID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: query false positives: %w", err)
	}
	defer rows.Close()
	var out []triage.FalsePositive
	for rows.Next() {
		var fp triage.FalsePositive
		if err := rows.Scan(&fp.ID, &fp.Stream, &fp.Record, &fp.Attributes, &fp.UpdatedAt); err != nil {
			return nil, fmt.Errorf("store: scan false positive: %w", err)
		}
		out = append(out, fp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read false positives: %w", err)
	}
	return out, nil
}
