package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// The COPY variant of the batched insert: COPY the batch into a
// session-local staging table, then INSERT ... SELECT ... ON CONFLICT
// DO NOTHING from it. InsertAnomalies uses the multi-row INSERT over
// unnest() arrays instead, which measured as fast or faster at batches of
// 1,000 (see BenchmarkInsert); this one is kept for that comparison.

const stagingDDL = `CREATE TEMP TABLE IF NOT EXISTS anomalies_staging (
  fingerprint text, signal text, stream text, service text, observed_at timestamptz,
  detected_at timestamptz, score float8, p_value float8, ncd float8, compression_ratio float8,
  entropy float8, severity text, summary text, explanation text, trace_id text, span_id text,
  attributes text, resource text, record text, detector_config_hash text
) ON COMMIT DELETE ROWS`

var stagingColumns = []string{"fingerprint", "signal", "stream", "service", "observed_at",
	"detected_at", "score", "p_value", "ncd", "compression_ratio", "entropy", "severity",
	"summary", "explanation", "trace_id", "span_id", "attributes", "resource", "record",
	"detector_config_hash"}

const stagingInsertSQL = `
WITH ins AS (
  INSERT INTO anomalies (fingerprint, signal, stream, service, observed_at, detected_at,
    score, p_value, ncd, compression_ratio, entropy, severity, summary, explanation,
    trace_id, span_id, attributes, resource, record, detector_config_hash)
  SELECT fingerprint, signal, stream, service, observed_at, detected_at, score, p_value, ncd,
    compression_ratio, entropy, severity, summary, explanation, trace_id, span_id,
    attributes::jsonb, resource::jsonb, record::jsonb, NULLIF(detector_config_hash, '')
  FROM anomalies_staging
  ON CONFLICT (fingerprint) DO NOTHING
  RETURNING id
), agg AS (SELECT count(*) AS n, coalesce(max(id), 0) AS m FROM ins)
SELECT n, m, CASE WHEN n > 0 THEN pg_notify('` + NotifyChannel + `', m::text)::text END FROM agg`

// insertAnomaliesCopy stores rows through COPY and a staging table; same
// contract as InsertAnomalies for valid rows (no per-row isolation).
func (s *Store) insertAnomaliesCopy(ctx context.Context, rows []Anomaly) (int, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	now := nowUTC()
	cols := newColumns(len(rows))
	for i := range rows {
		cols.add(&rows[i], now)
	}
	var n, maxID int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, stagingDDL); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", insertLockKey); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"anomalies_staging"}, stagingColumns, cols.copySource()); err != nil {
			return err
		}
		var ignored *string
		return tx.QueryRow(ctx, stagingInsertSQL).Scan(&n, &maxID, &ignored)
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

func (c *columns) copySource() pgx.CopyFromSource {
	i := -1
	return pgx.CopyFromFunc(func() ([]any, error) {
		i++
		if i >= len(c.fingerprint) {
			return nil, nil
		}
		return []any{c.fingerprint[i], c.signal[i], c.stream[i], c.service[i], c.observedAt[i],
			c.detectedAt[i], c.score[i], c.pValue[i], c.ncd[i], c.ratio[i], c.entropy[i],
			c.severity[i], c.summary[i], c.explanation[i], c.trace[i], c.span[i],
			c.attributes[i], c.resource[i], c.record[i], c.hash[i]}, nil
	})
}
