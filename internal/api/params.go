package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/driftlock/driftlock/internal/store"
)

// Parameter limits.
const (
	maxLimit      = 1000
	defaultLimit  = 100
	maxTextParam  = 512
	maxQParam     = 200
	maxBuckets    = 5000
	defaultWindow = 24 * time.Hour
)

// filterParams are the query parameters every anomaly query accepts.
var filterParams = []string{"signal", "stream", "service", "status", "min_score", "max_p_value", "since", "until", "updated_since", "q"}

// query wraps url.Values and rejects unknown and repeated parameters, so
// typos fail loudly instead of silently returning everything.
type query struct {
	v url.Values
}

func newQuery(raw string, allowed ...[]string) (*query, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		// ParseQuery drops the bad pair (e.g. one holding ';'); refusing the
		// request beats silently ignoring a filter.
		return nil, badParam("query", "malformed query string: "+err.Error())
	}
	ok := map[string]bool{}
	for _, l := range allowed {
		for _, n := range l {
			ok[n] = true
		}
	}
	for name, vals := range v {
		if !ok[name] {
			return nil, badParam(name, "unknown parameter")
		}
		if len(vals) > 1 {
			return nil, badParam(name, "given more than once")
		}
	}
	return &query{v: v}, nil
}

// text returns a parameter after checking it is valid UTF-8 without NUL
// bytes (PostgreSQL text cannot hold them) and not too long.
func (q *query) text(name string, max int) (string, error) {
	s := q.v.Get(name)
	if s == "" {
		return "", nil
	}
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return "", badParam(name, "must be valid UTF-8 text without NUL bytes")
	}
	if len(s) > max {
		return "", badParam(name, fmt.Sprintf("longer than %d bytes", max))
	}
	return s, nil
}

func (q *query) float(name string) (*float64, error) {
	s := q.v.Get(name)
	if s == "" {
		return nil, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, badParam(name, "must be a finite number")
	}
	return &f, nil
}

func (q *query) time(name string) (time.Time, error) {
	s := q.v.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, badParam(name, "must be an RFC 3339 timestamp such as 2026-01-02T15:04:05Z")
	}
	if t.Year() < 1970 || t.Year() > 9999 {
		return time.Time{}, badParam(name, "out of range")
	}
	return t.UTC(), nil
}

// span parses since and until (either may be absent; until after since).
func (q *query) span() (since, until time.Time, err error) {
	if since, err = q.time("since"); err != nil {
		return since, until, err
	}
	if until, err = q.time("until"); err != nil {
		return since, until, err
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return since, until, badParam("until", "must be after since")
	}
	return since, until, nil
}

func (q *query) enumList(name string, valid func(string) bool, allowed string) ([]string, error) {
	s := q.v.Get(name)
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > 8 {
		return nil, badParam(name, "too many values")
	}
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if !valid(p) {
			return nil, badParam(name, fmt.Sprintf("%q is not one of %s", truncate(p, 40), allowed))
		}
		parts[i] = p
	}
	return parts, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// filter parses the shared filter parameters.
func (q *query) filter() (store.AnomalyFilter, error) {
	var f store.AnomalyFilter
	var err error
	if f.Signals, err = q.enumList("signal", store.ValidSignal, "logs, traces, metrics"); err != nil {
		return f, err
	}
	if f.Statuses, err = q.enumList("status", store.ValidStatus, "open, acknowledged, resolved, false_positive"); err != nil {
		return f, err
	}
	if f.Stream, err = q.text("stream", maxTextParam); err != nil {
		return f, err
	}
	if f.Service, err = q.text("service", maxTextParam); err != nil {
		return f, err
	}
	if f.Q, err = q.text("q", maxQParam); err != nil {
		return f, err
	}
	if f.MinScore, err = q.float("min_score"); err != nil {
		return f, err
	}
	if f.MaxPValue, err = q.float("max_p_value"); err != nil {
		return f, err
	}
	if f.MaxPValue != nil && (*f.MaxPValue < 0 || *f.MaxPValue > 1) {
		return f, badParam("max_p_value", "must be between 0 and 1")
	}
	if f.Since, f.Until, err = q.span(); err != nil {
		return f, err
	}
	if f.UpdatedSince, err = q.time("updated_since"); err != nil {
		return f, err
	}
	return f, nil
}

// filteredQuery parses a query string holding the shared filter parameters
// plus extra ones, and builds the filter: the first step of every handler
// that queries anomalies.
func filteredQuery(raw string, extra ...string) (*query, store.AnomalyFilter, error) {
	q, err := newQuery(raw, filterParams, extra)
	if err != nil {
		return nil, store.AnomalyFilter{}, err
	}
	f, err := q.filter()
	return q, f, err
}

// analyticsParams are the parsed parameters of the analytics endpoints.
type analyticsParams struct {
	f      store.AnomalyFilter
	bucket time.Duration
	group  string // only when parsed with grouped
	top    int
}

// parseAnalytics parses filter, window, top and (when grouped) group_by,
// in that order so the first bad parameter is the one reported.
func parseAnalytics(raw string, now time.Time, grouped bool) (analyticsParams, error) {
	var p analyticsParams
	extra := []string{"bucket", "top"}
	if grouped {
		extra = []string{"bucket", "group_by", "top"}
	}
	q, f, err := filteredQuery(raw, extra...)
	if err != nil {
		return p, err
	}
	p.f = f
	if p.bucket, err = q.window(&p.f, now); err != nil {
		return p, err
	}
	if grouped {
		if p.group, err = q.groupBy(); err != nil {
			return p, err
		}
	}
	if p.top, err = q.top(10); err != nil {
		return p, err
	}
	return p, nil
}

// window is the resolved since..until window and bucket, echoed back.
func (p analyticsParams) window() window {
	return window{p.f.Since, p.f.Until, bucketName(p.bucket)}
}

func (q *query) groupBy() (string, error) {
	group := q.v.Get("group_by")
	if group == "" {
		group = "service"
	}
	if _, ok := store.TimelineGroups[group]; !ok {
		return "", badParam("group_by", "must be one of service, stream, signal, status")
	}
	return group, nil
}

func (q *query) top(def int) (int, error) {
	s := q.v.Get("top")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 50 {
		return 0, badParam("top", "must be an integer from 1 to 50")
	}
	return n, nil
}

// pathID checks that the request has no query parameters and parses the
// {id} path value.
func pathID(r *http.Request) (int64, error) {
	if _, err := newQuery(r.URL.RawQuery); err != nil {
		return 0, err
	}
	return parseID(r.PathValue("id"))
}

// limitOnly parses the query string of an endpoint whose only parameter
// is limit.
func limitOnly(raw string) (int, error) {
	q, err := newQuery(raw, []string{"limit"})
	if err != nil {
		return 0, err
	}
	return q.limit()
}

func (q *query) limit() (int, error) {
	s := q.v.Get("limit")
	if s == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		return 0, badParam("limit", fmt.Sprintf("must be an integer from 1 to %d", maxLimit))
	}
	return n, nil
}

// buckets are the accepted bucket widths.
var buckets = map[string]time.Duration{
	"1m": time.Minute, "5m": 5 * time.Minute, "15m": 15 * time.Minute, "1h": time.Hour,
	"6h": 6 * time.Hour, "1d": 24 * time.Hour,
}

// window parses bucket, since and until for analytics: since defaults to
// 24 hours before until (default now), and the window may hold at most
// maxBuckets buckets.
func (q *query) window(f *store.AnomalyFilter, now time.Time) (time.Duration, error) {
	name := q.v.Get("bucket")
	if name == "" {
		name = "1h"
	}
	b, ok := buckets[name]
	if !ok {
		return 0, badParam("bucket", "must be one of 1m, 5m, 15m, 1h, 6h, 1d")
	}
	if f.Until.IsZero() {
		f.Until = now.Add(time.Second).Truncate(time.Second)
	}
	if f.Since.IsZero() {
		f.Since = f.Until.Add(-defaultWindow)
		if !f.Since.Before(f.Until) {
			return 0, badParam("until", "too early for the default 24h window; give since")
		}
	}
	if f.Until.Sub(f.Since)/b > maxBuckets {
		return 0, badParam("bucket", fmt.Sprintf("the since..until window would hold more than %d buckets; widen the bucket or narrow the window", maxBuckets))
	}
	return b, nil
}

// cursor is the opaque page token: the last row's keyset (a time and an
// id) plus a hash of the filter it was issued for, so a cursor cannot be
// replayed against other filters (which would silently skip rows).
type cursor struct {
	T int64  `json:"t"` // the order's time column, Unix microseconds (PostgreSQL's precision)
	I int64  `json:"i"`
	H string `json:"h"`
}

func filterHash(f any) string {
	b, _ := json.Marshal(f)
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:6])
}

// encodeKey encodes a keyset position (t, id) issued for filter f.
func encodeKey(t time.Time, id int64, f any) string {
	b, _ := json.Marshal(cursor{T: t.UnixMicro(), I: id, H: filterHash(f)})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeKey is encodeKey's inverse; ok is false when s is empty.
func decodeKey(s string, f any) (t time.Time, id int64, ok bool, err error) {
	if s == "" {
		return time.Time{}, 0, false, nil
	}
	if len(s) > 200 {
		return time.Time{}, 0, false, badParam("cursor", "malformed cursor")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, 0, false, badParam("cursor", "malformed cursor")
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || c.I <= 0 || c.H == "" {
		return time.Time{}, 0, false, badParam("cursor", "malformed cursor")
	}
	if c.H != filterHash(f) {
		return time.Time{}, 0, false, badParam("cursor", "cursor was issued for different filters; start again without cursor")
	}
	return time.UnixMicro(c.T).UTC(), c.I, true, nil
}

func encodeCursor(k store.Keyset, f store.AnomalyFilter) string {
	return encodeKey(k.ObservedAt, k.ID, f)
}

func decodeCursor(s string, f store.AnomalyFilter) (*store.Keyset, error) {
	t, id, ok, err := decodeKey(s, f)
	if !ok {
		return nil, err
	}
	return &store.Keyset{ObservedAt: t, ID: id}, nil
}

// parseID parses a path id.
func parseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, badParam("id", "must be a positive integer")
	}
	return id, nil
}

// lastEventID parses a Last-Event-ID header or last_event_id parameter.
func lastEventID(s string) (int64, error) {
	if s == "" {
		return -1, nil
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 0 {
		return 0, badParam("Last-Event-ID", "must be a non-negative anomaly id")
	}
	return id, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
