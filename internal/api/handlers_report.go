package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/driftlock/driftlock/internal/store"
)

// reportBody is POST /v1/anomalies: an anomaly found by a system that does
// not run the collector. Unknown fields are refused.
type reportBody struct {
	Signal           string         `json:"signal"`
	Service          string         `json:"service"`
	Stream           string         `json:"stream"`
	ObservedAt       *time.Time     `json:"observed_at"`
	Score            *float64       `json:"score"`
	PValue           *float64       `json:"p_value"`
	NCD              *float64       `json:"ncd"`
	CompressionRatio *float64       `json:"compression_ratio"`
	Entropy          *float64       `json:"entropy"`
	Severity         string         `json:"severity"`
	Summary          string         `json:"summary"`
	Explanation      string         `json:"explanation"`
	TraceID          string         `json:"trace_id"`
	SpanID           string         `json:"span_id"`
	Attributes       map[string]any `json:"attributes"`
	Resource         map[string]any `json:"resource"`
	Record           map[string]any `json:"record"`
}

// maxFutureSkew is how far past the server's clock observed_at may be
// (clock skew between the reporter and the server).
const maxFutureSkew = time.Hour

// anomaly checks the body and names the first bad field.
func (b *reportBody) anomaly(now time.Time) (store.Anomaly, error) {
	switch b.Signal {
	case store.SignalLogs, store.SignalTraces, store.SignalMetrics:
	case "":
		return store.Anomaly{}, badParam("signal", "required: logs, traces or metrics")
	default:
		return store.Anomaly{}, badParam("signal", "must be logs, traces or metrics")
	}
	for _, f := range []struct{ name, v string }{
		{"service", b.Service}, {"stream", b.Stream}, {"severity", b.Severity},
		{"trace_id", b.TraceID}, {"span_id", b.SpanID},
	} {
		if len(f.v) > store.MaxIndexedBytes {
			return store.Anomaly{}, badParam(f.name, fmt.Sprintf("longer than %d bytes", store.MaxIndexedBytes))
		}
	}
	if strings.TrimSpace(b.Service) == "" {
		return store.Anomaly{}, badParam("service", "required: the service the anomaly belongs to")
	}
	if strings.TrimSpace(b.Summary) == "" {
		return store.Anomaly{}, badParam("summary", "required: one line saying what is anomalous")
	}
	for _, f := range []struct{ name, v string }{{"summary", b.Summary}, {"explanation", b.Explanation}} {
		if len(f.v) > store.MaxTextBytes {
			return store.Anomaly{}, badParam(f.name, fmt.Sprintf("longer than %d bytes", store.MaxTextBytes))
		}
	}
	if b.ObservedAt == nil {
		return store.Anomaly{}, badParam("observed_at", "required: when the anomalous record happened (RFC 3339); it is part of the anomaly's identity")
	}
	if b.ObservedAt.Unix() <= 0 || b.ObservedAt.After(now.Add(maxFutureSkew)) {
		return store.Anomaly{}, badParam("observed_at", "must be after 1970 and at most 1h in the future")
	}
	if b.Score != nil && *b.Score < 0 {
		return store.Anomaly{}, badParam("score", "must be >= 0 (bits per token, higher is more surprising)")
	}
	if b.PValue != nil && (*b.PValue < 0 || *b.PValue > 1) {
		return store.Anomaly{}, badParam("p_value", "must be between 0 and 1")
	}
	for _, f := range []struct {
		name string
		v    *float64
	}{{"ncd", b.NCD}, {"compression_ratio", b.CompressionRatio}, {"entropy", b.Entropy}} {
		if f.v != nil && (*f.v < 0 || math.IsInf(*f.v, 0)) {
			return store.Anomaly{}, badParam(f.name, "must be a finite number >= 0")
		}
	}
	a := store.Anomaly{
		Signal: b.Signal, Service: b.Service, Stream: b.Stream, ObservedAt: b.ObservedAt.UTC(),
		NCD: b.NCD, CompressionRatio: b.CompressionRatio, Entropy: b.Entropy,
		Severity: b.Severity, Summary: b.Summary, Explanation: b.Explanation,
		TraceID: b.TraceID, SpanID: b.SpanID,
		Attributes: b.Attributes, Resource: b.Resource, Record: b.Record,
	}
	if a.Stream == "" {
		a.Stream = a.Service
	}
	if b.Score != nil {
		a.Score = *b.Score
	}
	if b.PValue != nil {
		a.PValue = *b.PValue
	}
	return a, nil
}

// handleReport serves POST /v1/anomalies: 201 with the stored anomaly, or
// 200 with the existing one when the same report was stored before.
func (s *Server) handleReport(w http.ResponseWriter, r *http.Request) {
	var b reportBody
	if !decodeJSON(w, r, &b) {
		return
	}
	a, err := b.anomaly(time.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	id, created, err := s.st.ReportAnomaly(ctx, a, principalFrom(r.Context()).Name)
	switch {
	case errors.Is(err, store.ErrBadSignal):
		s.fail(w, r, badParam("signal", "must be logs, traces or metrics"))
		return
	case store.IsPermanent(err):
		s.log.Warn("reported anomaly refused by the database", "request_id", requestIDFrom(r.Context()), "err", err)
		writeProblem(w, r, problem{Type: typeUnprocessable, Status: http.StatusUnprocessableEntity,
			Detail: "the database refused the anomaly's values; check the field types and sizes"})
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	stored, hist, err := s.st.GetAnomaly(ctx, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	w.Header().Set("Location", "/v1/anomalies/"+itoa(id))
	w.Header().Set("ETag", etag(stored.Version))
	writeJSON(w, status, getResponse{StoredAnomaly: stored, History: hist})
}
