package api_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/store"
)

// A backlog drained after an outage (or a replayed day) is written within
// seconds but spans hours of observed time: lists, cursors, since/until,
// summaries and timelines must follow the observed times, not the write
// times, or the whole backlog collapses into one spike "now".
func TestBacklogKeepsItsObservedTimes(t *testing.T) {
	e := newEnv(t)
	written := time.Now().UTC().Truncate(time.Second)
	day := written.Truncate(time.Hour).Add(-30 * time.Hour) // observed a day earlier
	var rows []row
	for i := range 12 {
		// Written in observed order reversed, so write order and observed
		// order disagree everywhere.
		rows = append(rows, row{
			Service:    []string{"cart", "auth"}[i%2],
			ObservedAt: day.Add(time.Duration(11-i)*time.Hour + 5*time.Minute),
			DetectedAt: written.Add(time.Duration(i) * time.Second),
		})
	}
	want := e.insert(rows...) // the first is observed latest

	// 1. The list walks observed time newest first, page by page.
	var got []int64
	cursor := ""
	for page := 0; page < 10; page++ {
		path := "/v1/anomalies?limit=5"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		r := e.get(path, e.viewer)
		wantCode(t, r, http.StatusOK)
		var lb listBody
		r.json(t, &lb)
		for _, it := range lb.Items {
			got = append(got, it.ID)
			if !it.DetectedAt.After(it.ObservedAt) {
				t.Fatalf("row %d: detected %v should be after observed %v (ingestion time kept)", it.ID, it.DetectedAt, it.ObservedAt)
			}
		}
		if lb.NextCursor == nil {
			break
		}
		cursor = *lb.NextCursor
	}
	if len(got) != len(want) {
		t.Fatalf("pages returned %d rows, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order by observed time: got %v, want %v", got, want)
		}
	}

	// 2. since/until select by observed time: three observed hours.
	since := day.Add(3 * time.Hour).Format(time.RFC3339)
	until := day.Add(6 * time.Hour).Format(time.RFC3339)
	r := e.get("/v1/anomalies?since="+since+"&until="+until, e.viewer)
	wantCode(t, r, http.StatusOK)
	var lb listBody
	r.json(t, &lb)
	if len(lb.Items) != 3 {
		t.Fatalf("since..until over observed time matched %d rows, want 3", len(lb.Items))
	}
	for _, it := range lb.Items {
		if it.ObservedAt.Before(day.Add(3*time.Hour)) || !it.ObservedAt.Before(day.Add(6*time.Hour)) {
			t.Fatalf("row %d observed %v is outside the window", it.ID, it.ObservedAt)
		}
	}
	// A window around the write time finds nothing: nothing was observed then.
	r = e.get("/v1/anomalies?since="+written.Add(-time.Minute).Format(time.RFC3339), e.viewer)
	r.json(t, &lb)
	if len(lb.Items) != 0 {
		t.Fatalf("since=write time matched %d rows; since must use observed time", len(lb.Items))
	}

	// 3. The summary and the timeline spread the backlog over its 12
	// observed hours instead of one bucket at the write time.
	q := "since=" + url.QueryEscape(day.Format(time.RFC3339)) + "&until=" + url.QueryEscape(day.Add(12*time.Hour).Format(time.RFC3339)) + "&bucket=1h"
	r = e.get("/v1/analytics/summary?"+q, e.viewer)
	wantCode(t, r, http.StatusOK)
	var s store.Summary
	r.json(t, &s)
	if s.Total != 12 || len(s.Buckets) != 12 {
		t.Fatalf("summary: total %d in %d buckets, want 12 in 12", s.Total, len(s.Buckets))
	}
	for i, b := range s.Buckets {
		if !b.Start.Equal(day.Add(time.Duration(i)*time.Hour)) || b.Count != 1 {
			t.Fatalf("bucket %d: %+v, want 1 at %v", i, b, day.Add(time.Duration(i)*time.Hour))
		}
	}
	r = e.get("/v1/analytics/timeline?group_by=service&"+q, e.viewer)
	wantCode(t, r, http.StatusOK)
	var tl struct {
		Series []store.Series `json:"series"`
	}
	r.json(t, &tl)
	if len(tl.Series) != 2 || len(tl.Series[0].Points) != 6 || len(tl.Series[1].Points) != 6 {
		t.Fatalf("timeline: %+v, want two services of 6 hourly points", tl.Series)
	}
}
