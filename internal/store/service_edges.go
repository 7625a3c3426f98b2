package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// ServiceEdge is one row of service_edges: calls from Caller to Callee
// seen in spans, with the observed (span) times of the first and last.
// UpdatedAt is the database time of the row's last write.
type ServiceEdge struct {
	Caller    string    `json:"caller"`
	Callee    string    `json:"callee"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Calls     int64     `json:"calls"`
	UpdatedAt time.Time `json:"updated_at"`
}

// UpsertServiceEdges adds a period's edges to the stored graph: a new
// caller -> callee pair is inserted, a known one keeps the earlier
// first_seen and the later last_seen and adds the calls. Names are held to
// MaxIndexedBytes; an edge without a caller or callee, or from a service
// to itself, is ignored, and edges of one pair are combined first. One
// statement, in caller/callee order, so that collectors writing at the
// same time lock rows in the same order.
func (s *Store) UpsertServiceEdges(ctx context.Context, edges []ServiceEdge) error {
	rows := make([]ServiceEdge, 0, len(edges))
	for _, e := range edges {
		e.Caller, e.Callee = SanitizeString(e.Caller, MaxIndexedBytes), SanitizeString(e.Callee, MaxIndexedBytes)
		if e.Caller == "" || e.Callee == "" || e.Caller == e.Callee || e.FirstSeen.IsZero() {
			continue
		}
		if e.LastSeen.Before(e.FirstSeen) {
			e.LastSeen = e.FirstSeen
		}
		rows = append(rows, e)
	}
	slices.SortFunc(rows, func(a, b ServiceEdge) int {
		return cmp.Or(cmp.Compare(a.Caller, b.Caller), cmp.Compare(a.Callee, b.Callee))
	})
	var callers, callees []string
	var firsts, lasts []time.Time
	var calls []int64
	for _, e := range rows {
		if n := len(callers) - 1; n >= 0 && callers[n] == e.Caller && callees[n] == e.Callee {
			firsts[n], lasts[n], calls[n] = minTime(firsts[n], e.FirstSeen), maxTime(lasts[n], e.LastSeen), calls[n]+max(e.Calls, 0)
			continue
		}
		callers, callees = append(callers, e.Caller), append(callees, e.Callee)
		firsts, lasts, calls = append(firsts, e.FirstSeen), append(lasts, e.LastSeen), append(calls, max(e.Calls, 0))
	}
	if len(callers) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO service_edges AS e (caller, callee, first_seen, last_seen, calls)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::bigint[])
ON CONFLICT (caller, callee) DO UPDATE SET
  first_seen = LEAST(e.first_seen, EXCLUDED.first_seen),
  last_seen  = GREATEST(e.last_seen, EXCLUDED.last_seen),
  calls      = e.calls + EXCLUDED.calls,
  updated_at = now()`, callers, callees, firsts, lasts, calls)
	if err != nil {
		return fmt.Errorf("store: upsert %d service edges: %w", len(callers), err)
	}
	return nil
}

// ServiceEdgesSince returns the edges written after since (database time;
// zero: all of them), ordered by caller and callee.
func (s *Store) ServiceEdgesSince(ctx context.Context, since time.Time) ([]ServiceEdge, error) {
	rows, err := s.pool.Query(ctx, `
SELECT caller, callee, first_seen, last_seen, calls, updated_at FROM service_edges
 WHERE $1::timestamptz IS NULL OR updated_at > $1
 ORDER BY caller, callee`, nullTime(since))
	if err != nil {
		return nil, fmt.Errorf("store: service edges: %w", err)
	}
	defer rows.Close()
	var out []ServiceEdge
	for rows.Next() {
		var e ServiceEdge
		if err := rows.Scan(&e.Caller, &e.Callee, &e.FirstSeen, &e.LastSeen, &e.Calls, &e.UpdatedAt); err != nil {
			return nil, fmt.Errorf("store: service edges: %w", err)
		}
		e.FirstSeen, e.LastSeen, e.UpdatedAt = e.FirstSeen.UTC(), e.LastSeen.UTC(), e.UpdatedAt.UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: service edges: %w", err)
	}
	return out, nil
}

// DeleteServiceEdgesBefore deletes the edges whose last call was observed
// before cutoff (the exporter's retention).
func (s *Store) DeleteServiceEdgesBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM service_edges WHERE last_seen < $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("store: delete service edges: %w", err)
	}
	return tag.RowsAffected(), nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
