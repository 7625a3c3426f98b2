package store

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

// Count is one group and how many anomalies it holds.
type Count struct {
	Key      string  `json:"key"`
	Count    int64   `json:"count"`
	MaxScore float64 `json:"max_score"`
}

// BucketCount is one time bucket of a histogram.
type BucketCount struct {
	Start time.Time `json:"start"`
	Count int64     `json:"count"`
}

// Summary is the analytics overview of the anomalies matching a filter.
type Summary struct {
	Total      int64            `json:"total"`
	ByStatus   map[string]int64 `json:"by_status"`
	BySignal   map[string]int64 `json:"by_signal"`
	ByService  []Count          `json:"by_service"`
	TopStreams []Count          `json:"top_streams"`
	StreamsN   int              `json:"streams"`
	Buckets    []BucketCount    `json:"buckets"`
	// FalsePositiveRatio is false_positive / (acknowledged + resolved +
	// false_positive): the share of triaged anomalies that were noise. Nil
	// when nothing was triaged.
	FalsePositiveRatio *float64 `json:"false_positive_ratio"`
}

// bucketOrigin aligns date_bin buckets on a fixed UTC instant, so bucket
// boundaries do not move between calls.
const bucketOrigin = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"

// SummaryOf counts the anomalies matching f per status, signal, service,
// stream and time bucket in a single scan (GROUPING SETS). topServices and
// topStreams cap the returned groups (largest first).
func (s *Store) SummaryOf(ctx context.Context, f AnomalyFilter, bucket time.Duration, topServices, topStreams int) (*Summary, error) {
	var p args
	b := p.add(bucket)
	q := `SELECT grouping(a.status, a.signal, a.service, a.stream, date_bin(` + b + `::interval, a.observed_at, ` + bucketOrigin + `)),
 a.status, a.signal, a.service, a.stream, date_bin(` + b + `::interval, a.observed_at, ` + bucketOrigin + `), count(*), max(a.score)
 FROM anomalies a WHERE ` + f.where(&p) + `
 GROUP BY GROUPING SETS ((a.status), (a.signal), (a.service), (a.stream), (date_bin(` + b + `::interval, a.observed_at, ` + bucketOrigin + `)))`
	rows, err := s.pool.Query(ctx, q, p...)
	if err != nil {
		return nil, fmt.Errorf("store: summary: %w", err)
	}
	defer rows.Close()
	out := &Summary{ByStatus: map[string]int64{}, BySignal: map[string]int64{}, ByService: []Count{}, TopStreams: []Count{}, Buckets: []BucketCount{}}
	var streams []Count
	for rows.Next() {
		var g int
		var status, signal, service, stream *string
		var start *time.Time
		var n int64
		var maxScore float64
		if err := rows.Scan(&g, &status, &signal, &service, &stream, &start, &n, &maxScore); err != nil {
			return nil, fmt.Errorf("store: summary: %w", err)
		}
		// grouping() sets a bit per column NOT grouped on, the first
		// argument being the most significant of five.
		switch g {
		case 0b01111:
			out.ByStatus[*status] = n
			out.Total += n
		case 0b10111:
			out.BySignal[*signal] = n
		case 0b11011:
			out.ByService = append(out.ByService, Count{Key: *service, Count: n, MaxScore: maxScore})
		case 0b11101:
			streams = append(streams, Count{Key: *stream, Count: n, MaxScore: maxScore})
		case 0b11110:
			out.Buckets = append(out.Buckets, BucketCount{Start: start.UTC(), Count: n})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: summary: %w", err)
	}
	out.StreamsN = len(streams)
	out.ByService = topCounts(out.ByService, topServices)
	out.TopStreams = topCounts(streams, topStreams)
	sort.Slice(out.Buckets, func(i, j int) bool { return out.Buckets[i].Start.Before(out.Buckets[j].Start) })
	triaged := out.ByStatus[StatusAcknowledged] + out.ByStatus[StatusResolved] + out.ByStatus[StatusFalsePositive]
	if triaged > 0 {
		r := float64(out.ByStatus[StatusFalsePositive]) / float64(triaged)
		out.FalsePositiveRatio = &r
	}
	return out, nil
}

func topCounts(c []Count, n int) []Count {
	sort.Slice(c, func(i, j int) bool {
		if c[i].Count != c[j].Count {
			return c[i].Count > c[j].Count
		}
		return c[i].Key < c[j].Key
	})
	if n > 0 && len(c) > n {
		c = c[:n]
	}
	if c == nil {
		c = []Count{}
	}
	return c
}

// Series is one line of a timeline: a group and its counts per bucket.
type Series struct {
	Key    string        `json:"key"`
	Total  int64         `json:"total"`
	Points []BucketCount `json:"points"`
}

// TimelineGroups names the columns a timeline may be grouped by. Only these
// fixed identifiers ever reach the SQL text.
var TimelineGroups = map[string]string{
	"service": "a.service",
	"stream":  "a.stream",
	"signal":  "a.signal",
	"status":  "a.status",
}

// OtherSeries is the key of the series that sums the groups beyond top.
const OtherSeries = "(other)"

// Timeline counts the anomalies matching f per bucket and per group
// (one of TimelineGroups); the top groups by total get their own series and
// the rest are summed into OtherSeries.
func (s *Store) Timeline(ctx context.Context, f AnomalyFilter, bucket time.Duration, groupBy string, top int) ([]Series, error) {
	col, ok := TimelineGroups[groupBy]
	if !ok {
		return nil, fmt.Errorf("store: timeline: cannot group by %q", groupBy)
	}
	var p args
	b := p.add(bucket)
	q := `SELECT ` + col + `, date_bin(` + b + `::interval, a.observed_at, ` + bucketOrigin + `) AS bk, count(*)
 FROM anomalies a WHERE ` + f.where(&p) + ` GROUP BY 1, 2`
	rows, err := s.pool.Query(ctx, q, p...)
	if err != nil {
		return nil, fmt.Errorf("store: timeline: %w", err)
	}
	all, err := collectSeries(rows)
	if err != nil {
		return nil, fmt.Errorf("store: timeline: %w", err)
	}
	out := []Series{}
	var other *Series
	for i, sr := range all {
		if top <= 0 || i < top {
			out = append(out, sr)
			continue
		}
		if other == nil {
			other = &Series{Key: OtherSeries}
		}
		other.Total += sr.Total
		other.Points = mergePoints(other.Points, sr.Points)
	}
	if other != nil {
		out = append(out, *other)
	}
	return out, nil
}

// collectSeries reads (key, bucket start, count) rows into one series per
// key, points in time order, the largest total first (ties by key). It
// sorts here rather than by ORDER BY, which would turn PostgreSQL's hash
// aggregate into a sort.
func collectSeries(rows pgx.Rows) ([]Series, error) {
	defer rows.Close()
	byKey := map[string]*Series{}
	for rows.Next() {
		var k string
		var t time.Time
		var n int64
		if err := rows.Scan(&k, &t, &n); err != nil {
			return nil, err
		}
		sr := byKey[k]
		if sr == nil {
			sr = &Series{Key: k}
			byKey[k] = sr
		}
		sr.Total += n
		sr.Points = append(sr.Points, BucketCount{Start: t.UTC(), Count: n})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Series, 0, len(byKey))
	for _, sr := range byKey {
		sort.Slice(sr.Points, func(i, j int) bool { return sr.Points[i].Start.Before(sr.Points[j].Start) })
		out = append(out, *sr)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Total != out[j].Total {
			return out[i].Total > out[j].Total
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

// mergePoints adds b into a; both are sorted by Start.
func mergePoints(a, b []BucketCount) []BucketCount {
	out := make([]BucketCount, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i].Start.Before(b[j].Start)):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j].Start.Before(a[i].Start):
			out = append(out, b[j])
			j++
		default:
			out = append(out, BucketCount{Start: a[i].Start, Count: a[i].Count + b[j].Count})
			i++
			j++
		}
	}
	return out
}
