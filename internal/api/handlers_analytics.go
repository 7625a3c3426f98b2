package api

import (
	"context"
	"net/http"
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
	p, err := parseAnalytics(r.URL.RawQuery, time.Now(), false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.respond(w, r, func(ctx context.Context) (any, error) {
		sum, err := s.st.SummaryOf(ctx, p.f, p.bucket, 100, p.top)
		return summaryResponse{Window: p.window(), Summary: sum}, err
	})
}

type timelineResponse struct {
	Window  window         `json:"window"`
	GroupBy string         `json:"group_by"`
	Series  []store.Series `json:"series"`
}

func (s *Server) handleTimeline(w http.ResponseWriter, r *http.Request) {
	p, err := parseAnalytics(r.URL.RawQuery, time.Now(), true)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.respond(w, r, func(ctx context.Context) (any, error) {
		series, err := s.st.Timeline(ctx, p.f, p.bucket, p.group, p.top)
		return timelineResponse{Window: p.window(), GroupBy: p.group, Series: series}, err
	})
}

func bucketName(d time.Duration) string {
	for k, v := range buckets {
		if v == d {
			return k
		}
	}
	return d.String()
}
