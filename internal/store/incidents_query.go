package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/driftlock/driftlock/internal/attrs"
)

// The API's reads of incidents and their members, and people's triage of an
// incident. Every time here is observed time (see incidents.go).

// IncidentFilter narrows the incidents the API lists. Zero values mean "no
// filter".
type IncidentFilter struct {
	States  []string // any of IncidentOpen, IncidentClosed
	Triages []string // any of the Triage* values
	// Service keeps incidents with a member anomaly of this service (or
	// led by it).
	Service string
	// Since and Until keep incidents active in [Since, Until) in observed
	// time: opened before Until, and open or with evidence at or after
	// Since.
	Since time.Time
	Until time.Time
}

// ValidIncidentState reports whether s is open or closed.
func ValidIncidentState(s string) bool { return s == IncidentOpen || s == IncidentClosed }

// IncidentKeyset is the position after which a page of incidents starts, in
// the list order (opened_at DESC, id DESC).
type IncidentKeyset struct {
	OpenedAt time.Time
	ID       int64
}

func (f *IncidentFilter) where(p *args) string {
	conds := []string{"TRUE"}
	if len(f.States) > 0 {
		conds = append(conds, "i.state = ANY("+p.add(f.States)+"::text[])")
	}
	if len(f.Triages) > 0 {
		conds = append(conds, "i.triage = ANY("+p.add(f.Triages)+"::text[])")
	}
	if f.Service != "" {
		s := p.add(f.Service)
		conds = append(conds, "(i.leader = "+s+" OR EXISTS (SELECT 1 FROM anomalies m WHERE m.incident_id = i.id AND m.service = "+s+"))")
	}
	if !f.Until.IsZero() {
		conds = append(conds, "i.opened_at < "+p.add(f.Until))
	}
	if !f.Since.IsZero() {
		conds = append(conds, "(i.state = 'open' OR i.last_evidence_at >= "+p.add(f.Since)+")")
	}
	return strings.Join(conds, " AND ")
}

// ListIncidents returns up to limit incidents matching f, newest opened
// first (opened_at DESC, id DESC), after the keyset when given; more tells
// whether another page exists.
func (s *Store) ListIncidents(ctx context.Context, f IncidentFilter, after *IncidentKeyset, limit int) (items []Incident, more bool, err error) {
	var p args
	w := f.where(&p)
	if after != nil {
		w += " AND (i.opened_at, i.id) < (" + p.add(after.OpenedAt) + ", " + p.add(after.ID) + ")"
	}
	q := "SELECT " + incidentCols + " FROM incidents i WHERE " + w + " ORDER BY i.opened_at DESC, i.id DESC LIMIT " + p.add(limit+1)
	rows, err := s.pool.Query(ctx, q, p...)
	if err == nil {
		items, more, err = collectPage(rows, limit, func(r pgx.Rows, in *Incident) error { return scanIncident(r, in) })
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: list incidents: %w", err)
	}
	return items, more, nil
}

// GetIncident returns one incident.
func (s *Store) GetIncident(ctx context.Context, id int64) (*Incident, error) {
	var in Incident
	err := scanIncident(s.pool.QueryRow(ctx, "SELECT "+incidentCols+" FROM incidents i WHERE i.id = $1", id), &in)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrIncidentNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get incident %d: %w", id, err)
	}
	return &in, nil
}

// ChangeKey is a position in (updated_at, id) order.
type ChangeKey struct {
	UpdatedAt time.Time
	ID        int64
}

// IncidentsChangedSince returns incidents with (updated_at, id) > after in
// that order, at most limit: the live stream of incident changes.
func (s *Store) IncidentsChangedSince(ctx context.Context, after ChangeKey, limit int) ([]Incident, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+incidentCols+` FROM incidents i
 WHERE (i.updated_at, i.id) > ($1, $2) ORDER BY i.updated_at, i.id LIMIT $3`, after.UpdatedAt, after.ID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: incidents changed: %w", err)
	}
	defer rows.Close()
	var out []Incident
	for rows.Next() {
		var in Incident
		if err := scanIncident(rows, &in); err != nil {
			return nil, fmt.Errorf("store: incidents changed: %w", err)
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// MemberStats sums a set of member anomalies.
type MemberStats struct {
	First     time.Time `json:"first"` // observed time
	Last      time.Time `json:"last"`
	MinPValue float64   `json:"min_p_value"`
	MaxScore  float64   `json:"max_score"`
}

// SignalEvidence sums an incident's members of one signal.
type SignalEvidence struct {
	Signal    string `json:"signal"`
	Anomalies int64  `json:"anomalies"`
	Services  int64  `json:"services"`
	Kinds     int64  `json:"kinds"`
	MemberStats
}

// MemberGroup is the members of one service with the same signal, reason
// and kind (template): "41 records of this line", not 41 copies of it.
// Members without a kind group by their summary.
type MemberGroup struct {
	Service string `json:"service"`
	Signal  string `json:"signal"`
	Reason  string `json:"reason"`
	Kind    string `json:"kind"`
	Count   int64  `json:"count"`
	MemberStats
	// Example is the group's highest-scoring member.
	Example IncidentMember `json:"example"`
}

// IncidentMember is a member as the incident page shows it: the list
// columns plus what the detector attached to explain it (driftlock.kind,
// reason, peer service and, on numeric anomalies, the observed value and
// the expected range).
type IncidentMember struct {
	StoredAnomaly
	Kind         string   `json:"kind"`
	Reason       string   `json:"reason"`
	PeerService  string   `json:"peer_service"`
	Observed     *float64 `json:"observed"`
	ExpectedLow  *float64 `json:"expected_low"`
	ExpectedHigh *float64 `json:"expected_high"`
}

// explainCols reads the detector's explanation attributes; a value that is
// not a JSON number reads as NULL rather than failing the query.
const explainCols = `coalesce(a.attributes->>'` + attrs.Kind + `', ''), coalesce(a.attributes->>'` + attrs.Reason + `', ''),
 coalesce(a.attributes->>'` + attrs.PeerService + `', ''),
 CASE WHEN jsonb_typeof(a.attributes->'` + attrs.Observed + `') = 'number' THEN (a.attributes->>'` + attrs.Observed + `')::float8 END,
 CASE WHEN jsonb_typeof(a.attributes->'` + attrs.ExpectedLow + `') = 'number' THEN (a.attributes->>'` + attrs.ExpectedLow + `')::float8 END,
 CASE WHEN jsonb_typeof(a.attributes->'` + attrs.ExpectedHigh + `') = 'number' THEN (a.attributes->>'` + attrs.ExpectedHigh + `')::float8 END`

// groupKey is the SQL of a member's template: its kind, else its summary.
const groupKey = `coalesce(nullif(a.attributes->>'` + attrs.Kind + `', ''), 'summary:' || md5(a.summary))`

// IncidentDetail is what the incident page shows beyond the row: evidence
// per signal, a per-service timeline and the members grouped by template.
type IncidentDetail struct {
	Signals []SignalEvidence `json:"signals"`
	// Bucket is the timeline's bucket width; Timeline has one series per
	// service, most anomalies first.
	Bucket   string        `json:"bucket"`
	Timeline []Series      `json:"timeline"`
	Groups   []MemberGroup `json:"groups"`
	// GroupsTotal counts all groups; Groups holds the largest maxGroups.
	GroupsTotal int          `json:"groups_total"`
	History     []AuditEntry `json:"history"`
}

// TimelineBucket picks a bucket width that draws span in at most about 120
// buckets, from the API's fixed list.
func TimelineBucket(span time.Duration) (time.Duration, string) {
	for _, b := range []struct {
		d    time.Duration
		name string
	}{{time.Minute, "1m"}, {5 * time.Minute, "5m"}, {15 * time.Minute, "15m"}, {time.Hour, "1h"}, {6 * time.Hour, "6h"}} {
		if span/b.d <= 120 {
			return b.d, b.name
		}
	}
	return 24 * time.Hour, "1d"
}

// IncidentDetailOf computes the detail of incident in from its members, in
// one read-only snapshot. maxGroups caps Groups (largest first).
func (s *Store) IncidentDetailOf(ctx context.Context, in *Incident, maxGroups int) (*IncidentDetail, error) {
	end := in.LastEvidenceAt
	if in.ClosedAt != nil && in.ClosedAt.After(end) {
		end = *in.ClosedAt
	}
	bucket, name := TimelineBucket(end.Sub(in.OpenedAt))
	d := &IncidentDetail{Bucket: name, Signals: []SignalEvidence{}, Timeline: []Series{}, Groups: []MemberGroup{}}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT a.signal, count(*), count(DISTINCT a.service), count(DISTINCT `+groupKey+`),
 min(a.observed_at), max(a.observed_at), min(a.p_value), max(a.score)
 FROM anomalies a WHERE a.incident_id = $1 GROUP BY a.signal ORDER BY a.signal`, in.ID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var e SignalEvidence
			if err := rows.Scan(&e.Signal, &e.Anomalies, &e.Services, &e.Kinds, &e.First, &e.Last, &e.MinPValue, &e.MaxScore); err != nil {
				rows.Close()
				return err
			}
			d.Signals = append(d.Signals, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if d.Timeline, err = incidentTimeline(ctx, tx, in.ID, bucket); err != nil {
			return err
		}
		if d.Groups, d.GroupsTotal, err = incidentGroups(ctx, tx, in.ID, maxGroups); err != nil {
			return err
		}
		d.History, err = incidentAudit(ctx, tx, in.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: incident %d detail: %w", in.ID, err)
	}
	return d, nil
}

func incidentTimeline(ctx context.Context, tx pgx.Tx, id int64, bucket time.Duration) ([]Series, error) {
	rows, err := tx.Query(ctx, `SELECT a.service, date_bin($2::interval, a.observed_at, `+bucketOrigin+`), count(*)
 FROM anomalies a WHERE a.incident_id = $1 GROUP BY 1, 2`, id, bucket)
	if err != nil {
		return nil, err
	}
	return collectSeries(rows)
}

func incidentGroups(ctx context.Context, tx pgx.Tx, id int64, limit int) ([]MemberGroup, int, error) {
	// One pass groups the members; the example of each group is its
	// highest-scoring member (the first in the window's order).
	rows, err := tx.Query(ctx, `WITH g AS (
  SELECT a.service, a.signal, coalesce(a.attributes->>'`+attrs.Reason+`', '') AS reason, `+groupKey+` AS k,
   count(*) OVER w AS n, min(a.observed_at) OVER w AS first, max(a.observed_at) OVER w AS last,
   min(a.p_value) OVER w AS minp, max(a.score) OVER w AS maxs,
   row_number() OVER (PARTITION BY a.service, a.signal, coalesce(a.attributes->>'`+attrs.Reason+`', ''), `+groupKey+`
     ORDER BY a.score DESC, a.id) AS rn,
   a.id
  FROM anomalies a WHERE a.incident_id = $1
  WINDOW w AS (PARTITION BY a.service, a.signal, coalesce(a.attributes->>'`+attrs.Reason+`', ''), `+groupKey+`)
)
SELECT g.n, g.first, g.last, g.minp, g.maxs, count(*) OVER (), `+summaryCols+`, `+explainCols+`
 FROM g JOIN anomalies a ON a.id = g.id WHERE g.rn = 1
 ORDER BY g.n DESC, g.service, g.signal, g.k LIMIT $2`, id, limit)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []MemberGroup{}
	total := 0
	for rows.Next() {
		var g MemberGroup
		if err := rows.Scan(append([]any{&g.Count, &g.First, &g.Last, &g.MinPValue, &g.MaxScore, &total}, memberDst(&g.Example)...)...); err != nil {
			return nil, 0, err
		}
		g.Service, g.Signal, g.Reason, g.Kind = g.Example.Service, g.Example.Signal, g.Example.Reason, g.Example.Kind
		out = append(out, g)
	}
	return out, total, rows.Err()
}

// memberDst lists the scan targets of summaryCols + explainCols.
func memberDst(m *IncidentMember) []any {
	a := &m.StoredAnomaly
	return []any{&a.ID, &a.Fingerprint, &a.Signal, &a.Stream, &a.Service, &a.ObservedAt, &a.DetectedAt,
		&a.Score, &a.PValue, &a.NCD, &a.CompressionRatio, &a.Entropy, &a.Severity, &a.Status, &a.Note,
		&a.Summary, &a.Explanation, &a.TraceID, &a.SpanID, &a.Version, &a.UpdatedAt,
		&m.Kind, &m.Reason, &m.PeerService, &m.Observed, &m.ExpectedLow, &m.ExpectedHigh}
}

func incidentAudit(ctx context.Context, tx pgx.Tx, id int64) ([]AuditEntry, error) {
	rows, err := tx.Query(ctx, `SELECT id, at, actor, action, anomaly_id, details FROM audit_log
 WHERE details ? 'incident_id' AND (details->>'incident_id') = $1::bigint::text ORDER BY at DESC, id DESC LIMIT 100`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var d []byte
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.AnomalyID, &d); err != nil {
			return nil, err
		}
		e.Details = d
		out = append(out, e)
	}
	return out, rows.Err()
}

// MemberFilter narrows an incident's members.
type MemberFilter struct {
	Service string
	Signal  string
	// Kind is a MemberGroup's Kind ("" for any); members without a kind
	// are matched by Summary instead.
	Kind    string
	Summary string
}

// IncidentMembers returns up to limit members of incident id matching f in
// observed order (observed_at, id), after the key when given.
func (s *Store) IncidentMembers(ctx context.Context, id int64, f MemberFilter, after *ObservedKey, limit int) (items []IncidentMember, more bool, err error) {
	var p args
	w := "a.incident_id = " + p.add(id)
	if f.Service != "" {
		w += " AND a.service = " + p.add(f.Service)
	}
	if f.Signal != "" {
		w += " AND a.signal = " + p.add(f.Signal)
	}
	if f.Kind != "" {
		w += " AND a.attributes->>'" + attrs.Kind + "' = " + p.add(f.Kind)
	}
	if f.Summary != "" {
		w += " AND a.summary = " + p.add(f.Summary)
	}
	if after != nil {
		w += " AND (a.observed_at, a.id) > (" + p.add(after.ObservedAt) + ", " + p.add(after.ID) + ")"
	}
	q := "SELECT " + summaryCols + ", " + explainCols + " FROM anomalies a WHERE " + w +
		" ORDER BY a.observed_at, a.id LIMIT " + p.add(limit+1)
	rows, err := s.pool.Query(ctx, q, p...)
	if err == nil {
		items, more, err = collectPage(rows, limit, func(r pgx.Rows, m *IncidentMember) error { return r.Scan(memberDst(m)...) })
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: incident %d members: %w", id, err)
	}
	return items, more, nil
}

// IncidentTriage is people's change to an incident. Nil fields stay.
type IncidentTriage struct {
	Triage *string
	Note   *string
}

// TriageIncident applies u if the incident's version is still ifVersion:
// it sets the incident's triage and note, gives every member anomaly the
// same status (so that false_positive reaches the detector's feedback like
// a per-anomaly triage does), bumps the versions and writes one audit row
// naming actor, all in one transaction. It returns ErrIncidentNotFound or
// ErrVersionMismatch when it cannot, and the number of members changed.
func (s *Store) TriageIncident(ctx context.Context, id int64, ifVersion int, u IncidentTriage, actor string) (*Incident, int64, error) {
	if u.Triage != nil && !ValidStatus(*u.Triage) {
		return nil, 0, fmt.Errorf("store: invalid triage %q", *u.Triage)
	}
	var out Incident
	var changed int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var oldTriage, oldNote string
		var version int
		err := tx.QueryRow(ctx, "SELECT triage, note, version FROM incidents WHERE id = $1 FOR UPDATE", id).Scan(&oldTriage, &oldNote, &version)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrIncidentNotFound
		}
		if err != nil {
			return err
		}
		if version != ifVersion {
			return ErrVersionMismatch
		}
		err = scanIncident(tx.QueryRow(ctx, `UPDATE incidents i SET triage = coalesce($2, i.triage), note = coalesce($3, i.note),
 version = i.version + 1, updated_at = now() WHERE i.id = $1 RETURNING `+incidentCols, id, u.Triage, u.Note), &out)
		if err != nil {
			return err
		}
		if u.Triage != nil {
			tag, err := tx.Exec(ctx, `UPDATE anomalies SET status = $2, version = version + 1, updated_at = now()
 WHERE incident_id = $1 AND status <> $2`, id, *u.Triage)
			if err != nil {
				return err
			}
			changed = tag.RowsAffected()
		}
		details := map[string]any{"incident_id": id, "version": out.Version, "members_changed": changed}
		action := "incident_update"
		if u.Triage != nil && *u.Triage != oldTriage {
			action = "incident_triage"
			details["from"], details["to"] = oldTriage, out.Triage
		}
		if u.Note != nil && *u.Note != oldNote {
			details["note"] = out.Note
		}
		dj, _ := json.Marshal(details)
		_, err = tx.Exec(ctx, `INSERT INTO audit_log (actor, action, details) VALUES ($1, $2, $3::jsonb)`, actor, action, string(dj))
		return err
	})
	if err != nil {
		if errors.Is(err, ErrIncidentNotFound) || errors.Is(err, ErrVersionMismatch) {
			return nil, 0, err
		}
		return nil, 0, fmt.Errorf("store: triage incident %d: %w", id, err)
	}
	return &out, changed, nil
}
