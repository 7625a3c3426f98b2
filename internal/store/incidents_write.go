package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The correlator's side of the incidents tables: one active correlator per
// database (a session advisory lock), which does all its writes on the
// connection that holds the lock, so that a correlator that lost its lock
// (its connection died) cannot write after another one took over.

// correlatorLockClass is the first key of the correlator's two-key
// advisory lock (ASCII "dlco"); the second is hashtext(name).
const correlatorLockClass int32 = 0x646c636f

// CorrelatorSession is the active correlator's hold on the database.
type CorrelatorSession struct {
	conn *pgxpool.Conn
	name string
}

// TryLockCorrelator takes the correlator lock named name without waiting.
// It returns nil (and no error) when another session holds it.
func (s *Store) TryLockCorrelator(ctx context.Context, name string) (*CorrelatorSession, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: correlator lock: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, hashtext($2))", correlatorLockClass, name).Scan(&ok); err != nil {
		conn.Release()
		return nil, fmt.Errorf("store: correlator lock: %w", err)
	}
	if !ok {
		conn.Release()
		return nil, nil
	}
	if _, err := conn.Exec(ctx, "INSERT INTO correlator_state (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", name); err != nil {
		cs := &CorrelatorSession{conn: conn, name: name}
		cs.Release()
		return nil, fmt.Errorf("store: correlator state: %w", err)
	}
	return &CorrelatorSession{conn: conn, name: name}, nil
}

// Release gives the lock up. When the unlock cannot be confirmed the
// connection is closed, which ends the session and so the lock.
func (cs *CorrelatorSession) Release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ok bool
	if err := cs.conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1, hashtext($2))", correlatorLockClass, cs.name).Scan(&ok); err != nil || !ok {
		_ = cs.conn.Hijack().Close(ctx)
		return
	}
	cs.conn.Release()
}

// Alive checks that the session (and so the lock) still exists.
func (cs *CorrelatorSession) Alive(ctx context.Context) error {
	var held bool
	err := cs.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
 AND pid = pg_backend_pid() AND granted AND classid = $1::int::oid AND objid = hashtext($2)::oid AND objsubid = 2)`,
		correlatorLockClass, cs.name).Scan(&held)
	if err != nil {
		return fmt.Errorf("store: correlator session: %w", err)
	}
	if !held {
		return errors.New("store: correlator lock no longer held")
	}
	return nil
}

// CorrelatorPosition is where the active correlator stopped.
type CorrelatorPosition struct {
	// LastID: every anomaly with id <= LastID has been read.
	LastID int64
	// Watermark is the correlator's clock (observed time) at LastID; zero
	// before the first save.
	Watermark time.Time
	// RebuildFrom, when not zero, asks for the incidents from that
	// observed time on to be recomputed (driftlock incidents rebuild).
	RebuildFrom time.Time
	// Snapshot is the correlator's state at LastID (nil before the first
	// save).
	Snapshot []byte
}

// Position reads the saved position.
func (cs *CorrelatorSession) Position(ctx context.Context) (CorrelatorPosition, error) {
	return correlatorPosition(ctx, cs.conn, cs.name)
}

// CorrelatorPosition reads a correlator's saved position without the lock
// (zero when it never ran).
func (s *Store) CorrelatorPosition(ctx context.Context, name string) (CorrelatorPosition, error) {
	return correlatorPosition(ctx, s.pool, name)
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func correlatorPosition(ctx context.Context, q queryRower, name string) (CorrelatorPosition, error) {
	var p CorrelatorPosition
	var wm, rb *time.Time
	err := q.QueryRow(ctx, "SELECT last_id, watermark, rebuild_from, snapshot FROM correlator_state WHERE name = $1", name).Scan(&p.LastID, &wm, &rb, &p.Snapshot)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("store: correlator position: %w", err)
	}
	if wm != nil {
		p.Watermark = wm.UTC()
	}
	if rb != nil {
		p.RebuildFrom = rb.UTC()
	}
	return p, nil
}

// RequestRebuild asks the active correlator (or the next one to start) to
// recompute the incidents from the observed time from on (zero: from the
// first anomaly). An earlier pending request wins (it covers this one).
func (s *Store) RequestRebuild(ctx context.Context, name string, from time.Time) error {
	if from.IsZero() || from.Before(RebuildAll) {
		from = RebuildAll
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO correlator_state (name, rebuild_from) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET rebuild_from = least(coalesce(correlator_state.rebuild_from, EXCLUDED.rebuild_from), EXCLUDED.rebuild_from), updated_at = now()`,
		name, from.UTC())
	if err != nil {
		return fmt.Errorf("store: request rebuild: %w", err)
	}
	return nil
}

// RebuildAll is the rebuild_from of a request to recompute everything.
var RebuildAll = time.Unix(0, 0).UTC()

// Save runs fn in one transaction on the locked connection: incidents,
// membership, notifications and the position commit together or not at all.
func (cs *CorrelatorSession) Save(ctx context.Context, fn func(tx *IncidentTx) error) error {
	err := pgx.BeginFunc(ctx, cs.conn, func(tx pgx.Tx) error {
		return fn(&IncidentTx{tx: tx, name: cs.name})
	})
	if err != nil {
		return fmt.Errorf("store: save incidents: %w", err)
	}
	return nil
}

// IncidentTx is the correlator's write transaction.
type IncidentTx struct {
	tx   pgx.Tx
	name string
}

// Upsert stores the incident under its Key: a new row, or the
// correlator's fields of the existing one (triage and note, people's
// fields, stay; the version, which the API's ETags use, is bumped). It
// fills in ID, Triage, Note, Version and the timestamps.
func (t *IncidentTx) Upsert(ctx context.Context, in *Incident) error {
	if in.Key == "" {
		return errors.New("upsert incident: empty key")
	}
	err := t.tx.QueryRow(ctx, `INSERT INTO incidents AS i (key, state, title, leader, services, signals,
 severity, score, size, opened_at, last_evidence_at, closed_at, detail, revision)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (key) DO UPDATE SET state = EXCLUDED.state, title = EXCLUDED.title, leader = EXCLUDED.leader,
 services = EXCLUDED.services, signals = EXCLUDED.signals, severity = EXCLUDED.severity,
 score = EXCLUDED.score, size = EXCLUDED.size, opened_at = EXCLUDED.opened_at,
 last_evidence_at = EXCLUDED.last_evidence_at, closed_at = EXCLUDED.closed_at, detail = EXCLUDED.detail,
 revision = EXCLUDED.revision, version = i.version + 1, updated_at = now()
RETURNING i.id, i.triage, i.note, i.version, i.created_at, i.updated_at`,
		SanitizeString(in.Key, MaxIndexedBytes), in.State, SanitizeString(in.Title, MaxTextBytes),
		SanitizeString(in.Leader, MaxIndexedBytes), jsonOr(in.Services, "[]"), nonNil(in.Signals),
		in.Severity, in.Score, in.Size, in.OpenedAt, in.LastEvidenceAt, in.ClosedAt,
		jsonOr(in.Detail, "{}"), max(in.Revision, 1),
	).Scan(&in.ID, &in.Triage, &in.Note, &in.Version, &in.CreatedAt, &in.UpdatedAt)
	if err != nil {
		return fmt.Errorf("upsert incident %s: %w", in.Key, err)
	}
	return nil
}

// IncidentByKey reads an incident by its correlator key inside the
// transaction; ErrIncidentNotFound when there is none.
func (t *IncidentTx) IncidentByKey(ctx context.Context, key string) (*Incident, error) {
	var in Incident
	err := scanIncident(t.tx.QueryRow(ctx, "SELECT "+incidentCols+" FROM incidents i WHERE i.key = $1", key), &in)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrIncidentNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("incident %s: %w", key, err)
	}
	return &in, nil
}

// Delete removes an incident a rebuild no longer produces; its members
// become unassigned and its pending notifications keep going out.
func (t *IncidentTx) Delete(ctx context.Context, id int64) error {
	if _, err := t.tx.Exec(ctx, "DELETE FROM incidents WHERE id = $1", id); err != nil {
		return fmt.Errorf("delete incident %d: %w", id, err)
	}
	return nil
}

// SetMembers makes the anomalies ids members of incident id (0: of none).
// Rows already so are not rewritten.
func (t *IncidentTx) SetMembers(ctx context.Context, id int64, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	var ref *int64
	if id != 0 {
		ref = &id
	}
	if _, err := t.tx.Exec(ctx, "UPDATE anomalies SET incident_id = $1 WHERE id = ANY($2) AND incident_id IS DISTINCT FROM $1", ref, ids); err != nil {
		return fmt.Errorf("set members of incident %d: %w", id, err)
	}
	return nil
}

// Enqueue adds notifications; one whose (receiver, idempotency key) is
// already queued is skipped, so replaying a change never sends it twice.
func (t *IncidentTx) Enqueue(ctx context.Context, items []OutboxItem) error {
	for _, it := range items {
		var incident *int64
		if it.IncidentID != 0 {
			incident = &it.IncidentID
		}
		if _, err := t.tx.Exec(ctx, `INSERT INTO notification_outbox (receiver, incident_id, event, idempotency_key, payload)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT (receiver, idempotency_key) DO NOTHING`,
			it.Receiver, incident, it.Event, it.IdempotencyKey, string(it.Payload)); err != nil {
			return fmt.Errorf("enqueue notification: %w", err)
		}
	}
	return nil
}

// SetPosition records how far the correlator got and its state there
// (snapshot: opaque bytes; nil keeps the saved one).
func (t *IncidentTx) SetPosition(ctx context.Context, lastID int64, watermark time.Time, snapshot []byte) error {
	var wm *time.Time
	if !watermark.IsZero() {
		w := watermark.UTC()
		wm = &w
	}
	if _, err := t.tx.Exec(ctx, `UPDATE correlator_state SET last_id = $2, watermark = $3,
 snapshot = coalesce($4::bytea, snapshot), updated_at = now() WHERE name = $1`,
		t.name, lastID, wm, snapshot); err != nil {
		return fmt.Errorf("save correlator position: %w", err)
	}
	return nil
}

// ClearRebuild drops the rebuild request the correlator just served, unless
// an earlier one came in meanwhile.
func (t *IncidentTx) ClearRebuild(ctx context.Context, served time.Time) error {
	if _, err := t.tx.Exec(ctx, "UPDATE correlator_state SET rebuild_from = NULL WHERE name = $1 AND rebuild_from >= $2",
		t.name, served.UTC()); err != nil {
		return fmt.Errorf("clear rebuild request: %w", err)
	}
	return nil
}

func jsonOr(b []byte, empty string) string {
	if len(b) == 0 {
		return empty
	}
	return string(b)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
