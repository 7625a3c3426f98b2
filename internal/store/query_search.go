package store

import (
	"context"
	"fmt"
)

// EnsureSearchIndex creates, when it can, the trigram index that lets the
// API's q filter (summary ILIKE '%text%') avoid a table scan. pg_trgm ships
// with PostgreSQL's contrib and is a trusted extension, but a server
// without contrib or a role without CREATE must still work, so this is a
// best-effort step outside the migrations: it reports whether the index
// exists. CONCURRENTLY keeps the exporter's inserts flowing while a large
// table is indexed.
func (s *Store) EnsureSearchIndex(ctx context.Context) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = current_schema()
 AND tablename = 'anomalies' AND indexname = 'anomalies_summary_trgm')`).Scan(&ok)
	if err != nil || ok {
		return ok, err
	}
	if _, err := s.pool.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_trgm"); err != nil {
		return false, fmt.Errorf("store: pg_trgm unavailable, summary searches will scan: %w", err)
	}
	if _, err := s.pool.Exec(ctx, "CREATE INDEX CONCURRENTLY IF NOT EXISTS anomalies_summary_trgm ON anomalies USING gin (summary gin_trgm_ops)"); err != nil {
		// A failed concurrent build leaves an invalid index behind; drop it
		// so the next start retries.
		_, _ = s.pool.Exec(ctx, "DROP INDEX CONCURRENTLY IF EXISTS anomalies_summary_trgm")
		return false, fmt.Errorf("store: create summary search index: %w", err)
	}
	return true, nil
}
