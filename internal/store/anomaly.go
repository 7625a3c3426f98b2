package store

import (
	"github.com/driftlock/driftlock/internal/cbad"

	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Signals stored in anomalies.signal.
const (
	SignalLogs    = "logs"
	SignalTraces  = "traces"
	SignalMetrics = "metrics"
)

// NotifyChannel is the channel InsertAnomalies notifies after each commit
// that stored at least one new row. The payload is the largest id the
// commit inserted, in decimal. Writers hold a transaction-scoped advisory
// lock while inserting (see insertLockKey), so ids become visible in
// increasing order: a listener that remembers the last id it read and
// queries `id > last` after each notification never misses a row. A
// notification can be lost while the listener reconnects, so listeners
// should also query `id > last` after (re)connecting.
const NotifyChannel = "driftlock_anomalies"

// insertLockKey is the pg_advisory_xact_lock key that serializes writers
// (ASCII "dlanomal"). Inserts are short (one statement per batch), so the
// serialization costs little and buys in-order id visibility.
const insertLockKey int64 = 0x646c616e6f6d616c

// Anomaly is one row of the anomalies table as the exporter writes it.
// Status, note, version and the created/updated timestamps take their
// database defaults.
type Anomaly struct {
	// Fingerprint identifies the record (see Fingerprint); a row whose
	// fingerprint already exists is skipped, so retries never duplicate.
	Fingerprint string
	// Signal is SignalLogs, SignalTraces or SignalMetrics.
	Signal string
	// Stream is the detector stream key (driftlock.stream).
	Stream string
	// Service is the resource's service.name.
	Service string
	// ObservedAt is the record's own time; DetectedAt when it was stored
	// (zero means now).
	ObservedAt time.Time
	DetectedAt time.Time
	Score      float64
	PValue     float64
	// Window figures; nil when the processor did not report them.
	NCD              *float64
	CompressionRatio *float64
	Entropy          *float64
	Severity         string
	Summary          string
	Explanation      string
	TraceID          string
	SpanID           string
	// JSON documents; encoded with EncodeJSON (sanitized, keys sorted).
	// A nil map is stored as {}.
	Attributes map[string]any
	Resource   map[string]any
	Record     map[string]any
	// Pre-encoded documents, used instead of the maps above when not
	// empty. They must come from EncodeJSON (PostgreSQL refuses what it
	// did not sanitize, and the row is rejected). The exporter encodes a
	// resource once for all its records this way.
	AttributesJSON string
	ResourceJSON   string
	RecordJSON     string
	// DetectorConfigHash references detectors.config_hash; empty is NULL.
	// The detector row must exist (UpsertDetector) before the insert.
	DetectorConfigHash string
}

// RejectedRow is one row PostgreSQL refused for its content.
type RejectedRow struct {
	Index       int // position in the slice given to InsertAnomalies
	Fingerprint string
	Err         error
}

// RejectedRowsError reports rows refused for their content (a permanent
// failure: retrying them cannot succeed). The other rows of the batch were
// stored.
type RejectedRowsError struct {
	Rows []RejectedRow
}

func (e *RejectedRowsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "store: %d row(s) rejected", len(e.Rows))
	for i, r := range e.Rows {
		if i == 3 {
			fmt.Fprintf(&b, "; …")
			break
		}
		fmt.Fprintf(&b, "; row %d (%s): %v", r.Index, r.Fingerprint, r.Err)
	}
	return b.String()
}

const insertSQL = `
WITH ins AS (
  INSERT INTO anomalies (fingerprint, signal, stream, service, observed_at, detected_at,
    score, p_value, ncd, compression_ratio, entropy, severity, summary, explanation,
    trace_id, span_id, attributes, resource, record, detector_config_hash)
  SELECT u.fingerprint, u.signal, u.stream, u.service, u.observed_at, u.detected_at,
    u.score, u.p_value, u.ncd, u.compression_ratio, u.entropy, u.severity, u.summary,
    u.explanation, u.trace_id, u.span_id, u.attributes::jsonb, u.resource::jsonb,
    u.record::jsonb, NULLIF(u.detector_config_hash, '')
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
    $6::timestamptz[], $7::float8[], $8::float8[], $9::float8[], $10::float8[],
    $11::float8[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[],
    $17::text[], $18::text[], $19::text[], $20::text[])
    AS u(fingerprint, signal, stream, service, observed_at, detected_at, score, p_value,
         ncd, compression_ratio, entropy, severity, summary, explanation, trace_id,
         span_id, attributes, resource, record, detector_config_hash)
  ON CONFLICT (fingerprint) DO NOTHING
  RETURNING id
), agg AS (SELECT count(*) AS n, coalesce(max(id), 0) AS m FROM ins)
SELECT n, m, CASE WHEN n > 0 THEN pg_notify('` + NotifyChannel + `', m::text)::text END FROM agg`

// columns holds one batch in column order, as the unnest arrays.
type columns struct {
	fingerprint, signal, stream, service        []string
	observedAt, detectedAt                      []time.Time
	score, pValue                               []float64
	ncd, ratio, entropy                         []*float64
	severity, summary, explanation, trace, span []string
	attributes, resource, record, hash          []string
	bytes                                       int // approximate payload size
}

func newColumns(n int) *columns {
	return &columns{
		fingerprint: make([]string, 0, n), signal: make([]string, 0, n),
		stream: make([]string, 0, n), service: make([]string, 0, n),
		observedAt: make([]time.Time, 0, n), detectedAt: make([]time.Time, 0, n),
		score: make([]float64, 0, n), pValue: make([]float64, 0, n),
		ncd: make([]*float64, 0, n), ratio: make([]*float64, 0, n), entropy: make([]*float64, 0, n),
		severity: make([]string, 0, n), summary: make([]string, 0, n),
		explanation: make([]string, 0, n), trace: make([]string, 0, n), span: make([]string, 0, n),
		attributes: make([]string, 0, n), resource: make([]string, 0, n),
		record: make([]string, 0, n), hash: make([]string, 0, n),
	}
}

// add appends a sanitized row.
func (c *columns) add(a *Anomaly, now time.Time) {
	detected := a.DetectedAt
	if detected.IsZero() {
		detected = now
	}
	c.fingerprint = append(c.fingerprint, SanitizeString(a.Fingerprint, MaxIndexedBytes))
	c.signal = append(c.signal, a.Signal)
	c.stream = append(c.stream, SanitizeString(a.Stream, MaxIndexedBytes))
	c.service = append(c.service, SanitizeString(a.Service, MaxIndexedBytes))
	c.observedAt = append(c.observedAt, clampTime(a.ObservedAt, detected))
	c.detectedAt = append(c.detectedAt, detected)
	c.score = append(c.score, a.Score)
	c.pValue = append(c.pValue, a.PValue)
	c.ncd = append(c.ncd, a.NCD)
	c.ratio = append(c.ratio, a.CompressionRatio)
	c.entropy = append(c.entropy, a.Entropy)
	c.severity = append(c.severity, SanitizeString(a.Severity, MaxIndexedBytes))
	c.summary = append(c.summary, SanitizeString(cbad.RedactString(a.Summary), MaxTextBytes))
	c.explanation = append(c.explanation, SanitizeString(cbad.RedactString(a.Explanation), MaxTextBytes))
	c.trace = append(c.trace, SanitizeString(a.TraceID, MaxIndexedBytes))
	c.span = append(c.span, SanitizeString(a.SpanID, MaxIndexedBytes))
	c.attributes = append(c.attributes, docOr(a.AttributesJSON, a.Attributes))
	c.resource = append(c.resource, docOr(a.ResourceJSON, a.Resource))
	c.record = append(c.record, docOr(a.RecordJSON, a.Record))
	c.hash = append(c.hash, SanitizeString(a.DetectorConfigHash, MaxIndexedBytes))
	last := len(c.fingerprint) - 1
	c.bytes += 200 + len(c.summary[last]) + len(c.explanation[last]) + len(c.attributes[last]) +
		len(c.resource[last]) + len(c.record[last]) + len(c.stream[last])
}

func (c *columns) args() []any {
	return []any{c.fingerprint, c.signal, c.stream, c.service, c.observedAt, c.detectedAt,
		c.score, c.pValue, c.ncd, c.ratio, c.entropy, c.severity, c.summary, c.explanation,
		c.trace, c.span, c.attributes, c.resource, c.record, c.hash}
}

func docOr(encoded string, m map[string]any) string {
	switch {
	case encoded != "":
		return encoded
	case m == nil:
		return "{}"
	}
	return string(EncodeJSON(m))
}

// clampTime keeps a timestamp inside what both Go and PostgreSQL represent
// sensibly: a zero (unset) observation time becomes the detection time.
func clampTime(t, fallback time.Time) time.Time {
	if t.IsZero() || t.Unix() <= 0 {
		return fallback
	}
	return t
}

// InsertAnomalies stores rows with multi-row INSERT ... ON CONFLICT
// (fingerprint) DO NOTHING statements (one per MaxStatementBytes of
// payload, normally the whole batch), each in its own transaction that
// notifies NotifyChannel on commit. It returns how many rows were new (the
// rest were duplicates of stored fingerprints).
//
// A batch refused for its content (a *pgconn.PgError of class 22 or 23,
// see IsPermanent) is retried row by row, so that one bad row cannot take
// the others with it; the refused rows are reported in a
// *RejectedRowsError while the others are stored; so are rows whose Signal
// is unknown (ErrBadSignal). Any other error is returned as is, with the
// count of rows committed before it (IsPermanent tells whether to retry;
// a retry skips the committed rows by fingerprint).
func (s *Store) InsertAnomalies(ctx context.Context, rows []Anomaly) (inserted int, err error) {
	now := nowUTC()
	var rejected []RejectedRow
	// Rows are sent in statements of at most MaxStatementBytes: PostgreSQL
	// refuses protocol messages over 1 GB, and 1,000 rows of 1 MiB bodies
	// come close; such a statement would fail, and be retried, forever.
	for start := 0; start < len(rows); {
		cols := newColumns(min(len(rows)-start, 1024))
		var idx []int // positions in rows of the statement's rows
		end := start
		for ; end < len(rows) && (len(idx) == 0 || cols.bytes < maxStatementBytes); end++ {
			if err := validSignal(rows[end].Signal); err != nil {
				rejected = append(rejected, RejectedRow{Index: end, Fingerprint: rows[end].Fingerprint, Err: err})
				continue
			}
			cols.add(&rows[end], now)
			idx = append(idx, end)
		}
		start = end
		if len(idx) == 0 {
			continue
		}
		n, err := s.insertColumns(ctx, cols)
		if err != nil && IsPermanent(err) {
			var rej []RejectedRow
			n, rej, err = s.insertEach(ctx, rows, idx, now)
			rejected = append(rejected, rej...)
		}
		inserted += n
		if err != nil {
			return inserted, err
		}
	}
	if len(rejected) > 0 {
		sort.Slice(rejected, func(i, j int) bool { return rejected[i].Index < rejected[j].Index })
		return inserted, &RejectedRowsError{Rows: rejected}
	}
	return inserted, nil
}

// ErrBadSignal is the error of a row whose Signal is not one of the three.
var ErrBadSignal = errors.New("store: signal must be logs, traces or metrics")

func validSignal(s string) error {
	switch s {
	case SignalLogs, SignalTraces, SignalMetrics:
		return nil
	}
	return fmt.Errorf("%w (got %q)", ErrBadSignal, s)
}

// insertEach is the slow path after a content error: one transaction per
// row (rows[idx[k]]), collecting the rows PostgreSQL refuses. A transient
// error stops it: the rows stored so far stay, and their fingerprints make
// the caller's retry skip them.
func (s *Store) insertEach(ctx context.Context, rows []Anomaly, idx []int, now time.Time) (int, []RejectedRow, error) {
	var rejected []RejectedRow
	inserted := 0
	for _, i := range idx {
		cols := newColumns(1)
		cols.add(&rows[i], now)
		n, err := s.insertColumns(ctx, cols)
		switch {
		case err == nil:
			inserted += n
		case IsPermanent(err):
			rejected = append(rejected, RejectedRow{Index: i, Fingerprint: rows[i].Fingerprint, Err: err})
		default:
			return inserted, rejected, err
		}
	}
	return inserted, rejected, nil
}

func (s *Store) insertColumns(ctx context.Context, cols *columns) (int, error) {
	// One round trip: a pgx batch runs in one implicit transaction (a
	// single Sync), so the advisory lock is held until the INSERT commits
	// and the notification goes out on that commit.
	var n, maxID int64
	b := &pgx.Batch{}
	b.Queue("SELECT pg_advisory_xact_lock($1)", insertLockKey)
	b.Queue(insertSQL, cols.args()...).QueryRow(func(row pgx.Row) error {
		var ignored *string
		return row.Scan(&n, &maxID, &ignored)
	})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return 0, err
	}
	return int(n), nil
}

func nowUTC() time.Time { return time.Now().UTC() }

// maxStatementBytes is MaxStatementBytes, lowered by tests.
var maxStatementBytes = MaxStatementBytes
