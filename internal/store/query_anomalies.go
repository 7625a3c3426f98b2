package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Statuses an anomaly moves through; the CHECK constraint on
// anomalies.status allows exactly these.
const (
	StatusOpen          = "open"
	StatusAcknowledged  = "acknowledged"
	StatusResolved      = "resolved"
	StatusFalsePositive = "false_positive"
)

// ValidStatus reports whether s is one of the four statuses.
func ValidStatus(s string) bool {
	switch s {
	case StatusOpen, StatusAcknowledged, StatusResolved, StatusFalsePositive:
		return true
	}
	return false
}

// ValidSignal reports whether s is one of the three signals.
func ValidSignal(s string) bool { return validSignal(s) == nil }

// Sentinel errors of the read/triage side.
var (
	ErrNotFound        = errors.New("store: anomaly not found")
	ErrVersionMismatch = errors.New("store: anomaly was changed by someone else (version mismatch)")
)

// AnomalyFilter narrows the anomalies the API lists, exports, counts and
// streams. Zero values mean "no filter". The same filter is evaluated in SQL
// (Where) and in Go (Match, for the live stream), and the two must agree.
type AnomalyFilter struct {
	Signals   []string // any of
	Statuses  []string // any of
	Stream    string   // exact
	Service   string   // exact
	MinScore  *float64 // score >= MinScore
	MaxPValue *float64 // p_value <= MaxPValue
	// Since and Until bound the observed time (the record's own time,
	// Since <= observed_at < Until), not when the row was written: a replayed
	// day or a drained backlog keeps its own times.
	Since time.Time
	Until time.Time
	// UpdatedSince keeps anomalies created or changed (triage, notes) at
	// or after it: polling by triage time.
	UpdatedSince time.Time
	Q            string // case-insensitive substring of summary
}

// Keyset is the position after which a page starts, in the list order
// (observed_at DESC, id DESC).
type Keyset struct {
	ObservedAt time.Time
	ID         int64
}

// StoredAnomaly is an anomaly as the API reads it. Record, Resource,
// Attributes and Detector are only filled by GetAnomaly and by exports.
type StoredAnomaly struct {
	ID               int64           `json:"id"`
	Fingerprint      string          `json:"fingerprint"`
	Signal           string          `json:"signal"`
	Stream           string          `json:"stream"`
	Service          string          `json:"service"`
	ObservedAt       time.Time       `json:"observed_at"`
	DetectedAt       time.Time       `json:"detected_at"`
	Score            float64         `json:"score"`
	PValue           float64         `json:"p_value"`
	NCD              *float64        `json:"ncd"`
	CompressionRatio *float64        `json:"compression_ratio"`
	Entropy          *float64        `json:"entropy"`
	Severity         string          `json:"severity"`
	Status           string          `json:"status"`
	Note             string          `json:"note"`
	Summary          string          `json:"summary"`
	Explanation      string          `json:"explanation"`
	TraceID          string          `json:"trace_id"`
	SpanID           string          `json:"span_id"`
	Version          int             `json:"version"`
	UpdatedAt        time.Time       `json:"updated_at"`
	Attributes       json.RawMessage `json:"attributes,omitempty"`
	Resource         json.RawMessage `json:"resource,omitempty"`
	Record           json.RawMessage `json:"record,omitempty"`
	Detector         *DetectorInfo   `json:"detector,omitempty"`
}

// DetectorInfo is the detectors row that produced an anomaly.
type DetectorInfo struct {
	ConfigHash string          `json:"config_hash"`
	Config     json.RawMessage `json:"config"`
	FirstSeen  time.Time       `json:"first_seen"`
	LastSeen   time.Time       `json:"last_seen"`
}

// AuditEntry is one audit_log row.
type AuditEntry struct {
	ID        int64           `json:"id"`
	At        time.Time       `json:"at"`
	Actor     string          `json:"actor"`
	Action    string          `json:"action"`
	AnomalyID *int64          `json:"anomaly_id,omitempty"`
	Details   json.RawMessage `json:"details"`
}

// summaryCols are the columns of list items; fullCols add the documents.
const summaryCols = `a.id, a.fingerprint, a.signal, a.stream, a.service, a.observed_at, a.detected_at,
 a.score, a.p_value, a.ncd, a.compression_ratio, a.entropy, a.severity, a.status, a.note,
 a.summary, a.explanation, a.trace_id, a.span_id, a.version, a.updated_at`
const fullCols = summaryCols + `, a.attributes, a.resource, a.record`

func scanSummary(row pgx.Row, a *StoredAnomaly, extra ...any) error {
	dst := []any{&a.ID, &a.Fingerprint, &a.Signal, &a.Stream, &a.Service, &a.ObservedAt, &a.DetectedAt,
		&a.Score, &a.PValue, &a.NCD, &a.CompressionRatio, &a.Entropy, &a.Severity, &a.Status, &a.Note,
		&a.Summary, &a.Explanation, &a.TraceID, &a.SpanID, &a.Version, &a.UpdatedAt}
	return row.Scan(append(dst, extra...)...)
}

func scanFull(row pgx.Row, a *StoredAnomaly, extra ...any) error {
	var attrs, res, rec []byte
	if err := scanSummary(row, a, append([]any{&attrs, &res, &rec}, extra...)...); err != nil {
		return err
	}
	a.Attributes, a.Resource, a.Record = attrs, res, rec
	return nil
}

// args accumulates positional parameters: every value reaches PostgreSQL as
// a bind parameter, never as SQL text.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// where renders the filter as a WHERE clause body over alias a.
func (f *AnomalyFilter) where(p *args) string {
	conds := []string{"TRUE"}
	if len(f.Signals) > 0 {
		conds = append(conds, "a.signal = ANY("+p.add(f.Signals)+"::text[])")
	}
	if len(f.Statuses) > 0 {
		conds = append(conds, "a.status = ANY("+p.add(f.Statuses)+"::text[])")
	}
	if f.Stream != "" {
		conds = append(conds, "a.stream = "+p.add(f.Stream))
	}
	if f.Service != "" {
		conds = append(conds, "a.service = "+p.add(f.Service))
	}
	if f.MinScore != nil {
		conds = append(conds, "a.score >= "+p.add(*f.MinScore))
	}
	if f.MaxPValue != nil {
		conds = append(conds, "a.p_value <= "+p.add(*f.MaxPValue))
	}
	if !f.Since.IsZero() {
		conds = append(conds, "a.observed_at >= "+p.add(f.Since))
	}
	if !f.Until.IsZero() {
		conds = append(conds, "a.observed_at < "+p.add(f.Until))
	}
	if !f.UpdatedSince.IsZero() {
		conds = append(conds, "a.updated_at >= "+p.add(f.UpdatedSince))
	}
	if f.Q != "" {
		conds = append(conds, "a.summary ILIKE "+p.add("%"+likeEscape(f.Q)+"%")) // backslash is LIKE's default escape
	}
	return strings.Join(conds, " AND ")
}

// likeEscape makes % and _ in user text match themselves.
func likeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// Match is the Go twin of where, used by the live stream on rows it already
// holds. q matching folds case the way ILIKE does under the C collation.
func (f *AnomalyFilter) Match(a *StoredAnomaly) bool {
	if len(f.Signals) > 0 && !contains(f.Signals, a.Signal) {
		return false
	}
	if len(f.Statuses) > 0 && !contains(f.Statuses, a.Status) {
		return false
	}
	if f.Stream != "" && a.Stream != f.Stream {
		return false
	}
	if f.Service != "" && a.Service != f.Service {
		return false
	}
	if f.MinScore != nil && !(a.Score >= *f.MinScore) {
		return false
	}
	if f.MaxPValue != nil && !(a.PValue <= *f.MaxPValue) {
		return false
	}
	if !f.Since.IsZero() && a.ObservedAt.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !a.ObservedAt.Before(f.Until) {
		return false
	}
	if !f.UpdatedSince.IsZero() && a.UpdatedAt.Before(f.UpdatedSince) {
		return false
	}
	if f.Q != "" && !strings.Contains(strings.ToLower(a.Summary), strings.ToLower(f.Q)) {
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ListAnomalies returns up to limit anomalies matching f, newest first in
// observed time (observed_at DESC, id DESC), starting after the keyset when
// given. more tells whether another page exists.
func (s *Store) ListAnomalies(ctx context.Context, f AnomalyFilter, after *Keyset, limit int) (items []StoredAnomaly, more bool, err error) {
	var p args
	w := f.where(&p)
	if after != nil {
		w += " AND (a.observed_at, a.id) < (" + p.add(after.ObservedAt) + ", " + p.add(after.ID) + ")"
	}
	q := "SELECT " + summaryCols + " FROM anomalies a WHERE " + w +
		" ORDER BY a.observed_at DESC, a.id DESC LIMIT " + p.add(limit+1)
	rows, err := s.pool.Query(ctx, q, p...)
	if err == nil {
		items, more, err = collectPage(rows, limit, func(r pgx.Rows, a *StoredAnomaly) error { return scanSummary(r, a) })
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: list anomalies: %w", err)
	}
	return items, more, nil
}

// collectPage reads a keyset page queried with LIMIT limit+1: the first
// limit rows, and whether the extra one (another page) exists.
func collectPage[T any](rows pgx.Rows, limit int, scan func(pgx.Rows, *T) error) ([]T, bool, error) {
	defer rows.Close()
	items := make([]T, 0, min(limit+1, 128))
	for rows.Next() {
		var v T
		if err := scan(rows, &v); err != nil {
			return nil, false, err
		}
		items = append(items, v)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	if len(items) > limit {
		return items[:limit], true, nil
	}
	return items, false, nil
}

// GetAnomaly returns one anomaly with its documents, the detector settings
// that produced it, and its audit history (newest first).
func (s *Store) GetAnomaly(ctx context.Context, id int64) (*StoredAnomaly, []AuditEntry, error) {
	var a StoredAnomaly
	var hash *string
	var cfg []byte
	var first, last *time.Time
	err := scanFull(s.pool.QueryRow(ctx, "SELECT "+fullCols+`, d.config_hash, d.config, d.first_seen, d.last_seen
 FROM anomalies a LEFT JOIN detectors d ON d.config_hash = a.detector_config_hash WHERE a.id = $1`, id),
		&a, &hash, &cfg, &first, &last)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("store: get anomaly %d: %w", id, err)
	}
	if hash != nil {
		a.Detector = &DetectorInfo{ConfigHash: *hash, Config: cfg}
		if first != nil {
			a.Detector.FirstSeen = *first
		}
		if last != nil {
			a.Detector.LastSeen = *last
		}
	}
	audit, err := s.auditFor(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return &a, audit, nil
}

func (s *Store) auditFor(ctx context.Context, id int64) ([]AuditEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, at, actor, action, anomaly_id, details FROM audit_log
 WHERE anomaly_id = $1 ORDER BY at DESC, id DESC LIMIT 100`, id)
	if err != nil {
		return nil, fmt.Errorf("store: audit of %d: %w", id, err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var d []byte
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.AnomalyID, &d); err != nil {
			return nil, fmt.Errorf("store: audit of %d: %w", id, err)
		}
		e.Details = d
		out = append(out, e)
	}
	return out, rows.Err()
}

// AnomalyUpdate is a triage change. Nil fields are left as they are.
type AnomalyUpdate struct {
	Status *string
	Note   *string
}

// UpdateAnomaly applies u if the row's version is still ifVersion, bumps
// the version and writes an audit_log row naming actor, all in one
// transaction. It returns ErrNotFound or ErrVersionMismatch (with the
// current row) when it cannot.
func (s *Store) UpdateAnomaly(ctx context.Context, id int64, ifVersion int, u AnomalyUpdate, actor string) (*StoredAnomaly, error) {
	if u.Status != nil && !ValidStatus(*u.Status) {
		return nil, fmt.Errorf("store: invalid status %q", *u.Status)
	}
	var out StoredAnomaly
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var oldStatus, oldNote string
		var version int
		err := tx.QueryRow(ctx, "SELECT status, note, version FROM anomalies WHERE id = $1 FOR UPDATE", id).
			Scan(&oldStatus, &oldNote, &version)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if version != ifVersion {
			return ErrVersionMismatch
		}
		err = scanSummary(tx.QueryRow(ctx, `UPDATE anomalies a SET status = coalesce($2, a.status),
 note = coalesce($3, a.note), version = a.version + 1, updated_at = now()
 WHERE a.id = $1 RETURNING `+summaryCols, id, u.Status, u.Note), &out)
		if err != nil {
			return err
		}
		details := map[string]any{"version": out.Version}
		action := "update"
		if u.Status != nil && *u.Status != oldStatus {
			action = "status_change"
			details["from"], details["to"] = oldStatus, out.Status
		}
		if u.Note != nil && *u.Note != oldNote {
			details["note"] = out.Note
		}
		dj, _ := json.Marshal(details)
		_, err = tx.Exec(ctx, `INSERT INTO audit_log (actor, action, anomaly_id, details) VALUES ($1, $2, $3, $4::jsonb)`,
			actor, action, id, string(dj))
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrVersionMismatch) {
			return nil, err
		}
		return nil, fmt.Errorf("store: update anomaly %d: %w", id, err)
	}
	return &out, nil
}

// ExportAnomalies streams every anomaly matching f, newest first in observed
// time, to fn one
// row at a time: pgx reads rows off the connection as fn consumes them, so
// memory stays constant whatever the result size. fn's error stops the
// export and is returned.
func (s *Store) ExportAnomalies(ctx context.Context, f AnomalyFilter, fn func(*StoredAnomaly) error) error {
	var p args
	q := "SELECT " + fullCols + " FROM anomalies a WHERE " + f.where(&p) + " ORDER BY a.observed_at DESC, a.id DESC"
	rows, err := s.pool.Query(ctx, q, p...)
	if err != nil {
		return fmt.Errorf("store: export: %w", err)
	}
	defer rows.Close()
	var a StoredAnomaly
	for rows.Next() {
		a = StoredAnomaly{}
		if err := scanFull(rows, &a); err != nil {
			return fmt.Errorf("store: export: %w", err)
		}
		if err := fn(&a); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: export: %w", err)
	}
	return nil
}

// AnomaliesAfter returns anomalies with id > after in id order, at most
// limit, together with the transactions in progress when the rows were read
// (pg_snapshot_xip): a row with a smaller id than the ones returned can
// still appear only if one of those transactions commits. The live stream
// uses this to deliver without gaps whatever the writers do.
func (s *Store) AnomaliesAfter(ctx context.Context, after int64, limit int) ([]StoredAnomaly, []int64, error) {
	var out []StoredAnomaly
	var xip []int64
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		// The first statement of a REPEATABLE READ transaction fixes its
		// snapshot, so the in-progress list and the rows agree.
		if err := tx.QueryRow(ctx, "SELECT coalesce(array_agg(x::text::bigint), '{}') FROM pg_snapshot_xip(pg_current_snapshot()) AS x").Scan(&xip); err != nil {
			return err
		}
		var err error
		out, err = collect(tx.Query(ctx, "SELECT "+summaryCols+" FROM anomalies a WHERE a.id > $1 ORDER BY a.id LIMIT $2", after, limit))
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: anomalies after %d: %w", after, err)
	}
	return out, xip, nil
}

// AnomaliesBetween returns anomalies matching f with id in (after, upTo], in
// id order, at most limit: the backfill of a resuming live-stream client.
func (s *Store) AnomaliesBetween(ctx context.Context, f AnomalyFilter, after, upTo int64, limit int) ([]StoredAnomaly, error) {
	var p args
	q := "SELECT " + summaryCols + " FROM anomalies a WHERE " + f.where(&p) +
		" AND a.id > " + p.add(after) + " AND a.id <= " + p.add(upTo) + " ORDER BY a.id LIMIT " + p.add(limit)
	out, err := collect(s.pool.Query(ctx, q, p...))
	if err != nil {
		return nil, fmt.Errorf("store: anomalies between %d and %d: %w", after, upTo, err)
	}
	return out, nil
}

func collect(rows pgx.Rows, err error) ([]StoredAnomaly, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StoredAnomaly
	for rows.Next() {
		var a StoredAnomaly
		if err := scanSummary(rows, &a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// TransactionsDone reports whether none of the given transactions (xid8
// values from pg_snapshot_xip) is still in progress with a lock on the
// anomalies table. Transaction ids are cluster-wide, so the lock test keeps
// unrelated long transactions (other tables, other databases) from holding
// up the live stream: a transaction that inserts into anomalies takes its
// RowExclusiveLock before it draws an id from the sequence.
func (s *Store) TransactionsDone(ctx context.Context, xids []int64) (bool, error) {
	if len(xids) == 0 {
		return true, nil
	}
	var busy bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (
  SELECT 1 FROM unnest($1::bigint[]) AS x
  JOIN pg_locks t ON t.locktype = 'transactionid' AND t.granted
   AND t.transactionid::text::bigint = x % 4294967296
  JOIN pg_locks r ON r.pid = t.pid AND r.locktype = 'relation' AND r.relation = 'anomalies'::regclass
   AND r.database = (SELECT oid FROM pg_database WHERE datname = current_database()))`, xids).Scan(&busy)
	if err != nil {
		return false, fmt.Errorf("store: transaction status: %w", err)
	}
	return !busy, nil
}

// AnomalyWatermark returns the largest visible anomaly id and the
// transactions in progress in the same snapshot: once those have ended,
// every row with an id up to the watermark is either visible or will never
// exist.
func (s *Store) AnomalyWatermark(ctx context.Context) (int64, []int64, error) {
	var id int64
	var xip []int64
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, "SELECT coalesce(array_agg(x::text::bigint), '{}') FROM pg_snapshot_xip(pg_current_snapshot()) AS x").Scan(&xip); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "SELECT coalesce(max(id), 0) FROM anomalies").Scan(&id)
	})
	if err != nil {
		return 0, nil, fmt.Errorf("store: anomaly watermark: %w", err)
	}
	return id, xip, nil
}

// MaxAnomalyID returns the largest anomaly id, 0 when the table is empty.
func (s *Store) MaxAnomalyID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.pool.QueryRow(ctx, "SELECT coalesce(max(id), 0) FROM anomalies").Scan(&id); err != nil {
		return 0, fmt.Errorf("store: max anomaly id: %w", err)
	}
	return id, nil
}
