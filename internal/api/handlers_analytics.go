package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/driftlock/driftlock/internal/store"
)

type window struct {
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	Bucket string    `json:"bucket"`
}

type summaryResponse struct {
	Window window `json:"window"`
	*store.Summary
}

func (s *Server) handleSummary(w http.ResponseWriter, r *http.Request) {
	q, err := newQuery(r.URL.RawQuery, filterParams, []string{"bucket", "top"})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f, err := q.filter()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b, err := q.window(&f, time.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	top, err := q.top(10)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	sum, err := s.st.SummaryOf(ctx, f, b, 100, top)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, summaryResponse{Window: window{f.Since, f.Until, bucketName(b)}, Summary: sum})
}

type timelineResponse struct {
	Window  window         `json:"window"`
	GroupBy string         `json:"group_by"`
	Series  []store.Series `json:"series"`
}

func (s *Server) handleTimeline(w http.ResponseWriter, r *http.Request) {
	q, err := newQuery(r.URL.RawQuery, filterParams, []string{"bucket", "group_by", "top"})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f, err := q.filter()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b, err := q.window(&f, time.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	group := q.v.Get("group_by")
	if group == "" {
		group = "service"
	}
	if _, ok := store.TimelineGroups[group]; !ok {
		s.fail(w, r, badParam("group_by", "must be one of service, stream, signal, status"))
		return
	}
	top, err := q.top(10)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	series, err := s.st.Timeline(ctx, f, b, group, top)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, timelineResponse{Window: window{f.Since, f.Until, bucketName(b)}, GroupBy: group, Series: series})
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

func bucketName(d time.Duration) string {
	for k, v := range buckets {
		if v == d {
			return k
		}
	}
	return d.String()
}
