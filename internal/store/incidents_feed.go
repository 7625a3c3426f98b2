package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The correlator's reads: new anomalies in id order (gap-free, like the live
// stream), anomalies in observed-time order (warm-up, rebuilds, late rows),
// and the incidents a recomputation must reconcile with.

// MemberAnomaly is an anomaly as the correlator reads it: the list columns,
// the attributes (kind, reason, peer service...) and its incident, if any.
type MemberAnomaly struct {
	StoredAnomaly
	IncidentID int64 // 0: none
}

const memberCols = summaryCols + ", a.attributes, coalesce(a.incident_id, 0)"

func collectMembers(rows pgx.Rows, err error) ([]MemberAnomaly, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []MemberAnomaly
	for rows.Next() {
		var m MemberAnomaly
		var attrs []byte
		if err := scanSummary(rows, &m.StoredAnomaly, &attrs, &m.IncidentID); err != nil {
			return nil, err
		}
		m.Attributes = attrs
		out = append(out, m)
	}
	return out, rows.Err()
}

// MembersAfter is AnomaliesAfter for the correlator: anomalies with
// id > after in id order, at most limit, with the transactions in progress
// in the same snapshot (see AnomaliesAfter for how they settle id gaps).
func (s *Store) MembersAfter(ctx context.Context, after int64, limit int) ([]MemberAnomaly, []int64, error) {
	var out []MemberAnomaly
	var xip []int64
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, "SELECT coalesce(array_agg(x::text::bigint), '{}') FROM pg_snapshot_xip(pg_current_snapshot()) AS x").Scan(&xip); err != nil {
			return err
		}
		var err error
		out, err = collectMembers(tx.Query(ctx, "SELECT "+memberCols+" FROM anomalies a WHERE a.id > $1 ORDER BY a.id LIMIT $2", after, limit))
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: anomalies after %d: %w", after, err)
	}
	return out, xip, nil
}

// ObservedKey is a position in (observed_at, id) order.
type ObservedKey struct {
	ObservedAt time.Time
	ID         int64
}

// MembersObserved returns anomalies with observed_at >= from and
// id <= upToID in (observed_at, id) order, after the key after (nil: from
// the start), at most limit.
func (s *Store) MembersObserved(ctx context.Context, from time.Time, upToID int64, after *ObservedKey, limit int) ([]MemberAnomaly, error) {
	q := "SELECT " + memberCols + " FROM anomalies a WHERE a.observed_at >= $1 AND a.id <= $2"
	args := []any{from.UTC(), upToID}
	if after != nil {
		q += " AND (a.observed_at, a.id) > ($4, $5)"
		args = append(args, limit, after.ObservedAt.UTC(), after.ID)
	} else {
		args = append(args, limit)
	}
	q += " ORDER BY a.observed_at, a.id LIMIT $3"
	out, err := collectMembers(s.pool.Query(ctx, q, args...))
	if err != nil {
		return nil, fmt.Errorf("store: anomalies observed since %s: %w", from.UTC().Format(time.RFC3339), err)
	}
	return out, nil
}

// IncidentsActiveSince returns the incidents open or closed at or after
// from (observed time), oldest first: the ones a recomputation from that
// time may change.
func (s *Store) IncidentsActiveSince(ctx context.Context, from time.Time) ([]Incident, error) {
	out, err := s.queryIncidents(ctx, "SELECT "+incidentCols+" FROM incidents i WHERE i.closed_at IS NULL OR i.closed_at >= $1 OR i.last_evidence_at >= $1 ORDER BY i.opened_at, i.id", from.UTC())
	if err != nil {
		return nil, fmt.Errorf("store: incidents since %s: %w", from.UTC().Format(time.RFC3339), err)
	}
	return out, nil
}

// OpenIncidents returns the incidents in state open, oldest first (the
// Alertmanager refresh re-sends them before their endsAt).
func (s *Store) OpenIncidents(ctx context.Context) ([]Incident, error) {
	out, err := s.queryIncidents(ctx, "SELECT "+incidentCols+" FROM incidents i WHERE i.state = 'open' ORDER BY i.opened_at, i.id")
	if err != nil {
		return nil, fmt.Errorf("store: open incidents: %w", err)
	}
	return out, nil
}

// queryIncidents runs a query selecting incidentCols and scans every row.
func (s *Store) queryIncidents(ctx context.Context, sql string, args ...any) ([]Incident, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Incident
	for rows.Next() {
		var in Incident
		if err := scanIncident(rows, &in); err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}
