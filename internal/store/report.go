package store

import (
	"context"
	"errors"
	"fmt"
)

// ReportAnomaly stores one anomaly reported by a system that does not run
// the collector (POST /v1/anomalies). It goes through the exporter's own
// path, InsertAnomalies: the same signal check, sanitizing and redaction,
// ON CONFLICT (fingerprint) DO NOTHING and NOTIFY on commit. An empty
// Fingerprint is derived by ReportFingerprint, so a retried report is
// stored once. A new row gets an audit entry naming actor.
//
// It returns the row's id and whether this call created it (false: the
// fingerprint was already stored, id is that row). A row refused for its
// content comes back as its own error (ErrBadSignal, or a PostgreSQL data
// error; IsPermanent is true for both).
func (s *Store) ReportAnomaly(ctx context.Context, a Anomaly, actor string) (id int64, created bool, err error) {
	if a.AttributesJSON == "" {
		a.AttributesJSON = docOr("", a.Attributes)
	}
	if a.RecordJSON == "" {
		a.RecordJSON = docOr("", a.Record)
	}
	if a.Fingerprint == "" {
		a.Fingerprint = ReportFingerprint(&a)
	}
	n, err := s.InsertAnomalies(ctx, []Anomaly{a})
	var rej *RejectedRowsError
	if errors.As(err, &rej) && len(rej.Rows) == 1 {
		err = rej.Rows[0].Err
	}
	if err != nil {
		return 0, false, fmt.Errorf("store: report anomaly: %w", err)
	}
	if err := s.pool.QueryRow(ctx, "SELECT id FROM anomalies WHERE fingerprint = $1",
		SanitizeString(a.Fingerprint, MaxIndexedBytes)).Scan(&id); err != nil {
		return 0, false, fmt.Errorf("store: report anomaly: read back %s: %w", a.Fingerprint, err)
	}
	if n == 1 {
		if _, err := s.pool.Exec(ctx, `INSERT INTO audit_log (actor, action, anomaly_id, details)
 VALUES ($1, 'report', $2, jsonb_build_object('fingerprint', $3::text))`, actor, id, a.Fingerprint); err != nil {
			return id, true, fmt.Errorf("store: report anomaly %d: audit: %w", id, err)
		}
	}
	return id, n == 1, nil
}

// ReportFingerprint is the identity of a reported anomaly: Fingerprint over
// its signal, stream, observation time, trace and span ids, and its
// summary, attributes and record as stored (encoded and redacted). Two
// reports that differ in any of these are two anomalies; the same report
// sent twice is one. The "report:" prefix keeps reports out of the
// exporter's fingerprint space, so a report can never pre-empt (and so
// hide) a record the collector stores later. a.AttributesJSON and
// a.RecordJSON must be set.
func ReportFingerprint(a *Anomaly) string {
	id := make([]byte, 0, len(a.Summary)+len(a.AttributesJSON)+len(a.RecordJSON)+2)
	id = append(id, a.Summary...)
	id = append(id, 0)
	id = append(id, a.AttributesJSON...)
	id = append(id, 0)
	id = append(id, a.RecordJSON...)
	return "report:" + Fingerprint(a.Signal, a.Stream, a.ObservedAt.UTC(), a.TraceID, a.SpanID, id)
}
